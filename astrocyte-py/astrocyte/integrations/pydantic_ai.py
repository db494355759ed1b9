"""Pydantic AI adapter (``pip install "astrocyte[pydantic-ai]"``).

- :class:`AstrocyteDeps` — the run dependency that says whose memory a run uses: the
  :class:`astrocyte.Astrocyte`, the bank, the caller's ``context`` and ``max_results``.
- :func:`memory_toolset` — a Pydantic AI ``FunctionToolset`` with the ``remember`` and
  ``recall`` tools, which read the bank and caller from ``RunContext.deps``.

One agent definition serves every user: the toolset is fixed, the identity travels with
each run's dependencies::

    agent = Agent(model, deps_type=AstrocyteDeps, toolsets=[memory_toolset()])
    deps = AstrocyteDeps(brain, "users:alice", context=AstrocyteContext(principal="user:alice"))
    result = await agent.run("What do I drink?", deps=deps)

An application whose dependencies carry more than memory subclasses
:class:`AstrocyteDeps` (it is a plain dataclass) and uses the subclass as ``deps_type``;
the tools only read the fields defined here.

**Mapping.** ``remember(content)`` retains ``content`` as one memory (or more, if it is
long enough to be chunked) in ``deps.bank_id``, with ``deps.tags`` / ``deps.metadata``.
``recall(query)`` recalls up to ``deps.max_results`` memories; the model reads them as
numbered lines and the tool return's ``metadata`` (kept in the message history, never
sent to the model) holds each hit's provenance as returned by
:func:`astrocyte.integrations.common.hit_metadata`.

**Identity.** Every call runs as ``deps.context`` (default: the local single user) and is
checked against ``access_grants``: ``remember`` needs ``write``, ``recall`` needs
``read``. A denied call raises :class:`astrocyte.AccessDenied` out of the tool; Pydantic
AI does not turn arbitrary exceptions into retries, so the run fails with that error
(only ``ModelRetry`` asks the model to try again).

Limits: the tools are async and await the facade on the run's event loop
(``Agent.run_sync`` works too: Pydantic AI runs its own loop); one bank per run — for
several, run several toolsets or recall through ``Astrocyte.recall(banks=...)`` in your
own tool.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

try:
    from pydantic_ai import FunctionToolset, RunContext
    from pydantic_ai.messages import ToolReturn
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        'astrocyte.integrations.pydantic_ai needs pydantic-ai: pip install "astrocyte[pydantic-ai]"'
    ) from exc

from astrocyte.brain import Astrocyte
from astrocyte.identity.context import AstrocyteContext
from astrocyte.integrations.common import (
    RECALL_DESCRIPTION,
    REMEMBER_DESCRIPTION,
    MemoryTools,
    format_hits,
    hit_metadata,
)
from astrocyte.spi import MetadataValue

__all__ = ["AstrocyteDeps", "memory_toolset"]


@dataclass
class AstrocyteDeps:
    """Whose memory a run uses: pass as ``deps=`` to ``Agent.run``.

    ``brain`` and ``bank_id`` say where memories live; ``context`` is the caller every
    tool call runs as (``None``: the local single user); ``max_results`` bounds a
    recall; ``tags`` and ``metadata`` are added to every memory ``remember`` stores."""

    brain: Astrocyte
    bank_id: str
    context: AstrocyteContext | None = None
    max_results: int = 5
    tags: Sequence[str] | None = None
    metadata: dict[str, MetadataValue] = field(default_factory=dict)

    @property
    def memory(self) -> MemoryTools:
        """The shared ``remember`` / ``recall`` bodies bound to these dependencies."""
        return MemoryTools(
            self.brain,
            self.bank_id,
            self.context,
            max_results=self.max_results,
            tags=self.tags,
            metadata=dict(self.metadata),
        )


async def _remember(ctx: RunContext[AstrocyteDeps], content: str) -> str:
    """Store a fact in long-term memory.

    Args:
        content: the fact, as a self-contained sentence.
    """
    return await ctx.deps.memory.remember(content)


async def _recall(ctx: RunContext[AstrocyteDeps], query: str) -> ToolReturn:
    """Search long-term memory.

    Args:
        query: what to look for.
    """
    deps = ctx.deps
    # The facade is called directly (not MemoryTools.recall) to keep the hits, whose
    # provenance goes into the tool return's metadata: history only, not model input.
    result = await deps.brain.recall(
        query, deps.bank_id, max_results=deps.max_results, context=deps.context
    )
    return ToolReturn(
        return_value=format_hits(result),
        metadata=[hit_metadata(hit) for hit in result.hits],
    )


def memory_toolset(*, id: str | None = "astrocyte_memory") -> FunctionToolset[AstrocyteDeps]:
    """A toolset with ``remember(content)`` and ``recall(query)`` for an agent whose
    ``deps_type`` is :class:`AstrocyteDeps` (or a subclass).

    The tools read the bank and caller from each run's ``deps``, so one agent serves many
    users. ``id`` names the toolset (Pydantic AI requires one for durable execution,
    e.g. Temporal)."""
    toolset: FunctionToolset[AstrocyteDeps] = FunctionToolset(id=id)
    toolset.add_function(
        _remember, takes_ctx=True, name="remember", description=REMEMBER_DESCRIPTION
    )
    toolset.add_function(_recall, takes_ctx=True, name="recall", description=RECALL_DESCRIPTION)
    return toolset
