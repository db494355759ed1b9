"""LlamaIndex adapters: the retriever in a real RetrieverQueryEngine / ContextChatEngine
(MockLLM, which echoes its prompt), and the memory block in a real ``Memory`` used by a
SimpleChatEngine and a FunctionAgent (LlamaIndex's mock LLMs)."""

from __future__ import annotations

import asyncio
import json
import string
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

pytest.importorskip("llama_index.core")

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.base.llms.types import ChatMessage, MessageRole
from llama_index.core.chat_engine import ContextChatEngine, SimpleChatEngine
from llama_index.core.llms import MockLLM
from llama_index.core.llms.mock import MockFunctionCallingLLM, MockLLMWithChatMemoryOfLastCall
from llama_index.core.memory import Memory
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.schema import MetadataMode, TextNode
from llama_index.core.vector_stores.utils import node_to_metadata_dict

from astrocyte import AccessDenied, Astrocyte, AstrocyteContext
from astrocyte.integrations.common import run_sync
from astrocyte.integrations.llamaindex import (
    AstrocyteMemoryBlock,
    AstrocyteRetriever,
    node_metadata,
)

CONFIG: dict[str, Any] = {"storage": {"backend": "memory"}, "embedder": {"provider": "hashing"}}

ALICE = AstrocyteContext(principal="user:alice")
BOT = AstrocyteContext(principal="agent:bot")
EVE = AstrocyteContext(principal="user:eve")
BOB = AstrocyteContext(principal="user:bob")  # no grants at all
GRANTS: dict[str, Any] = {
    "access_grants": [
        {"principals": ["user:alice"], "banks": ["users:alice*"], "permissions": ["admin"]},
        {"principals": ["agent:bot"], "banks": ["users:alice*"], "permissions": ["read", "write"]},
        # eve may write into alice's notes but never read them
        {"principals": ["user:eve"], "banks": ["users:alice:notes"], "permissions": ["write"]},
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


def _memory(block: AstrocyteMemoryBlock, session_id: str = "s1") -> Memory:
    # A small short-term budget, so every turn flushes older messages to the block.
    return Memory.from_defaults(
        session_id=session_id,
        token_limit=16,
        chat_history_token_ratio=0.5,
        token_flush_size=4,
        memory_blocks=[block],
    )


def _system_text(messages: Sequence[ChatMessage] | None) -> str:
    return "\n".join(m.content or "" for m in messages or [] if m.role == MessageRole.SYSTEM)


# --- node metadata -------------------------------------------------------------------------

_tag = st.text(string.printable, min_size=1, max_size=20).map(str.strip).filter(bool)
_scalar = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
_meta = st.dictionaries(st.text(string.ascii_letters + "_.", min_size=1, max_size=12), _scalar)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tags=st.lists(_tag, max_size=4, unique=True), meta=_meta)
def test_node_metadata_is_flat_and_keeps_provenance(tags: list[str], meta: dict[str, Any]) -> None:
    brain = Astrocyte.from_config(CONFIG)
    try:
        run_sync(brain.retain("a note about tea", "b", tags=tags, metadata=meta))
        hit = run_sync(brain.recall("tea", "b")).hits[0]
        flat = node_metadata(hit)
        # LlamaIndex's own flat-metadata check (what vector stores enforce) accepts it
        node_to_metadata_dict(TextNode(text="x", metadata=flat), flat_metadata=True)
        assert json.loads(str(flat["tags"])) == tags  # exact, even with commas in tags
        assert {k: flat[f"metadata.{k}"] for k in meta} == meta
        assert flat["memory_id"] == hit.memory_id and flat["bank_id"] == "b"
        assert flat["score"] == hit.score and flat["origin"] == "local"
        assert "metadata" not in flat
    finally:
        run_sync(brain.close())


# --- retriever -----------------------------------------------------------------------------


async def test_query_engine_answers_from_recalled_memories(guarded: Astrocyte) -> None:
    await guarded.retain(
        "Alice visited Kyoto in May", "users:alice", tags=["trip"], metadata={"k": 1}, context=ALICE
    )
    await guarded.retain("Alice's cat is named Tom", "users:alice", context=ALICE)
    retriever = AstrocyteRetriever(guarded, "users:alice", max_results=1, context=BOT)
    engine = RetrieverQueryEngine.from_args(retriever, llm=MockLLM())  # MockLLM echoes the prompt

    response = await engine.aquery("When was the Kyoto trip?")
    assert "Alice visited Kyoto in May" in str(response)  # the memory reached the LLM prompt
    assert "Tom" not in str(response)  # max_results=1
    [source] = response.source_nodes
    meta = source.node.metadata
    assert source.node.node_id == meta["memory_id"] and source.score == meta["score"] > 0
    assert meta["bank_id"] == "users:alice" and meta["tags"] == '["trip"]'
    assert meta["metadata.k"] == 1 and meta["origin"] == "local"
    # provenance stays out of the prompt and the embedding text
    assert meta["memory_id"] not in str(response)
    assert source.node.get_content(MetadataMode.LLM) == "Alice visited Kyoto in May"
    assert source.node.get_content(MetadataMode.EMBED) == "Alice visited Kyoto in May"

    # the sync entry point gives the same answer
    sync_response = await asyncio.to_thread(engine.query, "When was the Kyoto trip?")
    assert str(sync_response) == str(response)


async def test_context_chat_engine_uses_the_retriever(brain: Astrocyte) -> None:
    await brain.retain("The office wifi password is hunter2", "team")
    engine = ContextChatEngine.from_defaults(AstrocyteRetriever(brain, "team"), llm=MockLLM())
    reply = await engine.achat("what is the wifi password?")
    # MockLLM echoes its prompt: the recalled memory is in the context it was given
    assert "The office wifi password is hunter2" in str(reply)
    assert reply.source_nodes[0].node.metadata["bank_id"] == "team"


async def test_retriever_options(brain: Astrocyte) -> None:
    await brain.retain("Tea in the red bank", "red", tags=["drink"], metadata={"kind": "fact"})
    await brain.retain("Tea in the blue bank", "blue", metadata={"kind": "rumour"})
    both = await AstrocyteRetriever(brain, banks=["red", "blue"]).aretrieve("tea")
    assert {n.node.metadata["bank_id"] for n in both} == {"red", "blue"}
    tagged = await AstrocyteRetriever(brain, banks=["red", "blue"], tags=["drink"]).aretrieve("tea")
    assert [n.node.get_content() for n in tagged] == ["Tea in the red bank"]
    filtered = AstrocyteRetriever(brain, banks=["red", "blue"], filters={"kind": "rumour"})
    assert [n.node.get_content() for n in await filtered.aretrieve("tea")] == [
        "Tea in the blue bank"
    ]
    with pytest.raises(ValueError, match="max_results"):
        AstrocyteRetriever(brain, "red", max_results=0)


async def test_retriever_applies_identity(guarded: Astrocyte) -> None:
    await guarded.retain("a note", "users:alice:notes", context=EVE)  # eve: write only
    with pytest.raises(AccessDenied):
        await AstrocyteRetriever(guarded, "users:alice:notes", context=EVE).aretrieve("note")
    engine = RetrieverQueryEngine.from_args(
        AstrocyteRetriever(guarded, "users:alice:notes", context=BOB), llm=MockLLM()
    )
    with pytest.raises(AccessDenied):
        await engine.aquery("note")
    with pytest.raises(AccessDenied):  # sync path, through the background loop
        await asyncio.to_thread(engine.query, "note")
    ok = await AstrocyteRetriever(guarded, "users:alice:notes", context=BOT).aretrieve("note")
    assert [n.node.get_content() for n in ok] == ["a note"]


# --- memory block --------------------------------------------------------------------------


async def test_chat_engine_memory_retains_and_recalls_turns(guarded: Astrocyte) -> None:
    block = AstrocyteMemoryBlock(brain=guarded, bank_id="users:alice", context=BOT)
    llm = MockLLMWithChatMemoryOfLastCall(max_tokens=2)  # short replies: "text text"
    engine = SimpleChatEngine.from_defaults(llm=llm, memory=_memory(block))

    await engine.achat("I live in Lisbon near the river")
    await engine.achat("My dog is called Rex")
    await engine.achat("I work as a nurse")
    # the first turn has left the short-term queue and is now a memory in the bank
    stored = await guarded.recall("Lisbon river", "users:alice", context=ALICE)
    lisbon = [h for h in stored.hits if "Lisbon" in h.text]
    assert [h.text for h in lisbon] == ["user: I live in Lisbon near the river"]
    assert lisbon[0].provenance.metadata == {"role": "user", "session_id": "s1"}
    assert any(h.text == "assistant: text text" for h in stored.hits)  # replies too

    await engine.achat("Where do I live? Lisbon?")
    system = _system_text(llm.last_chat_messages)
    assert "<astrocyte_memory>" in system
    assert "user: I live in Lisbon near the river" in system
    # a fresh session (new Memory, empty history) still recalls it: long-term memory
    llm2 = MockLLMWithChatMemoryOfLastCall(max_tokens=2)
    later = SimpleChatEngine.from_defaults(llm=llm2, memory=_memory(block, session_id="s2"))
    await later.achat("Which river is near where I live?")
    assert "I live in Lisbon near the river" in _system_text(llm2.last_chat_messages)


def test_chat_engine_memory_sync_chat() -> None:
    brain = Astrocyte.from_config(CONFIG)
    try:
        block = AstrocyteMemoryBlock(brain=brain, bank_id="alice")
        llm = MockLLMWithChatMemoryOfLastCall(max_tokens=2)
        engine = SimpleChatEngine.from_defaults(llm=llm, memory=_memory(block))
        for message in ["My sister is called Ana", "I like jazz", "I play chess on Sundays"]:
            engine.chat(message)  # sync: Memory runs the block via LlamaIndex's asyncio_run
        engine.chat("What is my sister called? Ana?")
        assert "user: My sister is called Ana" in _system_text(llm.last_chat_messages)
        assert run_sync(brain.list_banks())[0].memory_count >= 2
    finally:
        run_sync(brain.close())


# FunctionAgent's workflow machinery inspects its own pydantic fields (framework noise)
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
async def test_function_agent_memory(brain: Astrocyte) -> None:
    await brain.retain("user: my favourite colour is teal", "alice", metadata={"role": "user"})
    seen: list[Sequence[ChatMessage]] = []

    def respond(messages: Sequence[ChatMessage], **kwargs: Any) -> ChatMessage:
        seen.append(list(messages))
        return ChatMessage(role="assistant", content="It is teal.")

    agent = FunctionAgent(
        tools=[], llm=MockFunctionCallingLLM(response_generator=respond), system_prompt="Be brief."
    )
    block = AstrocyteMemoryBlock(brain=brain, bank_id="alice")
    memory = _memory(block)
    result = await agent.run("What is my favourite colour?", memory=memory)
    assert str(result) == "It is teal."
    assert "my favourite colour is teal" in _system_text(seen[-1])
    for question in ["And my favourite food?", "What about music?"]:
        await agent.run(question, memory=memory)  # pushes the first turn out of the queue
    stored = await brain.recall("What is my favourite colour?", "alice", filters={"role": "user"})
    assert "user: What is my favourite colour?" in [h.text for h in stored.hits]


async def test_memory_block_stores_only_conversation_text(brain: Astrocyte) -> None:
    block = AstrocyteMemoryBlock(brain=brain, bank_id="b", tags=["chat"])
    await block.aput(
        [
            ChatMessage(role="user", content="I drink oolong tea"),
            ChatMessage(role="assistant", content=""),  # a tool-call stub: no text
            ChatMessage(role="tool", content="tool output about tea"),
            ChatMessage(role="assistant", content="Noted: oolong tea."),
        ],
        session_id="s9",
    )
    stored = await brain.recall("tea", "b")
    assert sorted(h.text for h in stored.hits) == [
        "assistant: Noted: oolong tea.",
        "user: I drink oolong tea",
    ]
    assert all(h.provenance.tags == ["chat"] for h in stored.hits)
    assert {h.provenance.metadata["session_id"] for h in stored.hits} == {"s9"}
    assert await block.aget([ChatMessage(role="user", content="   ")]) == ""
    assert await block.aget([]) == ""
    assert "oolong" in await block.aget([ChatMessage(role="user", content="oolong?")])
    only_tools = AstrocyteMemoryBlock(brain=brain, bank_id="c", roles=("tool",))
    await only_tools.aput([ChatMessage(role="user", content="not kept")])
    assert "c" not in {b.bank_id for b in await brain.list_banks()}  # nothing retained


async def test_memory_block_applies_identity(guarded: Astrocyte) -> None:
    # no grants: the chat fails on the block's recall, before the LLM is called
    llm = MockLLMWithChatMemoryOfLastCall(max_tokens=2)
    denied = AstrocyteMemoryBlock(brain=guarded, bank_id="users:alice", context=BOB)
    with pytest.raises(AccessDenied):
        await SimpleChatEngine.from_defaults(llm=llm, memory=_memory(denied)).achat("hi")
    assert llm.last_chat_messages is None
    # write-only (eve on alice's notes): flushes are retained, reads are refused
    notes = AstrocyteMemoryBlock(brain=guarded, bank_id="users:alice:notes", context=EVE)
    await notes.aput([ChatMessage(role="user", content="eve was here")])
    with pytest.raises(AccessDenied):
        await notes.aget([ChatMessage(role="user", content="who was here?")])
    stored = await guarded.recall("who was here", "users:alice:notes", context=ALICE)
    assert [h.text for h in stored.hits] == ["user: eve was here"]
    # read-only would be refused on the flush: bob cannot write anywhere
    with pytest.raises(AccessDenied):
        await denied.aput([ChatMessage(role="user", content="x")])


def test_missing_framework_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib
    import sys

    monkeypatch.setitem(sys.modules, "llama_index.core.retrievers", None)  # import fails
    monkeypatch.delitem(sys.modules, "astrocyte.integrations.llamaindex")
    with pytest.raises(ImportError, match=r'pip install "astrocyte\[llamaindex\]"'):
        importlib.import_module("astrocyte.integrations.llamaindex")
