"""A real Crew (Agent + Tasks + crewai.LLM) with its memory in an Astrocyte bank; the
LLM is the local OpenAI-compatible server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from astrocyte import AccessDenied, Astrocyte, AstrocyteContext, BankNotFound
from astrocyte.integrations.common import run_sync
from astrocyte.testing.openai_server import OpenAICompatibleServer
from crewai import LLM, Agent, Crew, Task

from astrocyte_crewai import AstrocyteStorage, astrocyte_memory

CONFIG: dict[str, Any] = {
    "storage": {"backend": "memory"},
    "embedder": {"provider": "hashing"},
    "access_grants": [
        {"principals": ["agent:crew"], "banks": ["crew:*"], "permissions": ["admin"]},
        {"principals": ["user:eve"], "banks": ["crew:*"], "permissions": ["read"]},
    ],
}
CREW = AstrocyteContext(principal="agent:crew")
EVE = AstrocyteContext(principal="user:eve")
FACT = "The customer's favourite tea is oolong."
SERVED = "Oolong was served to the customer."


def _system(messages: list[dict[str, Any]]) -> str:
    return next((str(m.get("content")) for m in messages if m.get("role") == "system"), "")


def reply(messages: list[dict[str, Any]]) -> str:
    """Script CrewAI's memory analysis calls and the agent's two tasks."""
    system = _system(messages)
    user = "\n".join(str(m.get("content")) for m in messages if m.get("role") == "user")
    if "extract discrete, reusable memory" in system:
        return json.dumps({"memories": [FACT if "Find out" in user else SERVED]})
    if "analyze content to be stored" in system:
        return json.dumps(
            {
                "suggested_scope": "/preferences",
                "categories": ["tea"],
                "importance": 0.9,
                "extracted_metadata": {"entities": [], "dates": [], "topics": ["tea"]},
            }
        )
    if "comparing new content" in system:
        return json.dumps({"actions": [], "insert_new": True, "insert_reason": "new"})
    if "analyze a query" in system:
        return json.dumps({"recall_queries": ["favourite tea"], "complexity": "simple"})
    if "Find out" in user:
        return f"Thought: I know it.\nFinal Answer: {FACT}"
    return "Thought: I know it.\nFinal Answer: Serve oolong."


@pytest.fixture
def server() -> Iterator[OpenAICompatibleServer]:
    with OpenAICompatibleServer(chat_reply=reply) as srv:
        yield srv


@pytest.fixture
def brain() -> Iterator[Astrocyte]:
    b = Astrocyte.from_config(CONFIG)
    yield b
    run_sync(b.close())


def _crew(brain: Astrocyte, srv: OpenAICompatibleServer, context: AstrocyteContext) -> Crew:
    llm = LLM(model="openai/test", base_url=srv.base_url, api_key="k")
    memory = astrocyte_memory(
        brain, "crew:tea", context=context, llm=llm, root_scope="/crew/tea-crew"
    )
    agent = Agent(role="Concierge", goal="Serve customers", backstory="A concierge.", llm=llm)
    learn = Task(
        description="Find out the customer's favourite tea.",
        expected_output="One sentence.",
        agent=agent,
    )
    serve = Task(
        description="Choose the tea to serve the customer.",
        expected_output="One sentence.",
        agent=agent,
    )
    return Crew(agents=[agent], tasks=[learn, serve], memory=memory, name="Tea Crew")


def _chat_prompts(srv: OpenAICompatibleServer) -> list[str]:
    return [
        "\n".join(str(m.get("content")) for m in r.json["messages"])
        for r in srv.requests_to("/chat/completions")
    ]


def test_crew_saves_to_the_bank_and_recalls_into_the_next_task(
    brain: Astrocyte, server: OpenAICompatibleServer
) -> None:
    crew = _crew(brain, server, CREW)
    out = crew.kickoff()
    assert "oolong" in out.raw
    crew._drain_memory_writes()

    # Saved after the first task, into the bank, with CrewAI's scope and categories.
    hits = run_sync(brain.recall("favourite tea", "crew:tea", context=CREW)).hits
    assert sorted(h.text for h in hits) == sorted([FACT, SERVED])
    hit = next(h for h in hits if h.text == FACT)
    meta = hit.provenance.metadata
    assert meta["crewai_scope"] == "/crew/tea-crew/agent/concierge/preferences"
    assert json.loads(str(meta["crewai_categories"])) == ["tea"]
    assert hit.provenance.source_id == meta["crewai_id"]

    # Recalled into the second task's prompt (the request the LLM really got).
    serve_prompts = [p for p in _chat_prompts(server) if "Current Task: Choose the tea" in p]
    assert serve_prompts and all("Relevant memories" in p and FACT in p for p in serve_prompts)
    # ... and not into the first one (nothing stored yet).
    learn_prompts = [p for p in _chat_prompts(server) if "Current Task: Find out" in p]
    assert learn_prompts and not any("Relevant memories" in p for p in learn_prompts)


def test_a_caller_without_write_stores_nothing(
    brain: Astrocyte, server: OpenAICompatibleServer
) -> None:
    crew = _crew(brain, server, EVE)
    crew.kickoff()  # CrewAI logs the failed background save; the task itself succeeds
    crew._drain_memory_writes()
    with pytest.raises(BankNotFound):  # the denied saves never created the bank
        run_sync(brain.recall("favourite tea", "crew:tea", context=CREW))
    storage = AstrocyteStorage(brain, "crew:tea", context=EVE)
    from crewai.memory.types import MemoryRecord

    with pytest.raises(AccessDenied):
        storage.save([MemoryRecord(content=FACT)])
