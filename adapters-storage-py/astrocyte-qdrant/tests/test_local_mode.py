"""Adapter specifics on qdrant-client's local mode (in memory or on disk).

Local mode runs the client's own exhaustive search in Python, not the server engine;
what these tests check is this adapter's side: collection and index management, the
point layout, typed metadata, time boundaries, batching and all-or-nothing upserts.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astrocyte.errors import ConfigError, ProviderUnavailable, StoreError, ValidationError
from astrocyte.spi import MetadataValue, RecordFilter, VectorItem
from qdrant_client import AsyncQdrantClient
from qdrant_client.http import models as qm
from qdrant_client.http.exceptions import ResponseHandlingException

from astrocyte_qdrant import LAYOUT_VERSION, QdrantVectorStore

MAIN = "astrocyte_memories"


def item(bank: str, memory_id: str, vector: Any, **extra: Any) -> VectorItem:
    return VectorItem(
        id=memory_id, bank_id=bank, vector=np.asarray(vector, dtype=np.float32), **extra
    )


def bank() -> str:
    return f"bank-{uuid.uuid4().hex[:10]}"


async def ids(store: QdrantVectorStore, bank_id: str, query: Any, **where: Any) -> set[str]:
    hits = await store.search(
        bank_id,
        np.asarray(query, dtype=np.float32),
        limit=10_000,
        where=RecordFilter(**where) if where else None,
    )
    return {h.id for h in hits}


class AsyncClient:
    """A raw qdrant-client on a local-mode folder, for looking at what the store wrote."""

    def __init__(self, path: Path) -> None:
        self.client = AsyncQdrantClient(path=str(path))

    async def __aenter__(self) -> AsyncQdrantClient:
        return self.client

    async def __aexit__(self, *exc: object) -> None:
        await self.client.close()


# --------------------------------------------------------------------------------------
# Collections and indexes
# --------------------------------------------------------------------------------------


async def test_first_upsert_creates_cosine_collection_and_asks_for_payload_indexes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = QdrantVectorStore(location=":memory:")
    client = await store._conn._open()
    asked: list[tuple[str, Any]] = []
    real = client.create_payload_index

    async def spy(*, collection_name: str, field_name: str, field_schema: Any, **kw: Any) -> Any:
        asked.append((field_name, field_schema))
        return await real(
            collection_name=collection_name, field_name=field_name, field_schema=field_schema, **kw
        )

    # Local mode accepts payload indexes but does not keep them (it always scans), so
    # what is asked for is checked here; the server tests read them back.
    monkeypatch.setattr(client, "create_payload_index", spy)
    try:
        await store.upsert([item(bank(), "m", [1, 2, 3, 4])])
        await store.upsert([item(bank(), "m", [1, 2, 3, 4])])
        info = await store._conn.call("inspect", lambda c: c.get_collection(MAIN))
        vectors = info.config.params.vectors
        assert isinstance(vectors, qm.VectorParams)
        assert (vectors.size, vectors.distance) == (4, qm.Distance.COSINE)
        assert dict(asked) == {
            "bank_id": qm.KeywordIndexParams(type=qm.KeywordIndexType.KEYWORD, is_tenant=True),
            "tags": qm.KeywordIndexParams(type=qm.KeywordIndexType.KEYWORD),
            "meta": qm.KeywordIndexParams(type=qm.KeywordIndexType.KEYWORD),
            "occurred_at_us": qm.IntegerIndexParams(
                type=qm.IntegerIndexType.INTEGER, lookup=False, range=True
            ),
        }
        assert len(asked) == 4, "indexes are set up once per store, not per upsert"
    finally:
        await store.close()


async def test_collection_setup_is_idempotent_across_stores_on_one_folder(tmp_path: Path) -> None:
    b = bank()
    for round_ in range(3):
        store = QdrantVectorStore(path=str(tmp_path), collection="memories")
        await store.upsert([item(b, f"m{round_}", [1, round_, 0])])
        assert await ids(store, b, [1, 0, 0]) == {f"m{i}" for i in range(round_ + 1)}
        await store.close()
    async with AsyncClient(tmp_path) as client:
        names = [c.name for c in (await client.get_collections()).collections]
        assert names == ["memories"]
        assert await client.count("memories") == qm.CountResult(count=3)


async def test_points_follow_the_documented_layout(tmp_path: Path) -> None:
    b = bank()
    when = datetime(2024, 3, 10, 12, 0, 0, 123456, tzinfo=UTC)
    store = QdrantVectorStore(path=str(tmp_path))
    await store.upsert(
        [
            item(
                b,
                "memory-1",
                [3, 4],
                tags=("x", "y"),
                occurred_at=when,
                metadata={"n": 1.0, "s": "1", "b": True, "z": None},
            ),
            item(b, "memory-2", [1, 0]),
        ]
    )
    await store.close()
    async with AsyncClient(tmp_path) as client:
        points, _ = await client.scroll(MAIN, with_payload=True, with_vectors=True)
    by_id = {p.payload["memory_id"]: p for p in points if p.payload}
    first = by_id["memory-1"]
    assert first.id == str(
        uuid.uuid5(uuid.UUID("5b0f5c1e-6d55-4f0e-9a43-4a2f2d0c1a77"), f"{len(b)}:{b}:memory-1")
    )
    assert first.payload == {
        "bank_id": b,
        "memory_id": "memory-1",
        "tags": ["x", "y"],
        "occurred_at_us": 1710072000123456,
        "meta": ['["n","n:1"]', '["s","s:1"]', '["b","b:true"]', '["z","z:"]'],
        "v": LAYOUT_VERSION,
    }
    np.testing.assert_allclose(first.vector, [0.6, 0.8], atol=1e-6)
    assert "occurred_at_us" not in (by_id["memory-2"].payload or {})


async def test_existing_collection_with_other_distance_is_config_error(tmp_path: Path) -> None:
    async with AsyncClient(tmp_path) as client:
        await client.create_collection(
            MAIN, vectors_config=qm.VectorParams(size=3, distance=qm.Distance.DOT)
        )
    store = QdrantVectorStore(path=str(tmp_path))
    try:
        with pytest.raises(ConfigError) as err:
            await store.upsert([item(bank(), "m", [1, 0, 0])])
        assert err.value.key == "collection"
        assert "Cosine" in str(err.value)
    finally:
        await store.close()


async def test_existing_collection_with_named_vectors_is_config_error(tmp_path: Path) -> None:
    async with AsyncClient(tmp_path) as client:
        await client.create_collection(
            MAIN,
            vectors_config={"text": qm.VectorParams(size=3, distance=qm.Distance.COSINE)},
        )
    store = QdrantVectorStore(path=str(tmp_path))
    try:
        with pytest.raises(ConfigError) as err:
            await store.upsert([item(bank(), "m", [1, 0, 0])])
        assert err.value.key == "collection"
    finally:
        await store.close()


async def test_dimensions_option_fixes_the_size() -> None:
    store = QdrantVectorStore(location=":memory:", dimensions=4)
    b = bank()
    try:
        with pytest.raises(ValidationError) as err:
            await store.upsert([item(b, "m", [1, 0, 0])])
        assert err.value.field == "vector"
        await store.upsert([item(b, "m", [1, 0, 0, 0])])
        with pytest.raises(ValidationError) as err:
            await store.search(b, np.array([1, 0, 0], np.float32), limit=3)
        assert err.value.field == "vector"
        assert await ids(store, b, [1, 0, 0, 0]) == {"m"}
        # A bank of another size cannot go to a sibling collection in this mode.
        with pytest.raises(ValidationError):
            await store.upsert([item(bank(), "m", [1, 0])])
    finally:
        await store.close()


async def test_dimensions_option_disagreeing_with_collection_is_config_error(
    tmp_path: Path,
) -> None:
    store = QdrantVectorStore(path=str(tmp_path))
    await store.upsert([item(bank(), "m", [1, 0, 0])])
    await store.close()
    store = QdrantVectorStore(path=str(tmp_path), dimensions=8)
    try:
        with pytest.raises(ConfigError) as err:
            await store.upsert([item(bank(), "m", [1] * 8)])
        assert err.value.key == "dimensions"
    finally:
        await store.close()


async def test_other_vector_sizes_live_in_sibling_collections() -> None:
    store = QdrantVectorStore(location=":memory:", collection="mem")
    small, large = bank(), bank()
    try:
        await store.upsert([item(small, "s", [1, 0, 0])])
        await store.upsert([item(large, "l", [1, 0, 0, 0, 0])])
        listing = await store._conn.call("inspect", lambda c: c.get_collections())
        assert sorted(c.name for c in listing.collections) == ["mem", "mem__dim5"]
        assert await ids(store, small, [1, 0, 0]) == {"s"}
        assert await ids(store, large, [1, 0, 0, 0, 0]) == {"l"}
        # A bank keeps its size while it holds vectors, in either direction...
        with pytest.raises(ValidationError):
            await store.upsert([item(small, "s2", [1, 0, 0, 0, 0])])
        with pytest.raises(ValidationError):
            await store.search(large, np.array([1, 0, 0], np.float32), limit=1)
        # ...and is free again once empty, like the reference store.
        assert await store.delete(small, ["s"]) == 1
        await store.upsert([item(small, "s", [0, 1, 0, 0, 0])])
        assert await ids(store, small, [0, 1, 0, 0, 0]) == {"s"}
        with pytest.raises(ValidationError):
            await store.search(small, np.array([1, 0, 0], np.float32), limit=1)
    finally:
        await store.close()


async def test_a_dropped_collection_is_recreated() -> None:
    store = QdrantVectorStore(location=":memory:")
    b = bank()
    try:
        await store.upsert([item(b, "m", [1, 0])])
        await store._conn.call("drop", lambda c: c.delete_collection(MAIN))
        assert await ids(store, b, [1, 0]) == set()
        assert await store.delete(b, ["m"]) == 0
        await store.upsert([item(b, "m2", [1, 0])])
        assert await ids(store, b, [1, 0]) == {"m2"}
    finally:
        await store.close()


# --------------------------------------------------------------------------------------
# Filters
# --------------------------------------------------------------------------------------

METADATA_CASES: list[MetadataValue] = [
    True, False, 0, 1, 1.0, -0.0, 2.5, "1", "true", "", None, 2**53 + 1, float(2**53),
]  # fmt: skip


async def test_metadata_filter_is_json_typed_equality(local_store: QdrantVectorStore) -> None:
    b = bank()
    items = [
        item(b, f"v{i}", [1, i], metadata={"k": value, "a.b[0]": i % 2, 'q"uote': "x"})
        for i, value in enumerate(METADATA_CASES)
    ]
    items.append(item(b, "no-k", [1, 99]))
    await local_store.upsert(items)
    for probe in [*METADATA_CASES, 7, "nope"]:
        where = RecordFilter(metadata={"k": probe})
        expected = {it.id for it in items if where.matches(it)}
        assert await ids(local_store, b, [1, 0], metadata={"k": probe}) == expected, probe
    assert await ids(local_store, b, [1, 0], metadata={"k": 1}) == {"v3", "v4"}
    assert await ids(local_store, b, [1, 0], metadata={"k": True}) == {"v0"}
    assert await ids(local_store, b, [1, 0], metadata={"k": None}) == {"v10"}
    odd = await ids(local_store, b, [1, 0], metadata={"a.b[0]": 1, 'q"uote': "x"})
    assert odd == {f"v{i}" for i in range(1, len(METADATA_CASES), 2)}


async def test_time_filter_is_exact_to_the_microsecond(local_store: QdrantVectorStore) -> None:
    b = bank()
    base = datetime(2024, 3, 10, 12, 0, 0, 500_000, tzinfo=UTC)
    plus2 = timezone(timedelta(hours=2))
    items = [
        item(b, "before", [1, 0], occurred_at=base - timedelta(microseconds=1)),
        item(b, "at", [1, 0], occurred_at=base.astimezone(plus2)),
        item(b, "after", [1, 0], occurred_at=base + timedelta(microseconds=1)),
        item(b, "old", [1, 0], occurred_at=datetime(1901, 1, 1, tzinfo=UTC)),
        item(b, "none", [1, 0]),
    ]
    await local_store.upsert(items)
    assert await ids(local_store, b, [1, 0], time_from=base) == {"at", "after"}
    assert await ids(local_store, b, [1, 0], time_to=base) == {"before", "old"}
    assert await ids(local_store, b, [1, 0], time_from=base, time_to=base) == set()
    end = base + timedelta(microseconds=1)
    assert await ids(local_store, b, [1, 0], time_from=base, time_to=end) == {"at"}
    assert await ids(local_store, b, [1, 0], time_to=datetime(1901, 1, 1, 0, 0, 1, tzinfo=UTC)) == {
        "old"
    }


async def test_tags_filter_needs_every_tag(local_store: QdrantVectorStore) -> None:
    b = bank()
    await local_store.upsert(
        [
            item(b, "ab", [1, 0], tags=("a", "b")),
            item(b, "a", [1, 0], tags=("a",)),
            item(b, "b-dup", [1, 0], tags=("b", "b")),
        ]
    )
    assert await ids(local_store, b, [1, 0], tags=("a", "b")) == {"ab"}
    assert await ids(local_store, b, [1, 0], tags=("b",)) == {"ab", "b-dup"}
    assert await ids(local_store, b, [1, 0], ids=frozenset()) == set()


# --------------------------------------------------------------------------------------
# Banks, bulk writes, all-or-nothing
# --------------------------------------------------------------------------------------


async def test_banks_with_the_same_ids_stay_apart(local_store: QdrantVectorStore) -> None:
    banks = [bank() for _ in range(3)]
    for n, b in enumerate(banks):
        await local_store.upsert([item(b, f"m{i}", [1, i, n]) for i in range(5)])
    assert await local_store.delete(banks[0], ["m0", "m1", "m2", "m3", "m4"]) == 5
    assert await ids(local_store, banks[0], [1, 0, 0]) == set()
    for b in banks[1:]:
        assert await ids(local_store, b, [1, 0, 0]) == {f"m{i}" for i in range(5)}
        assert await ids(local_store, b, [1, 0, 0], ids=frozenset({"m1"})) == {"m1"}


async def test_bulk_upsert_of_2000_items_in_one_call(local_store: QdrantVectorStore) -> None:
    b = bank()
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(2000, 16)).astype(np.float32)
    await local_store.upsert(
        [item(b, f"v{i}", vectors[i], tags=("even",) if i % 2 == 0 else ()) for i in range(2000)]
    )
    hits = await local_store.search(b, vectors[1234], limit=2000)
    assert len(hits) == 2000
    assert hits[0].id == "v1234"
    assert hits[0].score == pytest.approx(1.0, abs=1e-4)
    assert len(await ids(local_store, b, vectors[0], tags=("even",))) == 1000
    assert await local_store.delete(b, [f"v{i}" for i in range(2000)]) == 2000
    assert await ids(local_store, b, vectors[0]) == set()


async def test_failed_later_batch_restores_what_earlier_batches_replaced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = QdrantVectorStore(location=":memory:", batch_size=10)
    b = bank()
    try:
        old = [item(b, f"p{i}", np.eye(8)[i], tags=("old",), metadata={"gen": 1}) for i in range(5)]
        await store.upsert(old)
        client = await store._conn._open()
        real_upsert = client.upsert
        calls = 0

        async def flaky_upsert(*args: Any, **kwargs: Any) -> Any:
            nonlocal calls
            calls += 1
            if calls == 3:  # the third batch of the big upsert dies mid-way
                import httpx

                raise ResponseHandlingException(httpx.ConnectError("connection reset"))
            return await real_upsert(*args, **kwargs)

        monkeypatch.setattr(client, "upsert", flaky_upsert)
        new = [item(b, f"p{i}", np.eye(8)[7], tags=("new",), metadata={"gen": 2}) for i in range(5)]
        new += [item(b, f"n{i}", np.eye(8)[(i % 3) + 5]) for i in range(25)]
        with pytest.raises(ProviderUnavailable):
            await store.upsert(new)
        assert calls >= 3
        assert await ids(store, b, np.eye(8)[0]) == {f"p{i}" for i in range(5)}
        assert await ids(store, b, np.eye(8)[0], tags=("old",)) == {f"p{i}" for i in range(5)}
        assert await ids(store, b, np.eye(8)[0], metadata={"gen": 2}) == set()
        for i in range(5):
            hits = await store.search(b, np.eye(8)[i].astype(np.float32), limit=1)
            assert hits[0].id == f"p{i}"
            assert hits[0].score == pytest.approx(1.0, abs=1e-5)
        monkeypatch.setattr(client, "upsert", real_upsert)
        await store.upsert(new)  # the same call succeeds once the server is back
        assert len(await ids(store, b, np.eye(8)[0])) == 30
    finally:
        await store.close()


async def test_failed_undo_is_reported_on_the_error(monkeypatch: pytest.MonkeyPatch) -> None:
    store = QdrantVectorStore(location=":memory:", batch_size=2)
    b = bank()
    try:
        await store.upsert([item(b, "seed", [1, 0])])
        client = await store._conn._open()
        real_upsert = client.upsert
        calls = 0

        async def dies_after_first(*args: Any, **kwargs: Any) -> Any:
            nonlocal calls
            calls += 1
            if calls > 1:
                raise TimeoutError
            return await real_upsert(*args, **kwargs)

        async def no_delete(*args: Any, **kwargs: Any) -> Any:
            raise TimeoutError

        monkeypatch.setattr(client, "upsert", dies_after_first)
        monkeypatch.setattr(client, "delete", no_delete)
        with pytest.raises(ProviderUnavailable) as err:
            await store.upsert([item(b, f"m{i}", [1, i]) for i in range(6)])
        assert any("undoing the earlier batches failed" in n for n in err.value.__notes__)
    finally:
        await store.close()


# --------------------------------------------------------------------------------------
# Life cycle
# --------------------------------------------------------------------------------------


async def test_on_disk_mode_persists_and_is_single_process(tmp_path: Path) -> None:
    b = bank()
    first = QdrantVectorStore(path=str(tmp_path / "q"))
    await first.upsert([item(b, "kept", [0, 1])])
    second = QdrantVectorStore(path=str(tmp_path / "q"))
    try:
        with pytest.raises(ConfigError) as err:
            await second.search(b, np.array([0, 1], np.float32), limit=1)
        assert err.value.key == "path"
    finally:
        await second.close()
        await first.close()
    again = QdrantVectorStore(path=str(tmp_path / "q"))
    try:
        assert await ids(again, b, [0, 1]) == {"kept"}
    finally:
        await again.close()


def test_constructor_does_no_io(tmp_path: Path) -> None:
    # Called from synchronous code (the config factory) with no event loop running.
    QdrantVectorStore(path=str(tmp_path / "not-yet"))
    QdrantVectorStore(url="http://127.0.0.1:9", timeout_s="2.5")
    assert not (tmp_path / "not-yet").exists()


async def test_closed_store_refuses_work() -> None:
    store = QdrantVectorStore(location=":memory:")
    await store.upsert([item(bank(), "m", [1, 0])])
    assert (await store.health()).ok
    await store.close()
    await store.close()
    assert not (await store.health()).ok
    with pytest.raises(StoreError, match="closed"):
        await store.search(bank(), np.array([1, 0], np.float32), limit=1)
    with pytest.raises(StoreError, match="closed"):
        await store.upsert([item(bank(), "m", [1, 0])])
