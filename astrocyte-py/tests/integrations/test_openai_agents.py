"""OpenAI Agents SDK adapters: ``Runner.run`` of a real ``Agent`` whose chat-completions
model talks to the local OpenAI-compatible server, with AstrocyteSession and the memory
tools; plus the session's semantics on their own."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import pytest

pytest.importorskip("agents")
pytest.importorskip("uvicorn")

os.environ.setdefault("OPENAI_AGENTS_DISABLE_TRACING", "1")

from agents import (
    Agent,
    OpenAIChatCompletionsModel,
    Runner,
    SessionSettings,
    ToolCallOutputItem,
    UserError,
    set_tracing_disabled,
)
from agents.memory import Session
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai import AsyncOpenAI

from astrocyte import AccessDenied, Astrocyte, AstrocyteContext
from astrocyte.integrations.openai_agents import (
    HITS_KEY,
    SEQ_FIELD,
    SESSION_FIELD,
    AstrocyteSession,
    memory_tools,
)
from astrocyte.spi import RecordFilter
from astrocyte.testing.openai_server import OpenAICompatibleServer, tool_call_message

set_tracing_disabled(True)

CONFIG: dict[str, Any] = {"storage": {"backend": "memory"}, "embedder": {"provider": "hashing"}}
ALICE = AstrocyteContext(principal="user:alice")
BOB = AstrocyteContext(principal="user:bob")
EVE = AstrocyteContext(principal="user:eve")
GRANTS: dict[str, Any] = {
    "access_grants": [
        {"principals": ["user:alice"], "banks": ["users:alice"], "permissions": ["admin"]},
        # bob may read alice's bank but not forget in it
        {"principals": ["user:bob"], "banks": ["users:alice"], "permissions": ["read", "write"]},
        # eve may write alice's bank but never read it
        {"principals": ["user:eve"], "banks": ["users:alice"], "permissions": ["write"]},
    ]
}


def reply(messages: list[dict[str, Any]]) -> str | Mapping[str, Any]:
    """The scripted model: ``remember: X`` / ``recall: X`` become tool calls, a tool
    result is echoed back, anything else is answered with the user turns it saw."""
    last = messages[-1]
    if last["role"] == "tool":
        return f"tool said: {last['content']}"
    text = str(last["content"])
    for tool, arg in (("remember", "content"), ("recall", "query")):
        if text.startswith(f"{tool}: "):
            return tool_call_message(tool, {arg: text.removeprefix(f"{tool}: ")})
    users = [str(m["content"]) for m in messages if m["role"] == "user"]
    return f"seen {len(users)}: " + " | ".join(users)


@pytest.fixture(scope="module")
def server() -> Iterator[OpenAICompatibleServer]:
    with OpenAICompatibleServer(chat_reply=reply) as srv:
        yield srv


@pytest.fixture
async def guarded() -> AsyncIterator[Astrocyte]:
    async with Astrocyte.from_config({**CONFIG, **GRANTS}) as b:
        yield b


def make_agent(server: OpenAICompatibleServer, tools: list[Any] | None = None) -> Agent[Any]:
    client = AsyncOpenAI(base_url=server.base_url, api_key="test-key", max_retries=0)
    model = OpenAIChatCompletionsModel(model="test-model", openai_client=client)
    return Agent(name="assistant", instructions="Be brief.", model=model, tools=tools or [])


# --- agent runs ----------------------------------------------------------------------------


async def test_session_holds_the_conversation_across_runs(
    guarded: Astrocyte, server: OpenAICompatibleServer
) -> None:
    agent = make_agent(server)
    session = AstrocyteSession(guarded, "chat-1", bank_id="users:alice", context=ALICE)
    assert isinstance(session, Session)  # the SDK's runtime-checkable protocol

    first = await Runner.run(agent, "Hello, I am Alice and I like green tea.", session=session)
    assert first.final_output == "seen 1: Hello, I am Alice and I like green tea."
    second = await Runner.run(agent, "What did I say?", session=session)
    assert second.final_output == (
        "seen 2: Hello, I am Alice and I like green tea. | What did I say?"
    )
    sent = server.requests_to("chat/completions")[-1].json["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"]

    # a new session object over the same bank reads the same items, in order
    again = AstrocyteSession(guarded, "chat-1", bank_id="users:alice", context=ALICE)
    items = await again.get_items()
    assert [(i.get("role"), _text(i)) for i in items] == [
        ("user", "Hello, I am Alice and I like green tea."),
        ("assistant", first.final_output),
        ("user", "What did I say?"),
        ("assistant", second.final_output),
    ]
    # the conversation is ordinary memory in the bank too
    hits = (await guarded.recall("green tea", "users:alice", context=ALICE)).hits
    assert hits[0].text == "Hello, I am Alice and I like green tea."
    assert hits[0].provenance.metadata[SESSION_FIELD] == "chat-1"
    assert hits[0].provenance.metadata[SEQ_FIELD] == 0


async def test_tools_store_and_recall_with_provenance(
    guarded: Astrocyte, server: OpenAICompatibleServer
) -> None:
    agent = make_agent(server, memory_tools(guarded, "users:alice", context=ALICE))
    stored = await Runner.run(agent, "remember: Alice drinks green tea every morning.")
    assert str(stored.final_output).startswith("tool said: Remembered (1 memory, id ")
    hits = (await guarded.recall("green tea", "users:alice", context=ALICE)).hits
    assert [h.text for h in hits] == ["Alice drinks green tea every morning."]

    recalled = await Runner.run(agent, "recall: what does alice drink?")
    assert recalled.final_output == "tool said: 1. Alice drinks green tea every morning."
    outputs = [i for i in recalled.new_items if isinstance(i, ToolCallOutputItem)]
    assert len(outputs) == 1 and outputs[0].custom_data is not None
    (provenance,) = outputs[0].custom_data[HITS_KEY]
    assert provenance["memory_id"] == hits[0].memory_id
    assert provenance["bank_id"] == "users:alice"
    # provenance is SDK-side only: the tool message sent to the model is the text
    tool_msg = server.requests_to("chat/completions")[-1].json["messages"][-1]
    assert tool_msg == {
        "role": "tool",
        "tool_call_id": "call_recall",
        "content": "1. Alice drinks green tea every morning.",
    }


async def test_tools_and_session_together(
    guarded: Astrocyte, server: OpenAICompatibleServer
) -> None:
    agent = make_agent(server, memory_tools(guarded, "users:alice", context=ALICE))
    session = AstrocyteSession(guarded, "chat-2", bank_id="users:alice", context=ALICE)
    await Runner.run(agent, "remember: The tea shop opens at eight.", session=session)
    items = await session.get_items()
    assert [i.get("type", "message") for i in items] == [
        "message",
        "function_call",
        "function_call_output",
        "message",
    ]
    assert items[1]["name"] == "remember"  # type: ignore[typeddict-item]
    result = await Runner.run(agent, "Anything else?", session=session)
    assert result.final_output == (
        "seen 2: remember: The tea shop opens at eight. | Anything else?"
    )


async def test_identity_on_tools(guarded: Astrocyte, server: OpenAICompatibleServer) -> None:
    # eve may write: remember works
    agent = make_agent(server, memory_tools(guarded, "users:alice", context=EVE))
    await Runner.run(agent, "remember: Eve left a note.")
    # recall needs read: by default the SDK tells the model the call failed, nothing leaks
    result = await Runner.run(agent, "recall: note")
    assert result.final_output == (
        "tool said: An error occurred while running the tool. Please try again."
    )
    # with failure_error_function=None the run fails: the SDK raises its UserError
    # caused by Astrocyte's AccessDenied
    strict = make_agent(
        server,
        memory_tools(guarded, "users:alice", context=EVE, failure_error_function=None),
    )
    with pytest.raises(UserError) as denied:
        await Runner.run(strict, "recall: note")
    assert isinstance(denied.value.__cause__, AccessDenied)
    nobody = AstrocyteContext(principal="user:nobody")
    with pytest.raises(UserError) as denied:
        await Runner.run(
            make_agent(
                server,
                memory_tools(guarded, "users:alice", context=nobody, failure_error_function=None),
            ),
            "remember: I was here.",
        )
    assert isinstance(denied.value.__cause__, AccessDenied)
    hits = (await guarded.recall("note here", "users:alice", context=ALICE)).hits
    assert [h.text for h in hits] == ["Eve left a note."]


async def test_identity_on_session_runs(guarded: Astrocyte, server: OpenAICompatibleServer) -> None:
    # eve cannot read the bank, so a run on a session there fails before the model is asked
    calls = len(server.requests_to("chat/completions"))
    eve = AstrocyteSession(guarded, "chat-3", bank_id="users:alice", context=EVE)
    with pytest.raises(AccessDenied):
        await Runner.run(make_agent(server), "hi", session=eve)
    assert len(server.requests_to("chat/completions")) == calls
    alice = AstrocyteSession(guarded, "chat-3", bank_id="users:alice", context=ALICE)
    assert await alice.get_items() == []


def _text(item: Mapping[str, Any]) -> str:
    content = item.get("content")
    if isinstance(content, str):
        return content
    return "".join(str(p.get("text", "")) for p in content or [])


# --- session semantics ---------------------------------------------------------------------


def _msg(text: str, role: str = "user") -> Any:
    return {"role": role, "content": text}


async def test_session_methods(guarded: Astrocyte) -> None:
    s = AstrocyteSession(guarded, "s", bank_id="users:alice", context=ALICE)
    other = AstrocyteSession(guarded, "t", bank_id="users:alice", context=ALICE)
    assert await s.get_items() == [] and await s.pop_item() is None
    await s.add_items([_msg("one"), _msg("two", "assistant")])
    await s.add_items([])
    await s.add_items([_msg("one")])  # a repeated message is its own item
    await other.add_items([_msg("elsewhere")])
    assert await s.get_items() == [_msg("one"), _msg("two", "assistant"), _msg("one")]
    assert await s.get_items(limit=2) == [_msg("two", "assistant"), _msg("one")]
    assert await s.get_items(limit=0) == []

    assert await s.pop_item() == _msg("one")
    assert await s.get_items() == [_msg("one"), _msg("two", "assistant")]
    await s.add_items([_msg("three")])  # numbering continues after a pop
    assert await s.get_items() == [_msg("one"), _msg("two", "assistant"), _msg("three")]
    # the popped item is forgotten from the bank, not hidden
    docs = guarded.stores.documents
    ids = await docs.find("users:alice", RecordFilter(metadata={SESSION_FIELD: "s"}))
    assert sorted(r.text for r in await docs.get("users:alice", ids)) == ["one", "three", "two"]

    await s.clear_session()
    assert await s.get_items() == []
    assert await other.get_items() == [_msg("elsewhere")]  # other sessions stay

    limited = AstrocyteSession(
        guarded, "t", bank_id="users:alice", context=ALICE, session_settings=SessionSettings(2)
    )
    await limited.add_items([_msg("a"), _msg("b")])
    assert await limited.get_items() == [_msg("a"), _msg("b")]
    assert await limited.get_items(limit=3) == [_msg("elsewhere"), _msg("a"), _msg("b")]
    async with Astrocyte.from_config(CONFIG) as fresh:  # no bank yet: nothing to do
        empty = AstrocyteSession(fresh, "never-used", bank_id="empty")
        await empty.clear_session()
        assert await empty.get_items() == [] and await empty.pop_item() is None


async def test_session_grants(guarded: Astrocyte) -> None:
    s = AstrocyteSession(guarded, "g", bank_id="users:alice", context=ALICE)
    await s.add_items([_msg("from alice")])
    eve = AstrocyteSession(guarded, "g", bank_id="users:alice", context=EVE)
    await eve.add_items([_msg("from eve")])  # write-only may append ...
    with pytest.raises(AccessDenied):
        await eve.get_items()  # ... but not read
    bob = AstrocyteSession(guarded, "g", bank_id="users:alice", context=BOB)
    assert await bob.get_items() == [_msg("from alice"), _msg("from eve")]
    with pytest.raises(AccessDenied):
        await bob.pop_item()  # needs forget
    with pytest.raises(AccessDenied):
        await bob.clear_session()
    assert len(await s.get_items()) == 2
    nobody = AstrocyteSession(guarded, "g", bank_id="users:alice")
    nobody.context = AstrocyteContext(principal="user:nobody")
    with pytest.raises(AccessDenied):
        await nobody.add_items([_msg("x")])


async def test_long_items_round_trip(guarded: Astrocyte) -> None:
    s = AstrocyteSession(guarded, "long", bank_id="users:alice", context=ALICE)
    long_text = " ".join(f"word{i}" for i in range(8000))  # chunked into several memories
    call: Any = {"type": "function_call", "name": "f", "arguments": "{}", "call_id": "c1"}
    await s.add_items([_msg(long_text), call, _msg("")])
    assert await s.get_items() == [_msg(long_text), call, _msg("")]
    docs = guarded.stores.documents
    records = await docs.get(
        "users:alice", await docs.find("users:alice", RecordFilter(metadata={SEQ_FIELD: 0}))
    )
    assert len(records) > 1  # the long message really was chunked
    texts = {
        r.metadata[SEQ_FIELD]: r.text
        for r in await docs.get(
            "users:alice",
            await docs.find("users:alice", RecordFilter(metadata={SESSION_FIELD: "long"})),
        )
    }
    assert texts[1] == "f({})" and texts[2] == json.dumps(_msg(""), sort_keys=True)
    with pytest.raises(ValueError, match="over the"):
        await s.add_items([_msg("x" * 300_000)])


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
_item = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant", "system"]), "content": st.text()},
    optional={"extra": _json},
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(_item, min_size=1, max_size=4), min_size=1, max_size=3))
def test_items_round_trip_exactly_in_order(batches: list[list[dict[str, Any]]]) -> None:
    async def check() -> None:
        async with Astrocyte.from_config(CONFIG) as brain:
            s = AstrocyteSession(brain, "h", bank_id="b")
            for batch in batches:
                await s.add_items(batch)  # type: ignore[arg-type]
            flat = [item for batch in batches for item in batch]
            got = await s.get_items()
            assert json.dumps(got) == json.dumps(flat)
            assert await s.pop_item() == flat[-1]
            assert await s.get_items() == flat[:-1]

    asyncio.run(check())
