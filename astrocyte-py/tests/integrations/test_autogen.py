"""AutoGen adapter: AstrocyteMemory under a real AssistantAgent run (the model replaced by
a scripted ChatCompletionClient), the Memory protocol methods, and identity.

autogen-ext (which ships ReplayChatCompletionClient and the OpenAI client) is not part of
the ``autogen`` extra, so the model is FakeChatCompletionClient below: a minimal
``ChatCompletionClient`` that records the messages it is sent and answers from a script.
"""

from __future__ import annotations

import asyncio
import string
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from typing import Any, Literal

import pytest

pytest.importorskip("autogen_core")
pytest.importorskip("autogen_agentchat")

from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.messages import MemoryQueryEvent, TextMessage
from autogen_core import CancellationToken, Image
from autogen_core.memory import MemoryContent, MemoryMimeType
from autogen_core.model_context import UnboundedChatCompletionContext
from autogen_core.models import (
    ChatCompletionClient,
    CreateResult,
    LLMMessage,
    ModelCapabilities,
    ModelInfo,
    RequestUsage,
    SystemMessage,
    UserMessage,
)
from autogen_core.tools import Tool, ToolSchema
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from shared_identities import ALICE, BOT, CONFIG, EVE, GRANTS

from astrocyte import AccessDenied, Astrocyte
from astrocyte.integrations.autogen import MIME_TYPE_FIELD, AstrocyteMemory

BANK = "users:alice:notes"


class FakeChatCompletionClient(ChatCompletionClient):
    """A scripted model: answers ``replies`` in turn and records every request."""

    def __init__(self, replies: Sequence[str]) -> None:
        self.replies = list(replies)
        self.requests: list[list[LLMMessage]] = []

    async def create(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Tool | ToolSchema] = [],
        tool_choice: Tool | Literal["auto", "required", "none"] = "auto",
        json_output: bool | type[BaseModel] | None = None,
        extra_create_args: Mapping[str, Any] = {},
        cancellation_token: CancellationToken | None = None,
    ) -> CreateResult:
        self.requests.append(list(messages))
        reply = self.replies.pop(0)
        usage = RequestUsage(prompt_tokens=0, completion_tokens=0)
        return CreateResult(finish_reason="stop", content=reply, usage=usage, cached=False)

    async def create_stream(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Tool | ToolSchema] = [],
        tool_choice: Tool | Literal["auto", "required", "none"] = "auto",
        json_output: bool | type[BaseModel] | None = None,
        extra_create_args: Mapping[str, Any] = {},
        cancellation_token: CancellationToken | None = None,
    ) -> AsyncGenerator[str | CreateResult, None]:
        yield await self.create(messages)

    async def close(self) -> None:
        pass

    def actual_usage(self) -> RequestUsage:
        return RequestUsage(prompt_tokens=0, completion_tokens=0)

    def total_usage(self) -> RequestUsage:
        return RequestUsage(prompt_tokens=0, completion_tokens=0)

    def count_tokens(
        self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = []
    ) -> int:
        return 0

    def remaining_tokens(
        self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = []
    ) -> int:
        return 100_000

    @property
    def capabilities(self) -> ModelCapabilities:
        return {"vision": False, "function_calling": False, "json_output": False}

    @property
    def model_info(self) -> ModelInfo:
        return {
            "vision": False,
            "function_calling": False,
            "json_output": False,
            "family": "unknown",
            "structured_output": False,
        }


@pytest.fixture
async def brain() -> AsyncIterator[Astrocyte]:
    async with Astrocyte.from_config(CONFIG) as b:
        yield b


@pytest.fixture
async def guarded() -> AsyncIterator[Astrocyte]:
    async with Astrocyte.from_config({**CONFIG, **GRANTS}) as b:
        yield b


def _text(content: MemoryContent) -> str:
    assert isinstance(content.content, str)
    return content.content


# --- a real agent ------------------------------------------------------------------------


