"""Versioned, idempotent schema migrations.

Every migration runs once, recorded in ``<schema>.schema_migrations``. All of them run in
one transaction that first takes a transaction-level advisory lock, so two processes
starting at once serialise: the second waits, then sees the migrations done and does
nothing. The HNSW index is not a numbered migration because its parameters are options:
it is named after them (``vectors_hnsw_d384_m16_efc64``) and created if missing.
"""

from __future__ import annotations

import asyncpg

from astrocyte_pgvector._options import Options

#: Bumped when a migration is added; a database newer than this code is refused.
SCHEMA_VERSION = 2

#: Advisory lock namespace (an arbitrary constant) so our lock never collides with
#: another application's use of advisory locks on the same key.
_LOCK_NAMESPACE = 0x41535452  # "ASTR"


def _migrations(s: str) -> dict[int, list[str]]:
    """Migration statements by version; ``s`` is the quoted schema name."""
    return {
        1: [
            f"""CREATE TABLE {s}.banks (
                bank_id text PRIMARY KEY,
                created_at timestamptz NOT NULL DEFAULT now(),
                memory_count bigint NOT NULL DEFAULT 0,
                total_len bigint NOT NULL DEFAULT 0
            )""",
            f"""CREATE TABLE {s}.memories (
                bank_id text NOT NULL REFERENCES {s}.banks (bank_id) ON DELETE CASCADE,
                id text NOT NULL,
                seq bigint GENERATED ALWAYS AS IDENTITY,
                text text NOT NULL,
                source_id text NOT NULL,
                chunk_index bigint NOT NULL,
                content_type text NOT NULL,
                created_at timestamptz NOT NULL,
                occurred_at timestamptz,
                tags text[] NOT NULL,
                metadata text NOT NULL,
                metadata_jb jsonb NOT NULL,
                content_hash text NOT NULL,
                tsv tsvector NOT NULL,
                doc_len integer NOT NULL,
                PRIMARY KEY (bank_id, id)
            )""",
            f"CREATE INDEX memories_occurred ON {s}.memories (bank_id, occurred_at)",
            f"CREATE INDEX memories_hash ON {s}.memories (bank_id, content_hash, seq)",
            f"CREATE INDEX memories_tsv ON {s}.memories USING gin (tsv)",
            f"CREATE INDEX memories_tags ON {s}.memories USING gin (tags)",
            f"CREATE INDEX memories_meta ON {s}.memories USING gin (metadata_jb jsonb_path_ops)",
            # Per-bank document frequency of each lexeme: BM25's IDF and the
            # common-word rule read it instead of counting matches per query.
            f"""CREATE TABLE {s}.term_stats (
                bank_id text NOT NULL,
                lexeme text NOT NULL,
                doc_count bigint NOT NULL,
                PRIMARY KEY (bank_id, lexeme)
            )""",
            # No foreign key to banks: the VectorStore contract has no create_bank.
            f"""CREATE TABLE {s}.vectors (
                bank_id text NOT NULL,
                id text NOT NULL,
                dims integer NOT NULL,
                embedding vector NOT NULL,
                tags text[] NOT NULL,
                occurred_at timestamptz,
                metadata jsonb NOT NULL,
                PRIMARY KEY (bank_id, id)
            )""",
            # OR of tsqueries built one word at a time with plainto_tsquery, so no
            # user text is ever parsed as tsquery syntax.
            f"CREATE AGGREGATE {s}.tsquery_any(tsquery) (SFUNC = tsquery_or, STYPE = tsquery)",
        ],
        # GIN's fast-update buffers new entries in a pending list that every search
        # scans linearly (up to 4 MB of it) until a vacuum merges it: keyword and filter
        # latency then depends on when autovacuum last ran. Retain is bound by the
        # embedder, not by index inserts, so predictable searches win.
        2: [
            f"ALTER INDEX {s}.memories_tsv SET (fastupdate = off)",
            f"ALTER INDEX {s}.memories_tags SET (fastupdate = off)",
            f"ALTER INDEX {s}.memories_meta SET (fastupdate = off)",
            f"SELECT gin_clean_pending_list('{s}.memories_tsv'::regclass)",
            f"SELECT gin_clean_pending_list('{s}.memories_tags'::regclass)",
            f"SELECT gin_clean_pending_list('{s}.memories_meta'::regclass)",
        ],
    }


def quote_ident(name: str) -> str:
    """``name`` as a quoted SQL identifier (names are validated, this is belt and braces)."""
    return '"' + name.replace('"', '""') + '"'


def hnsw_index_name(options: Options) -> str:
    """Name of the HNSW index for the configured dimension and parameters."""
    return f"vectors_hnsw_d{options.dimensions}_m{options.hnsw_m}_efc{options.hnsw_ef_construction}"


def hnsw_index_sql(options: Options) -> str:
    """``CREATE INDEX IF NOT EXISTS`` statement of the HNSW index.

    A partial expression index: only vectors of the configured dimension are indexed
    (pgvector needs a fixed dimension); vectors of other dimensions are searched exactly.
    """
    d = options.dimensions
    return (
        f"CREATE INDEX IF NOT EXISTS {quote_ident(hnsw_index_name(options))}"
        f" ON {quote_ident(options.schema)}.vectors"
        f" USING hnsw ((embedding::vector({d})) vector_cosine_ops)"
        f" WITH (m = {options.hnsw_m}, ef_construction = {options.hnsw_ef_construction})"
        f" WHERE dims = {d}"
    )


async def migrate(conn: asyncpg.Connection, options: Options) -> int:
    """Bring the schema to :data:`SCHEMA_VERSION`; returns how many migrations ran."""
    s = quote_ident(options.schema)
    async with conn.transaction():
        await conn.execute(
            "SELECT pg_advisory_xact_lock($1, hashtext($2))",
            _LOCK_NAMESPACE,
            options.schema,
        )
        has_vector = await conn.fetchval("SELECT 1 FROM pg_extension WHERE extname = 'vector'")
        if not has_vector:
            await conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {s}")
        await conn.execute(
            f"""CREATE TABLE IF NOT EXISTS {s}.schema_migrations (
                version integer PRIMARY KEY,
                applied_at timestamptz NOT NULL DEFAULT now()
            )"""
        )
        done = {r[0] for r in await conn.fetch(f"SELECT version FROM {s}.schema_migrations")}
        newer = [v for v in done if v > SCHEMA_VERSION]
        if newer:
            from astrocyte.errors import ConfigError

            raise ConfigError(
                "schema",
                f"schema {options.schema!r} is at version {max(newer)}, newer than this "
                f"adapter's {SCHEMA_VERSION}",
                fix="upgrade astrocyte-pgvector or use another schema",
            )
        ran = 0
        for version, statements in sorted(_migrations(s).items()):
            if version in done:
                continue
            for statement in statements:
                await conn.execute(statement)
            await conn.execute(f"INSERT INTO {s}.schema_migrations (version) VALUES ($1)", version)
            ran += 1
        await conn.execute(hnsw_index_sql(options))
    return ran
