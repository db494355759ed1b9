"""smolagents adapter: real ToolCallingAgent and CodeAgent runs whose model is smolagents'
own OpenAIModel talking to a local OpenAI-compatible server that scripts the tool calls."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

pytest.importorskip("smolagents")
pytest.importorskip("openai")

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shared_identities import ALICE, BOT, CONFIG, EVE, GRANTS
from smolagents import ActionStep, CodeAgent, OpenAIModel, ToolCallingAgent
from smolagents.utils import AgentToolExecutionError

from astrocyte import AccessDenied, Astrocyte
from astrocyte.integrations.common import run_sync
from astrocyte.integrations.smolagents import RecallTool, RememberTool, memory_tools
from astrocyte.testing.openai_server import OpenAICompatibleServer, tool_call_message

Reply = Callable[[list[dict[str, Any]]], "str | Mapping[str, Any] | None"]


@pytest.fixture
def guarded() -> Iterator[Astrocyte]:
    # smolagents is sync: the brain lives on run_sync's loop for the whole test.
    brain = Astrocyte.from_config({**CONFIG, **GRANTS})
    yield brain
    run_sync(brain.close())


def _text(message: Mapping[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content)
    return str(content or "")


def _scripted(*turns: Callable[[str], str | Mapping[str, Any]]) -> Reply:
    """A chat_reply playing ``turns`` in order: turn ``i`` answers the request that has
    ``i`` assistant messages so far and sees the last message's text (the observation)."""

    def reply(messages: list[dict[str, Any]]) -> str | Mapping[str, Any]:
        done = sum(1 for m in messages if m.get("role") == "assistant")
        return turns[min(done, len(turns) - 1)](_text(messages[-1]))

    return reply


def _model(srv: OpenAICompatibleServer) -> OpenAIModel:
    return OpenAIModel(
        model_id="test-model", api_base=srv.base_url, api_key="k", client_kwargs={"max_retries": 0}
    )


def _steps(agent: Any) -> list[ActionStep]:
    return [s for s in agent.memory.steps if isinstance(s, ActionStep)]


def test_tool_calling_agent_remembers_and_recalls(guarded: Astrocyte) -> None:
    seen: list[str] = []

    def final(observation: str) -> Mapping[str, Any]:
        seen.append(observation)
        return tool_call_message("final_answer", {"answer": "You drink green tea."})

    reply = _scripted(
        lambda _: tool_call_message("remember", {"content": "Alice drinks green tea"}),
        lambda _: tool_call_message("recall", {"query": "what does Alice drink"}),
        final,
    )
    with OpenAICompatibleServer(chat_reply=reply) as srv:
        agent = ToolCallingAgent(
            tools=memory_tools(guarded, "users:alice", context=BOT),
            model=_model(srv),
            max_steps=5,
            verbosity_level=0,
        )
        answer = agent.run("Remember that I drink green tea, then tell me what I drink.")
        chat = srv.requests_to("chat/completions")

    assert answer == "You drink green tea."
    steps = _steps(agent)
    assert [[c.name for c in s.tool_calls or []] for s in steps] == [
        ["remember"],
        ["recall"],
        ["final_answer"],
    ]
    assert all(s.error is None for s in steps)
    assert "Remembered (1 memory" in str(steps[0].observations)
    # the recalled memory is in the agent's memory, and it went back to the model
    assert "1. Alice drinks green tea" in str(steps[1].observations)
    assert "Alice drinks green tea" in seen[0]
    # the model was offered both tools with our schemas
    offered = {t["function"]["name"]: t["function"] for t in chat[0].json["tools"]}
    assert offered["remember"]["parameters"]["required"] == ["content"]
    assert offered["recall"]["parameters"]["properties"]["query"]["type"] == "string"
    # stored for real, in the bank, readable by its owner
    stored = run_sync(guarded.recall("drink", "users:alice", context=ALICE))
    assert [h.text for h in stored.hits] == ["Alice drinks green tea"]


def test_streaming_tool_calling_agent(guarded: Astrocyte) -> None:
    run_sync(guarded.retain("Alice's cat is called Tom", "users:alice", context=ALICE))
    reply = _scripted(
        lambda _: tool_call_message("recall", {"query": "cat name"}),
        lambda obs: tool_call_message("final_answer", {"answer": obs.split("1. ")[-1][:25]}),
    )
    with OpenAICompatibleServer(chat_reply=reply) as srv:
        agent = ToolCallingAgent(
            tools=memory_tools(guarded, "users:alice", context=BOT),
            model=_model(srv),
            max_steps=4,
            verbosity_level=0,
            stream_outputs=True,
        )
        answer = agent.run("What is my cat called?")
        assert all(r.json.get("stream") is True for r in srv.requests_to("chat/completions"))
    assert answer == "Alice's cat is called Tom"


