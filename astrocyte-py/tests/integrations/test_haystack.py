"""Haystack adapters: a writer pipeline and a retriever → prompt builder pipeline (sync and
async), filters, identity and serialisation.

Haystack ships no standard test suite for retriever or writer components
(``haystack.testing`` holds DocumentStore suites only), so none is run here.
"""

from __future__ import annotations

import os

os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")  # no phoning home

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("haystack")

from haystack import Document, Pipeline
from haystack.components.builders import ChatPromptBuilder, PromptBuilder
from haystack.components.retrievers.types import TextRetriever
from haystack.core.errors import DeserializationError, PipelineRuntimeError, SerializationError
from haystack.dataclasses import ChatMessage
from haystack.errors import FilterError
from haystack.utils.filters import document_matches_filter
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shared_identities import ALICE, BOT, CONFIG, EVE, GRANTS

from astrocyte import AccessDenied, Astrocyte, ValidationError
from astrocyte.integrations.common import run_sync
from astrocyte.integrations.haystack import AstrocyteRetriever, AstrocyteWriter, to_recall_filters
from astrocyte.spi import metadata_equal

BANK = "users:alice:notes"
DOCS = [
    Document(id="doc-tea", content="Alice drinks green tea every morning.", meta={"kind": "habit"}),
    Document(id="doc-bus", content="The number 7 bus stops at the library.", meta={"kind": "fact"}),
]
TEMPLATE = (
    "Memories:\n{% for d in documents %}- {{ d.content }} [{{ d.meta.source_id }}]\n{% endfor %}"
    "Question: {{ query }}"
)


# Sync pipelines run the facade on the shared background loop: build the brain outside
# any event loop and use it only through pipelines or run_sync.
@pytest.fixture
def guarded() -> Iterator[Astrocyte]:
    brain = Astrocyte.from_config({**CONFIG, **GRANTS})
    yield brain
    run_sync(brain.close())


@pytest.fixture
def brain() -> Iterator[Astrocyte]:
    b = Astrocyte.from_config(CONFIG)
    yield b
    run_sync(b.close())


def _writer_pipeline(writer: AstrocyteWriter) -> Pipeline:
    pipeline = Pipeline()
    pipeline.add_component("writer", writer)
    return pipeline


def _rag_pipeline(retriever: AstrocyteRetriever) -> Pipeline:
    pipeline = Pipeline()
    pipeline.add_component("retriever", retriever)
    pipeline.add_component("prompt_builder", PromptBuilder(template=TEMPLATE))
    pipeline.connect("retriever.documents", "prompt_builder.documents")
    return pipeline


def test_write_then_retrieve_into_a_prompt(guarded: Astrocyte) -> None:
    writer = _writer_pipeline(AstrocyteWriter(guarded, BANK, context=BOT))
    assert writer.run({"writer": {"documents": DOCS}}) == {"writer": {"documents_written": 2}}
    # idempotent by document id: the same documents again store nothing
    assert writer.run({"writer": {"documents": DOCS}}) == {"writer": {"documents_written": 0}}
    stored = run_sync(guarded.recall("tea bus library", BANK, context=ALICE))
    assert sorted(h.provenance.source_id for h in stored.hits) == ["doc-bus", "doc-tea"]

    query = "What does Alice drink in the morning?"
    rag = _rag_pipeline(AstrocyteRetriever(guarded, BANK, top_k=1, context=BOT))
    out = rag.run(
        {"retriever": {"query": query}, "prompt_builder": {"query": query}},
        include_outputs_from={"retriever"},
    )
    (doc,) = out["retriever"]["documents"]
    assert doc.content == "Alice drinks green tea every morning."
    assert doc.id in {h.memory_id for h in stored.hits}
    assert doc.score is not None and doc.score == doc.meta["score"]
    assert doc.meta["bank_id"] == BANK
    assert doc.meta["source_id"] == "doc-tea"
    assert doc.meta["metadata"] == {"kind": "habit"}
    prompt = out["prompt_builder"]["prompt"]
    assert "- Alice drinks green tea every morning. [doc-tea]" in prompt
    assert "bus" not in prompt
    assert prompt.endswith(f"Question: {query}")


async def test_async_pipeline_with_chat_prompt_builder() -> None:
    async with Astrocyte.from_config({**CONFIG, **GRANTS}) as brain:
        writer = _writer_pipeline(AstrocyteWriter(brain, BANK, context=BOT, tags=["haystack"]))
        written = await writer.run_async({"writer": {"documents": DOCS}})
        assert written == {"writer": {"documents_written": 2}}

        retriever = AstrocyteRetriever(brain, BANK, context=BOT, tags=["haystack"])
        assert getattr(retriever, "__haystack_supports_async__", False)  # run_async is used
        rag = Pipeline()
        rag.add_component("retriever", retriever)
        rag.add_component(
            "prompt_builder", ChatPromptBuilder(template=[ChatMessage.from_user(TEMPLATE)])
        )
        rag.connect("retriever.documents", "prompt_builder.documents")
        query = "Which bus stops at the library?"
        out = await rag.run_async(
            {"retriever": {"query": query, "top_k": 1}, "prompt_builder": {"query": query}},
            include_outputs_from={"retriever"},
        )
        (doc,) = out["retriever"]["documents"]
        assert doc.meta["source_id"] == "doc-bus" and doc.meta["tags"] == ["haystack"]
        (message,) = out["prompt_builder"]["prompt"]
        assert "- The number 7 bus stops at the library. [doc-bus]" in (message.text or "")


