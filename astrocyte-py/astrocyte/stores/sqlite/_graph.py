"""Entities, links and relations of the embedded store."""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Sequence

from astrocyte.errors import ValidationError
from astrocyte.spi import Entity, EntityLink, GraphHit, Relation
from astrocyte.stores.memory import (
    check_entities,
    check_limit,
    check_links,
    check_relations,
    expand_neighbourhood,
)
from astrocyte.stores.sqlite._base import AfterCommit, StoreBase, snapshot
from astrocyte.stores.sqlite._sql import id_list

_UPSERT_ENTITY = """
INSERT INTO entities (bank_id, id, name, normalized, kind) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (bank_id, id) DO UPDATE SET
    name = excluded.name, normalized = excluded.normalized, kind = excluded.kind
"""


class GraphOps(StoreBase):
    """The :class:`~astrocyte.spi.GraphStore` part of ``SQLiteStore``."""

    # ------------------------------------------------------------------ graph

    @staticmethod
    def _require_entities(conn: sqlite3.Connection, wanted: Sequence[tuple[str, str, str]]) -> None:
        """Raise :class:`ValidationError` for the first ``(bank, entity, field)`` whose
        entity does not exist."""
        by_bank: dict[str, set[str]] = {}
        for bank_id, entity_id, _ in wanted:
            by_bank.setdefault(bank_id, set()).add(entity_id)
        known: set[tuple[str, str]] = set()
        for bank_id, entity_ids in by_bank.items():
            known.update(
                (bank_id, str(r[0]))
                for r in conn.execute(
                    "SELECT id FROM entities"
                    " WHERE bank_id = ? AND id IN (SELECT value FROM json_each(?))",
                    (bank_id, id_list(entity_ids)),
                )
            )
        for bank_id, entity_id, field_name in wanted:
            if (bank_id, entity_id) not in known:
                raise ValidationError(
                    field_name,
                    f"unknown entity {entity_id!r} in bank {bank_id!r}",
                    fix="upsert_entities() before linking or relating them",
                )

    @staticmethod
    def _upsert_entity_rows(conn: sqlite3.Connection, entities: Sequence[Entity]) -> None:
        conn.executemany(
            _UPSERT_ENTITY,
            [(e.bank_id, e.id, e.name, e.normalized, e.kind) for e in entities],
        )

    def _link_rows(self, conn: sqlite3.Connection, links: Sequence[EntityLink]) -> None:
        self._require_entities(
            conn,
            [(ln.bank_id, ln.entity_id, f"links[{i}].entity_id") for i, ln in enumerate(links)],
        )
        conn.executemany(
            "INSERT OR IGNORE INTO entity_links (bank_id, memory_id, entity_id) VALUES (?, ?, ?)",
            [(ln.bank_id, ln.memory_id, ln.entity_id) for ln in links],
        )

    async def upsert_entities(self, entities: Sequence[Entity]) -> None:
        """Insert or replace entities (keyed by bank and ``id``); links and relations
        of a replaced entity are kept."""
        if not entities:
            return

        def op(conn: sqlite3.Connection) -> tuple[None, AfterCommit]:
            check_entities(entities)
            self._upsert_entity_rows(conn, entities)
            return None, None

        await self._write(op)

    async def link(self, links: Sequence[EntityLink]) -> None:
        """Record that memories mention entities (idempotent). The entities must
        exist in the link's bank (:class:`ValidationError` otherwise)."""
        if not links:
            return

        def op(conn: sqlite3.Connection) -> tuple[None, AfterCommit]:
            check_links(links)
            self._link_rows(conn, links)
            return None, None

        await self._write(op)

    async def relate(self, relations: Sequence[Relation]) -> None:
        """Add entity→entity edges (idempotent); both entities must exist."""
        if not relations:
            return

        def op(conn: sqlite3.Connection) -> tuple[None, AfterCommit]:
            check_relations(relations)
            wanted: list[tuple[str, str, str]] = []
            for i, rel in enumerate(relations):
                wanted.append(
                    (rel.bank_id, rel.source_entity_id, f"relations[{i}].source_entity_id")
                )
                wanted.append(
                    (rel.bank_id, rel.target_entity_id, f"relations[{i}].target_entity_id")
                )
            self._require_entities(conn, wanted)
            conn.executemany(
                "INSERT OR IGNORE INTO relations"
                " (bank_id, source_entity_id, target_entity_id, kind) VALUES (?, ?, ?, ?)",
                [(r.bank_id, r.source_entity_id, r.target_entity_id, r.kind) for r in relations],
            )
            return None, None

        await self._write(op)

    async def find_entities(self, bank_id: str, normalized_names: Sequence[str]) -> list[Entity]:
        """Entities whose ``normalized`` name is one of the given names, ordered by
        normalized name then id."""
        if not normalized_names:
            return []

        def op(conn: sqlite3.Connection) -> list[Entity]:
            rows = conn.execute(
                "SELECT e.id, e.name, e.normalized, e.kind,"
                " (SELECT count(*) FROM entity_links l"
                "  WHERE l.bank_id = e.bank_id AND l.entity_id = e.id)"
                " FROM entities e"
                " WHERE e.bank_id = ? AND e.normalized IN (SELECT value FROM json_each(?))"
                " ORDER BY e.normalized, e.id",
                (bank_id, id_list(dict.fromkeys(normalized_names))),
            ).fetchall()
            return [
                Entity(str(i), bank_id, str(n), str(z), str(k), int(c)) for i, n, z, k, c in rows
            ]

        return await self._read(op)

    async def neighbourhood(
        self, bank_id: str, entity_ids: Sequence[str], *, depth: int = 1, limit: int = 100
    ) -> list[GraphHit]:
        """Memories linked to the entities or to entities up to ``depth`` relation hops
        away (either direction); ranking as in
        :func:`astrocyte.stores.memory.expand_neighbourhood`."""
        check_limit(limit)
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
            raise ValidationError("depth", "must be a non-negative integer")
        if not entity_ids or limit == 0:
            return []

        def op(conn: sqlite3.Connection) -> list[GraphHit]:
            def neighbours(entities: Collection[str]) -> dict[str, set[str]]:
                out: dict[str, set[str]] = {}
                batch = id_list(entities)
                for a, b in conn.execute(
                    "SELECT source_entity_id, target_entity_id FROM relations"
                    " WHERE bank_id = ? AND source_entity_id IN"
                    " (SELECT value FROM json_each(?))"
                    " UNION ALL SELECT target_entity_id, source_entity_id FROM relations"
                    " WHERE bank_id = ? AND target_entity_id IN"
                    " (SELECT value FROM json_each(?))",
                    (bank_id, batch, bank_id, batch),
                ):
                    out.setdefault(str(a), set()).add(str(b))
                return out

            def links(entities: Collection[str]) -> list[tuple[str, str]]:
                return [
                    (str(m), str(e))
                    for m, e in conn.execute(
                        "SELECT memory_id, entity_id FROM entity_links"
                        " WHERE bank_id = ? AND entity_id IN (SELECT value FROM json_each(?))",
                        (bank_id, id_list(entities)),
                    )
                ]

            with snapshot(conn):
                return expand_neighbourhood(
                    entity_ids, depth=depth, limit=limit, neighbours=neighbours, links=links
                )

        return await self._read(op)

    async def delete_memories(self, bank_id: str, memory_ids: Sequence[str]) -> int:
        """Remove the memories' links, then entities left with no link (their
        relations go with them). Returns the number of links removed."""
        wanted = list(dict.fromkeys(memory_ids))
        if not wanted:
            return 0

        def op(conn: sqlite3.Connection) -> tuple[int, AfterCommit]:
            batch = id_list(wanted)
            touched = [
                str(r[0])
                for r in conn.execute(
                    "SELECT DISTINCT entity_id FROM entity_links"
                    " WHERE bank_id = ? AND memory_id IN (SELECT value FROM json_each(?))",
                    (bank_id, batch),
                )
            ]
            removed = conn.execute(
                "DELETE FROM entity_links"
                " WHERE bank_id = ? AND memory_id IN (SELECT value FROM json_each(?))",
                (bank_id, batch),
            ).rowcount
            if touched:
                conn.execute(
                    "DELETE FROM entities"
                    " WHERE bank_id = ? AND id IN (SELECT value FROM json_each(?))"
                    " AND NOT EXISTS (SELECT 1 FROM entity_links l"
                    "   WHERE l.bank_id = entities.bank_id AND l.entity_id = entities.id)",
                    (bank_id, id_list(touched)),
                )
            return int(removed), None

        return await self._write(op)
