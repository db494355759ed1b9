"""Banks, memory records and keyword search of the embedded store."""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from astrocyte.errors import BankNotFound, ValidationError
from astrocyte.spi import BankInfo, MemoryRecord, RecordFilter, ScoredId
from astrocyte.stores.memory import check_filter, check_id, check_limit, check_records
from astrocyte.stores.sqlite._base import AfterCommit, StoreBase, snapshot
from astrocyte.stores.sqlite._sql import (
    dump_metadata,
    dump_tags,
    filter_sql,
    from_micros,
    id_list,
    load_metadata,
    load_tags,
    opt_micros,
    to_micros,
)
from astrocyte.stores.text import informative, keyword_terms, tokenize

_MEMORY_COLUMNS = (
    "id, text, source_id, chunk_index, content_type, created_at, occurred_at, tags, "
    "metadata, content_hash"
)

_UPSERT_MEMORY = """
INSERT INTO memories (bank_id, id, text, source_id, chunk_index, content_type, created_at,
                      occurred_at, tags, metadata, content_hash)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (bank_id, id) DO UPDATE SET
    text = excluded.text, source_id = excluded.source_id,
    chunk_index = excluded.chunk_index, content_type = excluded.content_type,
    created_at = excluded.created_at, occurred_at = excluded.occurred_at,
    tags = excluded.tags, metadata = excluded.metadata, content_hash = excluded.content_hash
"""


def _record(bank_id: str, row: Sequence[Any]) -> MemoryRecord:
    (mid, text, source_id, chunk_index, content_type, created, occurred, tags, meta, digest) = row
    return MemoryRecord(
        id=str(mid),
        bank_id=bank_id,
        text=str(text),
        source_id=str(source_id),
        chunk_index=int(chunk_index),
        content_type=str(content_type),
        created_at=from_micros(int(created)),
        occurred_at=None if occurred is None else from_micros(int(occurred)),
        tags=load_tags(str(tags)),
        metadata=load_metadata(str(meta)),
        content_hash=str(digest),
    )


def count_terms(conn: sqlite3.Connection, bank_id: str, texts: Iterable[str], sign: int) -> None:
    """Add (``sign=1``) or remove (``sign=-1``) documents from ``bank_terms``."""
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(set(tokenize(text)))
        counts[""] += 1
    if not counts:
        return
    conn.executemany(
        "INSERT INTO bank_terms (bank_id, term, df) VALUES (?, ?, ?)"
        " ON CONFLICT (bank_id, term) DO UPDATE SET df = df + excluded.df",
        [(bank_id, term, sign * n) for term, n in counts.items()],
    )
    if sign < 0:
        conn.execute("DELETE FROM bank_terms WHERE bank_id = ? AND df <= 0", (bank_id,))


def unindex_text(conn: sqlite3.Connection, bank_id: str, ids_json: str) -> None:
    """Remove memories from the external-content FTS index and the bank's word counts
    (before their rows change).

    FTS5 needs the exact indexed text to delete, which is the stored text.
    """
    texts = conn.execute(
        "SELECT text FROM memories WHERE bank_id = ? AND id IN (SELECT value FROM json_each(?))",
        (bank_id, ids_json),
    ).fetchall()
    count_terms(conn, bank_id, (str(t[0]) for t in texts), -1)
    conn.execute(
        "INSERT INTO memories_fts (memories_fts, rowid, text)"
        " SELECT 'delete', seq, text FROM memories"
        " WHERE bank_id = ? AND id IN (SELECT value FROM json_each(?))",
        (bank_id, ids_json),
    )


