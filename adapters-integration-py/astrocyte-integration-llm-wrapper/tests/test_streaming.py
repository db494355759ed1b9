"""Streaming: chunks pass through unchanged and as they come; the assembled reply is
retained when the stream ends (sync and async, in-process brain)."""

from __future__ import annotations

import asyncio
from typing import Any

import openai
from astrocyte import Astrocyte
from conftest import TEMPLATE_HEAD, SseServer

from astrocyte_llm_wrapper import AsyncMemoryStream, MemoryStream, with_memory

BANK = "notes"
QUESTION = [{"role": "user", "content": "greet the world"}]


def delta_dicts(chunks: list[Any]) -> list[dict[str, Any]]:
    return [c.model_dump(exclude_none=True)["choices"][0] for c in chunks]


def sent_deltas(server: SseServer) -> list[dict[str, Any]]:
    return [{k: v for k, v in c["choices"][0].items() if v is not None} for c in server.chunks()]


async def retained(brain: Astrocyte) -> list[str]:
    try:
        result = await brain.recall("greet the world", BANK, max_results=10)
    except Exception:
        return []
    return [h.text for h in result.hits if h.text.startswith("user:")]


async def test_async_stream_passes_chunks_through_as_they_come(
    brain: Astrocyte, sse_llm: SseServer
) -> None:
    await brain.retain("The world likes a cheerful hello.", BANK)
    sse_llm.hold_after_first = True
    raw = openai.AsyncOpenAI(base_url=sse_llm.base_url, api_key="k", max_retries=0)
    async with with_memory(raw, brain, bank=BANK) as client:
        stream = await client.chat.completions.create(model="m", messages=QUESTION, stream=True)
        assert isinstance(stream, AsyncMemoryStream)
        got = [await stream.__anext__(), await stream.__anext__()]
        # The server still holds the rest: the wrapper did not buffer the stream.
        assert not sse_llm.finished.is_set()
        assert got[1].choices[0].delta.content == "Hel"
        sse_llm.release.set()
        got += [chunk async for chunk in stream]
        assert delta_dicts(got) == sent_deltas(sse_llm)
        assert stream.response.status_code == 200  # other attributes are the stream's
        await client.flush()
        assert client.memory_stats.retains == 1
    assert sse_llm.requests[0]["messages"][0] == {
        "role": "system",
        "content": TEMPLATE_HEAD + "- The world likes a cheerful hello.",
    }
    assert sse_llm.requests[0]["stream"] is True
    assert await retained(brain) == ["user: greet the world\nassistant: Hello world"]


async def test_async_stream_closed_early_is_not_retained(
    brain: Astrocyte, sse_llm: SseServer
) -> None:
    raw = openai.AsyncOpenAI(base_url=sse_llm.base_url, api_key="k", max_retries=0)
    async with with_memory(raw, brain, bank=BANK) as client:
        async with await client.chat.completions.create(
            model="m", messages=QUESTION, stream=True
        ) as stream:
            async for chunk in stream:
                if chunk.choices[0].delta.content:
                    break
        await client.flush()
        stats = client.memory_stats
    assert (stats.retains, stats.retains_skipped) == (0, 0)
    assert await retained(brain) == []


async def test_a_stream_without_content_is_not_retained(
    brain: Astrocyte, sse_llm: SseServer
) -> None:
    sse_llm.pieces = []
    raw = openai.AsyncOpenAI(base_url=sse_llm.base_url, api_key="k", max_retries=0)
    async with with_memory(raw, brain, bank=BANK) as client:
        stream = await client.chat.completions.create(model="m", messages=QUESTION, stream=True)
        assert len([c async for c in stream]) == 2
        await client.flush()
        assert client.memory_stats.retains_skipped == 1
    assert await brain.list_banks() == []


def test_sync_stream_passes_chunks_through_and_retains_at_the_end(
    sync_brain: Astrocyte, sse_llm: SseServer
) -> None:
    asyncio.run(sync_brain.retain("The world likes a cheerful hello.", BANK))
    sse_llm.hold_after_first = True
    raw = openai.OpenAI(base_url=sse_llm.base_url, api_key="k", max_retries=0)
    with with_memory(raw, sync_brain, bank=BANK, position="before_last_user") as client:
        with client.chat.completions.create(model="m", messages=QUESTION, stream=True) as stream:
            assert isinstance(stream, MemoryStream)
            got = [next(stream), next(stream)]
            assert not sse_llm.finished.is_set()
            assert client.memory_stats.retains == 0
            sse_llm.release.set()
            got += list(stream)
        assert delta_dicts(got) == sent_deltas(sse_llm)
        assert client.flush(10)
        assert client.memory_stats.retains == 1
    assert sse_llm.requests[0]["messages"] == [
        {"role": "system", "content": TEMPLATE_HEAD + "- The world likes a cheerful hello."},
        *QUESTION,
    ]
    assert asyncio.run(retained(sync_brain)) == ["user: greet the world\nassistant: Hello world"]


def test_sync_stream_closed_early_is_not_retained(
    sync_brain: Astrocyte, sse_llm: SseServer
) -> None:
    raw = openai.OpenAI(base_url=sse_llm.base_url, api_key="k", max_retries=0)
    with with_memory(raw, sync_brain, bank=BANK) as client:
        stream = client.chat.completions.create(model="m", messages=QUESTION, stream=True)
        next(stream)
        stream.close()
    assert client.memory_stats.retains == 0
    assert asyncio.run(retained(sync_brain)) == []