async def test_assistant_agent_reads_memory_into_the_model_call(guarded: Astrocyte) -> None:
    memory = AstrocyteMemory(guarded, BANK, context=BOT)
    await memory.add(
        MemoryContent(
            content="Alice drinks green tea every morning.",
            mime_type=MemoryMimeType.TEXT,
            metadata={"session_id": "s1"},
        )
    )
    await memory.add(MemoryContent(content="The office closes at six.", mime_type="text/plain"))
    # stored in the bank, as the bot
    stored = await guarded.recall("green tea", BANK, context=BOT)
    assert any("green tea" in h.text for h in stored.hits)

    model = FakeChatCompletionClient(["She drinks green tea."])
    agent = AssistantAgent("assistant", model_client=model, memory=[memory])
    result = await agent.run(task="What does Alice drink in the morning?")

    # the model was sent the recalled memory as a system message, after the task
    (request,) = model.requests
    memory_messages = [
        m for m in request if isinstance(m, SystemMessage) and "green tea" in m.content
    ]
    assert len(memory_messages) == 1
    assert memory_messages[0].content.startswith("Relevant memories:\n1. ")
    assert request.index(memory_messages[0]) > next(
        i for i, m in enumerate(request) if isinstance(m, UserMessage)
    )

    # the agent reported the recall as a MemoryQueryEvent carrying provenance
    events = [m for m in result.messages if isinstance(m, MemoryQueryEvent)]
    assert len(events) == 1
    first = events[0].content[0]
    assert "green tea" in _text(first)
    meta = first.metadata or {}
    assert meta["bank_id"] == BANK
    assert meta["metadata"] == {"session_id": "s1", MIME_TYPE_FIELD: "text/plain"}
    assert meta["memory_id"] in {h.memory_id for h in stored.hits}
    assert isinstance(result.messages[-1], TextMessage)
    assert result.messages[-1].content == "She drinks green tea."


async def test_agent_with_nothing_recalled_sends_no_memory_message(brain: Astrocyte) -> None:
    memory = AstrocyteMemory(brain, "empty")
    model = FakeChatCompletionClient(["ok"])
    agent = AssistantAgent("assistant", model_client=model, memory=[memory])
    # the bank does not exist before the first add: the run still works
    result = await agent.run(task="anything?")
    assert (await memory.query("anything")).results == []
    assert not any(isinstance(m, MemoryQueryEvent) for m in result.messages)
    assert not any(
        isinstance(m, SystemMessage) and m.content.startswith("Relevant memories")
        for m in model.requests[0]
    )


async def test_agent_run_as_a_caller_without_read_is_refused(guarded: Astrocyte) -> None:
    await AstrocyteMemory(guarded, BANK, context=BOT).add(
        MemoryContent(content="Alice drinks green tea.", mime_type="text/plain")
    )
    model = FakeChatCompletionClient(["never sent"])
    agent = AssistantAgent(
        "assistant", model_client=model, memory=[AstrocyteMemory(guarded, BANK, context=EVE)]
    )
    # AutoGen lets the memory's error out of run(): the model is never called
    with pytest.raises(AccessDenied):
        await agent.run(task="What does Alice drink?")
    assert model.requests == []


# --- protocol methods --------------------------------------------------------------------


async def test_query_returns_memory_content_with_provenance(brain: Astrocyte) -> None:
    memory = AstrocyteMemory(brain, "notes", max_results=3)
    await memory.add(
        MemoryContent(
            content={"drink": "green tea", "when": "morning"},
            mime_type=MemoryMimeType.JSON,
            metadata={"turn": 3},
        )
    )
    await memory.add(MemoryContent(content=b"# Tea\nAlice likes tea.", mime_type="text/markdown"))

    result = await memory.query("green tea morning")
    by_mime = {c.mime_type: c for c in result.results if isinstance(c.mime_type, str)}
    assert set(by_mime) == {"application/json", "text/markdown"}
    assert by_mime["application/json"].content == {"drink": "green tea", "when": "morning"}
    assert by_mime["text/markdown"].content == "# Tea\nAlice likes tea."  # stored verbatim
    meta = by_mime["application/json"].metadata or {}
    assert meta["metadata"] == {"turn": 3, MIME_TYPE_FIELD: "application/json"}
    assert {"memory_id", "bank_id", "score", "source_id", "created_at"} <= set(meta)

    # a MemoryContent works as the query too, and max_results is honoured per call
    one = await memory.query(MemoryContent(content="tea", mime_type="text/plain"), max_results=1)
    assert len(one.results) == 1


