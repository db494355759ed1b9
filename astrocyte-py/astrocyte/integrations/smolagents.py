"""smolagents adapter (``pip install "astrocyte[smolagents]"``).

- :class:`RememberTool` and :class:`RecallTool` — ``smolagents.Tool`` subclasses that
  give an agent (``ToolCallingAgent`` or ``CodeAgent``) long-term memory in one bank.
- :func:`memory_tools` — both tools at once, bound to the same bank and caller::

      tools = memory_tools(brain, "users:alice", context=AstrocyteContext(principal="agent:bot"))
      agent = ToolCallingAgent(tools=tools, model=model)
      agent.run("Remember that I drink green tea, then tell me what I drink.")

**Mapping.** ``remember(content)`` retains ``content`` in the tool's bank (one memory,
or several if it is long enough to be chunked) with the tool's ``tags`` / ``metadata``
and answers with the stored ids. ``recall(query)`` recalls up to ``max_results``
memories and answers with them as numbered lines, which is what the model reads.
``RecallTool(..., structured=True)`` answers instead with a list of dicts, one per
hit: ``{"text": ..., **provenance}`` where the provenance keys are those of
:func:`astrocyte.integrations.common.hit_metadata` (``memory_id``, ``bank_id``,
``score``, ``source_id``, ``tags``, the retained ``metadata``...). That is the place
smolagents has for structured tool output: a ``CodeAgent``'s code receives the list as
a Python value (``recall(query="tea")[0]["source_id"]``); a ``ToolCallingAgent`` only
sees its text.

**Identity.** Each tool runs every call as its ``context`` (default: the local single
user) and is checked against ``access_grants``: ``remember`` needs ``write``,
``recall`` needs ``read``. A denied call raises :class:`astrocyte.AccessDenied` in the
tool; smolagents turns a tool error into an ``AgentToolExecutionError`` recorded on the
step (the model is told "Error executing tool ..." and may try something else), so a
run does not crash on a denial, and nothing is stored or returned.

Limits: smolagents tools are synchronous, so each call runs the async facade on the
shared background loop of :func:`astrocyte.integrations.common.run_sync`; one bank per
tool (build several tools, with distinct ``name``\\ s, for several banks). The tools hold
a live :class:`astrocyte.Astrocyte`, so smolagents' ``Tool.save`` / ``push_to_hub``
(which export a tool as self-contained source code) cannot serialise them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

try:
    from smolagents import Tool  # type: ignore[import-untyped]  # ships no py.typed
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        'astrocyte.integrations.smolagents needs smolagents: pip install "astrocyte[smolagents]"'
    ) from exc

from astrocyte.brain import Astrocyte
from astrocyte.identity.context import AstrocyteContext
from astrocyte.integrations.common import (
    RECALL_DESCRIPTION,
    REMEMBER_DESCRIPTION,
    MemoryTools,
    hit_metadata,
    run_sync,
)
from astrocyte.spi import MetadataValue

__all__ = ["RecallTool", "RememberTool", "memory_tools"]

# The structured recall answers with data, not lines, so the model must be told so.
_STRUCTURED_DESCRIPTION = (
    "Search long-term memory for facts relevant to a query. Returns a list of dicts, best "
    "first, each with the memory 'text' and its provenance: 'memory_id', 'bank_id', "
    "'score', 'source_id', 'tags', 'metadata', 'occurred_at'."
)


# smolagents' Tool is untyped (no py.typed), so mypy sees the base class as Any.
class RememberTool(Tool):  # type: ignore[misc]
    """``remember(content)``: store a fact in one bank, as one caller.

    ``RememberTool(brain, "users:alice", context=ctx, tags=[...], metadata={...})``;
    ``tags`` and ``metadata`` are added to every memory it stores."""

    name = "remember"
    description = REMEMBER_DESCRIPTION
    inputs: ClassVar[dict[str, dict[str, str]]] = {
        "content": {
            "type": "string",
            "description": "The fact to remember, as a self-contained sentence.",
        }
    }
    output_type = "string"

    def __init__(
        self,
        brain: Astrocyte,
        bank_id: str,
        *,
        context: AstrocyteContext | None = None,
        tags: Sequence[str] | None = None,
        metadata: dict[str, MetadataValue] | None = None,
    ) -> None:
        super().__init__()
        self.memory = MemoryTools(brain, bank_id, context, tags=tags, metadata=dict(metadata or {}))

    def forward(self, content: str) -> str:
        """Retain ``content``; answers with the stored memory ids."""
        return self.memory.remember_sync(content)


class RecallTool(Tool):  # type: ignore[misc]
    """``recall(query)``: search one bank, as one caller.

    ``RecallTool(brain, "users:alice", context=ctx, max_results=5)`` answers with the
    hits as numbered lines; with ``structured=True`` it answers with a list of dicts
    (memory text plus provenance, see the module docstring), for a ``CodeAgent``."""

    name = "recall"
    description = RECALL_DESCRIPTION
    inputs: ClassVar[dict[str, dict[str, str]]] = {
        "query": {
            "type": "string",
            "description": "What to look for in long-term memory.",
        }
    }
    output_type = "string"

    def __init__(
        self,
        brain: Astrocyte,
        bank_id: str,
        *,
        context: AstrocyteContext | None = None,
        max_results: int = 5,
        structured: bool = False,
    ) -> None:
        super().__init__()
        self.memory = MemoryTools(brain, bank_id, context, max_results=max_results)
        self.structured = structured
        if structured:
            # Instance attributes override the class ones in smolagents' validation and
            # in the prompt it renders, so the model is told what the code gets back.
            self.output_type = "array"
            self.description = _STRUCTURED_DESCRIPTION

    def forward(self, query: str) -> Any:
        """Recall memories for ``query``: numbered lines, or hit dicts if ``structured``."""
        if not self.structured:
            return self.memory.recall_sync(query)
        memory = self.memory
        result = run_sync(
            memory.brain.recall(
                query, memory.bank_id, max_results=memory.max_results, context=memory.context
            )
        )
        return [{"text": hit.text, **hit_metadata(hit)} for hit in result.hits]


def memory_tools(
    brain: Astrocyte,
    bank_id: str,
    context: AstrocyteContext | None = None,
    *,
    max_results: int = 5,
    structured: bool = False,
) -> list[Tool]:
    """``[RememberTool, RecallTool]`` on ``bank_id``, both running as ``context``;
    pass them as ``tools=`` to a smolagents agent."""
    return [
        RememberTool(brain, bank_id, context=context),
        RecallTool(brain, bank_id, context=context, max_results=max_results, structured=structured),
    ]
