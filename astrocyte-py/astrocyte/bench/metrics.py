"""Ranking metrics for retrieval benchmarks, as pure functions.

Every metric takes ``retrieved``, the ids a retriever returned **best first and already
deduplicated** (see :func:`dedupe_preserving_order`), and ``gold``, the set of relevant
ids. Relevance is binary: an id is relevant iff it is in ``gold``. Ids are any hashable
value (turn ids, session ids, ...).

Questions without any gold id cannot be scored by a recall metric (it would be 0/0), so
the metrics raise :class:`ValueError` for an empty ``gold``; benchmark runners skip such
questions and count them instead. A ``k`` below 1 and a ``retrieved`` list with a
repeated id in its top ``k`` are :class:`ValueError` too: a repeated id would let
NDCG exceed 1 and is always a caller bug.

Definitions, with ``top = retrieved[:k]`` (fewer than ``k`` ids is fine: missing
positions count as irrelevant):

* ``recall_at_k = |gold ∩ top| / |gold|``
* ``recall_all_at_k = 1.0 if gold ⊆ top else 0.0``
* ``recall_any_at_k = 1.0 if gold ∩ top ≠ ∅ else 0.0``
* ``reciprocal_rank = 1 / r`` where ``r`` is the 1-based position of the first relevant
  id in ``retrieved`` (the whole list), ``0.0`` if there is none
* ``ndcg_at_k = DCG / IDCG`` with ``DCG = Σ_{i=1..k} rel_i / log2(i + 1)`` and ``IDCG``
  the DCG of the ideal ranking: ``min(|gold|, k)`` relevant ids at the top.

So ``recall_all_at_k <= recall_at_k <= recall_any_at_k`` and every metric is in
``[0, 1]`` and non-decreasing in ``k`` (except NDCG, whose ideal grows with ``k``).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping, Sequence, Set
from dataclasses import dataclass, field
from typing import Any, TypeVar

__all__ = [
    "Summary",
    "dedupe_preserving_order",
    "ndcg_at_k",
    "recall_all_at_k",
    "recall_any_at_k",
    "recall_at_k",
    "reciprocal_rank",
    "summarise",
    "summarise_by_group",
]

H = TypeVar("H", bound=Hashable)


def dedupe_preserving_order(ids: Iterable[H]) -> list[H]:
    """``ids`` with repeats removed, each kept at its first (best) position.

    Retrievers may return several chunks of one turn, or several turns of one session;
    ranked by first appearance, the unit's rank is its best chunk's rank.
    """
    return list(dict.fromkeys(ids))


def _top(retrieved: Sequence[H], gold: Set[H], k: int) -> Sequence[H]:
    if not gold:
        raise ValueError("gold is empty: the metric is undefined; skip the question")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    top = retrieved[:k]
    if len(set(top)) != len(top):
        raise ValueError("retrieved has repeated ids; pass dedupe_preserving_order(ids)")
    return top


def _hits(retrieved: Sequence[H], gold: Set[H], k: int) -> int:
    return sum(1 for item in _top(retrieved, gold, k) if item in gold)


def recall_at_k(retrieved: Sequence[H], gold: Set[H], k: int) -> float:
    """Fraction of the gold ids found in the top ``k``: ``|gold ∩ top| / |gold|``."""
    return _hits(retrieved, gold, k) / len(gold)


def recall_all_at_k(retrieved: Sequence[H], gold: Set[H], k: int) -> float:
    """``1.0`` iff every gold id is in the top ``k``, else ``0.0``."""
    return 1.0 if _hits(retrieved, gold, k) == len(gold) else 0.0


def recall_any_at_k(retrieved: Sequence[H], gold: Set[H], k: int) -> float:
    """``1.0`` iff at least one gold id is in the top ``k``, else ``0.0``."""
    return 1.0 if _hits(retrieved, gold, k) > 0 else 0.0


def reciprocal_rank(retrieved: Sequence[H], gold: Set[H]) -> float:
    """``1 / r`` for the 1-based rank ``r`` of the first gold id, ``0.0`` if none.

    The whole of ``retrieved`` is searched; truncate it first for MRR@k.
    """
    top = _top(retrieved, gold, max(len(retrieved), 1))
    for rank, item in enumerate(top, start=1):
        if item in gold:
            return 1.0 / rank
    return 0.0


def ndcg_at_k(retrieved: Sequence[H], gold: Set[H], k: int) -> float:
    """Normalised discounted cumulative gain at ``k`` with binary relevance.

    ``DCG = Σ_{i=1..k} rel_i / log2(i + 1)``; the ideal DCG puts ``min(|gold|, k)``
    relevant ids at the top, so a perfect ranking scores 1.0 even when there are more
    gold ids than ``k``.
    """
    top = _top(retrieved, gold, k)
    dcg = sum(1.0 / math.log2(i + 2) for i, item in enumerate(top) if item in gold)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(gold), k)))
    return dcg / ideal


@dataclass(frozen=True, slots=True)
class Summary:
    """Means of per-question metrics over a group of questions.

    ``count`` is the number of questions; ``means[name]`` averages the metric over the
    questions that have it, and ``support[name]`` says how many those were (a metric
    may be defined for only some questions, e.g. turn recall needs gold turns).
    """

    count: int
    means: dict[str, float] = field(default_factory=dict)
    support: dict[str, int] = field(default_factory=dict)

    def to_json(self, digits: int = 6) -> dict[str, Any]:
        """JSON form: ``count``, rounded ``metrics``, and ``support`` for the metrics
        not defined on every question of the group."""
        out: dict[str, Any] = {
            "count": self.count,
            "metrics": {name: round(value, digits) for name, value in self.means.items()},
        }
        partial = {name: n for name, n in self.support.items() if n != self.count}
        if partial:
            out["support"] = partial
        return out


def summarise(rows: Iterable[Mapping[str, float]]) -> Summary:
    """Mean of each metric over the rows (questions) that have it.

    Metric order follows first appearance, so reports list metrics as runners emit them.
    """
    totals: dict[str, float] = {}
    support: dict[str, int] = {}
    count = 0
    for row in rows:
        count += 1
        for name, value in row.items():
            totals[name] = totals.get(name, 0.0) + value
            support[name] = support.get(name, 0) + 1
    means = {name: totals[name] / support[name] for name in totals}
    return Summary(count=count, means=means, support=support)


def summarise_by_group(rows: Iterable[tuple[str, Mapping[str, float]]]) -> dict[str, Summary]:
    """:func:`summarise` per group (question category or type), groups in order of
    first appearance."""
    grouped: dict[str, list[Mapping[str, float]]] = {}
    for group, row in rows:
        grouped.setdefault(group, []).append(row)
    return {group: summarise(members) for group, members in grouped.items()}
