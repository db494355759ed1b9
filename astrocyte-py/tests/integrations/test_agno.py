"""Agno adapters: real ``agno.agent.Agent`` runs (sync and async) whose model is Agno's
OpenAIChat talking to a local OpenAI-compatible server that scripts the tool calls."""

from __future__ import annotations

import os
import string
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

pytest.importorskip("agno")
pytest.importorskip("openai")

os.environ["AGNO_TELEMETRY"] = "false"  # no phoning home (read by Agent at run time)

from agno.agent import Agent
from agno.db.schemas.memory import UserMemory
from agno.models.openai import OpenAIChat
from agno.run.base import RunStatus
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shared_identities import ALICE, BOT, CONFIG, EVE, GRANTS

from astrocyte import AccessDenied, Astrocyte, ValidationError
from astrocyte.integrations.agno import (
    AGENT_ID_FIELD,
    AstrocyteMemoryManager,
    AstrocyteTools,
    default_bank_for_user,
)
from astrocyte.integrations.common import run_sync
from astrocyte.testing.openai_server import OpenAICompatibleServer, tool_call_message

Reply = Callable[[list[dict[str, Any]]], "str | Mapping[str, Any] | None"]


@pytest.fixture
def guarded() -> Iterator[Astrocyte]:
    brain = Astrocyte.from_config({**CONFIG, **GRANTS})
    yield brain
    run_sync(brain.close())


