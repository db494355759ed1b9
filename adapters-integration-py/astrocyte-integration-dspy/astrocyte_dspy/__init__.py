"""DSPy adapters for Astrocyte (``pip install astrocyte-integration-dspy``).

- :class:`AstrocyteRM` — a retriever: a ``dspy.Retrieve`` subclass over
  :meth:`Astrocyte.recall`, used as a module's retrieval step
  (``self.retrieve = AstrocyteRM(brain, "alice", k=3)``;
  ``self.retrieve(question).passages``).
- :func:`make_memory_tools` — ``remember`` and ``recall`` as ``dspy.Tool``\\ s for
  ``dspy.ReAct`` (or any program that calls tools).

**Mapping.** A retriever reads one bank (``bank_id``) or several (``banks=[...]``); each
recall hit becomes one passage (its text). The returned ``dspy.Prediction`` carries,
index for index with ``passages``: ``memory_ids``, ``scores`` and ``provenance`` (one
dict per passage: ``memory_id``, ``bank_id``, ``score``, ``origin``, ``source_id``,
``chunk_index``, ``content_type``, ``occurred_at``, ``created_at``, ``tags``, and the
``metadata`` given at retain) — the same parallel-list shape as DSPy's own
``EmbeddingsWithScores`` (``passages``, ``indices``, ``scores``). Several queries
(``rm(["q1", "q2"])``) are recalled separately and merged: one passage per memory (its
best score), best first, at most ``k``. The tools write to and read from one bank:
``remember(content)`` retains the text, ``recall(query)`` answers the best memories as
numbered lines — the same descriptions and answers as every Astrocyte integration.

**Identity.** Every adapter takes ``context=AstrocyteContext(...)``; each call runs as that
caller and is checked against ``access_grants`` exactly as a direct call would be. A denied
call raises :class:`astrocyte.AccessDenied`: from the retriever, to the program; from a
tool inside ``dspy.ReAct``, ReAct catches it and shows the model an ``Execution error in
recall: ... AccessDenied ...`` observation, as it does for every failing tool.

**Sync and async.** DSPy's sync entry points (``rm(query)``, ``program(...)``, a tool's
``__call__``) run the facade on one private background event loop (so they also work
where a loop is already running); the async ones (``await rm.acall(query)``, a tool's
``acall`` as used by ``ReAct.aforward`` / ``program.acall``) await it on the caller's loop.
Within one process prefer one style per ``Astrocyte`` (its stores bind to the first loop
that uses them).

**Copies.** DSPy optimizers deep-copy programs; a copied retriever or tool shares the
original's ``Astrocyte`` and context (a memory layer is not program state), so a copy reads
and writes the same banks.

Limits: ``dspy.configure(rm=AstrocyteRM(...))`` with a bare ``dspy.Retrieve(k)`` is not
supported — that legacy route expects ``long_text`` records and would drop the provenance;
use the ``AstrocyteRM`` itself as the retrieval module (it is a ``dspy.Retrieve``: same
``(query, k)`` call, same ``.passages``). Recall hard filters (``tags``, ``filters``) are set
per retriever, not per call. ``k`` may not exceed the brain's ``limits.max_results``
(a larger one raises Astrocyte's ``ValidationError``).
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

try:
    import dspy
    from dspy.utils.callback import with_callbacks
except ImportError as exc:  # pragma: no cover - exercised only without dspy
    raise ImportError(
        "astrocyte_dspy needs dspy: pip install astrocyte-integration-dspy "
        '(or pip install "dspy>=3,<4")'
    ) from exc

from astrocyte.brain import Astrocyte
from astrocyte.identity.context import AstrocyteContext
from astrocyte.integrations.common import (
    RECALL_DESCRIPTION,
    REMEMBER_DESCRIPTION,
    MemoryTools,
    hit_metadata,
    recall_hits,
    run_sync,
)
from astrocyte.spi import MetadataValue
from astrocyte.types import RecallHit
from pydantic import PrivateAttr

__all__ = ["AstrocyteRM", "make_memory_tools"]


# --- retriever -------------------------------------------------------------------------------


# dspy ships no type information, so its base classes are ``Any`` to mypy.
class AstrocyteRM(dspy.Retrieve):  # type: ignore[misc]
    """A DSPy retriever over :meth:`Astrocyte.recall`.

    ``AstrocyteRM(brain, "alice", k=3, context=ctx)``; ``banks=[...]`` instead of a bank id
    recalls over several banks (those the caller may not read are skipped, as in any
    multi-bank recall). ``tags`` (all must match) and ``filters`` (metadata equality) are
    hard filters on every recall. ``callbacks`` are DSPy callbacks, as for
    ``dspy.Retrieve``. Call it like ``dspy.Retrieve``: ``rm(query_or_queries, k=None)``
    returns a ``dspy.Prediction`` with ``passages``, ``memory_ids``, ``scores`` and
    ``provenance`` (see the module docstring); ``await rm.acall(...)`` is the async form.
    ``k`` is saved and loaded with the program's state, like ``dspy.Retrieve``'s."""

    k: int

    def __init__(
        self,
        brain: Astrocyte,
        bank_id: str | None = None,
        *,
        banks: Sequence[str] | None = None,
        k: int = 3,
        tags: Sequence[str] | None = None,
        filters: dict[str, MetadataValue] | None = None,
        context: AstrocyteContext | None = None,
        callbacks: list[Any] | None = None,
    ) -> None:
        _check_k(k)
        super().__init__(k=k, callbacks=callbacks)
        self.brain = brain
        self.bank_id = bank_id
        self.banks = list(banks) if banks is not None else None
        self.tags = list(tags) if tags is not None else None
        self.filters = dict(filters) if filters is not None else None
        self.context = context

    def forward(self, query_or_queries: str | Sequence[str], k: int | None = None) -> Any:
        """Recall the best ``k`` (default ``self.k``) memories for one query or several;
        returns a ``dspy.Prediction`` (``passages``, ``memory_ids``, ``scores``,
        ``provenance``). Runs the facade on the shared background loop."""
        return run_sync(self.aforward(query_or_queries, k))

    @with_callbacks  # type: ignore[untyped-decorator]  # dspy's decorator is unannotated
    async def acall(self, query_or_queries: str | Sequence[str], k: int | None = None) -> Any:
        """Async :meth:`forward` (``dspy.Retrieve`` has no async entry point of its own, so
        this mirrors ``dspy.Module.acall``: DSPy callbacks fire as for ``__call__``)."""
        return await self.aforward(query_or_queries, k)

    async def aforward(self, query_or_queries: str | Sequence[str], k: int | None = None) -> Any:
        """The recall behind :meth:`forward` / :meth:`acall`, on the caller's loop."""
        limit = self.k if k is None else k
        _check_k(limit)
        queries = [query_or_queries] if isinstance(query_or_queries, str) else query_or_queries
        # Like DSPy's own retrievers, blank queries are skipped rather than recalled.
        wanted = [q for q in queries if q.strip()]
        results = await asyncio.gather(*(self._recall(q, limit) for q in wanted))
        hits = _merge([hit for result in results for hit in result], limit)
        return dspy.Prediction(
            passages=[hit.text for hit in hits],
            memory_ids=[hit.memory_id for hit in hits],
            scores=[hit.score for hit in hits],
            provenance=[hit_metadata(hit) for hit in hits],
        )

    async def _recall(self, query: str, k: int) -> list[RecallHit]:
        hits = await recall_hits(
            self.brain,
            query,
            self.bank_id,
            banks=self.banks,
            max_results=k,
            tags=self.tags,
            filters=self.filters,
            context=self.context,
        )
        return hits

    def dump_state(self, json_mode: bool = True) -> dict[str, Any]:
        """The saved state: ``{"k": ...}``. (``dspy.Module.dump_state`` passes
        ``json_mode``, which ``dspy.Retrieve.dump_state`` does not accept in dspy 3.4, so a
        program holding a plain ``dspy.Retrieve`` cannot be saved; this one can.)"""
        return {"k": self.k}

    def load_state(self, state: dict[str, Any]) -> AstrocyteRM:
        """Restore :meth:`dump_state`'s ``k`` (validated)."""
        k: int = state.get("k", self.k)
        _check_k(k)
        self.k = k
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> AstrocyteRM:
        # Optimizers deep-copy programs; the brain (stores, locks, loops) must be shared,
        # not cloned, or a copy would read a frozen snapshot of the memory.
        clone = copy.copy(self)
        # The settings are the copy's own; only brain and context are shared.
        clone.callbacks = list(self.callbacks)
        clone.banks = copy.copy(self.banks)
        clone.tags = copy.copy(self.tags)
        clone.filters = copy.copy(self.filters)
        memo[id(self)] = clone
        return clone