async def test_update_context_on_the_last_message(brain: Astrocyte) -> None:
    memory = AstrocyteMemory(brain, "notes")
    await memory.add(MemoryContent(content="Bob's flight leaves at nine.", mime_type="text/plain"))
    context = UnboundedChatCompletionContext()
    assert (await memory.update_context(context)).memories.results == []  # no messages
    await context.add_message(
        UserMessage(
            content=["When does Bob's flight leave?", Image.from_base64(_PIXEL)], source="u"
        )
    )
    updated = await memory.update_context(context)
    assert [_text(c) for c in updated.memories.results] == ["Bob's flight leaves at nine."]
    messages = await context.get_messages()
    assert isinstance(messages[-1], SystemMessage)
    assert "1. Bob's flight leaves at nine." in messages[-1].content


async def test_non_text_content_is_refused(brain: Astrocyte) -> None:
    memory = AstrocyteMemory(brain, "notes")
    with pytest.raises(ValueError, match="image"):
        await memory.add(MemoryContent(content=Image.from_base64(_PIXEL), mime_type="image/*"))
    with pytest.raises(ValueError, match="application/octet-stream"):
        await memory.add(MemoryContent(content=b"\x00\x01", mime_type=MemoryMimeType.BINARY))


async def test_clear_needs_forget_and_empties_the_bank(guarded: Astrocyte) -> None:
    bot = AstrocyteMemory(guarded, BANK, context=BOT)
    await bot.add(MemoryContent(content="Alice drinks green tea.", mime_type="text/plain"))
    await bot.add(MemoryContent(content="Alice walks to work.", mime_type="text/plain"))
    with pytest.raises(AccessDenied):  # read + write, no forget
        await bot.clear()
    with pytest.raises(AccessDenied):  # eve may write but not read
        await AstrocyteMemory(guarded, BANK, context=EVE).query("tea")
    with pytest.raises(AccessDenied):  # a bank outside every grant
        await AstrocyteMemory(guarded, "users:bob", context=BOT).add(
            MemoryContent(content="x", mime_type="text/plain")
        )
    assert len((await bot.query("Alice")).results) == 2

    await AstrocyteMemory(guarded, BANK, context=ALICE).clear()
    assert (await bot.query("Alice")).results == []
    assert (await guarded.recall("Alice", BANK, context=ALICE)).hits == []
    # clearing a bank that was never written is a no-op, not an error
    await AstrocyteMemory(guarded, "users:alice:never", context=ALICE).clear()


async def test_tags_scope_add_query_and_clear(brain: Astrocyte) -> None:
    work = AstrocyteMemory(brain, "notes", tags=["work"])
    await work.add(MemoryContent(content="Standup is at ten.", mime_type="text/plain"))
    await AstrocyteMemory(brain, "notes").add(
        MemoryContent(content="Standup for the choir is at seven.", mime_type="text/plain")
    )
    assert [_text(c) for c in (await work.query("standup")).results] == ["Standup is at ten."]
    await work.clear()
    left = await brain.recall("standup", "notes")
    assert [h.text for h in left.hits] == ["Standup for the choir is at seven."]


async def test_not_a_serialisable_component(brain: Astrocyte) -> None:
    with pytest.raises(NotImplementedError, match="live Astrocyte"):
        AstrocyteMemory(brain, "notes").dump_component()
    assert AstrocyteMemory(brain, "notes").name == "astrocyte:notes"
    with pytest.raises(ValueError):
        AstrocyteMemory(brain, "notes", max_results=0)


# --- open-ended metadata -----------------------------------------------------------------

_key = st.text(string.ascii_letters + "_", min_size=1, max_size=12).filter(
    lambda k: k != MIME_TYPE_FIELD
)
_scalar = (
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False, allow_infinity=False, width=32)
    | st.text(max_size=30)
)


@settings(max_examples=25, deadline=None)
@given(st.dictionaries(_key, _scalar, max_size=6), st.sampled_from(["text/plain", "text/x-log"]))
def test_metadata_and_mime_type_survive_add_and_query(
    metadata: dict[str, Any], mime_type: str
) -> None:
    async def run() -> None:
        async with Astrocyte.from_config(CONFIG) as b:
            memory = AstrocyteMemory(b, "notes")
            await memory.add(
                MemoryContent(content="A fact about tea.", mime_type=mime_type, metadata=metadata)
            )
            (found,) = (await memory.query("tea")).results
            assert found.mime_type == mime_type
            assert (found.metadata or {})["metadata"] == {**metadata, MIME_TYPE_FIELD: mime_type}

    asyncio.run(run())


# A 1x1 PNG.
_PIXEL = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
)
