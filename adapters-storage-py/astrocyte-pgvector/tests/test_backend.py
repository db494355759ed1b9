"""PostgreSQL specifics: migrations, HNSW use, failures, bulk writes, counters."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from importlib.metadata import entry_points
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import numpy as np
import pytest
from astrocyte.errors import BankNotFound, ConfigError, ProviderUnavailable, ValidationError
from astrocyte.spi import MemoryRecord, RecordFilter, VectorItem
from astrocyte.testing import TcpProxy

from astrocyte_pgvector import SCHEMA_VERSION, PgVectorStore
from astrocyte_pgvector._schema import hnsw_index_name


def _bank() -> str:
    return f"bank-{uuid.uuid4().hex[:12]}"


def _with_port(dsn: str, port: int) -> str:
    parts = urlsplit(dsn)
    netloc = parts.netloc.rsplit(":", 1)[0] + f":{port}"
    return urlunsplit(parts._replace(netloc=netloc))


def _proxy_to(dsn: str) -> TcpProxy:
    """A TcpProxy in front of the DSN's server (connect with ``_with_port``)."""
    parts = urlsplit(dsn)
    assert parts.hostname is not None and parts.port is not None
    return TcpProxy(parts.hostname, parts.port)


def _with_password(dsn: str, password: str) -> str:
    parts = urlsplit(dsn)
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:{password}@{host}"))


def _record(bank: str, memory_id: str, text: str, **kw: object) -> MemoryRecord:
    return MemoryRecord(
        id=memory_id,
        bank_id=bank,
        text=text,
        source_id="src",
        chunk_index=0,
        content_type="text",
        created_at=datetime(2024, 1, 1, tzinfo=UTC),
        content_hash=f"h-{memory_id}",
        **kw,  # type: ignore[arg-type]
    )


