"""Real DSPy programs on the adapters, the LM replaced by DSPy's own ``DummyLM``: a RAG
module (retrieve → ChainOfThought), ``dspy.ReAct`` on the memory tools (sync and async),
identity, provenance, multi-query merging, deep copies and saved state."""

from __future__ import annotations

import functools
import logging
import string
from typing import Any

import dspy
import pytest
from astrocyte import AccessDenied, Astrocyte, AstrocyteContext
from astrocyte.integrations import common
from astrocyte.integrations.common import RECALL_DESCRIPTION, REMEMBER_DESCRIPTION, run_sync
from conftest import CONFIG
from dspy.utils import DummyLM
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from astrocyte_dspy import AstrocyteRM, make_memory_tools

ALICE = AstrocyteContext(principal="user:alice")
BOT = AstrocyteContext(principal="agent:bot")
EVE = AstrocyteContext(principal="user:eve")

FACTS = [
    "Alice drinks green tea every morning.",
    "Bob rides his bicycle to work.",
    "The tea shop on Main Street opens at eight.",
    "Carol prefers black coffee without sugar.",
]


class RAG(dspy.Module):  # type: ignore[misc]
    """Retrieve → ChainOfThought, returning the answer and the passages' provenance."""

    def __init__(self, rm: AstrocyteRM) -> None:
        super().__init__()
        self.retrieve = rm
        self.respond = dspy.ChainOfThought("context: list[str], question: str -> answer: str")

    def forward(self, question: str) -> Any:
        found = self.retrieve(question)
        pred = self.respond(context=found.passages, question=question)
        return dspy.Prediction(answer=pred.answer, provenance=found.provenance)

    async def aforward(self, question: str) -> Any:
        found = await self.retrieve.acall(question)
        pred = await self.respond.acall(context=found.passages, question=question)
        return dspy.Prediction(answer=pred.answer, provenance=found.provenance)


def prompt_text(lm: DummyLM, index: int = -1) -> str:
    """Everything DSPy sent to the LM in one call."""
    return "\n".join(str(m.get("content", "")) for m in lm.history[index]["messages"])


def seed(brain: Astrocyte, bank: str, context: AstrocyteContext | None = None) -> None:
    for fact in FACTS:
        run_sync(brain.retain(fact, bank, metadata={"source": "seed"}, context=context))


# --- RAG module ------------------------------------------------------------------------------


def test_rag_module_puts_recalled_memories_in_the_prompt(sync_brain: Astrocyte) -> None:
    seed(sync_brain, "alice")
    run_sync(sync_brain.retain("Alice secretly drinks green tea at night.", "someone-else"))
    program = RAG(AstrocyteRM(sync_brain, "alice", k=2))
    lm = DummyLM([{"reasoning": "The context says so.", "answer": "green tea"}])
    with dspy.context(lm=lm):
        pred = program(question="What does Alice drink every morning?")

    assert pred.answer == "green tea"
    prompt = prompt_text(lm)
    assert "Alice drinks green tea every morning." in prompt
    assert "secretly" not in prompt  # another bank's memory never reaches the prompt
    assert len(pred.provenance) == 2
    top = pred.provenance[0]
    assert top["bank_id"] == "alice"
    assert top["metadata"] == {"source": "seed"}
    assert {"memory_id", "score", "source_id", "created_at", "tags"} <= set(top)


async def test_rag_module_async_path(brain: Astrocyte, monkeypatch: pytest.MonkeyPatch) -> None:
    for fact in FACTS:
        await brain.retain(fact, "alice")

    def no_bridge(coro: Any) -> Any:  # the async path must await on this loop
        coro.close()
        raise AssertionError("sync bridge used on the async path")

    monkeypatch.setattr(common, "run_sync", no_bridge)
    program = RAG(AstrocyteRM(brain, "alice", k=1))
    lm = DummyLM([{"reasoning": "From context.", "answer": "at eight"}])
    with dspy.context(lm=lm):
        pred = await program.acall(question="When does the tea shop on Main Street open?")

    assert pred.answer == "at eight"
    assert "The tea shop on Main Street opens at eight." in prompt_text(lm)
    assert [p["bank_id"] for p in pred.provenance] == ["alice"]


def test_retriever_prediction_shape(sync_brain: Astrocyte) -> None:
    seed(sync_brain, "alice")
    rm = AstrocyteRM(sync_brain, "alice", k=3)
    pred = rm("tea")
    assert isinstance(pred, dspy.Prediction)
    assert len(pred.passages) == len(pred.memory_ids) == len(pred.scores) == 3
    assert [p["memory_id"] for p in pred.provenance] == pred.memory_ids
    assert [p["score"] for p in pred.provenance] == pred.scores
    assert pred.scores == sorted(pred.scores, reverse=True)
    assert len(rm("tea", k=1).passages) == 1
    assert rm("   ").passages == [] and rm([]).passages == []


