"""Vector storage and exact cosine search of the embedded store."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from astrocyte.errors import StoreError, ValidationError
from astrocyte.spi import RecordFilter, ScoredId, Vector, VectorItem
from astrocyte.stores.memory import check_filter, check_limit, check_vector_items, unit_vector
from astrocyte.stores.sqlite._base import AfterCommit, StoreBase, snapshot
from astrocyte.stores.sqlite._sql import dump_metadata, dump_tags, id_list, load_many, opt_micros
from astrocyte.stores.sqlite._vectors import BankVectors, PayloadKey, payload_keys

_UPSERT_VECTOR = """
INSERT INTO vectors (bank_id, memory_id, dim, vec, occurred_at, tags, metadata)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (bank_id, memory_id) DO UPDATE SET
    dim = excluded.dim, vec = excluded.vec, occurred_at = excluded.occurred_at,
    tags = excluded.tags, metadata = excluded.metadata
"""


class VectorOps(StoreBase):
    """The :class:`~astrocyte.spi.VectorStore` part of ``SQLiteStore`` (except
    ``delete``, which lives on the store itself)."""

    def _write_vector_rows(
        self, conn: sqlite3.Connection, items: Sequence[VectorItem], units: Sequence[Vector]
    ) -> AfterCommit:
        by_bank: dict[str, list[int]] = {}
        for j, item in enumerate(items):
            by_bank.setdefault(item.bank_id, []).append(j)
        states: dict[str, tuple[int, int]] = {}
        for bank_id, positions in by_bank.items():
            row = conn.execute(
                "SELECT dim, version FROM vector_banks WHERE bank_id = ?", (bank_id,)
            ).fetchone()
            dim = int(row[0]) if row is not None and row[0] is not None else None
            version = int(row[1]) if row is not None else 0
            if dim is None:
                dim = int(units[positions[0]].shape[0])
            for j in positions:
                if units[j].shape[0] != dim:
                    raise ValidationError(
                        "vector",
                        f"items[{j}] has dimension {units[j].shape[0]} but bank "
                        f"{bank_id!r} holds {dim}-dimensional vectors",
                        fix="embed every memory of a bank with the same model",
                    )
            states[bank_id] = (dim, version)
        plans: list[
            tuple[
                str,
                int,
                int,
                list[str],
                npt.NDArray[np.float32],
                list[int | None],
                list[tuple[PayloadKey, ...]],
            ]
        ] = []
        for bank_id, positions in by_bank.items():
            dim, version = states[bank_id]
            latest = list({items[j].id: j for j in positions}.values())
            matrix = np.stack([units[j] for j in latest]).astype("<f4", copy=False)
            whens = [opt_micros(items[j].occurred_at) for j in latest]
            conn.executemany(
                _UPSERT_VECTOR,
                [
                    (
                        bank_id,
                        items[j].id,
                        dim,
                        matrix[k].tobytes(),
                        whens[k],
                        dump_tags(items[j].tags),
                        dump_metadata(items[j].metadata),
                    )
                    for k, j in enumerate(latest)
                ],
            )
            conn.execute(
                "INSERT INTO vector_banks (bank_id, dim, version) VALUES (?, ?, ?)"
                " ON CONFLICT (bank_id) DO UPDATE SET dim = excluded.dim,"
                " version = excluded.version",
                (bank_id, dim, version + 1),
            )
            plans.append(
                (
                    bank_id,
                    version,
                    version + 1,
                    [items[j].id for j in latest],
                    matrix,
                    whens,
                    [payload_keys(items[j].tags, items[j].metadata) for j in latest],
                )
            )

        def apply() -> None:
            for bank_id, before, after, ids, matrix, whens, keys in plans:
                cache = self._cache(bank_id)
                if cache is None:
                    continue
                if cache.version != before or cache.dim != matrix.shape[1]:
                    # Someone else wrote in between (or the bank changed dimension):
                    # cheaper and safer to reload on the next search.
                    self._drop_cache(bank_id)
                    continue
                try:
                    cache.upsert(ids, matrix, whens, keys)
                    cache.version = after
                except Exception:
                    self._drop_cache(bank_id)

        return apply

    def _delete_vector_rows(
        self, conn: sqlite3.Connection, bank_id: str, ids: Sequence[str]
    ) -> tuple[list[str], AfterCommit]:
        existing = [
            str(r[0])
            for r in conn.execute(
                "SELECT memory_id FROM vectors"
                " WHERE bank_id = ? AND memory_id IN (SELECT value FROM json_each(?))",
                (bank_id, id_list(ids)),
            )
        ]
        if not existing:
            return [], None
        conn.execute(
            "DELETE FROM vectors"
            " WHERE bank_id = ? AND memory_id IN (SELECT value FROM json_each(?))",
            (bank_id, id_list(existing)),
        )
        row = conn.execute(
            "SELECT version FROM vector_banks WHERE bank_id = ?", (bank_id,)
        ).fetchone()
        before = int(row[0]) if row is not None else 0
        remaining = conn.execute(
            "SELECT 1 FROM vectors WHERE bank_id = ? LIMIT 1", (bank_id,)
        ).fetchone()
        # An emptied bank forgets its dimension, so it can be re-embedded with another model.
        conn.execute(
            "INSERT INTO vector_banks (bank_id, dim, version) VALUES (?, NULL, ?)"
            " ON CONFLICT (bank_id) DO UPDATE SET version = excluded.version,"
            " dim = CASE WHEN ? THEN dim ELSE NULL END",
            (bank_id, before + 1, remaining is not None),
        )

        def apply() -> None:
            cache = self._cache(bank_id)
            if cache is None:
                return
            if cache.version != before:
                self._drop_cache(bank_id)
                return
            try:
                cache.delete(existing)
                cache.version = before + 1
            except Exception:
                self._drop_cache(bank_id)

        return existing, apply

    async def upsert(self, items: Sequence[VectorItem]) -> None:
        """Insert or replace vectors in one transaction. Vectors are stored
        L2-normalised; one whose dimension differs from its bank's raises
        :class:`ValidationError` (field ``vector``) and nothing is written."""
        if not items:
            return

        def op(conn: sqlite3.Connection) -> tuple[None, AfterCommit]:
            units = check_vector_items(items)
            return None, self._write_vector_rows(conn, items, units)

        await self._write(op)

    def _bank_vector_state(
        self, conn: sqlite3.Connection, bank_id: str, query: Vector
    ) -> tuple[int, int] | None:
        row = conn.execute(
            "SELECT dim, version FROM vector_banks WHERE bank_id = ?", (bank_id,)
        ).fetchone()
        if row is None or row[0] is None:
            return None
        dim, version = int(row[0]), int(row[1])
        if query.shape[0] != dim:
            raise ValidationError(
                "vector",
                f"query has dimension {query.shape[0]} but bank {bank_id!r} holds "
                f"{dim}-dimensional vectors",
                fix="embed the query with the model used for the bank",
            )
        return dim, version

    def _load_cache(
        self, conn: sqlite3.Connection, bank_id: str, dim: int, version: int
    ) -> BankVectors:
        (n,) = conn.execute("SELECT count(*) FROM vectors WHERE bank_id = ?", (bank_id,)).fetchone()
        matrix = np.empty((int(n), dim), dtype=np.float32)
        ids: list[str] = []
        whens: list[int | None] = []
        raw_tags: list[str] = []
        raw_meta: list[str] = []
        cursor = conn.execute(
            "SELECT memory_id, vec, occurred_at, tags, metadata FROM vectors WHERE bank_id = ?",
            (bank_id,),
        )
        # Chunked, so peak memory is the matrix plus one chunk of blobs, not two copies.
        while chunk := cursor.fetchmany(4096):
            start = len(ids)
            if start + len(chunk) > matrix.shape[0]:
                raise StoreError(f"vectors of bank {bank_id!r} changed while loading")
            blob = b"".join(r[1] for r in chunk)
            if len(blob) != len(chunk) * dim * 4:
                raise StoreError(f"vectors of bank {bank_id!r} do not all have dimension {dim}")
            matrix[start : start + len(chunk)] = np.frombuffer(blob, dtype="<f4").reshape(-1, dim)
            for memory_id, _, when, tags, meta in chunk:
                ids.append(str(memory_id))
                whens.append(None if when is None else int(when))
                raw_tags.append(str(tags))
                raw_meta.append(str(meta))
        if len(ids) != matrix.shape[0]:
            raise StoreError(f"vectors of bank {bank_id!r} changed while loading")
        keys = [
            payload_keys(tags, meta) if tags or meta else ()
            for tags, meta in zip(load_many(raw_tags), load_many(raw_meta), strict=True)
        ]
        return BankVectors.build(dim, version, ids, matrix, whens, keys)

    async def search(
        self, bank_id: str, vector: Vector, *, limit: int, where: RecordFilter | None = None
    ) -> list[ScoredId]:
        """Exact top-``limit`` by cosine similarity among the bank's vectors passing
        ``where``; a query of the wrong dimension raises :class:`ValidationError`."""
        check_limit(limit)
        check_filter(where)
        query = unit_vector(vector, "vector")
        if limit == 0:
            return []

        def cached(conn: sqlite3.Connection) -> list[tuple[str, float]] | None:
            state = self._bank_vector_state(conn, bank_id, query)
            if state is None:
                return []
            cache = self._cache(bank_id)
            # A cache newer than this reader's snapshot is fine: it only holds
            # writes that have already committed.
            if cache is None or cache.version < state[1]:
                return None
            return cache.search(query, limit, where)

        def loading(conn: sqlite3.Connection) -> list[tuple[str, float]]:
            # On the writer thread: no write of ours can interleave, and the read
            # transaction makes version and rows one consistent snapshot.
            with snapshot(conn):
                state = self._bank_vector_state(conn, bank_id, query)
                if state is None:
                    return []
                dim, version = state
                cache = self._cache(bank_id)
                if cache is None or cache.version != version:
                    cache = self._load_cache(conn, bank_id, dim, version)
                    self._install_cache(bank_id, cache)
            return cache.search(query, limit, where)

        hits = await self._read(cached)
        if hits is None:
            hits = await self._on_writer(loading)
        return [ScoredId(i, s) for i, s in hits]
