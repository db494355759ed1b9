"""Semantic Kernel adapters: a real Kernel + ChatCompletionAgent with OpenAIChatCompletion
talking to a loopback OpenAI-compatible server that scripts tool calls, direct
``kernel.invoke`` of the plugin, and AstrocyteTextSearch (also as a kernel function)."""

from __future__ import annotations

import keyword
import string
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
from astrocyte import AccessDenied, Astrocyte, AstrocyteContext, BankNotFound
from astrocyte.testing.openai_server import OpenAICompatibleServer, tool_call_message
from astrocyte.types import RecallHit
from hypothesis import given, settings
from hypothesis import strategies as st
from openai import AsyncOpenAI
from semantic_kernel import Kernel
from semantic_kernel.agents import ChatCompletionAgent
from semantic_kernel.connectors.ai import FunctionChoiceBehavior
from semantic_kernel.connectors.ai.open_ai import OpenAIChatCompletion
from semantic_kernel.data.text_search import (
    KernelSearchResults,
    TextSearchResult,
    default_dynamic_filter_function,
)
from semantic_kernel.exceptions import KernelInvokeException, TextSearchException
from semantic_kernel.functions import KernelArguments, KernelParameterMetadata

from astrocyte_semantic_kernel import AstrocyteMemoryPlugin, AstrocyteTextSearch, parse_filter

CONFIG: dict[str, Any] = {"storage": {"backend": "memory"}, "embedder": {"provider": "hashing"}}

ALICE = AstrocyteContext(principal="user:alice")
BOT = AstrocyteContext(principal="agent:bot")
EVE = AstrocyteContext(principal="user:eve")
MALLORY = AstrocyteContext(principal="user:mallory")
GRANTS: dict[str, Any] = {
    "access_grants": [
        {"principals": ["user:alice"], "banks": ["users:alice*"], "permissions": ["admin"]},
        {"principals": ["agent:bot"], "banks": ["users:alice*"], "permissions": ["read", "write"]},
        # eve may write into alice's notes but never read them
        {"principals": ["user:eve"], "banks": ["users:alice:notes"], "permissions": ["write"]},
    ]
}
BANK = "users:alice:notes"
FACT = "Alice drinks green tea every morning."


@pytest.fixture
async def brain() -> AsyncIterator[Astrocyte]:
    async with Astrocyte.from_config({**CONFIG, **GRANTS}) as b:
        yield b


# --- the scripted model --------------------------------------------------------------------


def _tool_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in messages if m.get("role") == "tool"]


def remember_then_recall(messages: list[dict[str, Any]]) -> str | Mapping[str, Any]:
    """First turn: call remember; after its result: call recall; then answer with the
    recall result verbatim (so the test sees what reached the model)."""
    done = _tool_messages(messages)
    if not done:
        return tool_call_message("memory-remember", {"content": FACT}, call_id="call_1")
    if len(done) == 1:
        return tool_call_message("memory-recall", {"query": "what does Alice drink?"}, call_id="c2")
    return f"ANSWER: {done[-1]['content']}"


def _agent(srv: OpenAICompatibleServer, plugin: AstrocyteMemoryPlugin) -> ChatCompletionAgent:
    service = OpenAIChatCompletion(
        ai_model_id="test", async_client=AsyncOpenAI(base_url=srv.base_url, api_key="k")
    )
    kernel = Kernel()
    kernel.add_plugin(plugin, plugin_name="memory")
    return ChatCompletionAgent(
        kernel=kernel,
        service=service,
        name="assistant",
        instructions="Use your memory.",
        function_choice_behavior=FunctionChoiceBehavior.Auto(),
    )


def _chat_requests(srv: OpenAICompatibleServer) -> list[dict[str, Any]]:
    return [r.json for r in srv.requests_to("chat/completions")]


# --- plugin in a real agent ----------------------------------------------------------------


