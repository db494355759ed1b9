"""Retain with an idempotency key: a replay stores nothing, even when concurrent."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from astrocyte import Astrocyte, ValidationError, load_config
from astrocyte.embedders import HashingEmbedder


async def _count(brain: Astrocyte, bank: str) -> int:
    return sum(b.memory_count for b in await brain.list_banks() if b.bank_id == bank)


async def test_replay_returns_the_stored_memories(brain: Astrocyte) -> None:
    first = await brain.retain("Order 1042 shipped on Monday.", "orders", idempotency_key="o/1042")
    again = await brain.retain("Order 1042 shipped on Monday.", "orders", idempotency_key="o/1042")
    assert not first.deduplicated and again.deduplicated
    assert again.memory_ids == first.memory_ids and again.source_id == first.source_id
    assert await _count(brain, "orders") == len(first.memory_ids)
    # A replay with other content is still a replay: the key identifies the message.
    edited = await brain.retain(
        "Order 1042 shipped on Tuesday.", "orders", idempotency_key="o/1042"
    )
    assert edited.deduplicated and edited.memory_ids == first.memory_ids
    hits = (await brain.recall("order 1042 shipped", "orders")).hits
    assert [h.text for h in hits] == ["Order 1042 shipped on Monday."]


async def test_batch_with_repeated_and_stored_keys(brain: Astrocyte) -> None:
    await brain.retain("alpha event", "log", idempotency_key="k1")
    batch = await brain.retain_many(
        [
            {"content": "alpha event", "idempotency_key": "k1"},  # stored before
            {"content": "beta event", "idempotency_key": "k2"},
            {"content": "beta event again", "idempotency_key": "k2"},  # same batch
            {"content": "no key event"},
        ],
        "log",
    )
    flags = [r.deduplicated for r in batch.results]
    assert flags == [True, False, True, False]
    assert batch.results[2].memory_ids == batch.results[1].memory_ids
    assert batch.memory_count == 2
    assert await _count(brain, "log") == 3


async def test_keys_are_per_bank_and_forget_releases_them(brain: Astrocyte) -> None:
    a = await brain.retain("shared text", "bank-a", idempotency_key="same")
    b = await brain.retain("shared text", "bank-b", idempotency_key="same")
    assert not b.deduplicated and set(a.memory_ids).isdisjoint(b.memory_ids)
    await brain.forget("bank-a", memory_ids=a.memory_ids)
    back = await brain.retain("shared text", "bank-a", idempotency_key="same")
    assert not back.deduplicated and back.memory_ids == a.memory_ids


async def test_concurrent_replays_store_one_set(brain: Astrocyte) -> None:
    results = await asyncio.gather(
        *(brain.retain(f"delivery {i % 2}", "inbox", idempotency_key="msg-7") for i in range(8))
    )
    assert len({tuple(r.memory_ids) for r in results}) == 1
    assert sum(not r.deduplicated for r in results) == 1
    assert await _count(brain, "inbox") == len(results[0].memory_ids)


async def test_two_instances_on_one_file_write_one_set(tmp_path: Path) -> None:
    """Two processes' worth of engines (no shared locks) racing on one embedded file."""
    config = load_config({"storage": {"backend": "embedded", "path": str(tmp_path / "s.db")}})
    async with (
        Astrocyte(config, embedder=HashingEmbedder()) as one,
        Astrocyte(config, embedder=HashingEmbedder()) as two,
    ):
        await one.create_bank("q")
        text = "A long message. " * 200  # several chunks
        results = await asyncio.gather(
            *(b.retain(text, "q", idempotency_key="p0/o99") for b in (one, two, one, two))
        )
        ids = {tuple(r.memory_ids) for r in results}
        assert len(ids) == 1 and len(next(iter(ids))) > 1
        assert await _count(one, "q") == len(results[0].memory_ids)


@pytest.mark.parametrize("key", ["", "   ", 7, "x" * 513])
async def test_bad_keys_are_rejected(brain: Astrocyte, key: object) -> None:
    with pytest.raises(ValidationError) as info:
        await brain.retain("text", "b", idempotency_key=key)  # type: ignore[arg-type]
    assert info.value.field == "idempotency_key"
    with pytest.raises(ValidationError) as batch:
        await brain.retain_many([{"content": "ok"}, {"content": "x", "idempotency_key": key}], "b")
    assert batch.value.field == "items[1].idempotency_key"
    assert await _count(brain, "b") == 0


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    batches=st.lists(
        st.lists(st.integers(min_value=0, max_value=6), min_size=1, max_size=6),
        min_size=1,
        max_size=5,
    )
)
def test_every_key_is_stored_exactly_once(batches: list[list[int]]) -> None:
    """Any interleaving of batches with repeated keys stores each key's message once."""

    async def run() -> None:
        config = load_config({"storage": {"backend": "memory"}})
        async with Astrocyte(config, embedder=HashingEmbedder()) as brain:
            first_ids: dict[int, list[str]] = {}
            for batch in batches:
                result = await brain.retain_many(
                    [{"content": f"message number {k}", "idempotency_key": f"k{k}"} for k in batch],
                    "p",
                )
                for k, r in zip(batch, result.results, strict=True):
                    assert r.memory_ids == first_ids.setdefault(k, r.memory_ids)
            keys = {k for batch in batches for k in batch}
            assert await _count(brain, "p") == len(keys)

    asyncio.run(run())