def test_code_agent_gets_structured_provenance(guarded: Astrocyte) -> None:
    run_sync(
        guarded.retain(
            "Alice flew to Kyoto in May",
            "users:alice",
            source="trip-42",
            tags=["travel"],
            metadata={"channel": "email"},
            context=ALICE,
        )
    )
    code = (
        "Thought: look it up.\n<code>\n"
        'hits = recall(query="Kyoto trip")\n'
        'final_answer([hits[0]["text"], hits[0]["source_id"], hits[0]["tags"],'
        ' hits[0]["metadata"]["channel"], hits[0]["bank_id"]])\n</code>'
    )
    with OpenAICompatibleServer(chat_reply=code) as srv:
        agent = CodeAgent(
            tools=[RecallTool(guarded, "users:alice", context=BOT, structured=True)],
            model=_model(srv),
            max_steps=3,
            verbosity_level=0,
        )
        answer = agent.run("Where did I travel?")
        system_prompt = _text(srv.requests_to("chat/completions")[0].json["messages"][0])
    assert answer == ["Alice flew to Kyoto in May", "trip-42", ["travel"], "email", "users:alice"]
    # the code agent was told the tool returns data with provenance
    assert "def recall(query: string) -> array" in system_prompt
    assert "provenance" in system_prompt


def test_denied_recall_is_surfaced_as_a_tool_error(guarded: Astrocyte) -> None:
    run_sync(guarded.retain("Alice's PIN is 1234", "users:alice:notes", context=ALICE))
    seen: list[str] = []

    def final(observation: str) -> Mapping[str, Any]:
        seen.append(observation)
        return tool_call_message("final_answer", {"answer": "I cannot read those notes."})

    def reply(messages: list[dict[str, Any]]) -> Mapping[str, Any]:
        # a failed step adds no assistant message, only the error: answer on seeing it
        last = _text(messages[-1])
        return final(last) if "Error" in last else tool_call_message("recall", {"query": "PIN"})

    with OpenAICompatibleServer(chat_reply=reply) as srv:
        agent = ToolCallingAgent(
            tools=memory_tools(guarded, "users:alice:notes", context=EVE),
            model=_model(srv),
            max_steps=3,
            verbosity_level=0,
        )
        answer = agent.run("What is Alice's PIN?")
    assert answer == "I cannot read those notes."
    failed = _steps(agent)[0]
    assert isinstance(failed.error, AgentToolExecutionError)
    assert isinstance(failed.error.__cause__, AccessDenied)
    assert "AccessDenied" in seen[0] and "1234" not in seen[0]
    assert "1234" not in json.dumps([r.json for r in srv.requests])


def test_denied_remember_stores_nothing(guarded: Astrocyte) -> None:
    def reply(messages: list[dict[str, Any]]) -> Mapping[str, Any]:
        if "Error" in _text(messages[-1]):
            return tool_call_message("final_answer", {"answer": "done"})
        return tool_call_message("remember", {"content": "Eve was here"})

    with OpenAICompatibleServer(chat_reply=reply) as srv:
        # eve has no grant at all on alice's main bank
        agent = ToolCallingAgent(
            tools=memory_tools(guarded, "users:alice", context=EVE),
            model=_model(srv),
            max_steps=3,
            verbosity_level=0,
        )
        agent.run("Remember that Eve was here.")
    assert isinstance(_steps(agent)[0].error, AgentToolExecutionError)
    assert isinstance(_steps(agent)[0].error.__cause__, AccessDenied)
    assert run_sync(guarded.list_banks(context=ALICE)) == []


def test_tools_directly_and_their_schema(guarded: Astrocyte) -> None:
    remember = RememberTool(
        guarded, "users:alice", context=BOT, tags=["chat"], metadata={"via": "smolagents"}
    )
    recall = RecallTool(guarded, "users:alice", context=BOT, max_results=1)
    assert (remember.name, remember.output_type) == ("remember", "string")
    assert (recall.name, recall.output_type) == ("recall", "string")
    assert "Remembered" in remember(content="Bob likes chess")
    remember("Bob likes tennis")  # smolagents also accepts a positional argument
    assert recall(query="chess") == "1. Bob likes chess"
    hits = run_sync(guarded.recall("chess", "users:alice", context=ALICE)).hits
    assert list(hits[0].provenance.tags) == ["chat"]
    assert hits[0].provenance.metadata == {"via": "smolagents"}
    with pytest.raises(AccessDenied):
        RecallTool(guarded, "users:alice", context=EVE)(query="chess")
    run_sync(guarded.create_bank("users:alice:empty", context=ALICE))
    assert (
        RecallTool(guarded, "users:alice:empty", context=ALICE)(query="x") == "No memories found."
    )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    fact=st.text(
        st.characters(categories=("L", "N", "P", "S"), codec="utf-8") | st.just(" "),
        min_size=1,
        max_size=200,
    ).filter(lambda s: s.strip())
)
def test_remembered_text_comes_back(fact: str) -> None:
    brain = Astrocyte.from_config(CONFIG)
    try:
        remember, recall = memory_tools(brain, "b", structured=True)
        remember(content=fact)
        hits = recall(query=fact)
        # retain normalises (NFC, runs of spaces); the words come back, with provenance
        assert [h["text"].split() for h in hits] == [unicodedata.normalize("NFC", fact).split()]
        assert hits[0]["bank_id"] == "b"
    finally:
        run_sync(brain.close())


def test_missing_framework_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib
    import sys

    monkeypatch.setitem(sys.modules, "smolagents", None)  # makes the import fail
    monkeypatch.delitem(sys.modules, "astrocyte.integrations.smolagents")
    with pytest.raises(ImportError, match=r'pip install "astrocyte\[smolagents\]"'):
        importlib.import_module("astrocyte.integrations.smolagents")
