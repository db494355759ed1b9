"""The optional rerank stage after fusion.

A reranker reorders (and may rescore) the fused candidates; it must not add any. The
default is :class:`PassthroughReranker`, which keeps the RRF order.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol, runtime_checkable

from astrocyte.errors import ConfigError
from astrocyte.spi import MemoryRecord


@dataclass(frozen=True, slots=True)
class Candidate:
    """A fused candidate with its record, ready for reranking and the budget."""

    record: MemoryRecord
    score: float
    ranks: dict[str, int]
    origin: str = "local"
    """'local', 'proxy:<source>' or 'external' (see :mod:`astrocyte.recall.proxy`)."""


@runtime_checkable
class Reranker(Protocol):
    """Reorders fused candidates for a query."""

    async def rerank(self, query: str, candidates: Sequence[Candidate]) -> list[Candidate]:
        """Return the candidates best-first (a permutation, possibly rescored)."""
        ...


class PassthroughReranker:
    """Keeps the fused order unchanged."""

    async def rerank(self, query: str, candidates: Sequence[Candidate]) -> list[Candidate]:
        """Return the candidates as given."""
        return list(candidates)


def rescored(candidate: Candidate, score: float) -> Candidate:
    """A copy of ``candidate`` with a new score (for reranker implementations)."""
    return replace(candidate, score=score)


def create_reranker(provider: str) -> Reranker:
    """``none`` → passthrough; ``module:Class`` → that class, built with no arguments."""
    if provider in ("none", "passthrough"):
        return PassthroughReranker()
    if ":" not in provider:
        raise ConfigError(
            "recall.rerank.provider",
            f"unknown reranker {provider!r}",
            fix="use 'none' or an import path like 'mypkg.rerank:MyReranker'",
        )
    module_name, _, attr = provider.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError("recall.rerank.provider", f"cannot import {provider!r}: {exc}") from None
    reranker = factory()
    if not isinstance(reranker, Reranker):
        raise ConfigError("recall.rerank.provider", f"{provider!r} has no async rerank() method")
    return reranker