def _unit_rows(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    m = rng.normal(size=(n, dim)).astype(np.float32)
    return m / np.linalg.norm(m, axis=1, keepdims=True)


@pytest.fixture
async def schema_store(dsn: str, fresh_schema: str) -> AsyncIterator[PgVectorStore]:
    """A strict 384-d store in a schema of its own, dropped afterwards."""
    s = PgVectorStore(dsn, schema=fresh_schema, dimensions=384, ef_search=40)
    yield s
    await s.close()
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{fresh_schema}" CASCADE')
    finally:
        await conn.close()


# ---------------------------------------------------------------------- configuration


def test_constructor_does_no_io_and_checks_options() -> None:
    """Constructing with an unreachable server is fine; bad options name their key."""
    PgVectorStore("postgresql://u:p@127.0.0.1:1/db", timeout_s="5", min_pool_size="0")
    with pytest.raises(ConfigError) as missing:
        PgVectorStore("")
    assert missing.value.key == "dsn"
    with pytest.raises(ConfigError) as scheme:
        PgVectorStore("mysql://u:secret@h/db")
    assert scheme.value.key == "dsn"
    for key, value in [
        ("schema", "Bad-Name"),
        ("dimensions", 0),
        ("timeout_s", -1),
        ("hnsw_m", "x"),
        ("ef_search", True),
        ("allow_other_dimensions", "maybe"),
    ]:
        with pytest.raises(ConfigError) as bad:
            PgVectorStore("postgresql://u:p@h/db", **{key: value})  # type: ignore[arg-type]
        assert bad.value.key == key
    with pytest.raises(ConfigError) as pool:
        PgVectorStore("postgresql://u:p@h/db", min_pool_size=5, max_pool_size=2)
    assert pool.value.key == "min_pool_size"
    assert "secret" not in repr(PgVectorStore("postgresql://u:secret@h/db"))


def test_entry_points_are_registered() -> None:
    """Both store groups name the class, and its SPI version matches the core's."""
    from astrocyte.spi import SPI_VERSION

    for group in ("astrocyte.document_stores", "astrocyte.vector_stores"):
        [ep] = [ep for ep in entry_points(group=group) if ep.name == "pgvector"]
        cls = ep.load()
        assert cls is PgVectorStore
        assert cls.SPI_VERSION == SPI_VERSION


# ---------------------------------------------------------------------- migrations


async def test_migrations_are_versioned_idempotent_and_race_free(
    dsn: str, fresh_schema: str
) -> None:
    """Two stores migrating one new schema at once apply each migration exactly once;
    the HNSW index named after its parameters exists; reopening migrates nothing."""
    stores = [PgVectorStore(dsn, schema=fresh_schema, dimensions=16) for _ in range(3)]
    try:
        statuses = await asyncio.gather(*(s.health() for s in stores))
        assert all(st.ok for st in statuses), statuses
        conn = await asyncpg.connect(dsn)
        try:
            versions = await conn.fetch(
                f'SELECT version FROM "{fresh_schema}".schema_migrations ORDER BY version'
            )
            assert [r[0] for r in versions] == list(range(1, SCHEMA_VERSION + 1))
            indexdef = await conn.fetchval(
                "SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND indexname = $2",
                fresh_schema,
                hnsw_index_name(stores[0]._options),
            )
            assert "hnsw" in indexdef
            assert "vector_cosine_ops" in indexdef
            assert "m='16'" in indexdef.replace(" ", "")
            # Keyword and filter indexes never buffer entries in a pending list.
            options = await conn.fetch(
                "SELECT c.relname, c.reloptions FROM pg_class c"
                " JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = $1 AND c.relname LIKE 'memories\\_%' AND c.relam ="
                " (SELECT oid FROM pg_am WHERE amname = 'gin')",
                fresh_schema,
            )
            assert len(options) == 3
            assert all("fastupdate=off" in (r["reloptions"] or []) for r in options), options
        finally:
            await conn.close()
        again = PgVectorStore(dsn, schema=fresh_schema, dimensions=16)
        from astrocyte_pgvector._schema import migrate

        conn = await asyncpg.connect(dsn)
        try:
            assert await migrate(conn, again._options) == 0
        finally:
            await conn.close()
    finally:
        for s in stores:
            await s.close()
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{fresh_schema}" CASCADE')
        finally:
            await conn.close()


# ---------------------------------------------------------------------- failures


async def test_refused_port_is_provider_unavailable(dsn: str) -> None:
    """Nothing listening: ProviderUnavailable, and the store stays usable later."""
    with socket_closed_port() as port:
        store = PgVectorStore(_with_port(dsn, port), connect_timeout_s=2)
        try:
            with pytest.raises(ProviderUnavailable):
                await store.count("any")
            assert not (await store.health()).ok
        finally:
            await store.close()


class socket_closed_port:
    """A loopback port that was free a moment ago (nothing listens on it)."""

    def __enter__(self) -> int:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        return port

    def __exit__(self, *exc: object) -> None:
        return None


async def test_bad_password_is_config_error_without_leaking_it(dsn: str) -> None:
    """Wrong credentials are a ConfigError on 'password' that never shows the password."""
    store = PgVectorStore(_with_password(dsn, "wr0ng-s3cret"))
    try:
        with pytest.raises(ConfigError) as err:
            await store.bank_exists("any")
        assert err.value.key == "password"
        assert "wr0ng-s3cret" not in str(err.value)
    finally:
        await store.close()


async def test_missing_database_is_config_error(dsn: str) -> None:
    """A DSN naming a database that does not exist is a ConfigError on 'dsn'."""
    parts = urlsplit(dsn)
    store = PgVectorStore(urlunsplit(parts._replace(path="/no_such_db_astro")))
    try:
        with pytest.raises(ConfigError) as err:
            await store.count("any")
        assert err.value.key == "dsn"
    finally:
        await store.close()


async def test_reconnects_after_server_goes_away_and_comes_back(dsn: str) -> None:
    """cut(): calls raise ProviderUnavailable; restore(): the same store works again."""
    async with _proxy_to(dsn) as proxy:
        store = PgVectorStore(
            _with_port(dsn, proxy.port),
            schema="astrocyte_test",
            allow_other_dimensions=True,
            timeout_s=5,
            connect_timeout_s=2,
            min_pool_size=2,
        )
        try:
            bank = _bank()
            await store.create_bank(bank)
            await store.put([_record(bank, "a", "before the outage")])
            proxy.cut()
            with pytest.raises(ProviderUnavailable):
                await store.put([_record(bank, "b", "during the outage")])
            with pytest.raises(ProviderUnavailable):
                await store.count(bank)
            assert not (await store.health()).ok
            proxy.restore()
            await store.put([_record(bank, "c", "after the outage")])
            assert await store.count(bank) == 2
            assert {r.id for r in await store.get(bank, ["a", "b", "c"])} == {"a", "c"}
            assert (await store.health()).ok
        finally:
            await store.close()


async def test_hung_server_times_out_within_timeout(dsn: str) -> None:
    """hang(): a call fails with ProviderUnavailable within about timeout_s."""
    async with _proxy_to(dsn) as proxy:
        store = PgVectorStore(
            _with_port(dsn, proxy.port),
            schema="astrocyte_test",
            allow_other_dimensions=True,
            timeout_s=1.0,
            connect_timeout_s=1.0,
        )
        try:
            bank = _bank()
            await store.create_bank(bank)
            proxy.hang()
            started = time.monotonic()
            with pytest.raises(ProviderUnavailable):
                await store.count(bank)
            assert time.monotonic() - started < 4.0
            started = time.monotonic()
            with pytest.raises(ProviderUnavailable):
                await store.put([_record(bank, "x", "never written")])
            assert time.monotonic() - started < 4.0
            proxy.restore()
            assert await store.count(bank) == 0
        finally:
            await store.close()


async def test_terminated_backends_are_replaced(store: PgVectorStore, dsn: str) -> None:
    """pg_terminate_backend on every pooled connection: the next read still works."""
    bank = _bank()
    await store.create_bank(bank)
    await store.put([_record(bank, "a", "kept")])
    conn = await asyncpg.connect(dsn)
    try:
        killed = await conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name = 'astrocyte-pgvector' AND pid <> pg_backend_pid()"
        )
        assert killed >= 1
    finally:
        await conn.close()
    await asyncio.sleep(0.2)
    assert await store.count(bank) == 1


