"""Pydantic AI adapter: real ``Agent.run`` loops (FunctionModel / TestModel) on the memory
toolset, with per-run dependencies carrying the caller's identity."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

pytest.importorskip("pydantic_ai")

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic_ai import Agent
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.models.test import TestModel

from astrocyte import AccessDenied, Astrocyte, AstrocyteContext
from astrocyte.integrations.pydantic_ai import AstrocyteDeps, memory_toolset
from astrocyte.pipeline.normalise import normalise_text

CONFIG: dict[str, Any] = {"storage": {"backend": "memory"}, "embedder": {"provider": "hashing"}}
ALICE = AstrocyteContext(principal="user:alice")
BOB = AstrocyteContext(principal="user:bob")
EVE = AstrocyteContext(principal="user:eve")
GRANTS: dict[str, Any] = {
    "access_grants": [
        {"principals": ["user:alice"], "banks": ["users:alice"], "permissions": ["admin"]},
        {"principals": ["user:bob"], "banks": ["users:bob"], "permissions": ["admin"]},
        # eve may write into alice's bank but never read it
        {"principals": ["user:eve"], "banks": ["users:alice"], "permissions": ["write"]},
    ]
}


@pytest.fixture
async def guarded() -> AsyncIterator[Astrocyte]:
    async with Astrocyte.from_config({**CONFIG, **GRANTS}) as b:
        yield b


def _last_request(messages: list[ModelMessage]) -> ModelRequest:
    last = messages[-1]
    assert isinstance(last, ModelRequest)
    return last


def scripted(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    """A model that remembers the prompt's fact, recalls it, then answers with the recall.

    Prompt form: ``"remember: <fact> | recall: <query>"``; either half may be absent."""
    assert {t.name for t in info.function_tools} == {"remember", "recall"}
    parts = _last_request(messages).parts
    returns = [p for p in parts if isinstance(p, ToolReturnPart)]
    prompt = next(
        str(p.content)
        for m in messages
        if isinstance(m, ModelRequest)
        for p in m.parts
        if isinstance(p, UserPromptPart)
    )
    wanted = dict(
        (k.strip(), v.strip()) for k, v in (half.split(":", 1) for half in prompt.split("|"))
    )
    if not returns and "remember" in wanted:
        return ModelResponse(parts=[ToolCallPart("remember", {"content": wanted["remember"]})])
    if (not returns or returns[0].tool_name == "remember") and "recall" in wanted:
        return ModelResponse(parts=[ToolCallPart("recall", {"query": wanted["recall"]})])
    return ModelResponse(parts=[TextPart(str(returns[0].content) if returns else "nothing")])


AGENT = Agent(FunctionModel(scripted), deps_type=AstrocyteDeps, toolsets=[memory_toolset()])


async def test_agent_remembers_and_recalls_with_provenance(guarded: Astrocyte) -> None:
    deps = AstrocyteDeps(guarded, "users:alice", context=ALICE, tags=["chat"], metadata={"k": 1})
    result = await AGENT.run("remember: Alice drinks green tea every morning.", deps=deps)
    assert result.output.startswith("Remembered (1 memory, id ")
    stored = await guarded.recall("green tea", "users:alice", context=ALICE)
    assert [h.text for h in stored.hits] == ["Alice drinks green tea every morning."]
    assert stored.hits[0].provenance.tags == ["chat"]
    assert stored.hits[0].provenance.metadata == {"k": 1}
    assert stored.hits[0].memory_id in result.output

    result = await AGENT.run("recall: what does alice drink?", deps=deps)
    assert result.output == "1. Alice drinks green tea every morning."
    recall_returns = [
        p
        for m in result.all_messages()
        for p in getattr(m, "parts", [])
        if isinstance(p, ToolReturnPart) and p.tool_name == "recall"
    ]
    assert len(recall_returns) == 1
    (provenance,) = recall_returns[0].metadata
    assert provenance["memory_id"] == stored.hits[0].memory_id
    assert provenance["bank_id"] == "users:alice"
    assert provenance["tags"] == ["chat"] and provenance["metadata"] == {"k": 1}


async def test_one_agent_serves_two_users_in_their_own_banks(guarded: Astrocyte) -> None:
    alice = AstrocyteDeps(guarded, "users:alice", context=ALICE)
    bob = AstrocyteDeps(guarded, "users:bob", context=BOB)
    await AGENT.run("remember: My favourite drink is green tea.", deps=alice)
    await AGENT.run("remember: My favourite drink is black coffee.", deps=bob)

    a = await AGENT.run("recall: favourite drink", deps=alice)
    b = await AGENT.run("recall: favourite drink", deps=bob)
    assert a.output == "1. My favourite drink is green tea."
    assert b.output == "1. My favourite drink is black coffee."
    # each bank holds exactly its user's memory
    for bank, ctx, text in [
        ("users:alice", ALICE, "green tea"),
        ("users:bob", BOB, "black coffee"),
    ]:
        hits = (await guarded.recall("favourite drink", bank, context=ctx)).hits
        assert [h.text for h in hits] == [f"My favourite drink is {text}."]
    # bob's deps pointed at alice's bank are refused: the run fails with AccessDenied
    with pytest.raises(AccessDenied):
        await AGENT.run("recall: favourite drink", deps=AstrocyteDeps(guarded, "users:alice", BOB))


async def test_denied_context_fails_the_run(guarded: Astrocyte) -> None:
    # eve may write alice's bank, so remember works ...
    eve = AstrocyteDeps(guarded, "users:alice", context=EVE)
    result = await AGENT.run("remember: Eve left a note.", deps=eve)
    assert result.output.startswith("Remembered")
    # ... but recall needs read: Pydantic AI surfaces the tool's AccessDenied as is
    with pytest.raises(AccessDenied):
        await AGENT.run("recall: note", deps=eve)
    # a caller with no grant at all cannot store anything
    with pytest.raises(AccessDenied):
        await AGENT.run(
            "remember: Bob was here.", deps=AstrocyteDeps(guarded, "users:alice", context=BOB)
        )
    hits = (await guarded.recall("note here", "users:alice", context=ALICE)).hits
    assert [h.text for h in hits] == ["Eve left a note."]


async def test_test_model_calls_every_tool(guarded: Astrocyte) -> None:
    """Pydantic AI's TestModel calls each tool with schema-generated arguments."""
    agent = Agent(TestModel(), deps_type=AstrocyteDeps, toolsets=[memory_toolset()])
    deps = AstrocyteDeps(guarded, "users:bob", context=BOB)
    result = await agent.run("go", deps=deps)
    called = {
        p.tool_name
        for m in result.all_messages()
        for p in getattr(m, "parts", [])
        if isinstance(p, ToolReturnPart)
    }
    assert called == {"remember", "recall"}
    stats = {b.bank_id: b.memory_count for b in await guarded.list_banks(context=BOB)}
    assert stats == {"users:bob": 1}


def test_agent_run_sync() -> None:
    brain = Astrocyte.from_config(CONFIG)
    deps = AstrocyteDeps(brain, "notes")
    AGENT.run_sync("remember: The tea shop opens at eight.", deps=deps)
    assert AGENT.run_sync("recall: tea shop", deps=deps).output == (
        "1. The tea shop opens at eight."
    )


_text = st.text(st.characters(codec="utf-8", exclude_characters="|"), min_size=1).filter(
    lambda s: bool(normalise_text(s))
)  # retain refuses blank content


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_text)
def test_remember_stores_what_a_direct_retain_stores(content: str) -> None:
    """Whatever the model passes, the tool stores exactly what ``retain`` would."""
    brain = Astrocyte.from_config(CONFIG)
    result = AGENT.run_sync(f"remember: {content}", deps=AstrocyteDeps(brain, "b"))
    ids = re.findall(r"mem_[A-Za-z0-9_-]+", result.output)
    assert ids, result.output

    async def compare() -> None:
        direct = await brain.retain(content.strip(), "direct")
        mine = await brain.stores.documents.get("b", ids)
        theirs = await brain.stores.documents.get("direct", direct.memory_ids)
        assert [r.text for r in mine] == [r.text for r in theirs]

    asyncio.run(compare())
