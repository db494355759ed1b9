"""``remember`` and ``recall`` as CrewAI tools (``BaseTool`` subclasses)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

try:
    from crewai.tools import BaseTool
except ImportError as exc:  # pragma: no cover - exercised only without crewai
    raise ImportError(
        "astrocyte_crewai needs crewai 1.x: pip install astrocyte-integration-crewai"
    ) from exc

from astrocyte.integrations.common import RECALL_DESCRIPTION, REMEMBER_DESCRIPTION, MemoryTools

__all__ = ["RecallTool", "RememberTool", "make_memory_tools"]


class _RememberArgs(BaseModel):
    content: str = Field(description="The fact to store, as a self-contained sentence.")


class _RecallArgs(BaseModel):
    query: str = Field(description="What to search long-term memory for.")


class RememberTool(BaseTool):
    """``remember(content)``: retain a fact in the bank of ``tools`` as its caller.

    A denied or invalid call raises Astrocyte's error; CrewAI hands it to the agent
    as the tool's failure, like any tool error."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    name: str = "remember"
    description: str = REMEMBER_DESCRIPTION
    args_schema: type[BaseModel] = _RememberArgs
    tools: MemoryTools

    def _run(self, content: str) -> str:
        return self.tools.remember_sync(content)

    async def _arun(self, content: str) -> str:
        return await self.tools.remember(content)


class RecallTool(BaseTool):
    """``recall(query)``: up to ``tools.max_results`` memories as numbered lines."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    name: str = "recall"
    description: str = RECALL_DESCRIPTION
    args_schema: type[BaseModel] = _RecallArgs
    tools: MemoryTools

    def _run(self, query: str) -> str:
        return self.tools.recall_sync(query)

    async def _arun(self, query: str) -> str:
        return await self.tools.recall(query)


def make_memory_tools(tools: MemoryTools) -> list[BaseTool]:
    """``[RememberTool, RecallTool]`` on the bank and caller of ``tools``
    (``MemoryTools(brain, bank_id, context, max_results=5)``)."""
    return [RememberTool(tools=tools), RecallTool(tools=tools)]