# ---------------------------------------------------------------------- dimensions


async def test_strict_dimensions_reject_other_lengths(schema_store: PgVectorStore) -> None:
    """With the default strict mode a vector or query of another length raises a
    ValidationError naming the field, and nothing of the batch is stored."""
    bank = _bank()
    good = VectorItem(id="ok", bank_id=bank, vector=np.ones(384, np.float32))
    bad = VectorItem(id="bad", bank_id=bank, vector=np.ones(385, np.float32))
    with pytest.raises(ValidationError) as err:
        await schema_store.upsert([good, bad])
    assert err.value.field == "items[1].vector"
    assert await schema_store.search(bank, np.ones(384, np.float32), limit=5) == []
    with pytest.raises(ValidationError) as query_err:
        await schema_store.search(bank, np.ones(8, np.float32), limit=5)
    assert query_err.value.field == "vector"


# ---------------------------------------------------------------------- HNSW


async def test_filtered_search_uses_hnsw_and_fills_limit(schema_store: PgVectorStore) -> None:
    """A bank-and-tag filtered search is planned on the HNSW index (iterative scan) and
    still returns `limit` hits when few rows pass the filter (2.5% of the table: without
    iterative scans ef_search=40 candidates would yield about one); hits are near-exact."""
    rng = np.random.default_rng(3)
    target, other = _bank(), _bank()
    n = 5000
    vecs = _unit_rows(rng, 2 * n, 384)
    items = [
        VectorItem(
            id=f"v{i}",
            bank_id=target if i < n else other,
            vector=vecs[i],
            tags=("rare",) if i % 20 == 0 else ("common",),
        )
        for i in range(2 * n)
    ]
    await schema_store.bulk_upsert(items, rebuild_index=True)
    query = _unit_rows(rng, 1, 384)[0]
    where = RecordFilter(tags=("rare",))
    hits = await schema_store.search(target, query, limit=10, where=where)
    assert len(hits) == 10
    assert all(int(h.id[1:]) < n and int(h.id[1:]) % 20 == 0 for h in hits)
    # Recall against brute force over the rows passing the filter.
    passing = [i for i in range(n) if i % 20 == 0]
    exact = sorted(passing, key=lambda i: -float(vecs[i] @ query))[:10]
    recall = len({f"v{i}" for i in exact} & {h.id for h in hits}) / 10
    # Uniform random 384-d vectors are HNSW's hardest case and the graph's levels are
    # drawn at random, so allow some slack at ef_search=40 (typical runs: 0.9-1.0).
    assert recall >= 0.8
    for h in hits:
        assert h.score == pytest.approx(float(vecs[int(h.id[1:])] @ query), abs=1e-4)

    sql, values = schema_store._search_statement(target, query, limit=10, where=where)

    async def explain(conn: asyncpg.Connection) -> str:
        async with conn.transaction():
            await conn.execute("ANALYZE " + schema_store._s + ".vectors")
            await conn.execute("SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true)")
            rows = await conn.fetch("EXPLAIN " + sql, *values)
        return "\n".join(r[0] for r in rows)

    plan = await schema_store._run(explain)
    assert hnsw_index_name(schema_store._options) in plan, plan


