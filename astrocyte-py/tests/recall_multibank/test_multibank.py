"""Multi-bank recall: parallel fusion, cascade and first_match, through the facade."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from astrocyte import AccessDenied, Astrocyte, AstrocyteContext, ValidationError, load_config
from astrocyte.embedders import HashingEmbedder

FACTS = {
    "team": [
        "The deploy window for the payments service is Tuesday morning.",
        "Payments service deploys need a second reviewer.",
    ],
    "company": [
        "Company policy: deploy windows are agreed with the on-call lead.",
        "The payments service is owned by the checkout team.",
        "Deploy freezes apply in the last week of December.",
    ],
    "empty-ish": ["The office plants are watered on Mondays."],
}
QUERY = "payments service deploy window"


def _config(**recall: Any) -> Any:
    sections: dict[str, Any] = {"storage": {"backend": "memory"}}
    if recall:
        sections["recall"] = recall
    return load_config(sections)


@pytest.fixture
async def brain() -> AsyncIterator[Astrocyte]:
    async with Astrocyte(_config(), embedder=HashingEmbedder()) as b:
        for bank, texts in FACTS.items():
            await b.retain_many([{"content": t} for t in texts], bank)
        yield b


async def test_parallel_fuses_every_bank_and_labels_hits(brain: Astrocyte) -> None:
    result = await brain.recall(QUERY, banks=["team", "company"], max_results=10)
    banks = {h.provenance.bank_id for h in result.hits}
    assert banks == {"team", "company"}
    texts = {h.text for h in result.hits}
    assert set(FACTS["team"]) <= texts
    assert result.multi_bank is not None
    assert result.multi_bank.strategy == "parallel"
    assert result.multi_bank.searched == ["team", "company"]
    assert result.multi_bank.not_searched == []
    # Both banks ran their strategies.
    assert {t.bank_id for t in result.strategies} == {"team", "company"}


async def test_cascade_stops_once_the_first_bank_gives_enough(brain: Astrocyte) -> None:
    result = await brain.recall(QUERY, banks=["team", "company"], max_results=2, strategy="cascade")
    assert [h.provenance.bank_id for h in result.hits] == ["team", "team"]
    assert result.multi_bank is not None
    assert result.multi_bank.searched == ["team"]
    assert result.multi_bank.not_searched == ["company"]
    # The second bank was never searched: no strategy trace names it.
    assert {t.bank_id for t in result.strategies} == {"team"}
    assert result.truncated  # more may exist in the bank not searched


async def test_cascade_moves_on_when_short_and_keeps_bank_order(brain: Astrocyte) -> None:
    result = await brain.recall(QUERY, banks=["team", "company"], max_results=4, strategy="cascade")
    banks = [h.provenance.bank_id for h in result.hits]
    assert banks[:2] == ["team", "team"] and set(banks[2:]) == {"company"}
    assert len(banks) == 4
    assert result.multi_bank is not None and result.multi_bank.searched == ["team", "company"]


async def test_cascade_min_score_counts_only_strong_hits(brain: Astrocyte) -> None:
    # Ordered strategies keep each bank's own fused scores (parallel re-fuses across
    # banks, a different scale), so the reference scores come from a cascade too.
    every = await brain.recall(QUERY, banks=["team", "company"], max_results=10, strategy="cascade")
    top = max(h.score for h in every.hits)
    # Nothing reaches a threshold above the best score: every bank is searched, none kept.
    result = await brain.recall(
        QUERY, banks=["team", "company"], strategy="cascade", min_score=top * 2
    )
    assert result.hits == []
    assert result.multi_bank is not None
    assert result.multi_bank.searched == ["team", "company"]
    assert result.multi_bank.min_score == pytest.approx(top * 2)
    # A threshold between scores keeps exactly the hits at or above it.
    mid = sorted(h.score for h in every.hits)[len(every.hits) // 2]
    kept = await brain.recall(
        QUERY, banks=["team", "company"], strategy="cascade", min_score=mid, max_results=10
    )
    assert kept.hits and all(h.score >= mid for h in kept.hits)


async def test_first_match_returns_only_the_first_bank_with_hits(brain: Astrocyte) -> None:
    # "team" has nothing tagged ops, so the first bank with a hit is "company".
    await brain.retain(
        "Ops runbook: payments deploy window rollback steps.", "company", tags=["ops"]
    )
    result = await brain.recall(
        QUERY, banks=["team", "company"], strategy="first_match", tags=["ops"]
    )
    assert [h.provenance.bank_id for h in result.hits] == ["company"]
    assert result.multi_bank is not None
    assert result.multi_bank.searched == ["team", "company"]
    first = await brain.recall(QUERY, banks=["team", "company"], strategy="first_match")
    assert {h.provenance.bank_id for h in first.hits} == {"team"}
    assert first.multi_bank is not None and first.multi_bank.not_searched == ["company"]


async def test_config_sets_the_default_strategy() -> None:
    async with Astrocyte(
        _config(multi_bank={"strategy": "first_match"}), embedder=HashingEmbedder()
    ) as b:
        for bank, texts in FACTS.items():
            await b.retain_many([{"content": t} for t in texts], bank)
        result = await b.recall(QUERY, banks=["team", "company"])
        assert result.multi_bank is not None and result.multi_bank.strategy == "first_match"
        assert {h.provenance.bank_id for h in result.hits} == {"team"}
        # The call overrides the config.
        both = await b.recall(QUERY, banks=["team", "company"], strategy="parallel")
        assert {h.provenance.bank_id for h in both.hits} == {"team", "company"}


async def test_unreadable_banks_are_skipped_and_reported() -> None:
    config = load_config(
        {
            "storage": {"backend": "memory"},
            "access_grants": [
                {"principals": ["admin"], "banks": ["*"], "permissions": ["admin"]},
                {"principals": ["user:ana"], "banks": ["team", "company"], "permissions": ["read"]},
            ],
        }
    )
    admin = AstrocyteContext(principal="admin")
    ana = AstrocyteContext(principal="user:ana")
    async with Astrocyte(config, embedder=HashingEmbedder()) as b:
        for bank, texts in FACTS.items():
            await b.retain_many([{"content": t} for t in texts], bank, context=admin)
        await b.retain("Secret payments deploy window notes.", "secret", context=admin)
        result = await b.recall(
            QUERY, banks=["secret", "team", "company"], strategy="cascade", context=ana
        )
        assert result.skipped_banks == ["secret"]
        assert "secret" not in {h.provenance.bank_id for h in result.hits}
        assert result.multi_bank is not None and "secret" not in result.multi_bank.searched
        with pytest.raises(AccessDenied):
            await b.recall(QUERY, banks=["secret"], strategy="cascade", context=ana)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"strategy": "round_robin"}, "strategy"),
        ({"strategy": 3}, "strategy"),
        ({"strategy": "cascade", "min_score": -0.1}, "min_score"),
        ({"strategy": "cascade", "min_score": math.nan}, "min_score"),
        ({"strategy": "cascade", "min_score": True}, "min_score"),
        ({"strategy": "cascade", "min_score": "high"}, "min_score"),
        ({"strategy": "cascade", "external_context": ["a passage"]}, "external_context"),
    ],
)
async def test_bad_arguments_name_the_field(
    brain: Astrocyte, kwargs: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as info:
        await brain.recall(QUERY, banks=["team", "company"], **kwargs)
    assert info.value.field == field


async def test_one_bank_results_carry_no_multi_bank_report(brain: Astrocyte) -> None:
    result = await brain.recall(QUERY, "team", strategy="cascade")
    assert result.multi_bank is None
    assert "multi_bank" not in json.loads(result.model_dump_json())
    # A strategy changes nothing for one bank: same hits as the default.
    plain = await brain.recall(QUERY, "team")
    assert [h.memory_id for h in result.hits] == [h.memory_id for h in plain.hits]


async def test_reflect_accepts_the_strategy(brain: Astrocyte) -> None:
    result = await brain.reflect(QUERY, banks=["team", "company"], strategy="first_match")
    assert {c.bank_id for c in result.citations} == {"team"}


# --- properties over random bank contents ---------------------------------------------

WORDS = ["deploy", "window", "payments", "review", "freeze", "owner", "plants", "lunch"]
bank_texts = st.lists(
    st.lists(st.sampled_from(WORDS), min_size=2, max_size=5).map(" ".join),
    min_size=0,
    max_size=4,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    contents=st.lists(bank_texts, min_size=2, max_size=4),
    max_results=st.integers(min_value=1, max_value=6),
    mode=st.sampled_from(["cascade", "first_match"]),
)
def test_ordered_strategies_keep_bank_order(
    contents: list[list[str]], max_results: int, mode: str
) -> None:
    async def run() -> None:
        async with Astrocyte(_config(), embedder=HashingEmbedder()) as b:
            names = [f"b{i}" for i in range(len(contents))]
            for name, texts in zip(names, contents, strict=True):
                await b.create_bank(name)
                if texts:
                    await b.retain_many([{"content": t} for t in texts], name)
            result = await b.recall(
                "deploy window payments", banks=names, strategy=mode, max_results=max_results
            )
            order = [names.index(h.provenance.bank_id) for h in result.hits]
            assert order == sorted(order), "hits of an earlier bank come first"
            assert len(result.hits) <= max_results
            report = result.multi_bank
            assert report is not None
            assert report.searched == names[: len(report.searched)]
            assert report.searched + report.not_searched == names
            if mode == "first_match":
                assert len(set(order)) <= 1
                if result.hits:
                    # The bank that answered is the last one searched.
                    assert names[order[0]] == report.searched[-1]
            elif report.not_searched:
                assert len(result.hits) == max_results

    asyncio.run(run())
