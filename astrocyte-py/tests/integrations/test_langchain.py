"""LangChain / LangGraph adapters: the standard retriever suite, a real LangGraph graph on
AstrocyteStore, and a tool-calling agent loop (fake chat model) on the memory tools."""

from __future__ import annotations

import asyncio
import functools
import string
from collections.abc import AsyncIterator
from typing import Any

import pytest

pytest.importorskip("langchain_core")
pytest.importorskip("langgraph")

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.documents import Document
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_tests.integration_tests import RetrieversIntegrationTests
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from langgraph.store.base import BaseStore, InvalidNamespaceError
from shared_identities import ALICE, BOT, CONFIG, EVE, GRANTS
from typing_extensions import TypedDict

from astrocyte import AccessDenied, Astrocyte, AstrocyteContext
from astrocyte.integrations.common import run_sync
from astrocyte.integrations.langchain import (
    KEY_FIELD,
    AstrocyteRetriever,
    AstrocyteStore,
    bank_to_namespace,
    make_memory_tools,
    namespace_to_bank,
)


@pytest.fixture
async def brain() -> AsyncIterator[Astrocyte]:
    async with Astrocyte.from_config(CONFIG) as b:
        yield b


@pytest.fixture
async def guarded() -> AsyncIterator[Astrocyte]:
    async with Astrocyte.from_config({**CONFIG, **GRANTS}) as b:
        yield b


# --- standard suite ------------------------------------------------------------------------


@functools.cache
def _standard_brain() -> Astrocyte:
    brain = Astrocyte.from_config(CONFIG)
    facts = [
        "Alice drinks green tea every morning.",
        "Tea with lemon is Bob's favourite drink.",
        "The tea shop on Main Street opens at eight.",
        "Carol prefers black tea without sugar.",
        "A pot of tea serves four people.",
    ]
    for fact in facts:
        run_sync(brain.retain(fact, "standard"))
    return brain


class TestAstrocyteRetrieverStandard(RetrieversIntegrationTests):
    """langchain-tests' RetrieversIntegrationTests, unchanged."""

    @property
    def retriever_constructor(self) -> type[AstrocyteRetriever]:
        return AstrocyteRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"brain": _standard_brain(), "bank_id": "standard"}

    @property
    def retriever_query_example(self) -> str:
        return "who drinks tea?"

    @property
    def num_results_arg_name(self) -> str:
        return "max_results"


# --- namespace mapping ---------------------------------------------------------------------

_label = st.text(string.ascii_letters + string.digits + "_@-", min_size=1, max_size=12)
_namespace = st.lists(_label, min_size=1, max_size=5).filter(lambda ns: ns[0][0].isalnum())


@given(_namespace)
def test_namespace_bank_round_trip(labels: list[str]) -> None:
    bank = namespace_to_bank(tuple(labels))
    assert bank == ":".join(labels)
    assert bank_to_namespace(bank) == tuple(labels)


@pytest.mark.parametrize(
    "namespace",
    [(), ("a.b",), ("a:b",), ("",), ("ok", "with space"), ("_lead",), ("x" * 129,)],
)
def test_invalid_namespaces_are_refused(namespace: tuple[str, ...]) -> None:
    with pytest.raises(InvalidNamespaceError):
        namespace_to_bank(namespace)


# --- store ---------------------------------------------------------------------------------


async def test_store_put_get_replace_delete(brain: Astrocyte) -> None:
    store = AstrocyteStore(brain)
    ns = ("users", "alice")
    await store.aput(ns, "prefs", {"drink": "tea", "n": 1})
    await store.aput(ns, "other", {"drink": "tea", "n": 1})  # same value, different key
    item = await store.aget(ns, "prefs")
    assert item is not None
    assert (item.namespace, item.key, item.value) == (ns, "prefs", {"drink": "tea", "n": 1})

    await store.aput(ns, "prefs", {"drink": "coffee"})
    replaced = await store.aget(ns, "prefs")
    assert replaced is not None and replaced.value == {"drink": "coffee"}
    # the replaced value is gone from the bank, not just shadowed
    stored = await brain.recall("tea coffee drink", "users:alice", filters={KEY_FIELD: "prefs"})
    assert len(stored.hits) == 1

    await store.adelete(ns, "prefs")
    assert await store.aget(ns, "prefs") is None
    assert (await store.aget(ns, "other")) is not None
    assert await store.aget(("users", "nobody"), "prefs") is None