async def test_agent_remembers_then_recalls(brain: Astrocyte) -> None:
    plugin = AstrocyteMemoryPlugin(brain, BANK, context=BOT, metadata={"via": "sk"})
    async with OpenAICompatibleServer(chat_reply=remember_then_recall) as srv:
        response = await _agent(srv, plugin).get_response("Remember my drink, then recall it.")

    # The bank holds the memory, with the plugin's metadata.
    stored = await brain.recall("green tea", BANK, context=ALICE)
    assert [h.text for h in stored.hits] == [FACT]
    assert stored.hits[0].provenance.metadata == {"via": "sk"}

    requests = _chat_requests(srv)
    assert len(requests) == 3
    # Function-calling schemas built from the annotated parameters.
    tools = {t["function"]["name"]: t["function"] for t in requests[0]["tools"]}
    assert set(tools) == {"memory-remember", "memory-recall"}
    remember_schema = tools["memory-remember"]["parameters"]
    assert remember_schema["properties"]["content"]["type"] == "string"
    assert remember_schema["required"] == ["content"]
    assert tools["memory-recall"]["parameters"]["required"] == ["query"]
    # remember's answer (with the stored id) reached the second request...
    second_tools = _tool_messages(requests[1]["messages"])
    assert second_tools[-1]["tool_call_id"] == "call_1"
    assert stored.hits[0].memory_id in second_tools[-1]["content"]
    # ...and recall's answer (the stored fact) the third, then the final answer.
    third_tools = _tool_messages(requests[2]["messages"])
    assert third_tools[-1]["content"] == f"1. {FACT}"
    assert str(response.message.content) == f"ANSWER: 1. {FACT}"


async def test_agent_streaming_uses_the_plugin(brain: Astrocyte) -> None:
    plugin = AstrocyteMemoryPlugin(brain, BANK, context=BOT)
    async with OpenAICompatibleServer(chat_reply=remember_then_recall) as srv:
        chunks = [
            str(item.message.content)
            async for item in _agent(srv, plugin).invoke_stream("Remember, then recall.")
        ]
    assert all(r["stream"] is True for r in _chat_requests(srv))
    assert "".join(chunks).endswith(f"ANSWER: 1. {FACT}")
    assert len((await brain.recall("tea", BANK, context=ALICE)).hits) == 1


async def test_agent_denied_write_is_reported_to_the_model(brain: Astrocyte) -> None:
    """Semantic Kernel catches the tool's AccessDenied and sends its text as the tool
    result; nothing is stored."""
    plugin = AstrocyteMemoryPlugin(brain, BANK, context=MALLORY)
    async with OpenAICompatibleServer(chat_reply=remember_then_recall) as srv:
        await _agent(srv, plugin).get_response("Remember my drink, then recall it.")
    requests = _chat_requests(srv)
    remember_result = _tool_messages(requests[1]["messages"])[-1]["content"]
    recall_result = _tool_messages(requests[2]["messages"])[-1]["content"]
    for text in (remember_result, recall_result):
        assert text.startswith("An error occurred while invoking the function memory-")
        assert "user:mallory" in text
    # Nothing was stored: the bank was never even created.
    with pytest.raises(BankNotFound):
        await brain.recall("green tea", BANK, context=ALICE)


async def test_agent_write_only_caller_can_remember_but_not_recall(brain: Astrocyte) -> None:
    plugin = AstrocyteMemoryPlugin(brain, BANK, context=EVE)
    async with OpenAICompatibleServer(chat_reply=remember_then_recall) as srv:
        await _agent(srv, plugin).get_response("Remember my drink, then recall it.")
    requests = _chat_requests(srv)
    assert _tool_messages(requests[1]["messages"])[-1]["content"].startswith("Remembered (1 memory")
    recall_result = _tool_messages(requests[2]["messages"])[-1]["content"]
    assert recall_result.startswith("An error occurred while invoking the function memory-recall")
    assert FACT not in recall_result
    assert [h.text for h in (await brain.recall("tea", BANK, context=ALICE)).hits] == [FACT]


# --- plugin invoked directly ---------------------------------------------------------------


async def test_kernel_invoke_recall(brain: Astrocyte) -> None:
    await brain.retain(FACT, BANK, context=ALICE)
    await brain.retain("The sky is blue.", BANK, context=ALICE)
    kernel = Kernel()
    plugin = kernel.add_plugin(AstrocyteMemoryPlugin(brain, BANK, context=BOT, max_results=1), "m")
    result = await kernel.invoke(plugin["recall"], query="green tea")
    assert result is not None
    assert str(result) == f"1. {FACT}"

    await kernel.invoke(plugin["remember"], KernelArguments(content="Bob likes coffee."))
    assert "Bob likes coffee." in [
        h.text for h in (await brain.recall("coffee", BANK, context=ALICE)).hits
    ]


async def test_kernel_invoke_denied_raises(brain: Astrocyte) -> None:
    await brain.retain(FACT, BANK, context=ALICE)
    kernel = Kernel()
    plugin = kernel.add_plugin(AstrocyteMemoryPlugin(brain, BANK, context=EVE), "m")
    with pytest.raises(KernelInvokeException) as info:
        await kernel.invoke(plugin["recall"], query="green tea")
    assert isinstance(info.value.__cause__, AccessDenied)