@pytest.mark.parametrize("k", [0, -1, True, 2.5])
def test_bad_k_is_refused(sync_brain: Astrocyte, k: Any) -> None:
    with pytest.raises(ValueError, match="k must be"):
        AstrocyteRM(sync_brain, "alice", k=k)
    with pytest.raises(ValueError, match="k must be"):
        AstrocyteRM(sync_brain, "alice")("tea", k=k)


def test_tags_and_filters_are_hard_filters(sync_brain: Astrocyte) -> None:
    run_sync(sync_brain.retain("Tea notes from work.", "alice", tags=["work"]))
    run_sync(sync_brain.retain("Tea notes from home.", "alice", metadata={"place": "home"}))
    assert AstrocyteRM(sync_brain, "alice", tags=["work"], k=5)("tea").passages == [
        "Tea notes from work."
    ]
    assert AstrocyteRM(sync_brain, "alice", filters={"place": "home"}, k=5)("tea").passages == [
        "Tea notes from home."
    ]


# --- several queries -------------------------------------------------------------------------


@functools.cache
def _seeded_brain() -> Astrocyte:
    brain = Astrocyte.from_config(CONFIG)
    seed(brain, "facts")
    return brain


_query = st.text(string.ascii_letters + " ", max_size=30)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(queries=st.lists(_query, max_size=4), k=st.integers(min_value=1, max_value=6))
def test_several_queries_merge(queries: list[str], k: int) -> None:
    rm = AstrocyteRM(_seeded_brain(), "facts", k=k)
    pred = rm(queries, k=k)
    assert len(pred.passages) <= k
    assert len(set(pred.memory_ids)) == len(pred.memory_ids)  # one passage per memory
    assert pred.scores == sorted(pred.scores, reverse=True)
    assert set(pred.passages) <= set(FACTS)
    if not any(q.strip() for q in queries):
        assert pred.passages == []
    singles = [rm(q, k=k) for q in queries if q.strip()]
    union = {m for single in singles for m in single.memory_ids}
    assert set(pred.memory_ids) <= union
    if len(union) <= k:
        assert set(pred.memory_ids) == union
    # each memory keeps its best score over the queries
    for memory_id, score in zip(pred.memory_ids, pred.scores, strict=True):
        best = max(
            s
            for single in singles
            for m, s in zip(single.memory_ids, single.scores, strict=True)
            if m == memory_id
        )
        assert score == best


# --- ReAct -----------------------------------------------------------------------------------

OOLONG = "Bob's favourite tea is oolong."


def react_script() -> list[dict[str, Any]]:
    return [
        {
            "next_thought": "Store the fact first.",
            "next_tool_name": "remember",
            "next_tool_args": {"content": OOLONG},
        },
        {
            "next_thought": "Look it up again.",
            "next_tool_name": "recall",
            "next_tool_args": {"query": "Bob favourite tea"},
        },
        {"next_thought": "I know it.", "next_tool_name": "finish", "next_tool_args": {}},
        {"reasoning": "Memory says oolong.", "answer": "oolong"},
    ]


def test_react_remembers_then_recalls(sync_brain: Astrocyte) -> None:
    react = dspy.ReAct("question -> answer", tools=make_memory_tools(sync_brain, "bob"))
    lm = DummyLM(react_script())
    with dspy.context(lm=lm):
        pred = react(question="Remember Bob's favourite tea, then tell me what it is.")

    traj = pred.trajectory
    stored = run_sync(sync_brain.recall("oolong tea", "bob"))
    assert [hit.text for hit in stored.hits] == [OOLONG]  # remember stored it
    assert stored.hits[0].memory_id in traj["observation_0"]
    assert traj["observation_1"] == f"1. {OOLONG}"  # recall found it
    assert f"1. {OOLONG}" in prompt_text(lm)  # and the model saw the recall
    assert pred.answer == "oolong"


