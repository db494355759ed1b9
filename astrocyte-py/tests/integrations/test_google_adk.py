"""Google ADK: AstrocyteMemoryService under a real ``Runner`` and ``LlmAgent``.

The model is ADK's own scripted test model, ``google.adk.cli.agent_test_runner.MockModel``
(a ``BaseLlm`` that answers with a fixed list of contents and records every request), so
the runs below go through ADK's real flow: instructions, memory tools, function calls and
function responses, events and sessions. No network is used."""

from __future__ import annotations

import logging
import os
import string
from collections.abc import AsyncIterator
from typing import Any

import pytest

os.environ.setdefault("OTEL_SDK_DISABLED", "true")
pytest.importorskip("google.adk")

from google.adk.agents import LlmAgent
from google.adk.cli.agent_test_runner import MockModel
from google.adk.events.event import Event
from google.adk.memory.memory_entry import MemoryEntry
from google.adk.runners import Runner
from google.adk.sessions import InMemorySessionService, Session
from google.adk.tools import load_memory
from google.adk.tools.preload_memory_tool import PreloadMemoryTool
from google.genai import types
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from astrocyte import AccessDenied, Astrocyte, AstrocyteContext
from astrocyte.integrations.common import run_sync
from astrocyte.integrations.google_adk import AstrocyteMemoryService

CONFIG: dict[str, Any] = {"storage": {"backend": "memory"}, "embedder": {"provider": "hashing"}}
APP = "tea_app"
GRANTS: dict[str, Any] = {
    "access_grants": [
        {"principals": ["user:alice"], "banks": [f"{APP}:alice"], "permissions": ["admin"]},
        {"principals": ["user:eve"], "banks": [f"{APP}:eve"], "permissions": ["admin"]},
    ]
}


@pytest.fixture
async def brain() -> AsyncIterator[Astrocyte]:
    async with Astrocyte.from_config(CONFIG) as b:
        yield b


@pytest.fixture
async def guarded() -> AsyncIterator[Astrocyte]:
    async with Astrocyte.from_config({**CONFIG, **GRANTS}) as b:
        yield b


def _text(text: str, role: str = "model") -> types.Content:
    return types.Content(role=role, parts=[types.Part.from_text(text=text)])


def _call(name: str, **args: Any) -> types.Content:
    return types.Content(role="model", parts=[types.Part.from_function_call(name=name, args=args)])


async def _run(
    memory: AstrocyteMemoryService,
    model: MockModel,
    tools: list[Any],
    user_id: str,
    message: str,
) -> tuple[Session, list[Event]]:
    """One turn of a fresh session of a real Runner + LlmAgent."""
    sessions = InMemorySessionService()
    agent = LlmAgent(name="assistant", model=model, instruction="Be brief.", tools=tools)
    runner = Runner(app_name=APP, agent=agent, session_service=sessions, memory_service=memory)
    session = await sessions.create_session(app_name=APP, user_id=user_id)
    events = [
        e
        async for e in runner.run_async(
            user_id=user_id, session_id=session.id, new_message=_text(message, "user")
        )
    ]
    done = await sessions.get_session(app_name=APP, user_id=user_id, session_id=session.id)
    assert done is not None
    await runner.close()
    return done, events


def _function_responses(events: list[Event]) -> list[dict[str, Any]]:
    return [
        dict(part.function_response.response or {})
        for e in events
        for part in (e.content.parts or [] if e.content else [])
        if part.function_response
    ]


async def _bank_size(brain: Astrocyte, bank: str) -> int:
    return sum(b.memory_count for b in await brain.list_banks() if b.bank_id == bank)


