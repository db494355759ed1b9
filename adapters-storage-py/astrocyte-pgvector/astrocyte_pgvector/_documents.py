"""DocumentStore half: banks, records, filters and BM25 keyword search.

Keyword search: ``tsv`` (``to_tsvector(<text_search_config>, text)``) has a GIN index.
A query is split into words by :func:`astrocyte.stores.text.keyword_terms`; each word
becomes ``plainto_tsquery(config, word)`` and the words are OR-ed by the
``tsquery_any`` aggregate, so no query text is ever parsed as tsquery syntax. Document
frequencies per bank come from ``term_stats`` (maintained on every write), the bank's
size and total length from ``banks``; with them the store applies the common-word rule
(:func:`astrocyte.stores.text.informative`) and scores matches with BM25 (k1 = 1.2,
b = 0.75) over the GIN candidates only.

Scoring every match costs time linear in the number of matches: a query whose words each
occur in 5% of a million-memory bank would score ~200k rows. When the informative words
match more than ``keyword_candidates`` memories in total, the store scores a bounded set
instead, gathered in tiers from most to least specific — memories with *all* the words,
then all but the most common one, and so on down to the rarest word alone, then each
other word alone — each tier adding what earlier tiers did not find until
``keyword_candidates`` (at least the requested ``limit``) are gathered; the broad tiers,
whose index bitmaps cost the most, then usually never run. Memories matching
many (or rare) words, which are the ones BM25 ranks first, are always in the set; what
may be missed is a memory matching a single common word when thousands do, which BM25
would rank near the bottom anyway. Scores are exact BM25 for every candidate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC
from typing import Any, Literal

import asyncpg
from astrocyte.errors import BankNotFound, ValidationError
from astrocyte.spi import BankInfo, MemoryRecord, RecordFilter, ScoredId
from astrocyte.stores.memory import check_filter, check_id, check_limit, check_records
from astrocyte.stores.text import informative, keyword_terms

from astrocyte_pgvector._base import PgBase
from astrocyte_pgvector._sql import Params, dump_metadata, filter_clauses, load_metadata
from astrocyte_pgvector._stage import stage_records

_K1 = 1.2
_B = 0.75

_RECORD_SELECT = (
    "bank_id, id, text, source_id, chunk_index, content_type, created_at, occurred_at,"
    " tags, metadata, content_hash"
)


def _record(row: asyncpg.Record) -> MemoryRecord:
    occurred = row["occurred_at"]
    return MemoryRecord(
        id=row["id"],
        bank_id=row["bank_id"],
        text=row["text"],
        source_id=row["source_id"],
        chunk_index=row["chunk_index"],
        content_type=row["content_type"],
        created_at=row["created_at"].astimezone(UTC),
        occurred_at=None if occurred is None else occurred.astimezone(UTC),
        tags=tuple(row["tags"]),
        metadata=load_metadata(row["metadata"]),
        content_hash=row["content_hash"],
    )


def _bm25_idf(n_docs: int, doc_freq: int) -> float:
    return math.log(1.0 + (n_docs - doc_freq + 0.5) / (doc_freq + 0.5))


def _tiered_candidates(
    schema: str,
    cfg: str,
    words: list[tuple[str, int]],
    filters: list[str],
    params: Params,
    budget: int,
) -> str:
    """SQL selecting the bounded candidate set described in the module docstring (``id,
    tsv, doc_len``), in one statement.

    The tiers are the branches of a ``UNION ALL`` under one ``LIMIT``: PostgreSQL runs
    the branches in order and stops as soon as the limit is met, so the broad tiers,
    whose index bitmaps cost the most, usually never start. Each tier leaves out what
    an earlier tier matched, so no candidate is counted twice. ``words`` are the
    informative query words with their document frequencies; every word travels as a
    bind parameter through ``plainto_tsquery`` (which ANDs the lexemes of its text and
    never parses operators)."""
    ordered = [w for w, _ in sorted(words, key=lambda item: item[1])]  # rarest first
    tiers = [ordered[:n] for n in range(len(ordered), 0, -1)]
    tiers += [[w] for w in ordered[1:]]
    queries = [f"plainto_tsquery('{cfg}', {params.add(' '.join(tier))}::text)" for tier in tiers]
    branches = []
    for index, query in enumerate(queries):
        clauses = ["bank_id = $1", f"tsv @@ {query}", *filters]
        # Prefix tiers nest (fewer words match more), so the previous prefix tier covers
        # every earlier one; a single-word tier must also skip earlier single words.
        earlier = (
            queries[max(0, index - 1) : index]
            if index < len(ordered)
            else queries[len(ordered) - 1 : index]
        )
        if earlier:
            clauses.append(f"NOT (tsv @@ ({' || '.join(earlier)}))")
        branches.append(
            f"(SELECT id, tsv, doc_len FROM {schema}.memories WHERE {' AND '.join(clauses)})"
        )
    return f"SELECT * FROM ({' UNION ALL '.join(branches)}) t LIMIT {params.add(budget)}"


class DocumentOps(PgBase):
    """:class:`~astrocyte.spi.DocumentStore` methods (``delete`` lives on the store)."""

    async def create_bank(self, bank_id: str) -> None:
        """Create the bank if it does not exist (idempotent)."""
        check_id(bank_id, "bank_id")

        async def op(conn: asyncpg.Connection) -> None:
            await conn.execute(
                f"INSERT INTO {self._s}.banks (bank_id) VALUES ($1) ON CONFLICT DO NOTHING",
                bank_id,
            )

        await self._run(op)

    async def list_banks(self) -> list[BankInfo]:
        """Every bank with its memory count, ordered by bank id (code point order)."""

        async def op(conn: asyncpg.Connection) -> list[BankInfo]:
            rows = await conn.fetch(
                f"SELECT bank_id, memory_count, created_at FROM {self._s}.banks"
                ' ORDER BY bank_id COLLATE "C"'
            )
            return [
                BankInfo(
                    bank_id=r["bank_id"],
                    memory_count=r["memory_count"],
                    created_at=r["created_at"].astimezone(UTC),
                )
                for r in rows
            ]

        return await self._run(op, read_only=True)

    async def bank_exists(self, bank_id: str) -> bool:
        """Whether ``create_bank`` was called for this bank."""

        async def op(conn: asyncpg.Connection) -> bool:
            found = await conn.fetchval(
                f"SELECT 1 FROM {self._s}.banks WHERE bank_id = $1", bank_id
            )
            return found is not None

        return await self._run(op, read_only=True)

    async def put(self, records: Sequence[MemoryRecord]) -> None:
        """Insert or replace records in one transaction (last one wins for a repeated
        id); raises :class:`BankNotFound` and writes nothing if a bank is missing."""
        if not records:
            return
        check_records(records)
        latest = {(r.bank_id, r.id): r for r in records}
        rows = [
            (
                r.bank_id,
                r.id,
                r.text,
                r.source_id,
                r.chunk_index,
                r.content_type,
                r.created_at,
                r.occurred_at,
                list(r.tags),
                dump_metadata(r.metadata),
                r.content_hash,
            )
            for r in latest.values()
        ]
        banks = sorted({r.bank_id for r in records})

        async def op(conn: asyncpg.Connection) -> None:
            async with conn.transaction():
                await self._put_rows(conn, banks, rows)

        await self._run(op)

    async def _put_rows(
        self, conn: asyncpg.Connection, banks: list[str], rows: list[tuple[Any, ...]]
    ) -> None:
        s, cfg = self._s, self._options.text_search_config
        # Bank rows are locked first, in id order, by every writer of records: that is
        # the lock order that keeps concurrent puts and deletes free of deadlocks.
        present = {
            r[0]
            for r in await conn.fetch(
                f"SELECT bank_id FROM {s}.banks WHERE bank_id = ANY($1::text[])"
                ' ORDER BY bank_id COLLATE "C" FOR UPDATE',
                banks,
            )
        }
        missing = [b for b in banks if b not in present]
        if missing:
            raise BankNotFound(missing[0])
        await stage_records(conn, rows)
        await conn.execute(
            f"""CREATE TEMP TABLE astro_in_tsv ON COMMIT DROP AS
                SELECT i.bank_id, i.id, to_tsvector('{cfg}', i.text) AS tsv
                FROM astro_in_rec i"""
        )
        await conn.execute("ALTER TABLE astro_in_tsv ADD PRIMARY KEY (bank_id, id)")
        # Term document counts: +1 per lexeme of each new text, -1 per lexeme of the
        # text it replaces; one upsert per (bank, lexeme), in key order.
        emptied = await conn.fetch(
            f"""INSERT INTO {s}.term_stats AS t (bank_id, lexeme, doc_count)
                SELECT bank_id, lexeme, sum(d) FROM (
                    SELECT n.bank_id, l AS lexeme, 1 AS d
                    FROM astro_in_tsv n, unnest(tsvector_to_array(n.tsv)) l
                    UNION ALL
                    SELECT m.bank_id, l, -1
                    FROM {s}.memories m JOIN astro_in_tsv n USING (bank_id, id),
                         unnest(tsvector_to_array(m.tsv)) l
                ) x
                GROUP BY bank_id, lexeme HAVING sum(d) <> 0
                ORDER BY bank_id, lexeme
                ON CONFLICT (bank_id, lexeme)
                DO UPDATE SET doc_count = t.doc_count + excluded.doc_count
                RETURNING t.bank_id, t.lexeme, t.doc_count"""
        )
        await self._drop_empty_terms(conn, emptied)
        await conn.execute(
            f"""UPDATE {s}.banks b
                SET memory_count = b.memory_count + d.n, total_len = b.total_len + d.len
                FROM (
                    SELECT bank_id, sum(n) AS n, sum(len) AS len FROM (
                        SELECT bank_id, 1 AS n, length(tsv) AS len FROM astro_in_tsv
                        UNION ALL
                        SELECT m.bank_id, -1, -m.doc_len
                        FROM {s}.memories m JOIN astro_in_tsv n USING (bank_id, id)
                    ) y GROUP BY bank_id
                ) d
                WHERE b.bank_id = d.bank_id"""
        )
        await conn.execute(
            f"""INSERT INTO {s}.memories AS m (
                    bank_id, id, text, source_id, chunk_index, content_type, created_at,
                    occurred_at, tags, metadata, metadata_jb, content_hash, tsv, doc_len)
                SELECT i.bank_id, i.id, i.text, i.source_id, i.chunk_index, i.content_type,
                       i.created_at, i.occurred_at, i.tags, i.metadata, i.metadata::jsonb,
                       i.content_hash, n.tsv, length(n.tsv)
                FROM astro_in_rec i JOIN astro_in_tsv n USING (bank_id, id)
                ORDER BY i.bank_id, i.id
                ON CONFLICT (bank_id, id) DO UPDATE SET
                    text = excluded.text, source_id = excluded.source_id,
                    chunk_index = excluded.chunk_index, content_type = excluded.content_type,
                    created_at = excluded.created_at, occurred_at = excluded.occurred_at,
                    tags = excluded.tags, metadata = excluded.metadata,
                    metadata_jb = excluded.metadata_jb, content_hash = excluded.content_hash,
                    tsv = excluded.tsv, doc_len = excluded.doc_len"""
        )

    async def _drop_empty_terms(
        self, conn: asyncpg.Connection, changed: Sequence[asyncpg.Record]
    ) -> None:
        gone = [(r["bank_id"], r["lexeme"]) for r in changed if r["doc_count"] <= 0]
        if gone:
            await conn.execute(
                f"""DELETE FROM {self._s}.term_stats t
                    USING unnest($1::text[], $2::text[]) AS g(bank_id, lexeme)
                    WHERE t.bank_id = g.bank_id AND t.lexeme = g.lexeme
                      AND t.doc_count <= 0""",
                [b for b, _ in gone],
                [lex for _, lex in gone],
            )

    async def _delete_records(
        self, conn: asyncpg.Connection, bank_id: str, ids: list[str]
    ) -> list[str]:
        """Delete records (inside the caller's transaction); returns the ids removed."""
        s = self._s
        locked = await conn.fetchval(
            f"SELECT 1 FROM {s}.banks WHERE bank_id = $1 FOR UPDATE", bank_id
        )
        if locked is None:
            return []
        # One statement: the deleted rows feed the term and bank counter updates.
        row = await conn.fetchrow(
            f"""WITH old AS (
                    DELETE FROM {s}.memories WHERE bank_id = $1 AND id = ANY($2::text[])
                    RETURNING id, tsv, doc_len
                ),
                d AS (
                    SELECT l AS lexeme, count(*) AS n
                    FROM old, unnest(tsvector_to_array(old.tsv)) l GROUP BY l
                ),
                upd AS (
                    UPDATE {s}.term_stats t SET doc_count = t.doc_count - d.n
                    FROM d WHERE t.bank_id = $1 AND t.lexeme = d.lexeme
                    RETURNING t.bank_id, t.lexeme, t.doc_count
                ),
                bank AS (
                    UPDATE {s}.banks SET
                        memory_count = memory_count - (SELECT count(*) FROM old),
                        total_len = total_len - (SELECT coalesce(sum(doc_len), 0) FROM old)
                    WHERE bank_id = $1 AND EXISTS (SELECT 1 FROM old)
                )
                SELECT
                    (SELECT coalesce(array_agg(id), '{{}}') FROM old) AS ids,
                    (SELECT coalesce(array_agg(lexeme), '{{}}') FROM upd
                     WHERE doc_count <= 0) AS gone""",
            bank_id,
            ids,
        )
        gone: list[str] = list(row["gone"])
        if gone:
            await conn.execute(
                f"DELETE FROM {s}.term_stats"
                " WHERE bank_id = $1 AND lexeme = ANY($2::text[]) AND doc_count <= 0",
                bank_id,
                gone,
            )
        return list(row["ids"])

    async def get(self, bank_id: str, ids: Sequence[str]) -> list[MemoryRecord]:
        """The records of ``ids`` that exist in the bank, in the order asked."""
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return []

        async def op(conn: asyncpg.Connection) -> list[asyncpg.Record]:
            rows: list[asyncpg.Record] = await conn.fetch(
                f"SELECT {_RECORD_SELECT} FROM {self._s}.memories"
                " WHERE bank_id = $1 AND id = ANY($2::text[])",
                bank_id,
                wanted,
            )
            return rows

        by_id = {r["id"]: _record(r) for r in await self._run(op, read_only=True)}
        return [by_id[i] for i in ids if i in by_id]

    async def find(
        self,
        bank_id: str,
        where: RecordFilter,
        *,
        limit: int | None = None,
        order: Literal["newest", "oldest"] | None = None,
    ) -> list[str]:
        """Ids matching ``where``; ``order`` sorts by ``occurred_at``, undated last."""
        check_filter(where)
        check_limit(limit)
        if order not in (None, "newest", "oldest"):
            raise ValidationError("order", "must be 'newest', 'oldest' or None")
        if limit == 0:
            return []
        params = Params(bank_id)
        clauses = ["bank_id = $1", *filter_clauses(where, params, metadata_column="metadata_jb")]
        sql = f"SELECT id FROM {self._s}.memories WHERE {' AND '.join(clauses)}"
        if order is not None:
            direction = "DESC" if order == "newest" else "ASC"
            sql += f" ORDER BY occurred_at {direction} NULLS LAST, id"
        if limit is not None:
            sql += f" LIMIT {params.add(limit)}"

        async def op(conn: asyncpg.Connection) -> list[str]:
            return [r[0] for r in await conn.fetch(sql, *params.values)]

        return await self._run(op, read_only=True)

    async def keyword_search(
        self, bank_id: str, query: str, *, limit: int, where: RecordFilter | None = None
    ) -> list[ScoredId]:
        """BM25 matches of any informative query word (see module docstring)."""
        check_limit(limit)
        check_filter(where)
        if not isinstance(query, str):
            raise ValidationError("query", "must be a string")
        terms = keyword_terms(query)
        if not terms or limit == 0:
            return []
        s, cfg = self._s, self._options.text_search_config

        async def op(conn: asyncpg.Connection) -> list[ScoredId]:
            async with conn.transaction(readonly=True):
                return await ranked(conn)

        async def ranked(conn: asyncpg.Connection) -> list[ScoredId]:
            bank = await conn.fetchrow(
                f"SELECT memory_count, total_len FROM {s}.banks WHERE bank_id = $1", bank_id
            )
            if bank is None or bank["memory_count"] <= 0:
                return []
            n_docs = int(bank["memory_count"])
            avgdl = max(float(bank["total_len"]) / n_docs, 1.0)
            stats = await conn.fetch(
                f"""SELECT w.ord, l.lexeme, coalesce(t.doc_count, 0) AS df
                    FROM unnest($2::text[]) WITH ORDINALITY AS w(word, ord)
                    CROSS JOIN LATERAL
                        unnest(tsvector_to_array(to_tsvector('{cfg}', w.word))) AS l(lexeme)
                    LEFT JOIN {s}.term_stats t ON t.bank_id = $1 AND t.lexeme = l.lexeme""",
                bank_id,
                terms,
            )
            lexemes_of: dict[int, dict[str, int]] = {}
            for r in stats:
                lexemes_of.setdefault(int(r["ord"]) - 1, {})[r["lexeme"]] = int(r["df"])
            # A word the text search config drops entirely (its stopword) has no lexeme.
            words = [(terms[i], min(lexemes_of[i].values())) for i in sorted(lexemes_of)]
            if not words:
                return []
            chosen = set(informative(words, n_docs))
            idf: dict[str, float] = {}
            for i, lexemes in lexemes_of.items():
                if terms[i] in chosen:
                    for lexeme, df in lexemes.items():
                        idf[lexeme] = _bm25_idf(n_docs, df)
            chosen_words = [(w, df) for w, df in words if w in chosen]
            params = Params(bank_id, [w for w, _ in chosen_words])
            lex_p = params.add(list(idf))
            idf_p = params.add(list(idf.values()))
            avgdl_p = params.add(avgdl)
            # Text-search selectivity estimates are poor (an AND of words is guessed at
            # a row or two), and with a LIMIT the planner then prefers scanning the bank
            # row by row, testing every tsvector. Bitmap scans of the GIN index are never
            # much worse and usually far better, so this transaction allows only them;
            # custom plans keep the estimates tied to the actual words.
            await conn.execute(
                "SELECT set_config('enable_seqscan', 'off', true),"
                " set_config('enable_indexscan', 'off', true),"
                " set_config('plan_cache_mode', 'force_custom_plan', true)"
            )
            budget = max(self._options.keyword_candidates, limit)
            filters = filter_clauses(where, params, metadata_column="metadata_jb")
            if self._options.keyword_candidates and sum(df for _, df in chosen_words) > budget:
                candidates = _tiered_candidates(s, cfg, chosen_words, filters, params, budget)
            else:
                clauses = ["bank_id = $1", "tsv @@ (SELECT q FROM tq)", *filters]
                candidates = f"""SELECT id, tsv, doc_len FROM {s}.memories
                        WHERE {" AND ".join(clauses)}"""
            limit_p = params.add(limit)
            rows = await conn.fetch(
                f"""WITH tq AS MATERIALIZED (
                        SELECT {s}.tsquery_any(plainto_tsquery('{cfg}', w)) AS q
                        FROM unnest($2::text[]) AS w
                    ),
                    q AS (SELECT * FROM unnest({lex_p}::text[], {idf_p}::float8[])
                          AS q(lexeme, idf)),
                    c AS MATERIALIZED ({candidates})
                    SELECT c.id, sum(
                        q.idf * (cardinality(u.positions) * {_K1 + 1})
                        / (cardinality(u.positions)
                           + {_K1} * (1 - {_B} + {_B} * c.doc_len / {avgdl_p}::float8))
                    ) AS score
                    FROM c CROSS JOIN LATERAL unnest(c.tsv) AS u
                    JOIN q ON q.lexeme = u.lexeme
                    GROUP BY c.id
                    ORDER BY score DESC, c.id
                    LIMIT {limit_p}""",
                *params.values,
            )
            return [ScoredId(id=r["id"], score=float(r["score"])) for r in rows]

        return await self._run(op, read_only=True)

    async def count(self, bank_id: str) -> int:
        """Number of memories in the bank (a maintained counter, not a scan)."""

        async def op(conn: asyncpg.Connection) -> int:
            n = await conn.fetchval(
                f"SELECT memory_count FROM {self._s}.banks WHERE bank_id = $1", bank_id
            )
            return 0 if n is None else int(n)

        return await self._run(op, read_only=True)

    async def find_by_content_hash(self, bank_id: str, hashes: Sequence[str]) -> dict[str, str]:
        """For each hash held by a memory of the bank, the earliest stored such memory
        (index on ``(bank_id, content_hash, seq)``)."""
        wanted = [h for h in dict.fromkeys(hashes) if h]
        if not wanted:
            return {}

        async def op(conn: asyncpg.Connection) -> dict[str, str]:
            rows = await conn.fetch(
                f"""SELECT DISTINCT ON (content_hash) content_hash, id
                    FROM {self._s}.memories
                    WHERE bank_id = $1 AND content_hash = ANY($2::text[])
                    ORDER BY content_hash, seq""",
                bank_id,
                wanted,
            )
            return {r["content_hash"]: r["id"] for r in rows}

        return await self._run(op, read_only=True)