async def test_store_search_semantic_filter_and_paging(brain: Astrocyte) -> None:
    store = AstrocyteStore(brain)
    await store.aput(("users", "alice"), "pet", {"text": "Alice has a cat named Tom", "n": 1})
    await store.aput(("users", "alice"), "job", {"text": "Alice works as a nurse", "n": 2})
    await store.aput(("users", "bob"), "pet", {"text": "Bob has a dog named Rex", "n": 3})
    # a plain memory in a store bank is not an item
    await brain.retain("Alice also has a cat sitter", "users:alice")

    hits = await store.asearch(("users", "alice"), query="cat named Tom")
    assert hits[0].key == "pet"
    assert {h.namespace for h in hits} == {("users", "alice")}
    assert all(h.score is not None for h in hits)

    everyone = await store.asearch(("users",), query="dog named Rex")
    # banks are fused with RRF (each bank's best hit ties), so look per namespace
    assert {h.namespace for h in everyone} == {("users", "alice"), ("users", "bob")}
    assert (("users", "bob"), "pet") in {(h.namespace, h.key) for h in everyone[:2]}
    assert len(everyone) == len({(h.namespace, h.key) for h in everyone})  # one hit per item

    listed = await store.asearch(("users",))
    assert len(listed) == 3 and all(h.score is None for h in listed)
    assert [h.key for h in await store.asearch(("users",), filter={"n": {"$gte": 2}})] == [
        "pet",
        "job",
    ]
    assert [h.value["n"] for h in await store.asearch(("users",), filter={"n": 2})] == [2]
    page = await store.asearch(("users",), limit=1, offset=1)
    assert len(page) == 1 and page[0].key == listed[1].key
    assert await store.asearch(("nobody",), query="cat") == []


async def test_store_index_fields_choose_what_is_searched(brain: Astrocyte) -> None:
    store = AstrocyteStore(brain)
    await store.aput(("docs",), "a", {"title": "zebra stripes", "body": "quantum"}, index=["title"])
    await store.aput(("docs",), "b", {"title": "quantum physics", "body": "zebra"}, index=["title"])
    # only the indexed field is searched: each query finds the item titled with it first
    assert (await store.asearch(("docs",), query="quantum"))[0].key == "b"
    assert (await store.asearch(("docs",), query="zebra"))[0].key == "a"
    item = await store.aget(("docs",), "a")
    assert item is not None and item.value["body"] == "quantum"


async def test_store_list_namespaces(brain: Astrocyte) -> None:
    store = AstrocyteStore(brain)
    for ns in [("users", "alice", "prefs"), ("users", "bob", "prefs"), ("docs", "v1")]:
        await store.aput(ns, "k", {"v": 1})
    assert await store.alist_namespaces() == [
        ("docs", "v1"),
        ("users", "alice", "prefs"),
        ("users", "bob", "prefs"),
    ]
    assert await store.alist_namespaces(prefix=("users",), max_depth=2) == [
        ("users", "alice"),
        ("users", "bob"),
    ]
    assert await store.alist_namespaces(suffix=("prefs",), limit=1) == [("users", "alice", "prefs")]
    assert await store.alist_namespaces(prefix=("users", "*", "prefs")) == [
        ("users", "alice", "prefs"),
        ("users", "bob", "prefs"),
    ]


json_values = st.dictionaries(
    st.text(min_size=1, max_size=8),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=30),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
        max_leaves=6,
    ),
    max_size=5,
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=json_values, key=st.text(min_size=1, max_size=40))
def test_store_values_round_trip_exactly(value: dict[str, Any], key: str) -> None:
    brain = Astrocyte.from_config(CONFIG)
    try:
        store = AstrocyteStore(brain)  # sync API: BaseStore.put/get through batch()
        store.put(("rt",), key, value)
        item = store.get(("rt",), key)
        assert item is not None and item.value == value and item.key == key
    finally:
        run_sync(brain.close())