async def test_recall_without_matches_and_bad_max_results(brain: Astrocyte) -> None:
    kernel = Kernel()
    plugin = kernel.add_plugin(AstrocyteMemoryPlugin(brain, BANK, context=ALICE), "m")
    await kernel.invoke(plugin["remember"], content="Tea is served at four.")
    tagged = AstrocyteMemoryPlugin(brain, BANK, context=ALICE, tags=["t"])
    assert (await tagged.recall("tea")).startswith("1. ")  # tags only apply to remember
    stored = await brain.recall("tea", BANK, context=ALICE)
    await brain.forget(BANK, memory_ids=[h.memory_id for h in stored.hits], context=ALICE)
    result = await kernel.invoke(plugin["recall"], query="anything")
    assert str(result) == "No memories found."
    with pytest.raises(ValueError):
        AstrocyteMemoryPlugin(brain, BANK, max_results=0)


# --- text search ---------------------------------------------------------------------------


async def _seed(brain: Astrocyte) -> None:
    await brain.retain(FACT, BANK, metadata={"source": "chat"}, tags=["drinks"], context=ALICE)
    await brain.retain(
        "Alice drinks coffee at work.",
        BANK,
        metadata={"source": "email"},
        tags=["drinks", "work"],
        source="msg-42",
        context=ALICE,
    )
    await brain.retain("Alice walks her dog at noon.", BANK, context=ALICE)


async def _collect(results: KernelSearchResults[Any]) -> list[Any]:
    return [item async for item in results.results]


async def test_text_search_output_types_and_provenance(brain: Astrocyte) -> None:
    await _seed(brain)
    search = AstrocyteTextSearch(brain, BANK, context=BOT)

    texts = await search.search("what does alice drink", top=3)
    assert sorted(await _collect(texts)) == sorted(
        [FACT, "Alice drinks coffee at work.", "Alice walks her dog at noon."]
    )
    assert texts.metadata is not None
    hits_meta = texts.metadata["hits"]
    assert {m["bank_id"] for m in hits_meta} == {BANK}
    by_id = {m["memory_id"]: m for m in hits_meta}

    results = await search.search("coffee at work", TextSearchResult, top=3)
    items = await _collect(results)
    assert all(isinstance(r, TextSearchResult) for r in items)
    coffee = next(r for r in items if r.value == "Alice drinks coffee at work.")
    assert coffee.link == "msg-42"
    assert coffee.name in by_id
    assert by_id[coffee.name]["metadata"] == {"source": "email"}
    assert by_id[coffee.name]["tags"] == ["drinks", "work"]

    raw = await _collect(await search.search("dog", "Any", top=1))
    assert len(raw) == 1 and isinstance(raw[0], RecallHit)


async def test_text_search_skip_top_and_count(brain: Astrocyte) -> None:
    await _seed(brain)
    search = AstrocyteTextSearch(brain, BANK, context=BOT)
    everything = await _collect(await search.search("alice", top=3))
    page = await search.search("alice", skip=1, top=2, include_total_count=True)
    assert await _collect(page) == everything[1:3]
    assert page.total_count == 3
    assert (await search.search("alice")).total_count is None
    with pytest.raises(TextSearchException):
        await search.search("alice", top=0)


async def test_text_search_filters(brain: Astrocyte) -> None:
    await _seed(brain)
    search = AstrocyteTextSearch(brain, BANK, context=BOT)
    chat = await _collect(await search.search("alice", filter="lambda x: x.source == 'chat'"))
    assert chat == [FACT]
    work = await _collect(await search.search("alice", filter="lambda x: 'work' in x.tags"))
    assert work == ["Alice drinks coffee at work."]
    both = await search.search(
        "alice", filter=["lambda x: 'drinks' in x.tags", "lambda x: x.source == 'email'"]
    )
    assert await _collect(both) == ["Alice drinks coffee at work."]
    # A callable filter is a predicate on each RecallHit, applied after recall.
    dog = await search.search("alice", filter=lambda hit: "dog" in hit.text, top=3)
    assert await _collect(dog) == ["Alice walks her dog at noon."]
    # Fixed filters and conflicting per-call ones: nothing can match.
    fixed = AstrocyteTextSearch(brain, BANK, context=BOT, filters={"source": "chat"})
    assert await _collect(await fixed.search("alice", top=3)) == [FACT]
    assert await _collect(await fixed.search("alice", filter="lambda x: x.source == 'x'")) == []
    with pytest.raises(TextSearchException):
        await search.search("alice", filter="lambda x: x.score > 1")