def _check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")


def _merge(hits: list[RecallHit], k: int) -> list[RecallHit]:
    """One hit per memory (its best score), best first (ties keep recall order), at most
    ``k``."""
    best: dict[str, RecallHit] = {}
    for hit in hits:
        seen = best.get(hit.memory_id)
        if seen is None or hit.score > seen.score:
            best[hit.memory_id] = hit
    return sorted(best.values(), key=lambda hit: hit.score, reverse=True)[:k]


# --- tools -----------------------------------------------------------------------------------


class _MemoryTool(dspy.Tool):  # type: ignore[misc]
    """A ``dspy.Tool`` with a sync body for ``__call__`` and an async one for ``acall``.

    A plain ``dspy.Tool`` has one function: a sync one would block the caller's event loop
    in ``ReAct.aforward``; an async one cannot be called from sync code inside a running
    loop. So ``acall`` is delegated to a second ``dspy.Tool`` over the coroutine function —
    DSPy's own argument validation and callbacks on both paths."""

    _async_tool: Any = PrivateAttr(default=None)

    def __init__(
        self,
        func: Callable[[str], str],
        coroutine: Callable[[str], Awaitable[str]],
        *,
        name: str,
        desc: str,
        arg_desc: dict[str, str],
    ) -> None:
        super().__init__(func, name=name, desc=desc, arg_desc=arg_desc)
        self._async_tool = dspy.Tool(coroutine, name=name, desc=desc, arg_desc=arg_desc)

    async def acall(self, **kwargs: Any) -> Any:
        """Validate ``kwargs`` and await the async body on the caller's loop."""
        return await self._async_tool.acall(**kwargs)

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> _MemoryTool:
        # Shared, not cloned: the bound bodies hold the brain (see AstrocyteRM.__deepcopy__).
        clone = copy.copy(self)
        if memo is not None:
            memo[id(self)] = clone
        return clone


def make_memory_tools(
    brain: Astrocyte,
    bank_id: str,
    context: AstrocyteContext | None = None,
    *,
    max_results: int = 5,
) -> list[Any]:
    """``remember(content)`` and ``recall(query)`` as ``dspy.Tool``\\ s on ``bank_id``,
    running as ``context``: ``dspy.ReAct(signature, tools=make_memory_tools(brain, "alice"))``.

    ``recall`` answers up to ``max_results`` memories as numbered lines (or ``"No memories
    found."``); ``remember`` answers the stored memory id. A denied or invalid call raises
    Astrocyte's error like any tool error (``dspy.ReAct`` turns it into an observation)."""
    tools = MemoryTools(brain, bank_id, context, max_results=max_results)
    return [
        _MemoryTool(
            tools.remember_sync,
            tools.remember,
            name="remember",
            desc=REMEMBER_DESCRIPTION,
            arg_desc={"content": "the fact to store, as a self-contained sentence"},
        ),
        _MemoryTool(
            tools.recall_sync,
            tools.recall,
            name="recall",
            desc=RECALL_DESCRIPTION,
            arg_desc={"query": "what to search long-term memory for"},
        ),
    ]
