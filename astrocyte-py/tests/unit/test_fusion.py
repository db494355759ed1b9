"""Weighted RRF: hand-computed cases and properties."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from astrocyte.recall.budget import apply_budget, estimate_tokens
from astrocyte.recall.fusion import weighted_rrf


def test_hand_computed_scores_and_ranks() -> None:
    fused = weighted_rrf(
        {"semantic": ["a", "b", "c"], "keyword": ["b", "d"]},
        {"semantic": 1.0, "keyword": 2.0},
        k=60,
    )
    scores = {f.id: f.score for f in fused}
    assert scores["a"] == pytest.approx(1 / 61)
    assert scores["b"] == pytest.approx(1 / 62 + 2 / 61)
    assert scores["c"] == pytest.approx(1 / 63)
    assert scores["d"] == pytest.approx(2 / 62)
    assert [f.id for f in fused] == ["b", "d", "a", "c"]
    assert fused[0].ranks == {"semantic": 2, "keyword": 1}


def test_zero_weight_keeps_ranks_but_not_order() -> None:
    fused = weighted_rrf({"x": ["a", "b"], "y": ["b"]}, {"y": 0.0})
    assert [f.id for f in fused] == ["a", "b"]
    assert fused[1].ranks == {"x": 2, "y": 1}


def test_duplicates_within_a_ranking_count_once() -> None:
    fused = weighted_rrf({"x": ["a", "a", "b"]})
    assert {f.id: f.ranks["x"] for f in fused} == {"a": 1, "b": 2}


def test_k_must_be_positive() -> None:
    with pytest.raises(ValueError):
        weighted_rrf({"x": ["a"]}, k=0)


rankings = st.dictionaries(
    st.sampled_from(["semantic", "keyword", "graph", "temporal"]),
    st.lists(st.sampled_from(list("abcdefghij")), max_size=10, unique=True),
    max_size=4,
)


@settings(max_examples=200, deadline=None)
@given(rankings=rankings, k=st.integers(1, 100))
def test_fusion_properties(rankings: dict[str, list[str]], k: int) -> None:
    fused = weighted_rrf(rankings, k=k)
    ids = [f.id for f in fused]
    assert len(ids) == len(set(ids)) == len({i for r in rankings.values() for i in r})
    assert all(a.score >= b.score for a, b in itertools.pairwise(fused))
    for f in fused:
        for name, rank in f.ranks.items():
            assert rankings[name][rank - 1] == f.id
    # Deterministic regardless of dict order.
    reversed_input = dict(reversed(list(rankings.items())))
    assert [f.id for f in weighted_rrf(reversed_input, k=k)] == ids


@settings(max_examples=100, deadline=None)
@given(rankings=rankings)
def test_a_single_ranking_is_preserved(rankings: dict[str, list[str]]) -> None:
    for name, ids in rankings.items():
        assert [f.id for f in weighted_rrf({name: ids})] == ids


def test_memory_first_in_every_strategy_wins() -> None:
    fused = weighted_rrf({"s": ["x", "y"], "k": ["x", "z"], "g": ["x"]})
    assert fused[0].id == "x"


def test_budget_cuts_at_results_and_tokens_in_rank_order() -> None:
    texts = ["a" * 40, "b" * 400, "c" * 4]
    kept, used, truncated = apply_budget(texts, str, max_results=10, max_tokens=50)
    assert kept == ["a" * 40] and used == 10 and truncated
    kept, used, truncated = apply_budget(texts, str, max_results=2)
    assert kept == texts[:2] and truncated
    kept, used, truncated = apply_budget(texts, str, max_results=3)
    assert kept == texts and not truncated and used == sum(estimate_tokens(t) for t in texts)


@given(st.text(max_size=200))
def test_token_estimate_is_positive_and_monotone(text: str) -> None:
    assert estimate_tokens(text) >= 1
    assert estimate_tokens(text + "abcd") >= estimate_tokens(text)
