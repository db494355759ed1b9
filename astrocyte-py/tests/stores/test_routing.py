"""Per-bank storage routes (``storage.routes``): banks land in their route's stores,
recall/forget/list/health work across routes, writes stay all-or-nothing per route,
identical specs share one instance, and the routing proxies pass the store suites."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from astrocyte import Astrocyte, AstrocyteContext, load_config
from astrocyte.config import ConfigProblems
from astrocyte.errors import BankNotFound, ConfigError, StoreError
from astrocyte.factory import build_stores
from astrocyte.spi import MemoryRecord, VectorItem
from astrocyte.stores.memory import InMemoryDocumentStore, InMemoryVectorStore
from astrocyte.stores.routing import (
    RoutedStoreSet,
    RoutingDocumentStore,
    RoutingGraphStore,
    RoutingVectorStore,
)
from astrocyte.stores.sqlite import SQLiteStore
from astrocyte.stores.storeset import StoreSet
from astrocyte.testing import (
    DocumentStoreConformance,
    GraphStoreConformance,
    VectorStoreConformance,
)

HASHING = {"provider": "hashing"}
ACME = AstrocyteContext(principal="user:alice", tenant="acme")


def _config(tmp_path: Path, routes: list[Any], **storage: Any) -> Any:
    storage.setdefault("path", str(tmp_path / "main.db"))
    return load_config({"embedder": HASHING, "storage": {**storage, "routes": routes}})


def _one_object(*stores: object) -> bool:
    return all(store is stores[0] for store in stores)


def _banks_in(path: Path) -> dict[str, int]:
    """Memory count per bank, read straight from an embedded store file."""
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT bank_id, count(*) FROM memories GROUP BY bank_id")
        return {str(bank): int(n) for bank, n in rows}


@pytest.fixture
async def two_files(tmp_path: Path) -> AsyncIterator[Astrocyte]:
    """Embedded default file plus a ``canonical-*`` route in a file of its own."""
    routes = [{"banks": ["canonical-*"], "path": str(tmp_path / "canon.db")}]
    async with Astrocyte(_config(tmp_path, routes)) as brain:
        yield brain


# --- where records live -----------------------------------------------------------------


def test_without_routes_the_store_set_is_the_plain_one(tmp_path: Path) -> None:
    stores = build_stores(_config(tmp_path, []))
    assert type(stores) is StoreSet
    assert type(stores.documents) is SQLiteStore
    assert _one_object(stores.documents, stores.vectors, stores.graph)


async def test_banks_land_in_their_routes_file(tmp_path: Path, two_files: Astrocyte) -> None:
    await two_files.retain("Maya booked the kayak trip to Lofoten.", "canonical-trips")
    await two_files.retain("Jonas: is Ingrid joining the kayak trip?", "chat")
    await two_files.retain("Tomas is coming too.", "chat")
    assert _banks_in(tmp_path / "canon.db") == {"canonical-trips": 1}
    assert _banks_in(tmp_path / "main.db") == {"chat": 2}


async def test_an_embedded_route_writes_in_one_transaction(
    two_files: Astrocyte, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert isinstance(two_files.stores, RoutedStoreSet)
    route = two_files.stores.router.routes[0].stores
    atomic = route._single_atomic()
    assert isinstance(atomic, SQLiteStore)
    calls: list[int] = []
    original = atomic.write_memories

    async def spy(*args: Any) -> None:
        calls.append(len(args[0]))
        await original(*args)

    monkeypatch.setattr(atomic, "write_memories", spy)
    await two_files.retain("Canonical: the office closes at six.", "canonical-hours")
    assert calls == [1]


async def test_recall_across_routes_returns_hits_of_both(two_files: Astrocyte) -> None:
    await two_files.retain("Maya booked the kayak trip to Lofoten.", "canonical-trips")
    await two_files.retain("Jonas wants to join the kayak trip.", "chat")
    result = await two_files.recall("kayak trip", banks=["canonical-trips", "chat"])
    by_bank = {h.provenance.bank_id: h.text for h in result.hits}
    assert by_bank == {
        "canonical-trips": "Maya booked the kayak trip to Lofoten.",
        "chat": "Jonas wants to join the kayak trip.",
    }


async def test_forget_list_and_health_across_routes(tmp_path: Path, two_files: Astrocyte) -> None:
    kept = await two_files.retain("Maya booked the kayak trip.", "canonical-trips", tags=["keep"])
    await two_files.retain("Old note about the oven.", "canonical-trips", tags=["old"])
    await two_files.retain("Chat about the oven.", "chat", tags=["old"])
    listed = {b.bank_id: b.memory_count for b in await two_files.list_banks()}
    assert listed == {"canonical-trips": 2, "chat": 1}

    forgotten = await two_files.forget("canonical-trips", tags=["old"])
    assert forgotten.deleted_count == 1
    assert _banks_in(tmp_path / "canon.db") == {"canonical-trips": 1}
    assert _banks_in(tmp_path / "main.db") == {"chat": 1}
    hits = (await two_files.recall("kayak oven", banks=["canonical-trips", "chat"])).hits
    assert {h.memory_id for h in hits if h.provenance.bank_id == "canonical-trips"} == set(
        kept.memory_ids
    )

    health = await two_files.health()
    assert set(health) == {"documents", "routes[0].documents"}
    assert all(status.ok for status in health.values())
    assert "canon.db" in health["routes[0].documents"].detail


async def test_tenant_callers_route_by_their_bank_id(tmp_path: Path, two_files: Astrocyte) -> None:
    await two_files.retain("Acme's canonical price list.", "canonical-prices", context=ACME)
    await two_files.retain("Acme chat.", "chat", context=ACME)
    assert _banks_in(tmp_path / "canon.db") == {"acme/canonical-prices": 1}
    assert _banks_in(tmp_path / "main.db") == {"acme/chat": 1}
    listed = {b.bank_id for b in await two_files.list_banks(context=ACME)}
    assert listed == {"canonical-prices", "chat"}
    result = await two_files.recall("Acme", banks=["canonical-prices", "chat"], context=ACME)
    assert {h.provenance.bank_id for h in result.hits} == {"canonical-prices", "chat"}


async def test_a_bank_left_behind_by_a_new_route_is_not_listed_twice(tmp_path: Path) -> None:
    async with Astrocyte(_config(tmp_path, [])) as before:
        await before.retain("Written before the route existed.", "canonical-old")
        await before.retain("Chat.", "chat")
    routes = [{"banks": ["canonical-*"], "path": str(tmp_path / "canon.db")}]
    async with Astrocyte(_config(tmp_path, routes)) as after:
        assert [b.bank_id for b in await after.list_banks()] == ["chat"]
        await after.retain("Written through the route.", "canonical-old")
        listed = {b.bank_id: b.memory_count for b in await after.list_banks()}
        assert listed == {"canonical-old": 1, "chat": 1}
    # The old records stay in the top-level file, untouched.
    assert _banks_in(tmp_path / "main.db") == {"canonical-old": 1, "chat": 1}


# --- all-or-nothing ---------------------------------------------------------------------


class BrokenVectors(InMemoryVectorStore):
    """A vector store whose every write fails (a server gone away)."""

    async def upsert(self, items: Sequence[VectorItem]) -> None:
        raise StoreError("vector server unreachable")


async def test_a_failed_write_in_one_route_leaves_nothing_half_written(tmp_path: Path) -> None:
    routes = [
        {
            "banks": ["remote-*"],
            "backend": "memory",
            "vector_store": {"provider": f"{__name__}:BrokenVectors"},
        }
    ]
    async with Astrocyte(_config(tmp_path, routes)) as brain:
        with pytest.raises(StoreError):
            await brain.retain_many([{"content": "one"}, {"content": "two"}], "remote-a")
        assert isinstance(brain.stores, RoutedStoreSet)
        route = brain.stores.router.routes[0].stores
        assert await route.documents.count("remote-a") == 0
        await brain.retain("Local chat still works.", "chat")
        assert _banks_in(tmp_path / "main.db") == {"chat": 1}


def _record(bank: str, memory_id: str, text: str) -> MemoryRecord:
    return MemoryRecord(memory_id, bank, text, "src", 0, "text", datetime(2024, 1, 1, tzinfo=UTC))


class FailingPut(InMemoryDocumentStore):
    """A document store that accepts banks but fails every put."""

    async def put(self, records: Sequence[MemoryRecord]) -> None:
        raise StoreError("document server unreachable")


async def test_a_put_spanning_routes_is_undone_when_a_later_route_fails() -> None:
    config = load_config(
        {
            "storage": {
                "backend": "memory",
                "routes": [
                    {"banks": ["a-*"], "backend": "memory"},
                    {
                        "banks": ["b-*"],
                        "backend": "memory",
                        "document_store": {"provider": f"{__name__}:FailingPut"},
                    },
                ],
            }
        }
    )
    stores = build_stores(config)
    docs = stores.documents
    for bank in ("a-1", "b-1"):
        await docs.create_bank(bank)
    await docs.put([_record("a-1", "kept", "original")])
    with pytest.raises(StoreError):
        await docs.put(
            [
                _record("a-1", "kept", "replaced"),
                _record("a-1", "new", "x"),
                _record("b-1", "m", "y"),
            ]
        )
    assert [r.text for r in await docs.get("a-1", ["kept", "new"])] == ["original"]
    # A missing bank in any route is found before anything is written.
    with pytest.raises(BankNotFound):
        await docs.put([_record("a-1", "new", "x"), _record("c-1", "m", "y")])
    assert await docs.count("a-1") == 1
    await stores.close()


# --- sharing ----------------------------------------------------------------------------


class CountingDocs(InMemoryDocumentStore):
    """Counts instances and closes, to prove one instance per identical spec."""

    made = 0
    closed = 0

    def __init__(self, **options: Any) -> None:
        super().__init__()
        type(self).made += 1

    async def close(self) -> None:
        type(self).closed += 1
        await super().close()


async def test_identical_specs_share_one_instance(tmp_path: Path) -> None:
    CountingDocs.made = CountingDocs.closed = 0
    spec = {"provider": f"{__name__}:CountingDocs", "dsn": "postgresql://x"}
    routes = [
        {"banks": ["a-*"], "path": str(tmp_path / "main.db"), "document_store": spec},
        {"banks": ["b-*"], "path": str(tmp_path / ".." / tmp_path.name / "main.db")},
        {"banks": ["c-*"], "backend": "memory", "document_store": dict(spec)},
    ]
    stores = build_stores(_config(tmp_path, routes, document_store=dict(spec)))
    assert isinstance(stores, RoutedStoreSet)
    default = stores.router.default
    a, b, c = (route.stores for route in stores.router.routes)
    assert CountingDocs.made == 1
    assert default.documents is a.documents is c.documents
    # The same file (however spelled) is one SQLiteStore; a route's unset slots come
    # from its own backend, not from the top-level providers.
    assert _one_object(default.vectors, a.vectors, b.documents, b.vectors, b.graph)
    assert c.vectors is not default.vectors  # a memory route has stores of its own
    health = await stores.health()
    assert set(health) == {"documents", "vectors", "routes[2].vectors", "routes[2].graph"}
    await stores.close()
    assert CountingDocs.closed == 1


def test_route_provider_errors_name_the_route(tmp_path: Path) -> None:
    routes = [
        {"banks": ["a-*"], "backend": "memory"},
        {"banks": ["b-*"], "backend": "memory", "graph_store": {"provider": "no-such-store"}},
    ]
    with pytest.raises(ConfigError) as err:
        build_stores(_config(tmp_path, routes))
    assert err.value.key == "storage.routes[1].graph_store.provider"
    bad_options = [
        {"banks": ["a-*"], "backend": "memory", "vector_store": {"provider": "memory", "x": 1}}
    ]
    with pytest.raises(ConfigError) as err:
        build_stores(_config(tmp_path, bad_options))
    assert err.value.key == "storage.routes[0].vector_store"


def test_a_route_with_every_store_given_opens_no_file(tmp_path: Path) -> None:
    memory = {"provider": "memory"}
    routes = [
        {
            "banks": ["a-*"],
            "document_store": memory,
            "vector_store": memory,
            "graph_store": memory,
        }
    ]
    build_stores(_config(tmp_path, routes, backend="memory"))
    assert list(tmp_path.iterdir()) == []


# --- config checks ----------------------------------------------------------------------


def _problems(routes: list[dict[str, Any]], **sections: Any) -> dict[str, str]:
    with pytest.raises(ConfigProblems) as err:
        load_config({"storage": {"backend": "memory", "routes": routes}, **sections})
    return {p.key: str(p) for p in err.value.problems}


def test_an_embedded_route_needs_a_path() -> None:
    with pytest.raises(ConfigProblems) as err:
        load_config({"storage": {"backend": "memory", "routes": [{"banks": ["a-*"]}]}})
    [problem] = err.value.problems
    assert problem.key == "storage.routes[0].path"
    assert problem.fix is not None and "set path" in problem.fix


def test_a_path_the_route_does_not_use_is_reported() -> None:
    problems = _problems([{"banks": ["a-*"], "backend": "memory", "path": "x.db"}])
    assert list(problems) == ["storage.routes[0].path"]


def test_route_patterns_must_be_declared() -> None:
    problems = _problems(
        [{"banks": ["canonical-*", "chat"], "backend": "memory"}],
        banks={"declared": ["chat", "notes-*"]},
    )
    assert list(problems) == ["storage.routes[0].banks[0]"]


@pytest.mark.parametrize(
    ("earlier", "later"),
    [
        (["*"], ["canonical-*"]),
        (["canonical-*"], ["canonical-*"]),
        (["canonical-*"], ["canonical-facts", "canonical-x*"]),
        (["a-*", "b"], ["b", "a-1"]),
    ],
)
def test_a_route_shadowed_by_an_earlier_one_is_an_error(
    earlier: list[str], later: list[str]
) -> None:
    problems = _problems(
        [{"banks": earlier, "backend": "memory"}, {"banks": later, "backend": "memory"}]
    )
    assert list(problems) == ["storage.routes[1].banks"]
    assert "routes[0]" in problems["storage.routes[1].banks"]


@pytest.mark.parametrize(
    ("earlier", "later"),
    [
        (["canonical-*"], ["*"]),
        (["canonical-?"], ["canonical-*"]),
        (["canonical-facts"], ["canonical-*"]),
        (["a-*"], ["a-*", "b-*"]),
    ],
)
def test_a_route_with_a_reachable_pattern_is_fine(earlier: list[str], later: list[str]) -> None:
    load_config(
        {
            "storage": {
                "backend": "memory",
                "routes": [
                    {"banks": earlier, "backend": "memory"},
                    {"banks": later, "backend": "memory"},
                ],
            }
        }
    )


# --- properties and conformance ---------------------------------------------------------

ROUTES = [
    {"banks": ["bank-[0-7]*", "a-*"], "backend": "memory"},
    {"banks": ["bank-[89ab]*", "b-*"], "backend": "memory"},
]


def _routed() -> RoutedStoreSet:
    stores = build_stores(load_config({"storage": {"backend": "memory", "routes": ROUTES}}))
    assert isinstance(stores, RoutedStoreSet)
    return stores


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    banks=st.lists(
        st.from_regex(r"(bank|a|b|c)-[0-9a-f]{1,4}", fullmatch=True),
        min_size=1,
        max_size=8,
        unique=True,
    ),
    tenant=st.sampled_from([None, "acme"]),
)
async def test_every_record_lives_in_exactly_one_store(
    banks: list[str], tenant: str | None
) -> None:
    stores = _routed()
    storage = [b if tenant is None else f"{tenant}/{b}" for b in banks]
    for bank in storage:
        await stores.documents.create_bank(bank)
    await stores.documents.put([_record(bank, f"m-{i}", "x") for i, bank in enumerate(storage)])
    sets = [stores.router.default] + [r.stores for r in stores.router.routes]
    for bank in storage:
        holders = [s for s in sets if await s.documents.count(bank) == 1]
        assert holders == [stores.router.stores_for(bank)]
    assert [b.bank_id for b in await stores.documents.list_banks()] == sorted(storage)
    await stores.close()


class TestRoutingDocumentStore(DocumentStoreConformance):
    @pytest.fixture
    async def document_store(self) -> AsyncIterator[RoutingDocumentStore]:
        stores = _routed()
        assert isinstance(stores.documents, RoutingDocumentStore)
        yield stores.documents
        await stores.close()


class TestRoutingVectorStore(VectorStoreConformance):
    @pytest.fixture
    async def vector_store(self) -> AsyncIterator[RoutingVectorStore]:
        stores = _routed()
        assert isinstance(stores.vectors, RoutingVectorStore)
        yield stores.vectors
        await stores.close()


class TestRoutingGraphStore(GraphStoreConformance):
    @pytest.fixture
    async def graph_store(self) -> AsyncIterator[RoutingGraphStore]:
        stores = _routed()
        assert isinstance(stores.graph, RoutingGraphStore)
        yield stores.graph
        await stores.close()
