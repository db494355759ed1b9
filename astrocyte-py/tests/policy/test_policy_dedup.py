"""Dedup on retain: off by default, exact via the indexed hash lookup, near via one
vector search per chunk, and race-free under concurrent identical retains."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from astrocyte.stores.sqlite import SCHEMA_VERSION, SQLiteStore
from astrocyte.stores.sqlite._schema import MIGRATIONS
from tests.policy.conftest import HarnessFactory

EXACT = {"dedup": {"exact": True}}


async def test_off_by_default_identical_content_is_two_memories(harness: HarnessFactory) -> None:
    h = harness()
    first = await h.retain("b", "Yes.")
    second = await h.retain("b", "Yes.")
    assert first.results[0].memory_ids != second.results[0].memory_ids
    assert not second.results[0].deduplicated
    assert await h.stores.documents.count("b") == 2


async def test_exact_duplicate_returns_the_existing_ids(harness: HarnessFactory) -> None:
    h = harness(EXACT)
    text = "Maya moved to Porto. She signed the lease in March. The flat has a balcony."
    first = (await h.retain("b", text)).results[0]
    again = await h.retain("b", {"content": text, "metadata": {"session": 2}})
    assert again.results[0].deduplicated
    assert again.results[0].memory_ids == first.memory_ids
    assert again.results[0].source_id == first.source_id  # the source holding them
    assert again.memory_count == 0
    assert await h.stores.documents.count("b") == len(first.memory_ids)
    # Another bank is another namespace.
    elsewhere = (await h.retain("c", text)).results[0]
    assert not elsewhere.deduplicated


async def test_duplicates_within_one_batch(harness: HarnessFactory) -> None:
    h = harness(EXACT)
    batch = await h.retain("b", "alpha", "beta", "alpha", "gamma", "beta")
    flags = [r.deduplicated for r in batch.results]
    assert flags == [False, False, True, False, True]
    assert batch.results[2].memory_ids == batch.results[0].memory_ids
    assert batch.results[4].memory_ids == batch.results[1].memory_ids
    assert batch.memory_count == 3
    assert await h.stores.documents.count("b") == 3


async def test_partial_overlap_is_stored_whole(harness: HarnessFactory) -> None:
    """An item sharing only some sentences with stored memories keeps all its chunks,
    so its source has no holes."""
    h = harness(EXACT)
    await h.retain("b", "Shared opening sentence.")
    text = "Shared opening sentence.\n" + "A brand new second sentence. " * 40
    result = (await h.retain("b", text)).results[0]
    assert not result.deduplicated
    records = await h.stores.documents.get("b", result.memory_ids)
    assert [r.chunk_index for r in records] == list(range(len(result.memory_ids)))


async def test_concurrent_identical_retains_write_once(harness: HarnessFactory) -> None:
    h = harness(EXACT)
    results = await asyncio.gather(*(h.retain("b", "the same sentence") for _ in range(20)))
    ids = {tuple(r.results[0].memory_ids) for r in results}
    assert len(ids) == 1
    assert sum(not r.results[0].deduplicated for r in results) == 1
    assert await h.stores.documents.count("b") == 1


async def test_dedup_uses_the_hash_lookup_never_a_scan(harness: HarnessFactory) -> None:
    h = harness(EXACT)
    await h.retain("b", *(f"memory {i}" for i in range(50)))
    calls: list[str] = []
    documents: Any = h.stores.documents
    for name in ("find", "keyword_search", "find_by_content_hash"):
        original = getattr(documents, name)

        def spy(*args: Any, _name: str = name, _original: Any = original, **kw: Any) -> Any:
            calls.append(_name)
            return _original(*args, **kw)

        object.__setattr__(documents, name, spy)
    try:
        assert (await h.retain("b", "memory 7")).results[0].deduplicated
    finally:
        for name in ("find", "keyword_search", "find_by_content_hash"):
            object.__delattr__(documents, name)
    assert calls == ["find_by_content_hash"]


async def test_near_duplicates_by_vector_similarity(harness: HarnessFactory) -> None:
    h = harness({"dedup": {"near_threshold": 0.9}})
    first = (await h.retain("b", "Tomas ran the half marathon in 1:43:10 on Sunday")).results[0]
    # Same words, different case and punctuation: the hashing embedder maps it (nearly)
    # onto the same vector.
    near = (await h.retain("b", "tomas ran the half marathon in 1:43:10 on sunday!")).results[0]
    assert near.deduplicated and near.memory_ids == first.memory_ids
    other = (await h.retain("b", "Maya adopted a greyhound called Pepper")).results[0]
    assert not other.deduplicated
    assert await h.stores.documents.count("b") == 2


def test_schema_v2_indexes_content_hashes_and_migrates_v1_files(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in MIGRATIONS[1]:
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    conn.close()

    async def open_and_close() -> None:
        store = SQLiteStore(path)
        await store.close()

    asyncio.run(open_and_close())
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
    plan = conn.execute(
        "EXPLAIN QUERY PLAN SELECT content_hash, id, min(seq) FROM memories"
        " WHERE bank_id = ? AND content_hash IN (SELECT value FROM json_each(?))"
        " GROUP BY content_hash",
        ("b", '["h"]'),
    ).fetchall()
    conn.close()
    assert any("memories_hash" in str(row) for row in plan), plan


async def test_a_big_batch_is_looked_up_before_embedding(harness: HarnessFactory) -> None:
    """Re-ingesting a file embeds nothing: duplicates are found before the embedder."""
    h = harness(EXACT)
    texts = [f"line {i} of the exported chat" for i in range(40)]
    await h.retain("b", *texts)
    embedded: list[str] = []
    original = h.embedder.embed

    async def spy(texts: Any, **kw: Any) -> Any:
        embedded.extend(texts)
        return await original(texts, **kw)

    object.__setattr__(h.embedder, "embed", spy)
    again = await h.retain("b", *texts, "one new line")
    assert [r.deduplicated for r in again.results] == [True] * 40 + [False]
    assert embedded == ["one new line"]


async def test_an_original_forgotten_mid_retain_is_stored_again(harness: HarnessFactory) -> None:
    """The first look found a duplicate, but its original was forgotten before the
    write slot: the item is embedded after all and stored, not pointed at a ghost."""
    h = harness(EXACT)
    [original] = (await h.retain("b", "the original fact")).results[0].memory_ids
    real_embed = h.embedder.embed

    async def forget_during_embedding(texts: Any, **kw: Any) -> Any:
        if await h.stores.documents.get("b", [original]):
            await h.stores.delete("b", [original])
            h.engine.note_write("b")  # what the facade's forget does
        return await real_embed(texts, **kw)

    object.__setattr__(h.embedder, "embed", forget_during_embedding)
    batch = await h.retain("b", "the original fact", *(f"new fact {i}" for i in range(20)))
    first = batch.results[0]
    assert not first.deduplicated and first.memory_ids != [original]
    assert await h.stores.documents.count("b") == 21
    [stored] = await h.stores.documents.get("b", first.memory_ids)
    assert stored.text == "the original fact"


def test_a_store_without_the_hash_lookup_is_a_config_error() -> None:
    from astrocyte import ConfigError
    from astrocyte.config.policy_schema import DedupConfig
    from astrocyte.policy.dedup import Deduplicator

    class OldStore:
        pass

    with pytest.raises(ConfigError) as err:
        Deduplicator(DedupConfig(exact=True), OldStore(), None)  # type: ignore[arg-type]
    assert err.value.key == "policy.dedup.exact"
    assert not Deduplicator(DedupConfig(), OldStore(), None).active  # type: ignore[arg-type]
