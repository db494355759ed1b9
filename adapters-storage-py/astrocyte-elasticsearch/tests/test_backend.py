"""Backend specifics against the real servers: schema, failures, credentials, bulk."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest
from astrocyte.errors import ConfigError, ProviderUnavailable, StoreError
from astrocyte.spi import MemoryRecord, RecordFilter
from astrocyte.stores.text import tokenize
from astrocyte.testing import TcpProxy
from astrocyte.testing._support import new_bank, record, unique_word
from elasticsearch import AsyncElasticsearch, NotFoundError

import astrocyte_elasticsearch._store as store_module
from astrocyte_elasticsearch import ElasticsearchDocumentStore
from astrocyte_elasticsearch._schema import SCHEMA_VERSION, Layout
from tests.conftest import Server, StoreFactory, fresh_prefix


@contextlib.asynccontextmanager
async def raw_client(server: Server) -> AsyncIterator[AsyncElasticsearch]:
    """A plain client on the server, through a connected store (so the flavor is right)."""
    store = ElasticsearchDocumentStore(**server.options())
    try:
        yield await store._ready()
    finally:
        await store.close()


async def drop_prefix(server: Server, prefix: str) -> None:
    """Remove the indices and templates of a test-only prefix."""
    layout = Layout(prefix)
    async with raw_client(server) as client:
        for index in (layout.memories_index, layout.banks_index):
            with contextlib.suppress(NotFoundError):
                await client.indices.delete(index=index)
        for name in (layout.memories, layout.banks):
            with contextlib.suppress(NotFoundError):
                await client.indices.delete_index_template(name=name)


@pytest.fixture
async def prefix(server: Server) -> AsyncIterator[str]:
    """A fresh index prefix, dropped after the test."""
    name = fresh_prefix()
    yield name
    await drop_prefix(server, name)


def free_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ---------------------------------------------------------------------- schema


async def test_schema_is_created_once_from_versioned_templates(
    make_store: StoreFactory, server: Server, prefix: str
) -> None:
    """Concurrent first use by several stores creates one template-backed index per
    kind; the templates and the index carry the schema version."""
    stores = [make_store(index_prefix=prefix) for _ in range(3)]
    banks = [new_bank() for _ in stores]
    await asyncio.gather(*(s.create_bank(b) for s, b in zip(stores, banks, strict=True)))
    assert [b.bank_id for b in await stores[0].list_banks()] == sorted(banks)
    layout = Layout(prefix)
    async with raw_client(server) as client:
        for name in (layout.memories, layout.banks):
            [template] = (await client.indices.get_index_template(name=name))["index_templates"]
            assert template["index_template"]["version"] == SCHEMA_VERSION
            assert template["index_template"]["_meta"]["astrocyte_schema"] == SCHEMA_VERSION
        aliases = await client.indices.get_alias(name=layout.memories)
        assert list(aliases) == [layout.memories_index]
    # A later store on the same prefix reuses everything.
    again = make_store(index_prefix=prefix)
    assert await again.bank_exists(banks[0])


async def test_index_of_another_schema_version_is_refused(
    make_store: StoreFactory, server: Server, prefix: str
) -> None:
    """An index written by a different schema version is never silently reused."""
    layout = Layout(prefix)
    async with raw_client(server) as client:
        await client.indices.create(
            index=layout.memories_index,
            body={
                "aliases": {layout.memories: {}},
                "mappings": {"_meta": {"astrocyte_schema": SCHEMA_VERSION + 1}},
            },
        )
    store = make_store(index_prefix=prefix)
    with pytest.raises(ConfigError) as info:
        await store.count(new_bank())
    assert info.value.key == "index_prefix"


async def test_analysis_mode_and_tokens_agree_with_the_core(
    make_store: StoreFactory, server: Server
) -> None:
    """The index tokenises exactly like ``astrocyte.stores.text.tokenize``: server-side
    where the node has analysis-common (OpenSearch test node), client-side where it
    does not (Elasticsearch integ-test zip)."""
    store = make_store()
    await store.count(new_bank())
    assert store.flavor == server.name
    expected_mode = "server" if server.name == "opensearch" else "client"
    assert store.analysis_mode == expected_mode
    if expected_mode == "client":
        with pytest.raises(ConfigError) as info:
            await make_store(analysis="server").count(new_bank())
        assert info.value.key == "analysis"
        return
    texts = [
        "The Straße Cafés 東京タワー foo_bar memories classes ties cats bus",
        "Don't stop: ﬁsh & ＡＢＣ; naïve résumé, 42nd 3.14 e-mail x@y.z",
        "glasses buses bonuses analysis kisses flies lies dies",
    ]
    async with raw_client(server) as client:
        for text in texts:
            resp = await client.indices.analyze(
                index=Layout("astrocyte").memories,
                body={"analyzer": "astrocyte_text", "text": text},
            )
            assert [t["token"] for t in resp["tokens"]] == tokenize(text), text


# ---------------------------------------------------------------------- failures


async def test_reconnects_after_the_server_comes_back(
    make_store: StoreFactory, server: Server
) -> None:
    """Server gone -> ProviderUnavailable; back -> the same store works again."""
    async with TcpProxy(*server.host_port) as proxy:
        store = make_store(url=f"http://127.0.0.1:{proxy.port}", timeout_s=5)
        bank = new_bank()
        await store.create_bank(bank)
        await store.put([record(bank, "m1", "lighthouse keeper")])
        proxy.cut()
        with pytest.raises(ProviderUnavailable):
            await store.count(bank)
        with pytest.raises(ProviderUnavailable):
            await store.put([record(bank, "m2", "lighthouse")])
        proxy.restore()
        assert await store.count(bank) == 1
        await store.put([record(bank, "m2", "lighthouse lamp")])
        hits = await store.keyword_search(bank, "lighthouse", limit=5)
        assert {h.id for h in hits} == {"m1", "m2"}


async def test_hung_server_times_out_within_timeout_s(
    make_store: StoreFactory, server: Server
) -> None:
    """A server that accepts but never answers gives ProviderUnavailable after timeout_s."""
    async with TcpProxy(*server.host_port) as proxy:
        store = make_store(url=f"http://127.0.0.1:{proxy.port}", timeout_s=1.0)
        bank = new_bank()
        await store.create_bank(bank)
        proxy.hang()
        started = time.monotonic()
        with pytest.raises(ProviderUnavailable) as info:
            await store.keyword_search(bank, "anything at all", limit=5)
        elapsed = time.monotonic() - started
        assert 0.9 <= elapsed < 2.5
        assert "timeout_s=1" in str(info.value)


async def test_refused_port_is_provider_unavailable(make_store: StoreFactory) -> None:
    """Nothing listening -> ProviderUnavailable on first use (the constructor does no I/O)."""
    store = make_store(url=f"http://127.0.0.1:{free_port()}", timeout_s=2)
    with pytest.raises(ProviderUnavailable):
        await store.create_bank(new_bank())
    status = await store.health()
    assert not status.ok


async def test_bad_password_is_a_config_error(es_server: Server) -> None:
    """The ES node has security on: a wrong password is a ConfigError naming it,
    without the password in the message."""
    assert es_server.username, "the elasticsearch test node runs with security on"
    secret = "not-the-password-" + unique_word()
    store = ElasticsearchDocumentStore(
        url=es_server.url, username=es_server.username, password=secret, timeout_s=5
    )
    try:
        with pytest.raises(ConfigError) as info:
            await store.create_bank(new_bank())
        assert info.value.key == "password"
        assert secret not in str(info.value)
    finally:
        await store.close()
    for flavor in ("auto", "elasticsearch"):
        bad_key = ElasticsearchDocumentStore(
            url=es_server.url, api_key="bm9wZTpub3Bl", flavor=flavor
        )
        try:
            with pytest.raises(ConfigError) as info:
                await bad_key.count(new_bank())
            assert info.value.key == "api_key"
        finally:
            await bad_key.close()


# ---------------------------------------------------------------------- writes


async def test_bulk_write_of_2000_records(
    make_store: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """2,000 records in one put (two bulk requests), all findable, paged scans exact."""
    store = make_store()
    bank = new_bank()
    await store.create_bank(bank)
    word = unique_word()
    batch = [
        record(bank, f"m{i:04d}", f"{word} item {i}", occurred_at=None, tags=("bulk",))
        for i in range(2000)
    ]
    await store.put(batch)
    assert await store.count(bank) == 2000
    monkeypatch.setattr(store_module, "PAGE", 300)  # force many search_after pages
    found = await store.find(bank, RecordFilter(tags=("bulk",)))
    assert sorted(found) == [r.id for r in batch]
    assert len(await store.keyword_search(bank, word, limit=2000)) == 2000
    hashes = await store.find_by_content_hash(bank, [r.content_hash for r in batch])
    assert hashes == {r.content_hash: r.id for r in batch}
    assert await store.delete(bank, [r.id for r in batch]) == 2000
    assert await store.count(bank) == 0


async def test_failed_bulk_item_undoes_the_whole_put(
    make_store: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the server rejects any item, the items already written are removed and the
    replaced ones restored: the put is all-or-nothing across bulk requests."""
    store = make_store()
    bank = new_bank()
    await store.create_bank(bank)
    old = record(bank, "keep", "original text")
    await store.put([old])
    real_to_document = store_module.to_document

    def poisoned(rec: MemoryRecord, indexed_text: str, stored_us: int) -> dict[str, Any]:
        doc = real_to_document(rec, indexed_text, stored_us)
        if rec.id == "poison":
            doc["not_in_mapping"] = 1  # the strict mapping rejects this document
        return doc

    monkeypatch.setattr(store_module, "to_document", poisoned)
    monkeypatch.setattr(store_module, "BULK_CHUNK", 2)
    batch = [
        replace(old, text="replaced text"),
        record(bank, "new1", "fresh"),
        record(bank, "new2", "fresh"),
        record(bank, "poison", "fresh"),
    ]
    with pytest.raises(StoreError, match="rejected"):
        await store.put(batch)
    assert await store.count(bank) == 1
    assert await store.get(bank, ["keep", "new1", "new2", "poison"]) == [old]
    assert [h.id for h in await store.keyword_search(bank, "original", limit=5)] == ["keep"]
    assert await store.keyword_search(bank, "fresh", limit=5) == []


