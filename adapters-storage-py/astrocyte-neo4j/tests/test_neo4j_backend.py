"""Neo4j specifics: schema, failures of the server or the network, credentials,
options, bank keys, transactions, bulk writes."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import AsyncIterator
from importlib.metadata import entry_points
from typing import Any

import pytest
from astrocyte.errors import ConfigError, ProviderUnavailable, StoreError, ValidationError
from astrocyte.spi import SPI_VERSION, Entity, EntityLink, GraphStore, Relation
from astrocyte.testing import TcpProxy
from neo4j import AsyncDriver

from astrocyte_neo4j import SCHEMA_VERSION, Neo4jGraphStore, _store
from tests.conftest import Server

PASSWORD_MARK = "astrocyte-test"


def _bank() -> str:
    return f"neo4j-{uuid.uuid4().hex[:12]}"


def _entities(bank: str, n: int, prefix: str = "e") -> list[Entity]:
    return [Entity(f"{prefix}{i}", bank, f"Name {i}", f"name {i}", "thing") for i in range(n)]


async def _query(raw: AsyncDriver, cypher: str, **params: Any) -> list[dict[str, Any]]:
    records, _, _ = await raw.execute_query(cypher, params, database_="neo4j")
    return [r.data() for r in records]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def proxy(server: Server) -> AsyncIterator[TcpProxy]:
    async with TcpProxy(server.host, server.port) as p:
        yield p


def _via(server: Server, proxy: TcpProxy, **options: object) -> Neo4jGraphStore:
    return server.store(uri=f"bolt://127.0.0.1:{proxy.port}", **options)


# ---------------------------------------------------------------------- loading, options


def test_entry_point_loads_the_store() -> None:
    (ep,) = [e for e in entry_points(group="astrocyte.graph_stores") if e.name == "neo4j"]
    factory = ep.load()
    assert factory is Neo4jGraphStore
    assert factory.SPI_VERSION == SPI_VERSION


def test_constructor_takes_plain_yaml_values_and_does_no_io() -> None:
    # Nothing listens on the port: construction must still succeed.
    store = Neo4jGraphStore(
        uri=f"bolt://127.0.0.1:{_free_port()}",
        password="secret",
        timeout_s="2.5",
        connect_timeout_s=1,
        max_pool_size="7",
    )
    assert isinstance(store, GraphStore)
    assert store.options.timeout_s == 2.5
    assert store.options.connect_timeout_s == 1.0
    assert store.options.max_pool_size == 7
    assert store.options.user == "neo4j"
    assert store.options.database == "neo4j"
    assert "secret" not in repr(store)


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"uri": "http://127.0.0.1:7474"}, "uri"),
        ({"uri": "bolt://"}, "uri"),
        ({"uri": "bolt://127.0.0.1:notaport"}, "uri"),
        ({"uri": ""}, "uri"),
        ({"timeout_s": "soon"}, "timeout_s"),
        ({"timeout_s": 0}, "timeout_s"),
        ({"timeout_s": True}, "timeout_s"),
        ({"connect_timeout_s": -1}, "connect_timeout_s"),
        ({"max_pool_size": 2.5}, "max_pool_size"),
        ({"max_pool_size": "0"}, "max_pool_size"),
        ({"user": ""}, "user"),
        ({"database": 3}, "database"),
        ({"password": 1234}, "password"),
    ],
)
def test_bad_options_are_config_errors_naming_the_option(
    options: dict[str, object], key: str
) -> None:
    settings: dict[str, object] = {"uri": "bolt://127.0.0.1:7687", **options}
    with pytest.raises(ConfigError) as info:
        Neo4jGraphStore(**settings)  # type: ignore[arg-type]
    assert info.value.key == key


def test_credentials_in_the_uri_are_refused_without_echoing_them() -> None:
    with pytest.raises(ConfigError) as info:
        Neo4jGraphStore(uri="bolt://neo4j:hunter22@127.0.0.1:7687")
    assert info.value.key == "uri"
    assert "hunter22" not in str(info.value)


# ---------------------------------------------------------------------- schema


async def test_schema_is_created_once_and_versioned(server: Server, raw: AsyncDriver) -> None:
    first = server.store()
    await first.find_entities(_bank(), ["x"])
    await first.close()
    constraints = {
        r["name"]
        for r in await _query(raw, "SHOW CONSTRAINTS YIELD name RETURN name")
        if r["name"].startswith("astrocyte_")
    }
    assert constraints == {
        "astrocyte_entity_key",
        "astrocyte_memory_key",
        "astrocyte_schema_component",
    }
    indexes = await _query(
        raw,
        "SHOW INDEXES YIELD name, state, labelsOrTypes, properties"
        " WHERE name STARTS WITH 'astrocyte_' RETURN name, state, labelsOrTypes, properties",
    )
    by_name = {r["name"]: r for r in indexes}
    assert by_name["astrocyte_entity_bank_normalized"]["properties"] == ["bank_id", "normalized"]
    assert all(r["state"] == "ONLINE" for r in indexes)
    (marker,) = await _query(
        raw, "MATCH (s:AstrocyteSchema {component: 'astrocyte_neo4j'}) RETURN s.version AS v"
    )
    assert marker["v"] == SCHEMA_VERSION == 1

    # Without the marker the next store runs the DDL again: IF NOT EXISTS keeps it a no-op.
    await _query(raw, "MATCH (s:AstrocyteSchema {component: 'astrocyte_neo4j'}) DELETE s")
    again = server.store()
    try:
        assert (await again.health()).ok
    finally:
        await again.close()
    assert (
        len(
            await _query(
                raw, "SHOW CONSTRAINTS YIELD name WHERE name STARTS WITH 'astrocyte_' RETURN name"
            )
        )
        == 3
    )
    (marker,) = await _query(
        raw, "MATCH (s:AstrocyteSchema {component: 'astrocyte_neo4j'}) RETURN s.version AS v"
    )
    assert marker["v"] == SCHEMA_VERSION


async def test_a_newer_schema_version_is_refused(server: Server, raw: AsyncDriver) -> None:
    await _query(
        raw,
        "MERGE (s:AstrocyteSchema {component: 'astrocyte_neo4j'}) SET s.version = $v",
        v=SCHEMA_VERSION + 1,
    )
    store = server.store()
    try:
        with pytest.raises(ConfigError) as info:
            await store.find_entities(_bank(), ["x"])
        assert info.value.key == "database"
        assert not (await store.health()).ok
    finally:
        await store.close()
        await _query(
            raw,
            "MATCH (s:AstrocyteSchema {component: 'astrocyte_neo4j'}) SET s.version = $v",
            v=SCHEMA_VERSION,
        )


# ---------------------------------------------------------------------- failures


async def test_refused_port_is_provider_unavailable() -> None:
    store = Neo4jGraphStore(
        uri=f"bolt://127.0.0.1:{_free_port()}", password="x", timeout_s=10, connect_timeout_s=5
    )
    started = time.monotonic()
    try:
        with pytest.raises(ProviderUnavailable) as info:
            await store.find_entities(_bank(), ["x"])
        assert info.value.provider == "neo4j"
        # Refused is known at once: no waiting for the operation timeout.
        assert time.monotonic() - started < 5
        status = await store.health()
        assert not status.ok
        assert "neo4j" in status.detail
    finally:
        await store.close()


async def test_bad_password_is_config_error_naming_it(server: Server) -> None:
    wrong = "not-" + (server.password or "the-password")
    store = server.store(password=wrong)
    try:
        with pytest.raises(ConfigError) as info:
            await store.upsert_entities(_entities(_bank(), 1))
        assert info.value.key == "password"
        assert "neo4j" in str(info.value)  # the user is named
        assert wrong not in str(info.value)
        assert not (await store.health()).ok
    finally:
        await store.close()


async def test_unknown_user_is_config_error(server: Server) -> None:
    store = server.store(user=f"nobody-{uuid.uuid4().hex[:6]}")
    try:
        with pytest.raises(ConfigError) as info:
            await store.find_entities(_bank(), ["x"])
        assert info.value.key in {"password", "user"}
        assert "nobody-" in str(info.value)
    finally:
        await store.close()


async def test_reconnects_after_the_server_went_away(server: Server, proxy: TcpProxy) -> None:
    store = _via(server, proxy, timeout_s=5)
    bank = _bank()
    try:
        await store.upsert_entities(_entities(bank, 2))
        proxy.cut()
        with pytest.raises(ProviderUnavailable):
            await store.link([EntityLink(bank, "m0", "e0")])
        assert not (await store.health()).ok
        proxy.restore()
        # Pooled connections died with the cut; the store must recover on its own.
        await store.link([EntityLink(bank, "m1", "e1")])
        found = {e.id: e.mentions for e in await store.find_entities(bank, ["name 0", "name 1"])}
        assert found == {"e0": 0, "e1": 1}
        assert (await store.health()).ok
    finally:
        await store.close()


async def test_hung_server_times_out_within_timeout_s(server: Server, proxy: TcpProxy) -> None:
    store = _via(server, proxy, timeout_s=1.5, connect_timeout_s=30)
    bank = _bank()
    try:
        await store.upsert_entities(_entities(bank, 1))
        proxy.hang()
        for operation in (
            store.find_entities(bank, ["name 0"]),
            store.link([EntityLink(bank, "m", "e0")]),
        ):
            started = time.monotonic()
            with pytest.raises(ProviderUnavailable) as info:
                await operation
            elapsed = time.monotonic() - started
            assert 1.0 <= elapsed < 4.0, elapsed
            assert "timeout_s=1.5" in str(info.value)
        proxy.restore()
        await store.link([EntityLink(bank, "m", "e0")])
        assert [e.mentions for e in await store.find_entities(bank, ["name 0"])] == [1]
    finally:
        await store.close()


async def test_hung_server_on_first_connect_times_out(server: Server, proxy: TcpProxy) -> None:
    proxy.hang()
    store = _via(server, proxy, timeout_s=1.0, connect_timeout_s=30)
    started = time.monotonic()
    try:
        with pytest.raises(ProviderUnavailable):
            await store.find_entities(_bank(), ["x"])
        assert time.monotonic() - started < 3.0
    finally:
        await store.close()


async def test_closed_store_refuses_work(server: Server) -> None:
    store = server.store()
    assert (await store.health()).ok
    await store.close()
    await store.close()  # idempotent
    assert not (await store.health()).ok
    with pytest.raises(StoreError):
        await store.find_entities(_bank(), ["x"])


# ---------------------------------------------------------------------- data layout


async def test_bank_keys_cannot_collide(store: Neo4jGraphStore, raw: AsyncDriver) -> None:
    """(bank "p:q", id "r") and (bank "p", id "q:r") are different entities."""
    suffix = uuid.uuid4().hex[:8]
    bank_a, bank_b = f"p{suffix}:q", f"p{suffix}"
    await store.upsert_entities([Entity("r", bank_a, "A", "same")])
    await store.upsert_entities([Entity("q:r", bank_b, "B", "same")])
    await store.link([EntityLink(bank_a, "m", "r")])
    assert [e.name for e in await store.find_entities(bank_a, ["same"])] == ["A"]
    assert [(e.name, e.mentions) for e in await store.find_entities(bank_b, ["same"])] == [("B", 0)]
    rows = await _query(
        raw,
        "MATCH (e:AstrocyteEntity) WHERE e.bank_id IN $banks RETURN e.bank_id AS b, e.key AS k",
        banks=[bank_a, bank_b],
    )
    assert len({r["k"] for r in rows}) == 2
    assert {r["b"] for r in rows} == {bank_a, bank_b}


async def test_relation_kind_is_data_not_cypher(store: Neo4jGraphStore, raw: AsyncDriver) -> None:
    bank = _bank()
    hostile = "x`]->() DETACH DELETE n //'\"{}$kind"
    await store.upsert_entities(
        [Entity("a", bank, "O'Brien", "o'brien", "per`son"), Entity("b", bank, "B", "b")]
    )
    await store.relate([Relation(bank, "a", "b", hostile), Relation(bank, "a", "b", hostile)])
    await store.link([EntityLink(bank, "m", "b")])
    rows = await _query(
        raw,
        "MATCH (s:AstrocyteEntity {bank_id: $bank})-[r]->(t:AstrocyteEntity)"
        " RETURN type(r) AS type, r.kind AS kind",
        bank=bank,
    )
    assert rows == [{"type": "RELATES_TO", "kind": hostile}]
    (found,) = await store.find_entities(bank, ["o'brien"])
    assert (found.name, found.kind) == ("O'Brien", "per`son")
    hits = await store.neighbourhood(bank, ["a"], depth=1)
    assert [(h.memory_id, h.distance) for h in hits] == [("m", 1)]


async def test_relation_kinds_are_separate_edges(store: Neo4jGraphStore, raw: AsyncDriver) -> None:
    bank = _bank()
    await store.upsert_entities(_entities(bank, 2))
    await store.relate([Relation(bank, "e0", "e1", "knows"), Relation(bank, "e0", "e1", "likes")])
    await store.relate([Relation(bank, "e0", "e1", "knows")])
    rows = await _query(
        raw,
        "MATCH (:AstrocyteEntity {bank_id: $bank})-[r:RELATES_TO]->() RETURN r.kind AS kind",
        bank=bank,
    )
    assert sorted(r["kind"] for r in rows) == ["knows", "likes"]


async def test_delete_removes_memory_nodes_and_orphans(
    store: Neo4jGraphStore, raw: AsyncDriver
) -> None:
    bank = _bank()
    await store.upsert_entities(_entities(bank, 3))
    await store.link([EntityLink(bank, "m", "e0"), EntityLink(bank, "m", "e1")])
    await store.link([EntityLink(bank, "n", "e1")])
    await store.relate([Relation(bank, "e0", "e2")])
    assert await store.delete_memories(bank, ["m", "m"]) == 2
    rows = await _query(
        raw,
        "MATCH (x {bank_id: $bank}) RETURN labels(x)[0] AS label, x.id AS id ORDER BY label, id",
        bank=bank,
    )
    # e0 was orphaned (its relation went with it); e2 was never linked, so it stays.
    assert [(r["label"], r["id"]) for r in rows] == [
        ("AstrocyteEntity", "e1"),
        ("AstrocyteEntity", "e2"),
        ("AstrocyteMemory", "n"),
    ]
    assert await _query(raw, "MATCH ({bank_id: $bank})-[r:RELATES_TO]-() RETURN r", bank=bank) == []


# ---------------------------------------------------------------------- transactions


async def test_links_to_unknown_entities_write_nothing(store: Neo4jGraphStore) -> None:
    bank = _bank()
    await store.upsert_entities(_entities(bank, 2))
    links = [EntityLink(bank, f"m{i}", "e0") for i in range(10)]
    with pytest.raises(ValidationError) as info:
        await store.link([*links, EntityLink(bank, "m", "ghost"), EntityLink(bank, "m", "e1")])
    assert info.value.field == "links[10].entity_id"
    with pytest.raises(ValidationError) as info:
        await store.relate([Relation(bank, "e0", "e1"), Relation(bank, "ghost", "e1")])
    assert info.value.field == "relations[1].source_entity_id"
    assert [e.mentions for e in await store.find_entities(bank, ["name 0"])] == [0]
    assert await store.neighbourhood(bank, ["e1"], depth=1) == []


async def test_text_that_is_not_utf8_is_a_validation_error(store: Neo4jGraphStore) -> None:
    bank = _bank()
    good = _entities(bank, 3)
    with pytest.raises(ValidationError) as info:
        await store.upsert_entities([*good, Entity("x", bank, "bad\ud800", "bad")])
    assert info.value.field == "entities"
    assert await store.find_entities(bank, ["name 0", "bad"]) == []


async def test_a_failure_mid_call_rolls_the_whole_call_back(
    store: Neo4jGraphStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks of one call share a transaction: a failure after the first chunk was
    executed on the server leaves nothing of the call."""
    bank = _bank()
    monkeypatch.setattr(_store, "CHUNK", 5)
    real_execute = _store._execute
    calls = 0

    async def failing_execute(tx: Any, query: str, params: dict[str, Any]) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise RuntimeError("injected failure after two chunks")
        await real_execute(tx, query, params)

    monkeypatch.setattr(_store, "_execute", failing_execute)
    with pytest.raises(RuntimeError, match="injected"):
        await store.upsert_entities(_entities(bank, 20))
    monkeypatch.setattr(_store, "_execute", real_execute)
    assert await store.find_entities(bank, [f"name {i}" for i in range(20)]) == []
    await store.upsert_entities(_entities(bank, 20))
    assert len(await store.find_entities(bank, [f"name {i}" for i in range(20)])) == 20


