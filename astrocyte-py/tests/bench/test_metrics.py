"""Ranking metrics: hand-computed cases, edge cases, and properties that must always hold."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from astrocyte.bench.metrics import (
    dedupe_preserving_order,
    ndcg_at_k,
    recall_all_at_k,
    recall_any_at_k,
    recall_at_k,
    reciprocal_rank,
    summarise,
    summarise_by_group,
)

RANKED = ["a", "b", "c", "d"]
GOLD = frozenset({"b", "d", "x"})  # "x" is never retrieved


def test_recall_at_k_is_the_fraction_of_gold_in_the_top_k() -> None:
    assert recall_at_k(RANKED, GOLD, 1) == 0.0
    assert recall_at_k(RANKED, GOLD, 2) == pytest.approx(1 / 3)
    assert recall_at_k(RANKED, GOLD, 4) == pytest.approx(2 / 3)
    # k beyond the list: missing positions are simply irrelevant.
    assert recall_at_k(RANKED, GOLD, 100) == pytest.approx(2 / 3)


def test_recall_all_needs_every_gold_id() -> None:
    assert recall_all_at_k(RANKED, GOLD, 4) == 0.0
    assert recall_all_at_k(RANKED, frozenset({"b", "d"}), 4) == 1.0
    assert recall_all_at_k(RANKED, frozenset({"b", "d"}), 3) == 0.0


def test_recall_any_needs_one_gold_id() -> None:
    assert recall_any_at_k(RANKED, GOLD, 1) == 0.0
    assert recall_any_at_k(RANKED, GOLD, 2) == 1.0


def test_reciprocal_rank_is_one_over_the_first_relevant_position() -> None:
    assert reciprocal_rank(RANKED, GOLD) == 0.5
    assert reciprocal_rank(RANKED, frozenset({"a"})) == 1.0
    assert reciprocal_rank(RANKED, frozenset({"d"})) == 0.25
    assert reciprocal_rank(RANKED, frozenset({"zz"})) == 0.0


def test_ndcg_by_hand() -> None:
    # DCG@4 = 1/log2(3) + 1/log2(5); ideal: min(3, 4) = 3 relevant at the top.
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    ideal = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert ndcg_at_k(RANKED, GOLD, 4) == pytest.approx(dcg / ideal)
    assert ndcg_at_k(RANKED, GOLD, 4) == pytest.approx(0.498189, abs=1e-6)
    # At k=2 the ideal holds only 2 relevant ids.
    assert ndcg_at_k(RANKED, GOLD, 2) == pytest.approx((1 / math.log2(3)) / (1 + 1 / math.log2(3)))
    assert ndcg_at_k(RANKED, GOLD, 1) == 0.0


def test_ndcg_is_one_for_a_perfect_ranking_even_with_more_gold_than_k() -> None:
    assert ndcg_at_k(["x", "y"], frozenset({"x", "y"}), 5) == 1.0
    assert ndcg_at_k(["a", "b"], frozenset({"a", "b", "c"}), 2) == 1.0
    assert recall_at_k(["a", "b"], frozenset({"a", "b", "c"}), 2) == pytest.approx(2 / 3)


def test_nothing_retrieved_scores_zero() -> None:
    gold = frozenset({"a"})
    assert recall_at_k([], gold, 5) == 0.0
    assert recall_all_at_k([], gold, 5) == 0.0
    assert recall_any_at_k([], gold, 5) == 0.0
    assert reciprocal_rank([], gold) == 0.0
    assert ndcg_at_k([], gold, 5) == 0.0


def test_ids_may_be_any_hashable() -> None:
    assert recall_at_k([3, 1, 2], frozenset({2}), 3) == 1.0
    assert reciprocal_rank([("s", 1), ("s", 2)], frozenset({("s", 2)})) == 0.5


@pytest.mark.parametrize(
    "metric",
    [
        lambda r, g: recall_at_k(r, g, 3),
        lambda r, g: recall_all_at_k(r, g, 3),
        lambda r, g: recall_any_at_k(r, g, 3),
        lambda r, g: ndcg_at_k(r, g, 3),
        reciprocal_rank,
    ],
)
def test_empty_gold_is_refused(metric: object) -> None:
    with pytest.raises(ValueError, match="gold is empty"):
        metric(["a"], frozenset())  # type: ignore[operator]


@pytest.mark.parametrize("k", [0, -1, True, 2.0])
def test_k_must_be_a_positive_integer(k: object) -> None:
    with pytest.raises(ValueError, match="k must be"):
        recall_at_k(["a"], frozenset({"a"}), k)  # type: ignore[arg-type]


def test_repeated_ids_are_refused() -> None:
    with pytest.raises(ValueError, match="repeated"):
        ndcg_at_k(["a", "a"], frozenset({"a"}), 2)
    # Repeats after the cut-off are outside the metric's view.
    assert ndcg_at_k(["a", "b", "a"], frozenset({"a"}), 2) == 1.0


def test_dedupe_keeps_first_positions() -> None:
    assert dedupe_preserving_order(["b", "a", "b", "c", "a"]) == ["b", "a", "c"]
    assert dedupe_preserving_order([]) == []


def test_summarise_means_over_rows_that_have_the_metric() -> None:
    summary = summarise([{"r": 1.0, "t": 0.0}, {"r": 0.0}, {"r": 0.5, "t": 1.0}])
    assert summary.count == 3
    assert summary.means == {"r": 0.5, "t": 0.5}
    assert summary.to_json() == {"count": 3, "metrics": {"r": 0.5, "t": 0.5}, "support": {"t": 2}}
    assert summarise([]).to_json() == {"count": 0, "metrics": {}}


def test_summarise_by_group_keeps_first_appearance_order() -> None:
    groups = summarise_by_group([("b", {"m": 1.0}), ("a", {"m": 0.0}), ("b", {"m": 0.0})])
    assert list(groups) == ["b", "a"]
    assert groups["b"].count == 2
    assert groups["b"].means["m"] == 0.5


ids = st.integers(min_value=0, max_value=15)
rankings = st.lists(ids, unique=True, max_size=16)
golds = st.frozensets(ids, min_size=1, max_size=8)
ks = st.integers(min_value=1, max_value=20)


@given(rankings, golds, ks)
def test_metrics_are_bounded_and_ordered(
    retrieved: list[int], gold: frozenset[int], k: int
) -> None:
    values = [
        recall_at_k(retrieved, gold, k),
        recall_all_at_k(retrieved, gold, k),
        recall_any_at_k(retrieved, gold, k),
        ndcg_at_k(retrieved, gold, k),
        reciprocal_rank(retrieved, gold),
    ]
    assert all(0.0 <= v <= 1.0 + 1e-12 for v in values)
    assert (
        recall_all_at_k(retrieved, gold, k)
        <= recall_at_k(retrieved, gold, k)
        <= recall_any_at_k(retrieved, gold, k)
    )


@given(rankings, golds, ks)
def test_recall_metrics_never_drop_when_k_grows(
    retrieved: list[int], gold: frozenset[int], k: int
) -> None:
    for metric in (recall_at_k, recall_all_at_k, recall_any_at_k):
        assert metric(retrieved, gold, k) <= metric(retrieved, gold, k + 1)


@given(rankings, golds, ks)
def test_recall_any_agrees_with_reciprocal_rank(
    retrieved: list[int], gold: frozenset[int], k: int
) -> None:
    rr = reciprocal_rank(retrieved, gold)
    found = rr > 0 and round(1 / rr) <= k
    assert recall_any_at_k(retrieved, gold, k) == (1.0 if found else 0.0)


@given(rankings, golds, ks)
def test_ndcg_is_one_exactly_when_the_top_is_ideal(
    retrieved: list[int], gold: frozenset[int], k: int
) -> None:
    ideal_hits = min(len(gold), k)
    top_is_ideal = all(item in gold for item in retrieved[:ideal_hits]) and (
        len(retrieved) >= ideal_hits
    )
    assert (ndcg_at_k(retrieved, gold, k) == pytest.approx(1.0)) == top_is_ideal