async def test_session_to_memory_then_load_memory_in_a_new_session(brain: Astrocyte) -> None:
    memory = AstrocyteMemoryService(brain)
    first, _ = await _run(
        memory,
        MockModel.create([_text("Noted: green tea.")]),
        [],
        "alice",
        "I drink green tea every morning.",
    )
    await memory.add_session_to_memory(first)

    # The session's two text events are in the bank of (app, user), with provenance.
    bank = f"{APP}:alice"
    stored = await brain.recall("green tea", bank)
    by_author = {h.provenance.metadata["adk_author"]: h for h in stored.hits}
    assert set(by_author) == {"user", "assistant"}
    user_hit = by_author["user"]
    assert user_hit.text == "I drink green tea every morning."
    assert user_hit.provenance.source_id == first.id
    user_event = next(e for e in first.events if e.author == "user")
    assert user_hit.provenance.metadata["adk_event_id"] == user_event.id
    assert user_hit.provenance.metadata["adk_invocation_id"] == user_event.invocation_id
    assert user_hit.provenance.occurred_at is not None
    assert abs(user_hit.provenance.occurred_at.timestamp() - user_event.timestamp) < 1e-3

    # Adding the same session again (ADK may) stores nothing new.
    size = await _bank_size(brain, bank)
    assert size == 2
    await memory.add_session_to_memory(first)
    assert await _bank_size(brain, bank) == size

    # A new session: the model calls ADK's load_memory tool, which searches Astrocyte.
    model = MockModel.create([_call("load_memory", query="tea"), _text("You drink green tea.")])
    _, events = await _run(memory, model, [load_memory], "alice", "What do I drink?")
    (response,) = _function_responses(events)
    memories: list[MemoryEntry] = response["result"].memories  # LoadMemoryResponse
    texts = [(m.content.parts or [])[0].text for m in memories]
    assert "I drink green tea every morning." in texts
    loaded = memories[texts.index("I drink green tea every morning.")]
    assert loaded.author == "user"
    assert loaded.custom_metadata["bank_id"] == bank
    assert loaded.custom_metadata["source_id"] == first.id
    # ... and the model saw that tool result on its second turn.
    second_turn = model.requests[1]
    seen = second_turn.contents[-1].parts or []
    assert seen[0].function_response is not None
    assert seen[0].function_response.response == response
    assert events[-1].content is not None
    assert events[-1].content.parts is not None
    assert events[-1].content.parts[0].text == "You drink green tea."


async def test_preload_memory_puts_recalled_memories_in_the_prompt(brain: Astrocyte) -> None:
    memory = AstrocyteMemoryService(brain, bank_template="{user_id}-{app_name}")
    await memory.add_memory(
        app_name=APP,
        user_id="bob",
        memories=[
            MemoryEntry(
                content=_text("Bob's favourite tea is oolong.", "user"),
                author="user",
                timestamp="2024-05-01T09:00:00+00:00",
                id="m1",
            )
        ],
    )
    model = MockModel.create([_text("Oolong.")])
    await _run(memory, model, [PreloadMemoryTool()], "bob", "Which tea do I like?")
    prompt = str(model.requests[0].contents)
    assert "PAST_CONVERSATIONS" in prompt
    assert "Bob's favourite tea is oolong." in prompt
    assert "2024-05-01T09:00:00+00:00" in prompt
    # add_memory with the same entry id is idempotent.
    entry = MemoryEntry(content=_text("Bob's favourite tea is oolong.", "user"), id="m1")
    await memory.add_memory(app_name=APP, user_id="bob", memories=[entry])
    assert await _bank_size(brain, f"bob-{APP}") == 1


