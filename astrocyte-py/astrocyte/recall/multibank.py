"""How a recall over several banks combines them.

``parallel`` (the default) is the engine's own behaviour: every bank is searched at
once and the per-bank rankings are fused with RRF (see :mod:`astrocyte.recall.engine`).
The two ordered strategies live here:

* ``cascade`` searches the banks one after another, in the order the caller gave, and
  stops as soon as ``need`` hits scoring at least ``min_score`` have been found. Hits
  keep bank order: every hit of an earlier bank ranks above any hit of a later one,
  which is the point of ordering the banks (e.g. the team's curated bank before the
  whole company's wiki).
* ``first_match`` returns the qualifying hits of the first bank that has any.

Both search a bank only when the earlier ones fell short, so a well-stocked first
bank costs one bank's latency instead of all of them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from astrocyte.errors import ValidationError
from astrocyte.recall.engine import RankedCandidates, RecallEngine, RecallHints
from astrocyte.spi import RecordFilter
from astrocyte.types import MultiBankStrategy

__all__ = ["STRATEGIES", "OrderedRecall", "check_min_score", "check_strategy", "recall_in_order"]

#: The multi-bank strategies, as accepted by ``recall(strategy=...)``.
STRATEGIES: tuple[MultiBankStrategy, ...] = ("parallel", "cascade", "first_match")


def check_strategy(value: object) -> MultiBankStrategy:
    """``value`` as a multi-bank strategy, or a :class:`ValidationError` naming it."""
    for name in STRATEGIES:
        if value == name:
            return name
    raise ValidationError(
        "strategy", f"unknown multi-bank strategy {value!r}", fix=f"use one of {list(STRATEGIES)}"
    )


def check_min_score(value: object) -> float:
    """``value`` as a finite score >= 0, or a :class:`ValidationError`."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValidationError("min_score", "must be a finite number", fix="e.g. min_score=0.02")
    if value < 0:
        raise ValidationError("min_score", "must be >= 0")
    return float(value)


@dataclass(slots=True)
class OrderedRecall:
    """The candidates of an ordered recall and the banks (storage ids) it searched."""

    ranked: RankedCandidates
    searched: list[str]


async def recall_in_order(
    engine: RecallEngine,
    query: str,
    bank_ids: Sequence[str],
    where: RecordFilter | None,
    *,
    strategy: MultiBankStrategy,
    min_score: float,
    need: int,
    candidates: int,
    hints_for: Callable[[str], RecallHints],
) -> OrderedRecall:
    """Search ``bank_ids`` one by one for ``cascade`` or ``first_match``.

    ``hints_for(bank_id)`` gives each bank its own hints (its proxy sources). Only
    candidates scoring at least ``min_score`` are kept.
    """
    if strategy == "parallel":
        raise ValueError("parallel recall is the engine's own; call RecallEngine.recall")
    kept: RankedCandidates = RankedCandidates(candidates=[])
    searched: list[str] = []
    for bank_id in bank_ids:
        ranked = await engine.recall(
            query, [bank_id], where, need=need, candidates=candidates, hints=hints_for(bank_id)
        )
        searched.append(bank_id)
        good = [c for c in ranked.candidates if c.score >= min_score]
        kept.traces.extend(ranked.traces)
        kept.proxies.extend(ranked.proxies)
        # Candidates the searched banks' strategies found, before min_score and budget.
        kept.total += ranked.total
        kept.candidates.extend(good)
        # More could exist in a searched bank only if the engine stopped short there.
        kept.exhausted = kept.exhausted and ranked.exhausted
        if strategy == "first_match" and good:
            break
        if strategy == "cascade" and len(kept.candidates) >= need:
            break
    if len(searched) < len(bank_ids):
        kept.exhausted = False
    return OrderedRecall(kept, searched)