async def test_text_search_identity(brain: Astrocyte) -> None:
    await _seed(brain)
    with pytest.raises(AccessDenied):
        await AstrocyteTextSearch(brain, BANK, context=EVE).search("alice")
    # Several banks: unreadable ones are skipped and reported.
    await brain.retain("Alice's public note.", "users:alice", context=ALICE)
    multi = AstrocyteTextSearch(brain, banks=[BANK, "users:alice"], context=EVE)
    with pytest.raises(AccessDenied):
        await multi.search("alice")
    mixed = AstrocyteTextSearch(brain, banks=[BANK, "users:alice"], context=BOT)
    result = await mixed.search("note", top=5)
    assert {m["bank_id"] for m in result.metadata["hits"]} == {BANK, "users:alice"}  # type: ignore[index]


async def test_search_function_in_kernel(brain: Astrocyte) -> None:
    """Semantic Kernel's own create_search_function over the adapter, with an extra
    parameter that its default filter function turns into a string filter."""
    await _seed(brain)
    search = AstrocyteTextSearch(brain, BANK, context=BOT)
    function = search.create_search_function(
        "search_memory",
        "Search Alice's notes.",
        parameters=[
            KernelParameterMetadata(name="query", type="str", is_required=True, type_object=str),
            KernelParameterMetadata(name="source", type="str", is_required=False, type_object=str),
        ],
        top=3,
    )
    kernel = Kernel()
    kernel.add_function(plugin_name="memory", function=function)
    result = await kernel.invoke(
        plugin_name="memory", function_name="search_memory", query="alice", source="email"
    )
    assert result is not None
    assert result.value == ["Alice drinks coffee at work."]

    denied = AstrocyteTextSearch(brain, BANK, context=EVE).create_search_function("s")
    kernel.add_function(plugin_name="denied", function=denied)
    with pytest.raises(KernelInvokeException) as info:
        await kernel.invoke(plugin_name="denied", function_name="s", query="alice")
    cause = info.value.__cause__
    assert isinstance(cause, TextSearchException)
    assert isinstance(cause.__cause__, AccessDenied)


# --- filter translation --------------------------------------------------------------------

_field = st.text(string.ascii_lowercase + string.digits + "_", min_size=1, max_size=16).filter(
    lambda f: not f[0].isdigit() and not keyword.iskeyword(f) and f != "tags"
)
_value = st.one_of(
    st.text(string.printable, max_size=20),
    st.integers(),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False, allow_infinity=False),
)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(_field, _value, min_size=1, max_size=4), st.lists(st.text(max_size=10)))
def test_parse_filter_round_trip(fields: dict[str, Any], tags: list[str]) -> None:
    clauses = [f"x.{k} == {v!r}" for k, v in fields.items()]
    clauses += [f"{t!r} in x.tags" for t in tags]
    filters, parsed_tags = parse_filter("lambda x: " + " and ".join(clauses))
    assert filters == fields
    assert parsed_tags == tags


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(_field.filter(lambda f: f not in {"query", "top", "skip"}), _value))
def test_parse_filter_reads_semantic_kernels_generated_filters(fields: dict[str, Any]) -> None:
    parameters = [KernelParameterMetadata(name=k, type="str") for k in fields]
    generated = default_dynamic_filter_function(None, parameters, **fields)
    generated_list = [] if generated is None else generated
    parsed: dict[str, Any] = {}
    for item in generated_list if isinstance(generated_list, list) else [generated_list]:
        assert isinstance(item, str)
        parsed.update(parse_filter(item)[0])
    assert parsed == fields


@pytest.mark.parametrize(
    "expression",
    [
        "x.a == 1",
        "lambda: True",
        "lambda x, y: x.a == 1",
        "lambda x: x.a == 1 or x.b == 2",
        "lambda x: x.a != 1",
        "lambda x: x.a == y",
        "lambda x: x.a == x.b",
        "lambda x: y.a == 1",
        "lambda x: 3 in x.tags",
        "lambda x: x.a == [1]",
        "lambda x: x.a == 1 and x.a == 2",
        "lambda x: __import__('os').system('true')",
        "lambda x: (",
    ],
)
def test_parse_filter_rejects(expression: str) -> None:
    with pytest.raises(TextSearchException):
        parse_filter(expression)
