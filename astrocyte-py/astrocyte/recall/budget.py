"""Cutting a ranked list to ``max_results`` and ``max_tokens``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


def estimate_tokens(text: str) -> int:
    """Cheap token estimate (~4 characters per token for English with BPE
    tokenisers). Used for budgets only; it never needs a model download."""
    return max(1, (len(text) + 3) // 4)


def apply_budget(
    items: Sequence[T],
    text_of: Callable[[T], str],
    *,
    max_results: int,
    max_tokens: int | None = None,
) -> tuple[list[T], int, bool]:
    """Keep the best items, in order, within both limits.

    Returns ``(kept, tokens_used, truncated)``. Items are taken in rank order and the
    cut happens at the first item that does not fit, so a lower-ranked short item
    never jumps ahead of a higher-ranked long one.
    """
    kept: list[T] = []
    used = 0
    for item in items:
        if len(kept) >= max_results:
            return kept, used, True
        cost = estimate_tokens(text_of(item))
        if max_tokens is not None and used + cost > max_tokens:
            return kept, used, True
        kept.append(item)
        used += cost
    return kept, used, False