def test_identity_applies_to_both_components(guarded: Astrocyte) -> None:
    # eve may write into the bank ...
    eve_writes = _writer_pipeline(AstrocyteWriter(guarded, BANK, context=EVE))
    assert eve_writes.run({"writer": {"documents": DOCS[:1]}})["writer"]["documents_written"] == 1
    # ... but not read it: the pipeline reports the retriever's AccessDenied as its failure
    rag = _rag_pipeline(AstrocyteRetriever(guarded, BANK, context=EVE))
    with pytest.raises(PipelineRuntimeError) as failure:
        rag.run({"retriever": {"query": "tea"}, "prompt_builder": {"query": "tea"}})
    assert isinstance(failure.value.__cause__, AccessDenied)
    assert failure.value.component_name == "retriever"
    # the bot may not write outside alice's banks; the component itself raises AccessDenied
    with pytest.raises(AccessDenied):
        AstrocyteWriter(guarded, "users:bob", context=BOT).run(documents=DOCS)
    # a fresh bank the caller may read is empty, not an error; one it may not read is denied
    assert AstrocyteRetriever(guarded, "users:alice:new", context=BOT).run("tea") == {
        "documents": []
    }
    with pytest.raises(AccessDenied):
        AstrocyteRetriever(guarded, "users:bob", context=BOT).run("tea")


def test_retriever_filters(brain: Astrocyte) -> None:
    AstrocyteWriter(brain, "notes").run(documents=DOCS)
    retriever = AstrocyteRetriever(brain, "notes")
    habit = {"field": "meta.metadata.kind", "operator": "==", "value": "habit"}
    docs = retriever.run("tea bus", filters=habit)["documents"]
    assert [d.meta["source_id"] for d in docs] == ["doc-tea"]
    both = {"operator": "AND", "conditions": [habit, {"operator": "AND", "conditions": []}]}
    assert [d.meta["source_id"] for d in retriever.run("bus", filters=both)["documents"]] == [
        "doc-tea"
    ]
    assert retriever.run("tea", top_k=0) == {"documents": []}
    bad_filters: list[dict[str, Any]] = [
        {"field": "meta.metadata.kind", "operator": "!=", "value": "habit"},
        {"field": "meta.kind", "operator": "==", "value": "habit"},
        {"field": "meta.metadata.", "operator": "==", "value": "habit"},
        {"field": "meta.metadata.kind", "operator": "==", "value": ["habit"]},
        {"operator": "OR", "conditions": [habit]},
        {"operator": "AND", "conditions": [habit, {**habit, "value": "fact"}]},
    ]
    for bad in bad_filters:
        with pytest.raises(FilterError):
            retriever.run("tea", filters=bad)
    with pytest.raises(ValueError):
        retriever.run("tea", top_k=-1)


def test_writer_refuses_what_it_cannot_store(brain: Astrocyte) -> None:
    writer = AstrocyteWriter(brain, "notes")
    assert writer.run(documents=[]) == {"documents_written": 0}
    with pytest.raises(ValueError, match="no text content"):
        writer.run(documents=[Document(id="empty")])
    with pytest.raises(ValidationError):  # retain metadata is flat scalars
        writer.run(documents=[Document(content="x", meta={"nested": {"a": 1}})])


def test_components_are_not_serialisable(brain: Astrocyte) -> None:
    pipeline = _rag_pipeline(AstrocyteRetriever(brain, "notes"))
    with pytest.raises(SerializationError, match="live Astrocyte"):
        pipeline.dumps()
    with pytest.raises(SerializationError):
        _writer_pipeline(AstrocyteWriter(brain, "notes")).to_dict()
    with pytest.raises(DeserializationError):
        AstrocyteRetriever.from_dict({})
    with pytest.raises(DeserializationError):
        AstrocyteWriter.from_dict({})


def test_follows_the_text_retriever_protocol(brain: Astrocyte) -> None:
    retriever: TextRetriever = AstrocyteRetriever(brain, "notes")  # checked by mypy
    assert retriever.run("q", None, 3) == {"documents": []}


# --- filters: open-ended metadata --------------------------------------------------------

_KEYS = ["colour", "size", "flag"]
_VALUES = st.sampled_from(["red", "blue", "1", 1, 1.0, 2, 0.5, True, False, None])
_metas = st.lists(st.dictionaries(st.sampled_from(_KEYS), _VALUES, max_size=3), max_size=6)
_conditions = st.dictionaries(st.sampled_from(_KEYS), _VALUES, min_size=1, max_size=2)


@pytest.fixture(scope="module")
def shared() -> Iterator[Astrocyte]:
    b = Astrocyte.from_config(CONFIG)
    yield b
    run_sync(b.close())


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(_metas, _conditions)
def test_filters_select_exactly_what_haystack_would(
    shared: Astrocyte, metas: list[dict[str, Any]], wanted: dict[str, Any]
) -> None:
    bank = f"b{uuid.uuid4().hex[:12]}"
    docs = [Document(content=f"note number {i} about tea", meta=m) for i, m in enumerate(metas)]
    if docs:
        AstrocyteWriter(shared, bank).run(documents=docs)
    filters = {
        "operator": "AND",
        "conditions": [
            {"field": f"meta.metadata.{k}", "operator": "==", "value": v} for k, v in wanted.items()
        ],
    }
    assert to_recall_filters(filters) == wanted
    found = AstrocyteRetriever(shared, bank, top_k=50).run("tea", filters=filters)["documents"]
    # every returned document matches the filter by Haystack's own semantics ...
    assert all(document_matches_filter(filters, d) for d in found)
    # ... and no written document that matches is missing
    expected = sorted(
        d.id
        for d in docs
        if all(k in d.meta and metadata_equal(d.meta[k], v) for k, v in wanted.items())
    )
    # (JSON-typed equality: True never matches 1, where Python's == would say it does)
    assert sorted(d.meta["source_id"] for d in found) == expected
