"""Weighted Reciprocal Rank Fusion — the one place where strategy rankings are merged.

For each memory ``d``: ``score(d) = Σ_s weight_s / (k + rank_s(d))`` over the strategies
``s`` that returned it, with 1-based ranks. RRF needs no score calibration between
strategies (BM25 scores and cosines are not comparable), only their orders.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(slots=True)
class Fused:
    """A fused candidate: its id, RRF score and 1-based rank in each strategy."""

    id: str
    score: float
    ranks: dict[str, int] = field(default_factory=dict)
    _parts: list[float] = field(default_factory=list, repr=False)


def weighted_rrf(
    rankings: Mapping[str, Sequence[str]],
    weights: Mapping[str, float] | None = None,
    *,
    k: int = 60,
) -> list[Fused]:
    """Fuse ranked id lists into one ranking.

    ``rankings`` maps a strategy name to ids best-first (duplicates after the first
    occurrence are ignored). A strategy missing from ``weights`` has weight 1.0; weight
    0 keeps its ranks visible on the result without affecting the order.

    Ties are broken by the best single rank, then by the number of strategies that
    found the memory, then by id — so the output is deterministic.
    """
    if k < 1:
        raise ValueError("k must be >= 1")
    weights = weights or {}
    fused: dict[str, Fused] = {}
    for strategy, ids in rankings.items():
        weight = weights.get(strategy, 1.0)
        rank = 0
        seen: set[str] = set()
        for memory_id in ids:
            if memory_id in seen:
                continue
            seen.add(memory_id)
            rank += 1
            entry = fused.get(memory_id)
            if entry is None:
                entry = fused[memory_id] = Fused(memory_id, 0.0)
            entry._parts.append(weight / (k + rank))
            entry.ranks[strategy] = rank
    for entry in fused.values():
        # fsum is correctly rounded, so equal sums compare equal whatever the order
        # the strategies were listed in — fusion must not depend on dict order.
        entry.score = math.fsum(entry._parts)
    return sorted(
        fused.values(),
        key=lambda f: (-f.score, min(f.ranks.values()), -len(f.ranks), f.id),
    )