async def test_store_large_value_round_trips(brain: Astrocyte) -> None:
    store = AstrocyteStore(brain)
    value = {"blob": "x" * 30_000, "tail": list(range(100))}
    await store.aput(("big",), "k", value)
    item = await store.aget(("big",), "k")
    assert item is not None and item.value == value
    with pytest.raises(ValueError, match="over the"):
        await store.aput(("big",), "huge", {"blob": "x" * 300_000})


async def test_store_applies_identity(guarded: Astrocyte) -> None:
    alice = AstrocyteStore(guarded, context=ALICE)
    eve = AstrocyteStore(guarded, context=EVE)
    await alice.aput(("users", "alice"), "secret", {"pin": "1234"})
    with pytest.raises(AccessDenied):
        await eve.aget(("users", "alice"), "secret")
    with pytest.raises(AccessDenied):
        await eve.aput(("users", "alice"), "secret", {"pin": "0000"})
    # eve can list/search nothing she cannot read
    assert await eve.asearch(("users",), query="pin") == []
    assert await eve.alist_namespaces() == []
    item = await alice.aget(("users", "alice"), "secret")
    assert item is not None and item.value == {"pin": "1234"}
    # the bot (read + write) may add keys but not replace one: that forgets the old item
    bot = AstrocyteStore(guarded, context=BOT)
    await bot.aput(("users", "alice"), "new", {"v": 1})
    with pytest.raises(AccessDenied):
        await bot.aput(("users", "alice"), "secret", {"pin": "0000"})
    with pytest.raises(AccessDenied):
        await bot.adelete(("users", "alice"), "new")
    await alice.aput(("users", "alice"), "secret", {"pin": "9999"})
    replaced = await bot.aget(("users", "alice"), "secret")
    assert replaced is not None and replaced.value == {"pin": "9999"}


# --- a real LangGraph graph ----------------------------------------------------------------


class _State(TypedDict, total=False):
    user: str
    fact: str
    question: str
    answer: list[str]


def _memory_graph(store: BaseStore) -> Any:
    async def remember(state: _State, *, store: BaseStore) -> dict[str, Any]:
        ns = ("users", state["user"], "facts")
        existing = await store.asearch(ns)
        await store.aput(ns, f"fact-{len(existing)}", {"text": state["fact"]})
        return {}

    async def answer(state: _State, *, store: BaseStore) -> dict[str, Any]:
        hits = await store.asearch(("users", state["user"]), query=state["question"], limit=2)
        return {"answer": [h.value["text"] for h in hits]}

    graph = StateGraph(_State)
    graph.add_node("remember", remember)
    graph.add_node("answer", answer)
    graph.add_edge(START, "remember")
    graph.add_edge("remember", "answer")
    graph.add_edge("answer", END)
    return graph.compile(store=store)


async def test_langgraph_graph_uses_the_store(guarded: Astrocyte) -> None:
    app = _memory_graph(AstrocyteStore(guarded, context=BOT))
    await app.ainvoke({"user": "alice", "fact": "Alice is allergic to peanuts", "question": "x"})
    out = await app.ainvoke(
        {"user": "alice", "fact": "Alice lives in Lisbon", "question": "peanuts allergy"}
    )
    assert out["answer"][0] == "Alice is allergic to peanuts"
    # stored as real memories in the bank the namespace maps to
    stored = await guarded.list_banks(context=ALICE)
    assert [(b.bank_id, b.memory_count) for b in stored] == [("users:alice:facts", 2)]
    # the same graph running as a caller without read on that bank is refused
    denied = _memory_graph(AstrocyteStore(guarded, context=AstrocyteContext(principal="user:bob")))
    with pytest.raises(AccessDenied):
        await denied.ainvoke({"user": "alice", "fact": "x", "question": "y"})