async def test_events_delta_search_and_delete(brain: Astrocyte) -> None:
    memory = AstrocyteMemoryService(brain, bank=lambda app, user: f"{app}.{user}.mem")
    events = [
        Event(
            author="user", invocation_id="inv1", content=_text("Carol likes jasmine tea.", "user")
        ),
        Event(author="assistant", invocation_id="inv1", content=None),  # no text: skipped
        Event(
            author="assistant",
            invocation_id="inv1",
            content=types.Content(
                role="model", parts=[types.Part.from_function_call(name="x", args={})]
            ),
        ),
    ]
    await memory.add_events_to_memory(
        app_name=APP,
        user_id="carol",
        events=events,
        session_id="s1",
        custom_metadata={"channel": "web", "nested": {"ignored": True}},
    )
    found = await memory.search_memory(app_name=APP, user_id="carol", query="jasmine")
    (entry,) = found.memories
    assert entry.author == "user" and entry.content.role == "user"
    assert entry.custom_metadata["metadata"]["channel"] == "web"
    assert "nested" not in entry.custom_metadata["metadata"]
    assert entry.custom_metadata["metadata"]["adk_session_id"] == "s1"
    assert entry.id is not None
    await memory.delete_memory(app_name=APP, user_id="carol", memory_id=entry.id)
    await memory.delete_memory(app_name=APP, user_id="carol", memory_id=None)  # no-op
    again = await memory.search_memory(app_name=APP, user_id="carol", query="jasmine")
    assert again.memories == []


async def test_identity_per_user_context(guarded: Astrocyte, caplog: Any) -> None:
    # Each ADK user runs as themself: alice's scope is alice's bank.
    per_user = AstrocyteMemoryService(
        guarded, context=lambda app, user: AstrocyteContext(principal=f"user:{user}")
    )
    session, _ = await _run(
        per_user, MockModel.create([_text("ok")]), [], "alice", "My PIN hint is teapot."
    )
    await per_user.add_session_to_memory(session)
    alice = AstrocyteContext(principal="user:alice")
    assert (await guarded.recall("teapot", f"{APP}:alice", context=alice)).hits

    # A service fixed to eve's identity may not read or write alice's bank.
    as_eve = AstrocyteMemoryService(guarded, context=AstrocyteContext(principal="user:eve"))
    with pytest.raises(AccessDenied):
        await as_eve.add_session_to_memory(session)
    with pytest.raises(AccessDenied):
        await as_eve.search_memory(app_name=APP, user_id="alice", query="teapot")
    with pytest.raises(AccessDenied):
        await as_eve.delete_memory(app_name=APP, user_id="alice", memory_id="whatever")

    # Inside a run: load_memory's failure reaches the caller of the run ...
    model = MockModel.create([_call("load_memory", query="teapot"), _text("?")])
    with pytest.raises(AccessDenied):
        await _run(as_eve, model, [load_memory], "alice", "What is my PIN hint?")
    # ... while ADK's PreloadMemoryTool swallows it (logged): the prompt gets nothing.
    model = MockModel.create([_text("I don't know.")])
    with caplog.at_level(logging.WARNING):
        await _run(as_eve, model, [PreloadMemoryTool()], "alice", "teapot?")
    assert "teapot" not in str(model.requests[0].contents[:-1])
    assert "PAST_CONVERSATIONS" not in str(model.requests[0].contents)
    assert "Failed to preload memory" in caplog.text


_words = st.text(string.ascii_letters + string.digits + " .,'!?-", min_size=1, max_size=80)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_words.filter(lambda s: s.strip()), author=st.sampled_from(["user", "agent_x"]))
def test_any_event_text_round_trips(text: str, author: str) -> None:
    brain = _hyp_brain()
    memory = AstrocyteMemoryService(brain)
    event = Event(author=author, invocation_id="i", content=_text(text, "user"))
    session = Session(id="s", app_name=APP, user_id="h", events=[event])
    run_sync(memory.add_session_to_memory(session))
    found = run_sync(memory.search_memory(app_name=APP, user_id="h", query=text))
    mine = [m for m in found.memories if m.custom_metadata["metadata"]["adk_event_id"] == event.id]
    assert len(mine) == 1
    assert mine[0].content.parts is not None
    assert mine[0].content.parts[0].text == text.strip()
    assert mine[0].author == author


_HYP: list[Astrocyte] = []


def _hyp_brain() -> Astrocyte:
    # One brain for all examples, used only on run_sync's loop (see run_sync).
    if not _HYP:
        _HYP.append(Astrocyte.from_config(CONFIG))
    return _HYP[0]
