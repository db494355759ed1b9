"""Server-only behaviour, against a real Qdrant server.

Skipped unless ``ASTROCYTE_TEST_QDRANT_URL`` is set (e.g. ``http://127.0.0.1:6333``);
set ``ASTROCYTE_TEST_QDRANT_API_KEY`` too if the server requires a key. No Qdrant
server is installable on the project's machines, so CI skips these (see conftest).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import numpy as np
import pytest
from astrocyte.errors import ConfigError, ProviderUnavailable
from astrocyte.spi import RecordFilter, VectorItem
from astrocyte.testing import TcpProxy
from qdrant_client import AsyncQdrantClient
from qdrant_client.http import models as qm

from astrocyte_qdrant import QdrantVectorStore

from .conftest import drop_collections, fresh_collection, server_api_key, server_url


def item(bank: str, memory_id: str, vector: list[float], **extra: object) -> VectorItem:
    return VectorItem(
        id=memory_id,
        bank_id=bank,
        vector=np.asarray(vector, dtype=np.float32),
        **extra,  # type: ignore[arg-type]
    )


@pytest.fixture
async def raw_client() -> AsyncIterator[AsyncQdrantClient]:
    client = AsyncQdrantClient(
        url=server_url(), port=None, api_key=server_api_key(), check_compatibility=False
    )
    yield client
    await client.close()


@pytest.fixture
async def proxy() -> AsyncIterator[TcpProxy]:
    parts = urlsplit(server_url())
    if parts.scheme != "http" or parts.hostname is None:
        pytest.skip("the TcpProxy tests need a plain http server URL")
    async with TcpProxy(parts.hostname, parts.port or 80) as tcp:
        yield tcp


def proxied_store(proxy: TcpProxy, collection: str, timeout_s: float) -> QdrantVectorStore:
    path = urlsplit(server_url()).path
    return QdrantVectorStore(
        url=f"http://127.0.0.1:{proxy.port}{path}",
        api_key=server_api_key(),
        collection=collection,
        timeout_s=timeout_s,
    )


async def test_server_payload_indexes_exist_and_setup_is_idempotent(
    server_store: QdrantVectorStore, raw_client: AsyncQdrantClient
) -> None:
    name = server_store.options.collection
    await server_store.upsert([item("b", "m", [1, 0, 0])])
    info = await raw_client.get_collection(name)
    assert {f: s.data_type for f, s in info.payload_schema.items()} == {
        "bank_id": qm.PayloadSchemaType.KEYWORD,
        "tags": qm.PayloadSchemaType.KEYWORD,
        "meta": qm.PayloadSchemaType.KEYWORD,
        "occurred_at_us": qm.PayloadSchemaType.INTEGER,
    }
    bank_index = info.payload_schema["bank_id"].params
    assert isinstance(bank_index, qm.KeywordIndexParams)
    assert bank_index.is_tenant
    # A second store on the same collection finds everything in place.
    other = QdrantVectorStore(url=server_url(), api_key=server_api_key(), collection=name)
    try:
        await other.upsert([item("b", "m2", [0, 1, 0])])
        hits = await other.search("b", np.array([1, 0, 0], np.float32), limit=5)
        assert {h.id for h in hits} == {"m", "m2"}
    finally:
        await other.close()
    again = await raw_client.get_collection(name)
    assert again.payload_schema.keys() == info.payload_schema.keys()
    assert (await raw_client.count(name, exact=True)).count == 2


async def test_server_concurrent_first_use_creates_one_collection(
    raw_client: AsyncQdrantClient,
) -> None:
    name = fresh_collection()
    stores = [
        QdrantVectorStore(url=server_url(), api_key=server_api_key(), collection=name)
        for _ in range(3)
    ]
    try:
        await asyncio.gather(
            *(s.upsert([item(f"b{i}", "m", [1, i, 0])]) for i, s in enumerate(stores))
        )
        names = [c.name for c in (await raw_client.get_collections()).collections]
        assert names.count(name) == 1
        assert (await raw_client.count(name, exact=True)).count == 3
    finally:
        for s in stores:
            await s.close()
        await drop_collections(stores[0])


async def test_server_reconnects_after_the_server_was_gone(proxy: TcpProxy) -> None:
    store = proxied_store(proxy, fresh_collection(), timeout_s=5)
    try:
        await store.upsert([item("b", "before", [1, 0])])
        proxy.cut()
        with pytest.raises(ProviderUnavailable):
            await store.search("b", np.array([1, 0], np.float32), limit=5)
        with pytest.raises(ProviderUnavailable):
            await store.upsert([item("b", "during", [1, 0])])
        assert not (await store.health()).ok
        proxy.restore()
        await store.upsert([item("b", "after", [1, 0])])
        hits = await store.search("b", np.array([1, 0], np.float32), limit=5)
        assert {h.id for h in hits} == {"before", "after"}
        assert (await store.health()).ok
    finally:
        await store.close()
        await drop_collections(store)


async def test_server_hang_gives_provider_unavailable_within_timeout(proxy: TcpProxy) -> None:
    store = proxied_store(proxy, fresh_collection(), timeout_s=1.0)
    try:
        await store.upsert([item("b", "m", [1, 0])])
        proxy.hang()
        started = time.monotonic()
        with pytest.raises(ProviderUnavailable, match="timed out"):
            await store.search("b", np.array([1, 0], np.float32), limit=5)
        assert time.monotonic() - started < 2.0
        proxy.restore()
        hits = await store.search("b", np.array([1, 0], np.float32), limit=5)
        assert [h.id for h in hits] == ["m"]
    finally:
        await store.close()
        await drop_collections(store)


async def test_server_wrong_api_key_is_config_error() -> None:
    key = server_api_key()
    if key is None:
        pytest.skip("the test server has no api key (set ASTROCYTE_TEST_QDRANT_API_KEY)")
    for wrong in (key + "-wrong", None):
        store = QdrantVectorStore(url=server_url(), api_key=wrong, collection=fresh_collection())
        try:
            with pytest.raises(ConfigError) as err:
                await store.upsert([item("b", "m", [1, 0])])
            assert err.value.key == "api_key"
            assert key not in str(err.value)
        finally:
            await store.close()


async def test_server_bulk_upsert_of_2000_items(server_store: QdrantVectorStore) -> None:
    rng = np.random.default_rng(11)
    vectors = rng.normal(size=(2000, 32)).astype(np.float32)
    await server_store.upsert(
        [
            VectorItem(f"v{i}", "bulk", vectors[i], tags=("even",) if i % 2 == 0 else ())
            for i in range(2000)
        ]
    )
    hits = await server_store.search("bulk", vectors[777], limit=10)
    assert hits[0].id == "v777"
    assert hits[0].score == pytest.approx(1.0, abs=1e-4)
    even = await server_store.search(
        "bulk", vectors[777], limit=2000, where=RecordFilter(tags=("even",))
    )
    assert len(even) == 1000
    assert await server_store.delete("bulk", [f"v{i}" for i in range(2000)]) == 2000
