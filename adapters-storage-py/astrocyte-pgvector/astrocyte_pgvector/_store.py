"""The public store class: options, the shared delete, nothing else."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg
from astrocyte.spi import SPI_VERSION

from astrocyte_pgvector._documents import DocumentOps
from astrocyte_pgvector._options import parse_options
from astrocyte_pgvector._vectors import VectorOps


class PgVectorStore(DocumentOps, VectorOps):
    """PostgreSQL + pgvector store: a :class:`~astrocyte.spi.DocumentStore` and a
    :class:`~astrocyte.spi.VectorStore` in one object (one pool, one schema).

    Options (all plain values, so they can come straight from YAML):

    * ``dsn`` (required): ``postgresql://user:password@host:port/database``.
    * ``schema`` (``"astrocyte"``): schema holding the tables; created by migrations.
    * ``dimensions`` (384): vector length; vectors of this length are HNSW-indexed.
    * ``allow_other_dimensions`` (False): accept banks of other dimensions too (each
      bank's dimension is fixed by its first vector; those are searched exactly,
      without the index). Off, another length raises ``ValidationError``.
    * ``min_pool_size`` (1) / ``max_pool_size`` (10): asyncpg pool bounds.
    * ``timeout_s`` (30.0): deadline of one operation, pool checkout included;
      exceeded -> ``ProviderUnavailable``.
    * ``connect_timeout_s`` (10.0): deadline of opening one connection.
    * ``hnsw_m`` (16) / ``hnsw_ef_construction`` (64): HNSW build parameters.
    * ``ef_search`` (100): HNSW candidate list size per search (at least ``limit``).
    * ``text_search_config`` (``"english"``): PostgreSQL text search configuration
      of the keyword index.
    * ``keyword_candidates`` (300): above this many matching memories, keyword search
      scores at most about this many candidates instead of every match (see
      ``astrocyte_pgvector._documents``); 0 always scores every match.

    The constructor does no I/O; the first call connects and migrates.
    """

    SPI_VERSION = SPI_VERSION

    def __init__(
        self,
        dsn: str = "",
        *,
        schema: str = "astrocyte",
        dimensions: int | str = 384,
        allow_other_dimensions: bool | str = False,
        min_pool_size: int | str = 1,
        max_pool_size: int | str = 10,
        timeout_s: float | str = 30.0,
        connect_timeout_s: float | str = 10.0,
        hnsw_m: int | str = 16,
        hnsw_ef_construction: int | str = 64,
        ef_search: int | str = 100,
        text_search_config: str = "english",
        keyword_candidates: int | str = 300,
    ) -> None:
        """Check the options (raises ``ConfigError`` naming a bad one); no I/O."""
        super().__init__(
            parse_options(
                dsn=dsn,
                schema=schema,
                dimensions=dimensions,
                allow_other_dimensions=allow_other_dimensions,
                min_pool_size=min_pool_size,
                max_pool_size=max_pool_size,
                timeout_s=timeout_s,
                connect_timeout_s=connect_timeout_s,
                hnsw_m=hnsw_m,
                hnsw_ef_construction=hnsw_ef_construction,
                ef_search=ef_search,
                text_search_config=text_search_config,
                keyword_candidates=keyword_candidates,
            )
        )

    def __repr__(self) -> str:
        return f"PgVectorStore(dsn={self._options.safe_dsn!r}, schema={self._options.schema!r})"

    async def delete(self, bank_id: str, ids: Sequence[str]) -> int:
        """Delete the records *and* vectors of ``ids`` in one transaction; returns how
        many of the ids existed (as a record, a vector or both).

        One method serves both protocols, so the core's "delete vectors, then
        documents" is a single transaction here."""
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return 0

        async def op(conn: asyncpg.Connection) -> int:
            async with conn.transaction():
                records = await self._delete_records(conn, bank_id, wanted)
                vectors = await self._delete_vectors(conn, bank_id, wanted)
            return len(set(records).union(vectors))

        return await self._run(op)