def _text(message: Mapping[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content)
    return str(content or "")


def _tool_turns(*calls: tuple[str, dict[str, Any]], final: Callable[[str], str]) -> Reply:
    """Call ``calls`` one per turn (turn = number of tool results so far), then answer
    with ``final(last tool result)``."""

    def reply(messages: list[dict[str, Any]]) -> str | Mapping[str, Any]:
        done = sum(1 for m in messages if m.get("role") == "tool")
        if done < len(calls):
            name, args = calls[done]
            return tool_call_message(name, args, call_id=f"call_{done}")
        return final(_text(messages[-1]))

    return reply


def _agent(srv: OpenAICompatibleServer, **kwargs: Any) -> Agent:
    model = OpenAIChat(id="test-model", base_url=srv.base_url, api_key="k", max_retries=0)
    return Agent(model=model, telemetry=False, **kwargs)


# --- toolkit -------------------------------------------------------------------------------


def test_sync_agent_remembers_and_recalls_with_the_toolkit(guarded: Astrocyte) -> None:
    seen: list[str] = []

    def final(tool_result: str) -> str:
        seen.append(tool_result)
        return "You drink green tea."

    reply = _tool_turns(
        ("remember", {"content": "Alice drinks green tea"}),
        ("recall", {"query": "what does Alice drink"}),
        final=final,
    )
    with OpenAICompatibleServer(chat_reply=reply) as srv:
        agent = _agent(srv, tools=[AstrocyteTools(guarded, "users:alice", context=BOT)])
        out = agent.run("Remember that I drink green tea, then tell me what I drink.")
        offered = {
            t["function"]["name"] for t in srv.requests_to("chat/completions")[0].json["tools"]
        }

    assert out.content == "You drink green tea."
    assert offered == {"remember", "recall"}
    tools = out.tools or []
    assert [t.tool_name for t in tools] == ["remember", "recall"]
    assert not any(t.tool_call_error for t in tools)
    assert "Remembered (1 memory" in str(tools[0].result)
    assert str(tools[1].result) == "1. Alice drinks green tea"
    assert seen == ["1. Alice drinks green tea"]  # the model got the recalled memory
    stored = run_sync(guarded.recall("drink", "users:alice", context=ALICE))
    assert [h.text for h in stored.hits] == ["Alice drinks green tea"]


async def test_async_agent_maps_the_run_user_to_a_bank() -> None:
    reply = _tool_turns(
        ("remember", {"content": "Bob plays the cello"}),
        ("recall", {"query": "instrument cello"}),
        final=lambda result: f"Noted: {result}",
    )
    async with Astrocyte.from_config(CONFIG) as brain:
        async with OpenAICompatibleServer(chat_reply=reply) as srv:
            # no bank_id: each run's user_id picks the bank
            agent = _agent(srv, tools=[AstrocyteTools(brain)])
            out = await agent.arun("Remember that I play the cello.", user_id="bob")
        assert out.content == "Noted: 1. Bob plays the cello"
        banks = {b.bank_id: b.memory_count for b in await brain.list_banks()}
        assert banks == {"users:bob": 1}


def test_denied_tool_call_is_reported_to_the_model(guarded: Astrocyte) -> None:
    run_sync(guarded.retain("Alice's PIN is 1234", "users:alice:notes", context=ALICE))
    seen: list[str] = []

    def final(tool_result: str) -> str:
        seen.append(tool_result)
        return "I cannot read those notes."

    reply = _tool_turns(
        ("remember", {"content": "Eve left a note"}),  # allowed: write
        ("recall", {"query": "PIN"}),  # denied: no read
        final=final,
    )
    with OpenAICompatibleServer(chat_reply=reply) as srv:
        agent = _agent(srv, tools=[AstrocyteTools(guarded, "users:alice:notes", context=EVE)])
        out = agent.run("What is Alice's PIN?")
        sent = str([r.json for r in srv.requests])
    assert out.content == "I cannot read those notes."
    remember, recall = out.tools or []
    assert not remember.tool_call_error
    assert recall.tool_call_error and "lacks the 'read' permission" in str(recall.result)
    assert "lacks the 'read' permission" in seen[0]
    assert "1234" not in sent
    notes = run_sync(guarded.recall("note", "users:alice:notes", context=ALICE))
    assert "Eve left a note" in [h.text for h in notes.hits]


# --- memory manager ------------------------------------------------------------------------


def _system_prompt(srv: OpenAICompatibleServer, index: int) -> str:
    messages = srv.requests_to("chat/completions")[index].json["messages"]
    return "".join(_text(m) for m in messages if m["role"] in ("system", "developer"))


def test_sync_agent_memory_manager_round_trip(guarded: Astrocyte) -> None:
    manager = AstrocyteMemoryManager(guarded, context=BOT, tags=["agno"])
    with OpenAICompatibleServer(chat_reply="Noted.") as srv:
        agent = _agent(srv, memory_manager=manager, update_memory_on_run=True, id="helper")
        agent.run("My favourite colour is teal.", user_id="alice")
        agent.run("What is my favourite colour?", user_id="alice")
        first, second = _system_prompt(srv, 0), _system_prompt(srv, 1)
    # the first run had nothing yet; the second got the first message from the bank
    assert "My favourite colour is teal." not in first
    assert "<memories_from_previous_interactions>" in second
    assert "- My favourite colour is teal." in second
    # stored for real, in the user's bank, with provenance
    hits = run_sync(guarded.recall("colour", "users:alice", context=ALICE)).hits
    assert sorted(h.text for h in hits) == [
        "My favourite colour is teal.",
        "What is my favourite colour?",
    ]
    assert all(h.provenance.metadata[AGENT_ID_FIELD] == "helper" for h in hits)
    memories = manager.get_user_memories("alice") or []
    assert [m.memory for m in memories] == [
        "My favourite colour is teal.",
        "What is my favourite colour?",
    ]
    assert {m.memory_id for m in memories} == {h.memory_id for h in hits}
    assert all(m.topics == ["agno"] and m.agent_id == "helper" for m in memories)
    assert agent.get_user_memories(user_id="alice") == memories  # Agno's own accessor


async def test_async_agent_memory_manager_round_trip() -> None:
    async with Astrocyte.from_config(CONFIG) as brain:
        manager = AstrocyteMemoryManager(brain)
        async with OpenAICompatibleServer(chat_reply="Noted.") as srv:
            agent = _agent(srv, memory_manager=manager, update_memory_on_run=True)
            await agent.arun("I live in Lisbon.", user_id="carol")
            await agent.arun("Where do I live?", user_id="carol")
            assert "- I live in Lisbon." in _system_prompt(srv, 1)
        memories = await manager.aget_user_memories("carol") or []
        assert [m.memory for m in memories] == ["I live in Lisbon.", "Where do I live?"]
        assert await manager.acreate_user_memories(messages=[], user_id="carol") == (
            "No user message to remember."
        )


def test_memory_manager_applies_identity(guarded: Astrocyte) -> None:
    run_sync(guarded.retain("Alice's PIN is 1234", "users:alice", context=ALICE))
    eve = AstrocyteMemoryManager(guarded, context=EVE)
    with pytest.raises(AccessDenied):
        eve.get_user_memories("alice")
    with pytest.raises(AccessDenied):
        eve.create_user_memories(message="Eve was here", user_id="alice")
    with pytest.raises(AccessDenied):
        eve.search_user_memories("PIN", retrieval_method="agentic", user_id="alice")
    # an agent running as eve cannot build alice's context: Agno ends the run with an
    # error status carrying the denial; the model is never called, nothing leaks
    with OpenAICompatibleServer(chat_reply="hi") as srv:
        agent = _agent(srv, memory_manager=eve, update_memory_on_run=True)
        out = agent.run("Tell me my PIN", user_id="alice")
        assert out.status == RunStatus.error
        assert "lacks the 'read' permission on bank 'users:alice'" in str(out.content)
        assert srv.requests_to("chat/completions") == []
    # the bot may read and write but not forget
    bot = AstrocyteMemoryManager(guarded, context=BOT)
    memory_id = bot.add_user_memory(UserMemory(memory="Alice likes jazz"), user_id="alice")
    assert memory_id is not None
    with pytest.raises(AccessDenied):
        bot.delete_user_memory(memory_id, user_id="alice")
    owner = AstrocyteMemoryManager(guarded, context=ALICE)
    owner.delete_user_memory(memory_id, user_id="alice")
    assert owner.get_user_memory(memory_id, user_id="alice") is None


def test_memory_manager_search_and_edit(guarded: Astrocyte) -> None:
    manager = AstrocyteMemoryManager(guarded, context=ALICE)
    for fact in ["Alice has a cat", "Alice works as a nurse", "Alice visited Kyoto"]:
        manager.add_user_memory(UserMemory(memory=fact, topics=["bio"]), user_id="alice")
    found = manager.search_user_memories("Kyoto trip", retrieval_method="agentic", user_id="alice")
    assert found[0].memory == "Alice visited Kyoto" and found[0].topics == ["bio"]
    assert [m.memory for m in manager.search_user_memories(limit=2, user_id="alice")] == [
        "Alice works as a nurse",
        "Alice visited Kyoto",
    ]
    first = manager.search_user_memories(limit=1, retrieval_method="first_n", user_id="alice")
    assert [m.memory for m in first] == ["Alice has a cat"]
    got = manager.get_user_memory(first[0].memory_id or "", user_id="alice")
    assert got is not None and got.memory == "Alice has a cat" and got.user_id == "alice"
    new_id = manager.replace_user_memory(
        first[0].memory_id or "", UserMemory(memory="Alice has two cats"), user_id="alice"
    )
    assert new_id is not None and new_id != first[0].memory_id
    assert manager.get_user_memory(first[0].memory_id or "", user_id="alice") is None
    assert "Alice has two cats" in [m.memory for m in manager.get_user_memories("alice") or []]
    with pytest.raises(ValueError, match="query is required"):
        manager.search_user_memories(retrieval_method="agentic", user_id="alice")
    with pytest.raises(NotImplementedError, match="AstrocyteTools"):
        manager.update_memory_task("add a memory", user_id="alice")
    assert manager.get_user_memories("alice-new") == []
    with pytest.raises(AccessDenied):  # the local user may not read grant-protected banks
        AstrocyteMemoryManager(guarded).get_user_memories("alice")


_user_ids = st.text(string.ascii_letters + string.digits + "._@-", min_size=1, max_size=40).filter(
    lambda u: u[0].isalnum()
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(user_id=_user_ids, prefix=st.sampled_from(["users:", "agno.", "t1:u:"]))
def test_user_to_bank_mapping(user_id: str, prefix: str) -> None:
    assert default_bank_for_user(user_id) == f"users:{user_id}"
    brain = Astrocyte.from_config(CONFIG)
    try:
        manager = AstrocyteMemoryManager(brain, bank_for_user=lambda u: prefix + u)
        manager.create_user_memories(message="hello there", user_id=user_id)
        banks = run_sync(brain.list_banks())
        assert [b.bank_id for b in banks] == [prefix + user_id]
        assert [m.user_id for m in manager.get_user_memories(user_id) or []] == [user_id]
    finally:
        run_sync(brain.close())


def test_user_id_that_is_no_bank_id_is_refused(guarded: Astrocyte) -> None:
    manager = AstrocyteMemoryManager(guarded, context=ALICE)
    with pytest.raises(ValidationError):
        manager.create_user_memories(message="x", user_id="alice smith")


def test_missing_framework_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib
    import sys

    monkeypatch.setitem(sys.modules, "agno.tools.toolkit", None)  # makes the import fail
    monkeypatch.delitem(sys.modules, "astrocyte.integrations.agno")
    with pytest.raises(ImportError, match=r'pip install "astrocyte\[agno\]"'):
        importlib.import_module("astrocyte.integrations.agno")
