"""The Astrocyte facade end to end on both built-in stores."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from astrocyte import (
    Astrocyte,
    AstrocyteContext,
    BankNotFound,
    RetainItem,
    TimeRange,
    ValidationError,
)


async def test_retain_then_recall_returns_hit_with_full_provenance(brain: Astrocyte) -> None:
    when = datetime(2024, 3, 2, 18, 0, tzinfo=UTC)
    retained = await brain.retain(
        "Maya signed the lease on a flat in Porto.",
        "maya",
        metadata={"session_id": 1, "turn_id": "S1:1", "speaker": "Maya", "ok": True},
        tags=["home", "personal"],
        occurred_at=when,
        source="S1:1",
    )
    assert retained.source_id == "S1:1" and len(retained.memory_ids) == 1
    result = await brain.recall("lease flat Porto", "maya")
    hit = result.hits[0]
    assert hit.memory_id == retained.memory_ids[0]
    assert hit.text == "Maya signed the lease on a flat in Porto."
    p = hit.provenance
    assert (p.bank_id, p.source_id, p.chunk_index) == ("maya", "S1:1", 0)
    assert p.metadata == {"session_id": 1, "turn_id": "S1:1", "speaker": "Maya", "ok": True}
    assert p.occurred_at == when and p.tags == ["home", "personal"]
    assert hit.ranks["keyword"] == 1 and hit.ranks["semantic"] == 1
    assert hit.score > 0
    names = {s.name for s in result.strategies}
    assert names == {"semantic", "keyword", "graph", "temporal"}


async def test_long_content_becomes_several_chunks_sharing_a_source(brain: Astrocyte) -> None:
    text = " ".join(f"Sentence number {i} talks about topic {i}." for i in range(120))
    result = await brain.retain(text, "docs")
    assert len(result.memory_ids) > 3
    recalled = await brain.recall("topic 117", "docs", max_results=50)
    chunks = {h.provenance.chunk_index for h in recalled.hits}
    assert {h.provenance.source_id for h in recalled.hits} == {result.source_id}
    assert len(chunks) == len(recalled.hits)


async def test_filters_tags_and_time_range_are_hard_filters(brain: Astrocyte) -> None:
    base = datetime(2024, 1, 1, tzinfo=UTC)
    await brain.retain_many(
        [
            RetainItem(
                content=f"Coffee note {i}",
                tags=["coffee"] if i % 2 else ["tea"],
                occurred_at=base + timedelta(days=i),
                metadata={"n": i},
            )
            for i in range(10)
        ],
        "notes",
    )
    tagged = await brain.recall("coffee note", "notes", tags=["coffee"], max_results=20)
    assert {h.provenance.metadata["n"] for h in tagged.hits} == {1, 3, 5, 7, 9}
    window = TimeRange(start=base + timedelta(days=2), end=base + timedelta(days=5))
    ranged = await brain.recall("coffee note", "notes", time_range=window, max_results=20)
    assert {h.provenance.metadata["n"] for h in ranged.hits} == {2, 3, 4}
    # Temporal strategy runs with a range: newest first.
    assert ranged.hits and all("temporal" in h.ranks for h in ranged.hits)
    filtered = await brain.recall("coffee note", "notes", filters={"n": 4})
    assert [h.provenance.metadata["n"] for h in filtered.hits] == [4]


async def test_max_results_and_max_tokens_cut_in_rank_order(brain: Astrocyte) -> None:
    await brain.retain_many([{"content": f"alpha beta item {i} " * 5} for i in range(20)], "b")
    full = await brain.recall("alpha beta", "b", max_results=20)
    top3 = await brain.recall("alpha beta", "b", max_results=3)
    assert [h.memory_id for h in top3.hits] == [h.memory_id for h in full.hits[:3]]
    assert top3.truncated
    budget = await brain.recall("alpha beta", "b", max_results=20, max_tokens=60)
    assert budget.token_count <= 60 and 0 < len(budget.hits) < 20 and budget.truncated
    assert [h.memory_id for h in budget.hits] == [
        h.memory_id for h in full.hits[: len(budget.hits)]
    ]


async def test_forget_by_ids_tags_filters_and_before_everywhere(brain: Astrocyte) -> None:
    base = datetime(2024, 1, 1, tzinfo=UTC)
    batch = await brain.retain_many(
        [
            {
                "content": f"Alice Smith mentioned project Zephyr {i}",
                "tags": ["t" + str(i % 3)],
                "metadata": {"i": i},
                "occurred_at": base + timedelta(days=i),
            }
            for i in range(9)
        ],
        "f",
    )
    ids = [r.memory_ids[0] for r in batch.results]
    gone = await brain.forget("f", memory_ids=[ids[0], "mem_missing"])
    assert gone.deleted_ids == [ids[0]]
    gone = await brain.forget("f", tags=["t1"])
    assert sorted(gone.deleted_ids) == sorted([ids[1], ids[4], ids[7]])
    gone = await brain.forget("f", filters={"i": 2})
    assert gone.deleted_ids == [ids[2]]
    gone = await brain.forget("f", before=base + timedelta(days=5))
    assert sorted(gone.deleted_ids) == sorted([ids[3]])
    left = {ids[5], ids[6], ids[8]}
    # Nothing forgotten is reachable by any strategy, including graph.
    result = await brain.recall("Alice Smith project Zephyr", "f", max_results=50)
    assert {h.memory_id for h in result.hits} == left
    for strategy in result.strategies:
        assert strategy.error is None
    vec_ids = {
        s.id
        for s in await brain.stores.vectors.search(
            "f", (await brain.embedder.embed(["Alice Smith project Zephyr"]))[0], limit=50
        )
    }
    assert vec_ids == left
    ents = await brain.stores.graph.find_entities("f", ["alice"])
    hits = await brain.stores.graph.neighbourhood("f", [e.id for e in ents], depth=0)
    assert {h.memory_id for h in hits} == left


async def test_forget_needs_a_selector_and_an_existing_bank(brain: Astrocyte) -> None:
    await brain.retain("x marks the spot", "exists")
    with pytest.raises(ValidationError, match="memory_ids"):
        await brain.forget("exists")
    with pytest.raises(BankNotFound):
        await brain.forget("nope", tags=["a"])


async def test_unknown_bank_on_recall_is_a_typed_error(brain: Astrocyte) -> None:
    with pytest.raises(BankNotFound) as err:
        await brain.recall("anything", "never-created")
    assert err.value.field == "bank_id"


async def test_multi_bank_recall_labels_each_hit_with_its_bank(brain: Astrocyte) -> None:
    await brain.retain("Alice likes green tea", "alice")
    await brain.retain("Bob likes black coffee", "bob")
    result = await brain.recall("likes tea coffee", banks=["alice", "bob"])
    assert {h.provenance.bank_id for h in result.hits} == {"alice", "bob"}
    only_alice = await brain.recall("likes tea coffee", "alice")
    assert {h.provenance.bank_id for h in only_alice.hits} == {"alice"}


async def test_banks_are_isolated(brain: Astrocyte) -> None:
    await brain.retain("secret plan for alice", "alice")
    await brain.retain("nothing here", "bob")
    result = await brain.recall("secret plan alice", "bob", max_results=50)
    assert all(h.provenance.bank_id == "bob" for h in result.hits)
    assert all("secret" not in h.text for h in result.hits)


async def test_concurrent_retains_to_one_bank_lose_nothing(brain: Astrocyte) -> None:
    results = await asyncio.gather(
        *(brain.retain(f"concurrent memory number {i}", "busy") for i in range(60))
    )
    banks = {b.bank_id: b.memory_count for b in await brain.list_banks()}
    assert banks["busy"] == 60
    assert len({r.memory_ids[0] for r in results}) == 60


async def test_reflect_without_llm_is_labelled_extractive_and_cites(brain: Astrocyte) -> None:
    await brain.retain("Tomas ran the half marathon in 1:43:10. It was a personal best.", "t")
    await brain.retain("Tomas strained his calf in March.", "t")
    result = await brain.reflect("half marathon time", "t")
    assert result.mode == "extractive"
    assert result.answer.startswith("Extractive answer (no LLM configured)")
    assert "Tomas ran the half marathon in 1:43:10." in result.answer
    assert result.citations and result.citations[0].memory_id == result.evidence[0].memory_id
    # Every quoted line is verbatim text of a cited memory.
    for line in result.answer.splitlines()[1:]:
        quoted = line.split("] ", 1)[1]
        assert any(quoted in c.excerpt for c in result.citations)


async def test_context_must_be_an_astrocyte_context(brain: Astrocyte) -> None:
    ok = await brain.retain("fine", "c", context=AstrocyteContext(principal="user:1"))
    assert ok.memory_ids
    with pytest.raises(ValidationError, match="context"):
        await brain.retain("bad", "c", context="user:1")  # type: ignore[arg-type]


async def test_list_banks_and_health(brain: Astrocyte) -> None:
    await brain.create_bank("empty")
    await brain.retain("one", "full")
    banks = {b.bank_id: b.memory_count for b in await brain.list_banks()}
    assert banks == {"empty": 0, "full": 1}
    health = await brain.health()
    assert health and all(h.ok for h in health.values())


async def test_zero_config_uses_embedded_store_in_home(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("HOME", str(tmp_path))
    from astrocyte.embedders import HashingEmbedder

    async with Astrocyte(embedder=HashingEmbedder()) as b:
        await b.retain("persisted", "p")
    assert (tmp_path / ".astrocyte" / "astrocyte.db").exists()
