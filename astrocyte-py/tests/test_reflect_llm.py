"""Reflect with an LLM, over a real OpenAI-compatible HTTP server on loopback."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from astrocyte import Astrocyte, LLMError, load_config
from astrocyte.embedders import HashingEmbedder
from astrocyte.testing.openai_server import OpenAICompatibleServer


def _config(tmp_path: Path, base_url: str) -> Any:
    return load_config(
        {
            "storage": {"backend": "embedded", "path": str(tmp_path / "r.db")},
            "llm": {"provider": "openai", "base_url": base_url, "model": "test-chat",
                    "api_key": "sk-test", "max_retries": 0, "timeout": 5},
        }
    )  # fmt: skip


def _cite_the_marathon(messages: list[dict[str, Any]]) -> str:
    """Answer like a model would: find the numbered memory about the race, cite it."""
    prompt = messages[-1]["content"]
    for number, text in re.findall(r"^\[(\d+)\][^\n]*? (.*)$", prompt, flags=re.M):
        if "marathon" in text:
            return f"Tomas ran it in 1:43:10 [{number}]. Also see [99]."
    return "I do not know."


async def test_reflect_sends_numbered_evidence_and_maps_citations(tmp_path: Path) -> None:
    async with OpenAICompatibleServer(chat_reply=_cite_the_marathon) as server:
        async with Astrocyte(_config(tmp_path, server.base_url), embedder=HashingEmbedder()) as b:
            await b.retain("Tomas strained his calf in March.", "t", occurred_at="2024-03-20")
            race = await b.retain("Tomas ran the half marathon in 1:43:10.", "t",
                                  occurred_at="2024-05-21T19:15:00Z")  # fmt: skip
            result = await b.reflect("How fast was the half marathon?", "t")
        request = server.requests_to("/v1/chat/completions")[-1]
    assert result.mode == "llm" and result.model == "test-chat"
    assert result.answer.startswith("Tomas ran it in 1:43:10 [")
    # [99] is not a memory number: only real evidence becomes a citation.
    assert [c.memory_id for c in result.citations] == race.memory_ids
    assert request.authorization == "Bearer sk-test"
    body = request.json
    assert body["model"] == "test-chat"
    system, user = body["messages"]
    assert system["role"] == "system" and "Cite" in system["content"]
    assert "Question: How fast was the half marathon?" in user["content"]
    assert "(2024-05-21) Tomas ran the half marathon in 1:43:10." in user["content"]


async def test_reflect_surfaces_llm_failure_as_typed_error(tmp_path: Path) -> None:
    async with (
        OpenAICompatibleServer(chat_reply="unused") as server,
        Astrocyte(_config(tmp_path, server.base_url), embedder=HashingEmbedder()) as b,
    ):
        await b.retain("something to cite", "t")
        server.fail_next(1, 500)
        with pytest.raises(LLMError):
            await b.reflect("something", "t")


async def test_reflect_with_no_evidence_does_not_call_the_llm(tmp_path: Path) -> None:
    async with OpenAICompatibleServer(chat_reply="should not be asked") as server:
        async with Astrocyte(_config(tmp_path, server.base_url), embedder=HashingEmbedder()) as b:
            await b.create_bank("empty")
            result = await b.reflect("anything at all", "empty")
        assert server.requests_to("/v1/chat/completions") == []
    assert result.citations == [] and result.answer == "No relevant memories found."