async def test_concurrent_writes_to_the_same_entities(store: Neo4jGraphStore) -> None:
    """Parallel MERGEs on shared nodes may deadlock on the server; the store retries."""
    bank = _bank()
    await store.upsert_entities(_entities(bank, 10))

    async def writer(w: int) -> None:
        order = list(range(10)) if w % 2 else list(reversed(range(10)))
        await store.link([EntityLink(bank, f"m{w}", f"e{i}") for i in order])
        await store.relate([Relation(bank, f"e{i}", f"e{(i + 1) % 10}") for i in order])

    await asyncio.gather(*(writer(w) for w in range(12)))
    found = await store.find_entities(bank, [f"name {i}" for i in range(10)])
    assert [e.mentions for e in found] == [12] * 10
    hits = await store.neighbourhood(bank, ["e0"], depth=0, limit=100)
    assert len(hits) == 12


# ---------------------------------------------------------------------- bulk


async def test_bulk_writes_of_thousands_in_one_call(store: Neo4jGraphStore) -> None:
    bank = _bank()
    n = 2_500  # more than one UNWIND chunk
    started = time.monotonic()
    await store.upsert_entities(_entities(bank, n))
    await store.link([EntityLink(bank, f"m{i}", f"e{i}") for i in range(n)])
    await store.link([EntityLink(bank, "hub-memory", f"e{i}") for i in range(n)])
    await store.relate([Relation(bank, "e0", f"e{i}") for i in range(1, n)])
    assert time.monotonic() - started < 60
    found = await store.find_entities(bank, [f"name {i}" for i in range(0, n, 100)])
    assert len(found) == n // 100
    assert all(e.mentions == 2 for e in found)
    hits = await store.neighbourhood(bank, ["e0"], depth=1, limit=n + 10)
    assert len(hits) == n + 1
    assert hits[0].memory_id == "hub-memory"  # reached through both m0's entity and e0
    assert {h.distance for h in hits[2:]} == {1}
    removed = await store.delete_memories(bank, [f"m{i}" for i in range(n)] + ["hub-memory"])
    assert removed == 2 * n
    assert await store.find_entities(bank, ["name 0", "name 1"]) == []