async def test_react_async_awaits_on_the_callers_loop(
    brain: Astrocyte, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_bridge(coro: Any) -> Any:
        coro.close()
        raise AssertionError("sync bridge used on the async path")

    monkeypatch.setattr(common, "run_sync", no_bridge)
    react = dspy.ReAct("question -> answer", tools=make_memory_tools(brain, "bob"))
    lm = DummyLM(react_script())
    with dspy.context(lm=lm):
        pred = await react.acall(question="Remember Bob's favourite tea, then say it.")

    assert pred.trajectory["observation_0"].startswith("Remembered (1 memory")
    assert pred.trajectory["observation_1"] == f"1. {OOLONG}"
    assert [h.text for h in (await brain.recall("oolong", "bob")).hits] == [OOLONG]


def test_tool_schemas(sync_brain: Astrocyte) -> None:
    remember, recall = make_memory_tools(sync_brain, "bob")
    assert isinstance(remember, dspy.Tool) and isinstance(recall, dspy.Tool)
    r = remember.format_as_litellm_function_call()["function"]
    q = recall.format_as_litellm_function_call()["function"]
    assert (r["name"], r["description"], r["parameters"]["required"]) == (
        "remember",
        REMEMBER_DESCRIPTION,
        ["content"],
    )
    assert (q["name"], q["description"], q["parameters"]["required"]) == (
        "recall",
        RECALL_DESCRIPTION,
        ["query"],
    )
    assert remember(content=OOLONG).startswith("Remembered (1 memory, id mem_")
    assert recall(query="oolong") == f"1. {OOLONG}"
    with pytest.raises(ValueError, match="not in the tool's args"):
        recall(question="wrong argument name")


# --- identity --------------------------------------------------------------------------------


def test_retriever_runs_as_its_context(guarded: Astrocyte) -> None:
    seed(guarded, "users:alice:notes", ALICE)
    assert AstrocyteRM(guarded, "users:alice:notes", k=1, context=BOT)("tea").passages
    denied = AstrocyteRM(guarded, "users:alice:notes", context=EVE)
    with pytest.raises(AccessDenied):
        denied("tea")
    lm = DummyLM([{"reasoning": "-", "answer": "-"}])
    with dspy.context(lm=lm), pytest.raises(AccessDenied):
        RAG(denied)(question="What does Alice drink?")
    assert lm.history == []  # refused before anything reached the model


def test_react_surfaces_a_denied_tool(guarded: Astrocyte) -> None:
    # eve may write into alice's notes but not read them
    tools = make_memory_tools(guarded, "users:alice:notes", EVE)
    react = dspy.ReAct("question -> answer", tools=tools)
    lm = DummyLM(react_script())
    with dspy.context(lm=lm):
        pred = react(question="Remember Bob's favourite tea, then say it.")

    traj = pred.trajectory
    assert traj["observation_0"].startswith("Remembered")
    assert "Execution error in recall" in traj["observation_1"]
    assert "AccessDenied" in traj["observation_1"]
    assert OOLONG not in traj["observation_1"]
    # the write really happened, as eve, into alice's bank
    seen = run_sync(guarded.recall("oolong", "users:alice:notes", context=ALICE))
    assert [h.text for h in seen.hits] == [OOLONG]
    # and the tools raise the typed error when called directly
    with pytest.raises(AccessDenied):
        tools[1](query="tea")
    remember_elsewhere = make_memory_tools(guarded, "users:alice", EVE)[0]
    with pytest.raises(AccessDenied):
        remember_elsewhere(content="nope")


# --- copies and saved state ------------------------------------------------------------------


def test_deepcopy_shares_the_brain(sync_brain: Astrocyte, caplog: pytest.LogCaptureFixture) -> None:
    rm = AstrocyteRM(sync_brain, "bob", k=2, context=BOT)
    react = dspy.ReAct("question -> answer", tools=make_memory_tools(sync_brain, "bob"))
    with caplog.at_level(logging.WARNING):
        rag_copy = RAG(rm).deepcopy()
        react_copy = react.deepcopy()
    assert not [r for r in caplog.records if "deep copy" in r.getMessage()]
    assert rag_copy.retrieve is not rm
    assert rag_copy.retrieve.brain is sync_brain and rag_copy.retrieve.context is BOT
    rag_copy.retrieve.k = 1
    assert rm.k == 2  # the copy's settings are its own

    react_copy.tools["remember"](content=OOLONG)
    assert run_sync(sync_brain.recall("oolong", "bob")).hits[0].text == OOLONG


def test_program_state_saves_k(sync_brain: Astrocyte, tmp_path: Any) -> None:
    program = RAG(AstrocyteRM(sync_brain, "alice", k=4))
    path = tmp_path / "rag.json"
    program.save(str(path))
    other = RAG(AstrocyteRM(sync_brain, "alice", k=1))
    other.load(str(path))
    assert other.retrieve.k == 4
    with pytest.raises(ValueError, match="k must be"):
        other.retrieve.load_state({"k": 0})