def test_langgraph_graph_sync_invoke(brain: Astrocyte) -> None:
    def node(state: _State, *, store: BaseStore) -> dict[str, Any]:
        store.put(("s",), "k", {"text": state["fact"]})
        item = store.get(("s",), "k")
        return {"answer": [item.value["text"]] if item else []}

    graph = StateGraph(_State)
    graph.add_node("node", node)
    graph.add_edge(START, "node")
    app = graph.compile(store=AstrocyteStore(brain))
    assert app.invoke({"fact": "sync works"})["answer"] == ["sync works"]


# --- retriever and tools -------------------------------------------------------------------


async def test_retriever_documents_carry_provenance(guarded: Astrocyte) -> None:
    await guarded.retain("Alice visited Kyoto in May", "users:alice", tags=["trip"], context=ALICE)
    retriever = AstrocyteRetriever(brain=guarded, bank_id="users:alice", context=BOT)
    docs = await retriever.ainvoke("Kyoto trip")
    assert len(docs) == 1 and isinstance(docs[0], Document)
    meta = docs[0].metadata
    assert docs[0].page_content == "Alice visited Kyoto in May"
    assert meta["bank_id"] == "users:alice" and meta["tags"] == ["trip"]
    assert meta["memory_id"] == docs[0].id and meta["score"] > 0
    with pytest.raises(AccessDenied):
        await AstrocyteRetriever(brain=guarded, bank_id="users:alice", context=EVE).ainvoke("x")


def _agent(tools: list[Any], responses: list[AIMessage]) -> Any:
    model = GenericFakeChatModel(messages=iter(responses))

    def call_model(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("agent", call_model)
    graph.add_node("tools", ToolNode(tools))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    return graph.compile()


def _call(name: str, args: dict[str, Any], call_id: str) -> AIMessage:
    return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": call_id}])


@pytest.mark.parametrize("mode", ["async", "sync"])
async def test_agent_calls_memory_tools(guarded: Astrocyte, mode: str) -> None:
    tools = make_memory_tools(guarded, "users:alice", context=BOT)
    agent = _agent(
        tools,
        [
            _call("remember", {"content": "Alice's favourite colour is teal"}, "c1"),
            _call("recall", {"query": "favourite colour"}, "c2"),
            AIMessage(content="Teal."),
        ],
    )
    request = {"messages": [HumanMessage("remember my colour, then tell me")]}
    if mode == "async":
        out = await agent.ainvoke(request)
    else:
        out = await asyncio.to_thread(agent.invoke, request)
    tool_messages = [m for m in out["messages"] if isinstance(m, ToolMessage)]
    assert [m.name for m in tool_messages] == ["remember", "recall"]
    assert "Remembered" in str(tool_messages[0].content)
    assert "teal" in str(tool_messages[1].content)
    assert out["messages"][-1].content == "Teal."
    stored = await guarded.recall("colour", "users:alice", context=ALICE)
    assert [h.text for h in stored.hits] == ["Alice's favourite colour is teal"]


async def test_agent_tools_refuse_without_read(guarded: Astrocyte) -> None:
    # eve may write to alice's notes but not read them
    remember, recall = make_memory_tools(guarded, "users:alice:notes", context=EVE)
    assert "Remembered" in await remember.ainvoke({"content": "note from eve"})
    with pytest.raises(AccessDenied):
        await recall.ainvoke({"query": "note"})
    agent = _agent([remember, recall], [_call("recall", {"query": "note"}, "c1")])
    with pytest.raises(AccessDenied):
        await agent.ainvoke({"messages": [HumanMessage("what notes?")]})


def test_missing_framework_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib
    import sys

    monkeypatch.setitem(sys.modules, "langgraph.store.base", None)  # makes the import fail
    monkeypatch.delitem(sys.modules, "astrocyte.integrations.langchain")
    with pytest.raises(ImportError, match=r'pip install "astrocyte\[langchain\]"'):
        importlib.import_module("astrocyte.integrations.langchain")
    import astrocyte.integrations  # the package itself imports no framework

    assert astrocyte.integrations.__doc__
