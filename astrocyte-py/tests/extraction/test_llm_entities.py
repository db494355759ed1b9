"""LLM entity extraction against a real local OpenAI-compatible server: valid JSON,
invalid-then-valid (one retry), always invalid and HTTP failure (rule fallback), and
retain with an ``entity_extraction: llm`` profile."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from astrocyte import Astrocyte
from astrocyte.embedders import HashingEmbedder
from astrocyte.llm import OpenAIChatProvider
from astrocyte.pipeline.llm_entities import LLMEntityExtractor
from astrocyte.testing.openai_server import OpenAICompatibleServer
from tests.conftest import make_config

TEXT = "Maya met the Acme Corp team in Porto."
VALID = json.dumps(
    {
        "entities": [
            {"name": "Maya", "kind": "person"},
            {"name": "Acme Corp", "kind": "org"},
            {"name": "Porto", "kind": "place"},
            {"name": "Gandalf", "kind": "person"},  # not in the text: dropped
        ]
    }
)


def scripted(*replies: str) -> Callable[[list[dict[str, Any]]], str]:
    """A chat reply function answering ``replies`` in turn, then the last forever."""
    queue = list(replies)

    def reply(messages: list[dict[str, Any]]) -> str:
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return reply


@pytest.fixture
async def server() -> AsyncIterator[OpenAICompatibleServer]:
    async with OpenAICompatibleServer() as srv:
        yield srv


@pytest.fixture
async def llm(server: OpenAICompatibleServer) -> AsyncIterator[OpenAIChatProvider]:
    provider = OpenAIChatProvider(
        base_url=server.base_url, model="m", api_key="k", backoff_base=0.01, max_retries=0
    )
    yield provider
    await provider.close()


async def test_valid_json(server: OpenAICompatibleServer, llm: OpenAIChatProvider) -> None:
    server.chat_reply = scripted(VALID)
    result = await LLMEntityExtractor(llm).extract(TEXT)
    assert result.method == "llm" and result.attempts == 1
    assert [(m.normalized, m.kind) for m in result.mentions] == [
        ("maya", "person"),
        ("acme corp", "org"),
        ("porto", "place"),
    ]
    request = server.requests_to("/chat/completions")[0].json
    assert request["messages"][0]["role"] == "system"
    assert request["messages"][1]["content"] == TEXT


async def test_fenced_json_is_accepted(
    server: OpenAICompatibleServer, llm: OpenAIChatProvider
) -> None:
    server.chat_reply = scripted(f"```json\n{VALID}\n```")
    assert (await LLMEntityExtractor(llm).extract(TEXT)).method == "llm"


async def test_invalid_then_valid_retries_once(
    server: OpenAICompatibleServer, llm: OpenAIChatProvider
) -> None:
    server.chat_reply = scripted('{"entities": [{"kind": "person"}]}', VALID)
    result = await LLMEntityExtractor(llm).extract(TEXT)
    assert result.method == "llm" and result.attempts == 2
    second = server.requests_to("/chat/completions")[1].json["messages"]
    # The retry shows the model its invalid answer and asks again.
    assert second[2]["role"] == "assistant" and "not valid" in second[3]["content"]


async def test_always_invalid_falls_back_to_rules(
    server: OpenAICompatibleServer, llm: OpenAIChatProvider
) -> None:
    server.chat_reply = scripted("Sure! Maya and Porto.")
    result = await LLMEntityExtractor(llm).extract(TEXT)
    assert result.method == "rules" and result.attempts == 2
    assert result.error is not None and "invalid reply" in result.error
    assert "maya" in [m.normalized for m in result.mentions]
    assert len(server.requests_to("/chat/completions")) == 2


async def test_http_failure_falls_back_without_retry(
    server: OpenAICompatibleServer, llm: OpenAIChatProvider
) -> None:
    server.fail_next(1, 500)
    result = await LLMEntityExtractor(llm).extract(TEXT)
    assert result.method == "rules" and result.attempts == 1


async def test_retain_with_llm_profile(
    server: OpenAICompatibleServer, llm: OpenAIChatProvider, tmp_path: Path
) -> None:
    server.chat_reply = scripted(VALID)
    config = make_config(
        "memory",
        tmp_path,
        llm={"provider": "openai", "model": "m", "base_url": server.base_url},
        extraction_profiles={"smart": {"entity_extraction": "llm"}},
    )
    async with Astrocyte(config, embedder=HashingEmbedder(), llm=llm) as brain:  # type: ignore[arg-type]
        await brain.retain_many([{"content": TEXT, "profile": "smart"}], "b")
        found = await brain.stores.graph.find_entities("b", ["acme corp", "gandalf", "met"])
        assert [(e.normalized, e.kind) for e in found] == [("acme corp", "org")]
        # Without a profile naming llm, no LLM call is made.
        calls = len(server.requests_to("/chat/completions"))
        await brain.retain("Tomas ran in Lisbon.", "b")
        assert len(server.requests_to("/chat/completions")) == calls