async def test_scores_use_the_banks_own_statistics(make_store: StoreFactory) -> None:
    """Other banks' content does not move a bank's BM25 scores (one shared index)."""
    store = make_store()
    mine, noisy = new_bank(), new_bank()
    await store.create_bank(mine)
    await store.create_bank(noisy)
    word, other = unique_word(), unique_word()
    await store.put(
        [record(mine, f"w{i}", f"{word} {unique_word()}") for i in range(3)]
        + [record(mine, f"o{i}", f"{other} {unique_word()}") for i in range(12)]
    )
    before = await store.keyword_search(mine, word, limit=10)
    await store.put([record(noisy, f"n{i}", f"{word} {unique_word()}") for i in range(300)])
    after = await store.keyword_search(mine, word, limit=10)
    assert {h.id for h in after} == {h.id for h in before} == {"w0", "w1", "w2"}
    for a, b in zip(sorted(h.score for h in before), sorted(h.score for h in after), strict=True):
        assert b == pytest.approx(a, rel=0.1)
    assert await store.keyword_search(mine, other, limit=20) != []


async def test_refresh_false_is_accepted_and_writes_land(make_store: StoreFactory) -> None:
    """refresh='false' returns before the write is searchable; a realtime get sees it."""
    store = make_store(refresh="false")
    bank = new_bank()
    await store.create_bank(bank)
    await store.put([record(bank, "m", "quiet write")])
    assert [r.id for r in await store.get(bank, ["m"])] == ["m"]