class DocumentOps(StoreBase):
    """The :class:`~astrocyte.spi.DocumentStore` part of ``SQLiteStore`` (except
    ``delete``, which also removes vectors and lives on the store itself)."""

    # ------------------------------------------------------------------ banks

    async def create_bank(self, bank_id: str) -> None:
        """Create the bank if it does not exist (idempotent)."""
        check_id(bank_id, "bank_id")
        if await self.bank_exists(bank_id):
            return

        def op(conn: sqlite3.Connection) -> tuple[None, AfterCommit]:
            conn.execute(
                "INSERT OR IGNORE INTO banks (bank_id, created_at) VALUES (?, ?)",
                (bank_id, to_micros(datetime.now(UTC))),
            )
            return None, None

        await self._write(op)

    async def list_banks(self) -> list[BankInfo]:
        """Every bank with its memory count, ordered by bank id."""

        def op(conn: sqlite3.Connection) -> list[BankInfo]:
            rows = conn.execute(
                "SELECT b.bank_id, b.created_at,"
                " (SELECT count(*) FROM memories m WHERE m.bank_id = b.bank_id)"
                " FROM banks b ORDER BY b.bank_id"
            ).fetchall()
            return [BankInfo(str(b), int(n), from_micros(int(c))) for b, c, n in rows]

        return await self._read(op)

    async def bank_exists(self, bank_id: str) -> bool:
        """Whether ``create_bank`` was called for this bank."""

        def op(conn: sqlite3.Connection) -> bool:
            row = conn.execute("SELECT 1 FROM banks WHERE bank_id = ?", (bank_id,)).fetchone()
            return row is not None

        return await self._read(op)

    # ------------------------------------------------------------------ documents

    @staticmethod
    def _put_rows(conn: sqlite3.Connection, records: Sequence[MemoryRecord]) -> None:
        banks = list(dict.fromkeys(r.bank_id for r in records))
        known = {
            row[0]
            for row in conn.execute(
                "SELECT bank_id FROM banks WHERE bank_id IN (SELECT value FROM json_each(?))",
                (id_list(banks),),
            )
        }
        for bank_id in banks:
            if bank_id not in known:
                raise BankNotFound(bank_id)
        latest = list({(r.bank_id, r.id): r for r in records}.values())
        by_bank: dict[str, list[str]] = {}
        for r in latest:
            by_bank.setdefault(r.bank_id, []).append(r.id)
        for bank_id, ids in by_bank.items():
            # Replaced records keep their row (and FTS rowid) through the upsert; their
            # old text leaves the keyword index and their tag rows are rebuilt.
            existing = id_list(
                str(row[0])
                for row in conn.execute(
                    "SELECT id FROM memories"
                    " WHERE bank_id = ? AND id IN (SELECT value FROM json_each(?))",
                    (bank_id, id_list(ids)),
                )
            )
            if existing != "[]":
                unindex_text(conn, bank_id, existing)
                conn.execute(
                    "DELETE FROM memory_tags"
                    " WHERE bank_id = ? AND memory_id IN (SELECT value FROM json_each(?))",
                    (bank_id, existing),
                )
        conn.executemany(
            _UPSERT_MEMORY,
            [
                (
                    r.bank_id,
                    r.id,
                    r.text,
                    r.source_id,
                    r.chunk_index,
                    r.content_type,
                    to_micros(r.created_at),
                    opt_micros(r.occurred_at),
                    dump_tags(r.tags),
                    dump_metadata(r.metadata),
                    r.content_hash,
                )
                for r in latest
            ],
        )
        for bank_id, ids in by_bank.items():
            conn.execute(
                "INSERT INTO memories_fts (rowid, text) SELECT seq, text FROM memories"
                " WHERE bank_id = ? AND id IN (SELECT value FROM json_each(?))",
                (bank_id, id_list(ids)),
            )
            count_terms(conn, bank_id, (r.text for r in latest if r.bank_id == bank_id), 1)
        conn.executemany(
            "INSERT OR IGNORE INTO memory_tags (bank_id, tag, memory_id) VALUES (?, ?, ?)",
            [(r.bank_id, tag, r.id) for r in latest for tag in dict.fromkeys(r.tags)],
        )

    async def put(self, records: Sequence[MemoryRecord]) -> None:
        """Insert or replace records in one transaction; raises :class:`BankNotFound`
        (and writes nothing) if any record's bank was never created."""
        if not records:
            return

        def op(conn: sqlite3.Connection) -> tuple[None, AfterCommit]:
            check_records(records)
            self._put_rows(conn, records)
            return None, None

        await self._write(op)

    async def get(self, bank_id: str, ids: Sequence[str]) -> list[MemoryRecord]:
        """The records of ``ids`` that exist in the bank, in the order asked."""
        if not ids:
            return []

        def op(conn: sqlite3.Connection) -> list[MemoryRecord]:
            rows = conn.execute(
                f"SELECT {_MEMORY_COLUMNS} FROM memories"
                " WHERE bank_id = ? AND id IN (SELECT value FROM json_each(?))",
                (bank_id, id_list(dict.fromkeys(ids))),
            ).fetchall()
            found = {str(row[0]): _record(bank_id, row) for row in rows}
            return [found[i] for i in ids if i in found]

        return await self._read(op)

    @staticmethod
    def _useful_phrases(conn: sqlite3.Connection, bank_id: str, words: list[str]) -> list[str]:
        """FTS5 phrases for the query words that can discriminate within this bank.

        Words common in the bank are dropped by :func:`informative`. Besides the
        quality reason given there, a word in a large share of the bank makes FTS5
        score every memory containing it: on a 100k bank one such word turns a 2 ms
        query into 100+ ms.
        """
        terms = {w: (tokenize(w) or [""])[0] for w in words}
        rows = conn.execute(
            "SELECT term, df FROM bank_terms"
            " WHERE bank_id = ? AND term IN (SELECT value FROM json_each(?))",
            (bank_id, id_list(["", *terms.values()])),
        ).fetchall()
        df = {str(t): int(n) for t, n in rows}
        kept = informative([(w, df.get(t, 0)) for w, t in terms.items()], df.get("", 0))
        return ['"' + w.replace('"', '""') + '"' for w in kept]

    async def keyword_search(
        self, bank_id: str, query: str, *, limit: int, where: RecordFilter | None = None
    ) -> list[ScoredId]:
        """BM25 keyword search; scores are positive, higher is better. Query syntax
        characters are never interpreted; a query of only stopwords returns ``[]``."""
        check_limit(limit)
        check_filter(where)
        words = keyword_terms(query)
        if not words or limit == 0:
            return []
        clause, params = filter_sql(where, bank_id)

        def op(conn: sqlite3.Connection) -> list[ScoredId]:
            with snapshot(conn):
                useful = self._useful_phrases(conn, bank_id, words)
                if not useful:
                    return []
                match = " OR ".join(useful)
                # Fast path: rank the whole index first (FTS5 alone), then keep this
                # bank's rows. Exact whenever `limit` of the top K belong to the bank —
                # a bank row outside the top K scores below all of them — and it skips
                # joining every match to `memories`, which is half the cost on a large
                # file. Otherwise (a small bank in a shared file, a narrow filter) the
                # full query runs.
                top_k = max(4 * limit, 200)
                rows = conn.execute(
                    "SELECT m.id, -f.score FROM (SELECT rowid AS seq, bm25(memories_fts) AS score"
                    " FROM memories_fts WHERE memories_fts MATCH ? ORDER BY score LIMIT ?) f"
                    f" JOIN memories m ON m.seq = f.seq WHERE m.bank_id = ?{clause}"
                    " ORDER BY f.score, m.id LIMIT ?",
                    (match, top_k, bank_id, *params, limit),
                ).fetchall()
                if len(rows) < limit:
                    rows = conn.execute(
                        "SELECT m.id, -bm25(memories_fts) AS score"
                        " FROM memories_fts JOIN memories m ON m.seq = memories_fts.rowid"
                        f" WHERE memories_fts MATCH ? AND m.bank_id = ?{clause}"
                        " ORDER BY score DESC, m.id LIMIT ?",
                        (match, bank_id, *params, limit),
                    ).fetchall()
            return [ScoredId(str(i), float(s)) for i, s in rows]

        return await self._read(op)

    async def find(
        self,
        bank_id: str,
        where: RecordFilter,
        *,
        limit: int | None = None,
        order: Literal["newest", "oldest"] | None = None,
    ) -> list[str]:
        """Ids matching ``where``. ``order`` sorts by ``occurred_at`` (memories
        without one last, ties by id); without it the order is unspecified."""
        check_limit(limit)
        check_filter(where)
        if order not in (None, "newest", "oldest"):
            raise ValidationError("order", "must be 'newest', 'oldest' or None")
        if limit == 0:
            return []
        clause, params = filter_sql(where, bank_id)
        sql_limit = -1 if limit is None else limit

        def op(conn: sqlite3.Connection) -> list[str]:
            base = f"SELECT m.id FROM memories m WHERE m.bank_id = ?{clause}"
            if order is None:
                # No ORDER BY: the planner is free to drive from whichever index the
                # filter favours, and forget() asks for every id of a large bank.
                rows = conn.execute(f"{base} LIMIT ?", (bank_id, *params, sql_limit)).fetchall()
                return [str(r[0]) for r in rows]
            direction = "DESC" if order == "newest" else "ASC"
            # Two queries instead of ORDER BY occurred_at IS NULL: each can walk the
            # (bank_id, occurred_at) index and stop at the limit.
            with snapshot(conn):
                dated = conn.execute(
                    f"{base} AND m.occurred_at IS NOT NULL"
                    f" ORDER BY m.occurred_at {direction}, m.id LIMIT ?",
                    (bank_id, *params, sql_limit),
                ).fetchall()
                ids = [str(r[0]) for r in dated]
                if limit is None or len(ids) < limit:
                    rest = -1 if limit is None else limit - len(ids)
                    undated = conn.execute(
                        f"{base} AND m.occurred_at IS NULL ORDER BY m.id LIMIT ?",
                        (bank_id, *params, rest),
                    ).fetchall()
                    ids.extend(str(r[0]) for r in undated)
            return ids

        return await self._read(op)

    async def find_by_content_hash(self, bank_id: str, hashes: Sequence[str]) -> dict[str, str]:
        """Hash → id of the earliest stored memory with it, through the
        ``(bank_id, content_hash)`` index."""
        wanted = list(dict.fromkeys(h for h in hashes if h))
        if not wanted:
            return {}

        def op(conn: sqlite3.Connection) -> dict[str, str]:
            if len(wanted) == 1:
                # The common case (one retained sentence): a plain index probe.
                row = conn.execute(
                    "SELECT id FROM memories WHERE bank_id = ? AND content_hash = ?"
                    " ORDER BY seq LIMIT 1",
                    (bank_id, wanted[0]),
                ).fetchone()
                return {} if row is None else {wanted[0]: str(row[0])}
            # With min(), SQLite takes the bare column `id` from the row holding the
            # minimum: the first stored memory of each hash.
            rows = conn.execute(
                "SELECT content_hash, id, min(seq) FROM memories"
                " WHERE bank_id = ? AND content_hash IN (SELECT value FROM json_each(?))"
                " GROUP BY content_hash",
                (bank_id, id_list(wanted)),
            ).fetchall()
            return {str(digest): str(mid) for digest, mid, _ in rows}

        return await self._read(op)

    async def count(self, bank_id: str) -> int:
        """Number of memories in the bank."""

        def op(conn: sqlite3.Connection) -> int:
            # The count kept in bank_terms (term '') is written in the same
            # transactions as the rows: O(1) instead of a scan of the bank's index,
            # which costs ~5 ms at 100k and is asked on every graph recall.
            row = conn.execute(
                "SELECT df FROM bank_terms WHERE bank_id = ? AND term = ''", (bank_id,)
            ).fetchone()
            return int(row[0]) if row else 0

        return await self._read(op)