async def test_bulk_upsert_refreshes_planner_statistics(
    schema_store: PgVectorStore, dsn: str, fresh_schema: str
) -> None:
    """Right after a bulk load the planner knows the table's size (no waiting for
    autovacuum), so big banks are searched through the HNSW index at once."""
    rng = np.random.default_rng(5)
    bank = _bank()
    vecs = _unit_rows(rng, 3000, 384)
    items = [VectorItem(id=f"v{i}", bank_id=bank, vector=vecs[i]) for i in range(3000)]
    await schema_store.bulk_upsert(items, rebuild_index=True, maintenance_work_mem="64MB")
    conn = await asyncpg.connect(dsn)
    try:
        estimate = await conn.fetchval(
            "SELECT reltuples FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = $1 AND c.relname = 'vectors'",
            fresh_schema,
        )
    finally:
        await conn.close()
    assert estimate == 3000


async def test_bulk_upsert_rejects_a_malformed_memory_setting(
    schema_store: PgVectorStore,
) -> None:
    item = VectorItem(id="v", bank_id=_bank(), vector=np.ones(384, np.float32))
    with pytest.raises(ValidationError) as err:
        await schema_store.bulk_upsert([item], maintenance_work_mem="1GB; DROP TABLE x")
    assert err.value.field == "maintenance_work_mem"


# ---------------------------------------------------------------------- bulk writes


async def test_bulk_put_and_upsert_of_2000_items(store: PgVectorStore) -> None:
    """2,000 records and 2,000 384-d vectors in one call each; all are visible."""
    bank = _bank()
    await store.create_bank(bank)
    records = [_record(bank, f"m{i}", f"bulk memory number {i} word{i % 7}") for i in range(2000)]
    await store.put(records)
    assert await store.count(bank) == 2000
    rng = np.random.default_rng(5)
    vecs = _unit_rows(rng, 2000, 384)
    await store.upsert([VectorItem(id=f"m{i}", bank_id=bank, vector=vecs[i]) for i in range(2000)])
    hits = await store.search(bank, vecs[1234], limit=3)
    assert hits[0].id == "m1234"
    assert hits[0].score == pytest.approx(1.0, abs=1e-4)
    found = await store.keyword_search(bank, "word3", limit=1000)
    assert {h.id for h in found} == {f"m{i}" for i in range(2000) if i % 7 == 3}


async def test_failed_bulk_put_writes_nothing(store: PgVectorStore) -> None:
    """One record for a missing bank at the end of 2,000: nothing is written."""
    bank = _bank()
    await store.create_bank(bank)
    batch = [_record(bank, f"m{i}", f"text {i}") for i in range(1999)]
    batch.append(_record(_bank(), "x", "missing bank"))
    with pytest.raises(BankNotFound):
        await store.put(batch)
    assert await store.count(bank) == 0
    assert await store.keyword_search(bank, "text", limit=5) == []


# ---------------------------------------------------------------------- one store, two roles


