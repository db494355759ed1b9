"""VectorStore half: HNSW cosine search with bank and payload filters.

Vectors are stored L2-normalised, so cosine similarity is ``1 - (a <=> b)``. Vectors
of the configured ``dimensions`` are covered by a partial HNSW expression index
(``embedding::vector(D)``, ``vector_cosine_ops``, ``WHERE dims = D``). A search sets,
for its own transaction only (``SET LOCAL`` via ``set_config(..., true)``),
``hnsw.ef_search`` and ``hnsw.iterative_scan = relaxed_order``: when the bank and
payload filters reject candidates, pgvector keeps scanning the graph until ``limit``
rows pass (up to ``hnsw.max_scan_tuples``) instead of returning fewer. The relaxed
order is re-sorted by exact distance in an outer query.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import asyncpg
import numpy as np
import numpy.typing as npt
from astrocyte.errors import ValidationError
from astrocyte.spi import RecordFilter, ScoredId, Vector, VectorItem
from astrocyte.stores.memory import (
    check_filter,
    check_limit,
    check_vector_items,
    unit_vector,
)

from astrocyte_pgvector._base import PgBase
from astrocyte_pgvector._schema import hnsw_index_name, hnsw_index_sql, quote_ident
from astrocyte_pgvector._sql import Params, dump_metadata, filter_clauses
from astrocyte_pgvector._stage import stage_vectors

VectorRow = tuple[str, str, int, npt.NDArray[np.float32], list[str], object, str]


class VectorOps(PgBase):
    """:class:`~astrocyte.spi.VectorStore` methods (``delete`` lives on the store)."""

    def _vector_rows(self, items: Sequence[VectorItem]) -> tuple[list[VectorRow], list[str]]:
        """Validated, normalised, deduplicated (last wins) rows and their banks."""
        units = check_vector_items(items)
        expected = self._options.dimensions
        bank_dims: dict[str, int] = {}
        for i, (item, unit) in enumerate(zip(items, units, strict=True)):
            dim = int(unit.shape[0])
            if not self._options.allow_other_dimensions and dim != expected:
                raise ValidationError(
                    f"items[{i}].vector",
                    f"has dimension {dim}, the store is configured for {expected}",
                    fix="embed with a model of the configured dimension or set "
                    "the store's `dimensions` option",
                )
            seen = bank_dims.setdefault(item.bank_id, dim)
            if seen != dim:
                raise ValidationError(
                    f"items[{i}].vector",
                    f"has dimension {dim} but other vectors of bank {item.bank_id!r} "
                    f"in the batch have {seen}",
                )
        latest: dict[tuple[str, str], VectorRow] = {}
        for item, unit in zip(items, units, strict=True):
            latest[(item.bank_id, item.id)] = (
                item.bank_id,
                item.id,
                int(unit.shape[0]),
                unit,
                list(dict.fromkeys(item.tags)),
                item.occurred_at,
                dump_metadata(item.metadata),
            )
        return list(latest.values()), sorted(bank_dims)

    async def upsert(self, items: Sequence[VectorItem]) -> None:
        """Insert or replace vectors and their filter payload, all-or-nothing.

        A vector whose length differs from ``dimensions`` raises
        :class:`ValidationError` (field ``items[i].vector``); with
        ``allow_other_dimensions`` a bank may instead hold another dimension, fixed by
        its first vector."""
        if not items:
            return
        rows, banks = self._vector_rows(items)

        async def op(conn: asyncpg.Connection) -> None:
            async with conn.transaction():
                await self._write_vector_rows(conn, rows, banks)

        await self._run(op)

    async def bulk_upsert(
        self,
        items: Sequence[VectorItem],
        *,
        timeout_s: float | None = None,
        rebuild_index: bool = False,
        maintenance_work_mem: str = "256MB",
    ) -> None:
        """:meth:`upsert` for loading many vectors at once (10k+): one COPY and one
        transaction, under ``timeout_s`` instead of the per-operation timeout
        (``None``: no deadline). Meant for initial loads, benchmarks and re-embedding.

        ``rebuild_index=True`` drops the HNSW index, loads, and builds it again in the
        same transaction: building once is about 10x faster than inserting into the
        graph row by row, but the whole vector table is locked (searches wait) until
        the load commits, so use it only for loads into an idle store.
        ``maintenance_work_mem`` bounds the build's memory; a build whose graph does not
        fit is much slower (roughly 2 kB per 384-d vector at m=16 fits in memory).
        Planner statistics are refreshed afterwards (see :meth:`analyze`)."""
        if not items:
            return
        if not re.fullmatch(r"[0-9]{1,6}\s*(kB|MB|GB)", maintenance_work_mem):
            raise ValidationError(
                "maintenance_work_mem", "must look like '256MB' or '2GB' (kB, MB or GB)"
            )
        rows, banks = self._vector_rows(items)
        index = quote_ident(hnsw_index_name(self._options))

        async def op(conn: asyncpg.Connection) -> None:
            async with conn.transaction():
                if rebuild_index:
                    await conn.execute(f"DROP INDEX IF EXISTS {self._s}.{index}")
                await self._write_vector_rows(conn, rows, banks)
                if rebuild_index:
                    await conn.execute(
                        "SELECT set_config('maintenance_work_mem', $1, true)",
                        maintenance_work_mem,
                    )
                    await conn.execute(hnsw_index_sql(self._options))

        await self._run_unbounded(op, timeout_s)
        await self.analyze()

    async def analyze(self) -> None:
        """Refresh PostgreSQL's planner statistics of the store's tables and merge the
        GIN indexes' pending entries.

        Autovacuum does both within about a minute of large writes; until then the
        planner may misjudge a bank's size and scan it exactly instead of using the
        HNSW index, and keyword searches scan the pending entries (correct, but slower
        on big banks). Call it after bulk loads."""

        async def op(conn: asyncpg.Connection) -> None:
            # GIN indexes buffer new entries in a pending list that every search scans
            # linearly until (auto)vacuum merges it; merge it now as well.
            for index in ("memories_tsv", "memories_tags", "memories_meta"):
                await conn.execute(
                    "SELECT gin_clean_pending_list(to_regclass($1))", f"{self._s}.{index}"
                )
            await conn.execute(f"ANALYZE {self._s}.vectors, {self._s}.memories")

        await self._run_unbounded(op, None)

    async def _write_vector_rows(
        self, conn: asyncpg.Connection, rows: list[VectorRow], banks: list[str]
    ) -> None:
        s = self._s
        if self._options.allow_other_dimensions:
            # Serialise writers of a bank so two first batches cannot pick different
            # dimensions; then compare with one stored vector of each bank.
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext('astrocyte-vec:' || b))"
                " FROM unnest($1::text[]) AS b ORDER BY b",
                banks,
            )
            batch_dims = {r[0]: r[2] for r in rows}
            stored = await conn.fetch(
                f"""SELECT b.bank_id, (
                        SELECT v.dims FROM {s}.vectors v
                        WHERE v.bank_id = b.bank_id
                          AND NOT (v.id = ANY($2::text[])) LIMIT 1
                    ) AS dims
                    FROM unnest($1::text[]) AS b(bank_id)""",
                banks,
                [r[1] for r in rows],
            )
            for r in stored:
                if r["dims"] is not None and r["dims"] != batch_dims[r["bank_id"]]:
                    raise ValidationError(
                        "vector",
                        f"bank {r['bank_id']!r} holds {r['dims']}-dimensional vectors, "
                        f"got {batch_dims[r['bank_id']]}",
                    )
        await stage_vectors(conn, rows)
        await conn.execute(
            f"""INSERT INTO {s}.vectors AS v
                    (bank_id, id, dims, embedding, tags, occurred_at, metadata)
                SELECT bank_id, id, dims, embedding, tags, occurred_at, metadata
                FROM astro_in_vec ORDER BY bank_id, id
                ON CONFLICT (bank_id, id) DO UPDATE SET
                    dims = excluded.dims, embedding = excluded.embedding,
                    tags = excluded.tags, occurred_at = excluded.occurred_at,
                    metadata = excluded.metadata"""
        )

    async def search(
        self, bank_id: str, vector: Vector, *, limit: int, where: RecordFilter | None = None
    ) -> list[ScoredId]:
        """Most similar vectors of the bank by cosine similarity, best first."""
        check_limit(limit)
        check_filter(where)
        query = unit_vector(vector, "vector")
        dim = int(query.shape[0])
        if not self._options.allow_other_dimensions and dim != self._options.dimensions:
            raise ValidationError(
                "vector",
                f"query has dimension {dim}, the store is configured for "
                f"{self._options.dimensions}",
            )
        if limit == 0:
            return []
        s = self._s
        indexed = dim == self._options.dimensions
        sql, values = self._search_statement(bank_id, query, limit=limit, where=where)
        ef_search = str(max(self._options.ef_search, limit))

        async def op(conn: asyncpg.Connection) -> list[ScoredId]:
            async with conn.transaction(readonly=True):
                if self._options.allow_other_dimensions and not indexed:
                    stored = await conn.fetchval(
                        f"SELECT dims FROM {s}.vectors WHERE bank_id = $1 LIMIT 1", bank_id
                    )
                    if stored is None:
                        return []
                    if stored != dim:
                        raise ValidationError(
                            "vector",
                            f"query has dimension {dim} but bank {bank_id!r} holds "
                            f"{stored}-dimensional vectors",
                        )
                elif self._options.allow_other_dimensions:
                    stored = await conn.fetchval(
                        f"SELECT dims FROM {s}.vectors WHERE bank_id = $1 LIMIT 1", bank_id
                    )
                    if stored is not None and stored != dim:
                        raise ValidationError(
                            "vector",
                            f"query has dimension {dim} but bank {bank_id!r} holds "
                            f"{stored}-dimensional vectors",
                        )
                await conn.execute(
                    "SELECT set_config('hnsw.ef_search', $1, true),"
                    " set_config('hnsw.iterative_scan', 'relaxed_order', true)",
                    ef_search,
                )
                rows = await conn.fetch(sql, *values)
            return [ScoredId(id=r["id"], score=float(r["score"])) for r in rows]

        return await self._run(op, read_only=True)

    def _search_statement(
        self, bank_id: str, query: Vector, *, limit: int, where: RecordFilter | None
    ) -> tuple[str, list[object]]:
        """SQL and parameters of a search for the unit vector ``query``."""
        dim = int(query.shape[0])
        params = Params(bank_id, query)
        # The indexed expression must match the index definition exactly.
        if dim == self._options.dimensions:
            distance = f"embedding::vector({dim}) <=> $2::vector({dim})"
        else:
            distance = "embedding <=> $2::vector"
        clauses = ["bank_id = $1", f"dims = {dim}"]
        clauses += filter_clauses(where, params, metadata_column="metadata")
        limit_p = params.add(limit)
        sql = f"""WITH hits AS MATERIALIZED (
                SELECT id, {distance} AS distance FROM {self._s}.vectors
                WHERE {" AND ".join(clauses)}
                ORDER BY {distance}
                LIMIT {limit_p}
            )
            SELECT id, 1 - distance AS score FROM hits ORDER BY distance, id"""
        return sql, params.values

    async def _delete_vectors(
        self, conn: asyncpg.Connection, bank_id: str, ids: list[str]
    ) -> list[str]:
        rows = await conn.fetch(
            f"DELETE FROM {self._s}.vectors WHERE bank_id = $1 AND id = ANY($2::text[])"
            " RETURNING id",
            bank_id,
            ids,
        )
        return [r[0] for r in rows]