async def test_delete_removes_record_and_vector_of_a_bank_only(store: PgVectorStore) -> None:
    """delete() removes an id's record and vector in its bank, not in another bank."""
    a, b = _bank(), _bank()
    for bank in (a, b):
        await store.create_bank(bank)
        await store.put([_record(bank, "m", "shared id")])
        await store.upsert([VectorItem(id="m", bank_id=bank, vector=np.ones(8, np.float32))])
    assert await store.delete(a, ["m", "nope"]) == 1
    assert await store.get(a, ["m"]) == []
    assert await store.search(a, np.ones(8, np.float32), limit=5) == []
    assert [h.id for h in await store.search(b, np.ones(8, np.float32), limit=5)] == ["m"]
    assert [r.id for r in await store.get(b, ["m"])] == ["m"]


async def test_term_counts_follow_writes(store: PgVectorStore) -> None:
    """term_stats and the bank counters equal a recount after puts, replaces, deletes."""
    bank = _bank()
    await store.create_bank(bank)
    await store.put([_record(bank, f"m{i}", f"alpha beta{i % 3} gamma") for i in range(30)])
    await store.put([_record(bank, f"m{i}", f"delta beta{i % 2}") for i in range(10)])
    await store.delete(bank, [f"m{i}" for i in range(5, 15)])

    async def check(conn: asyncpg.Connection) -> None:
        s = store._s
        kept = await conn.fetch(
            f"SELECT lexeme, doc_count FROM {s}.term_stats WHERE bank_id = $1 ORDER BY 1", bank
        )
        recount = await conn.fetch(
            f"""SELECT l, count(*) FROM {s}.memories, unnest(tsvector_to_array(tsv)) l
                WHERE bank_id = $1 GROUP BY l ORDER BY 1""",
            bank,
        )
        assert [tuple(r) for r in kept] == [tuple(r) for r in recount]
        counters = await conn.fetchrow(
            f"SELECT memory_count, total_len FROM {s}.banks WHERE bank_id = $1", bank
        )
        actual = await conn.fetchrow(
            f"SELECT count(*), coalesce(sum(doc_len), 0) FROM {s}.memories WHERE bank_id = $1",
            bank,
        )
        assert tuple(counters) == tuple(actual)

    await store._run(check)
    assert await store.count(bank) == 20


# ---------------------------------------------------------------------- keyword tiers


async def test_bounded_keyword_candidates_keep_the_best_matches_exact(
    dsn: str, fresh_schema: str
) -> None:
    """With more matches than `keyword_candidates`, the memories matching every query
    word (which BM25 ranks first at equal length) still come first, with exactly the
    scores an unbounded search gives them; the candidate cap only trims the tail."""
    rng = np.random.default_rng(11)
    words = ["amber", "basil", "cedar", "dahlia"]
    bank = _bank()
    records = []
    all_three = []
    for i in range(400):
        chosen = [w for w in words if rng.random() < 0.5]
        # Equal length for every memory: unique filler words pad to six tokens.
        filler = [f"filler{i}x{j}" for j in range(6 - len(chosen))]
        records.append(_record(bank, f"m{i:03d}", " ".join(chosen + filler)))
        if {"amber", "basil", "cedar"} <= set(chosen):
            all_three.append(f"m{i:03d}")
    bounded = PgVectorStore(dsn, schema=fresh_schema, keyword_candidates=300)
    exact = PgVectorStore(dsn, schema=fresh_schema, keyword_candidates=0)
    try:
        await bounded.create_bank(bank)
        await bounded.put(records)
        k = len(all_three)
        # The all-words tier comes first and fits in the 300 candidates whole.
        assert 10 <= k <= 60, "the fixture must exercise the cap"
        full = await exact.keyword_search(bank, "amber basil cedar", limit=400)
        capped = await bounded.keyword_search(bank, "amber basil cedar", limit=60)
        assert len(full) > 300 and len(capped) == 60
        assert {h.id for h in full[:k]} == set(all_three)
        assert [(h.id, round(h.score, 9)) for h in capped[:k]] == [
            (h.id, round(h.score, 9)) for h in full[:k]
        ]
    finally:
        await bounded.close()
        await exact.close()
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{fresh_schema}" CASCADE')
        finally:
            await conn.close()
