"""The wrapper over HTTP: the real Astrocyte gateway (uvicorn on loopback), the real
openai client and a real OpenAI-compatible server; sync and async, identity by API key
or bearer token, fail-open when the gateway refuses, is down or hangs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest
from astrocyte.testing.openai_server import OpenAICompatibleServer
from conftest import TEMPLATE_HEAD, SseServer, fast_config, free_port

from astrocyte_llm_wrapper import with_memory

pytest.importorskip("astrocyte_gateway")

ALICE_KEY = "alice-key-0123456789abcdef"
BOB_KEY = "bob-key-0123456789abcdef"
ACME_KEY = "acme-key-0123456789abcdef"


def gateway_config() -> dict[str, Any]:
    return fast_config(
        deployment={"mode": "standalone"},
        gateway={
            "auth": {
                "mode": "api_key",
                "api_keys": [
                    {"key": ALICE_KEY, "principal": "user:alice"},
                    {"key": BOB_KEY, "principal": "user:bob"},
                    {"key": ACME_KEY, "principal": "user:carol", "tenant": "acme"},
                ],
            }
        },
        access_grants=[
            {"principals": ["user:*"], "banks": ["user-{id}"], "permissions": ["read", "write"]}
        ],
    )


@pytest.fixture
def gateway(start_gateway: Callable[..., str]) -> str:
    return start_gateway(gateway_config())


def recall_texts(gateway: str, key: str, query: str, bank: str | None = None) -> list[str]:
    body: dict[str, Any] = {"query": query, "max_results": 10}
    if bank:
        body["bank_id"] = bank
    response = httpx.post(f"{gateway}/v1/recall", json=body, headers={"X-Api-Key": key})
    if response.status_code == 404:
        return []
    response.raise_for_status()
    return [h["text"] for h in response.json()["hits"]]


def chat_messages(llm: OpenAICompatibleServer) -> list[list[dict[str, Any]]]:
    return [r.json["messages"] for r in llm.requests_to("chat/completions")]


async def test_async_over_http_remembers_across_turns(
    gateway: str, llm: OpenAICompatibleServer
) -> None:
    raw = openai.AsyncOpenAI(base_url=llm.base_url, api_key="sk", max_retries=0)
    async with with_memory(raw, gateway, api_key=ALICE_KEY) as client:
        await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "My cat is called Miso."}]
        )
        await client.flush()
        await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "What is my cat called?"}]
        )
    stats = client.memory_stats  # after aclose: the second retain was flushed too
    first, second = chat_messages(llm)
    assert first == [{"role": "user", "content": "My cat is called Miso."}]
    assert second == [
        {
            "role": "system",
            "content": TEMPLATE_HEAD
            + "- user: My cat is called Miso. assistant: noted: My cat is called Miso.",
        },
        {"role": "user", "content": "What is my cat called?"},
    ]
    assert (stats.recalls, stats.recall_failures, stats.retains) == (2, 0, 2)
    # Retained as alice, into her default bank (user-alice), as a conversation.
    assert "user: My cat is called Miso.\nassistant: noted: My cat is called Miso." in (
        recall_texts(gateway, ALICE_KEY, "cat Miso")
    )
    assert recall_texts(gateway, BOB_KEY, "cat Miso") == []


def test_sync_over_http_with_a_bearer_token_and_tags(
    gateway: str, llm: OpenAICompatibleServer
) -> None:
    raw = openai.OpenAI(base_url=llm.base_url, api_key="sk", max_retries=0)
    with with_memory(
        raw, gateway, bearer_token=BOB_KEY, bank="user-bob", retain_tags=["wrapped"]
    ) as client:
        client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "Bob owns a red kayak."}]
        )
        assert client.flush(10)
        client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "What colour is the kayak?"}]
        )
        assert client.memory_stats.injections == 1
    assert chat_messages(llm)[1][0]["content"] == (
        TEMPLATE_HEAD + "- user: Bob owns a red kayak. assistant: noted: Bob owns a red kayak."
    )
    response = httpx.post(
        f"{gateway}/v1/recall",
        json={"query": "kayak", "bank_id": "user-bob", "tags": ["wrapped"]},
        headers={"Authorization": f"Bearer {BOB_KEY}"},
    )
    hits = response.json()["hits"]
    assert len(hits) == 2
    assert {h["provenance"]["content_type"] for h in hits} == {"conversation"}
    assert {h["provenance"]["metadata"]["source"] for h in hits} == {"astrocyte-llm-wrapper"}


async def test_scoped_views_use_each_users_key(gateway: str, llm: OpenAICompatibleServer) -> None:
    raw = openai.AsyncOpenAI(base_url=llm.base_url, api_key="sk", max_retries=0)
    async with with_memory(raw, gateway, api_key=ALICE_KEY) as client:
        carol = client.scoped(api_key=ACME_KEY, bank="user-carol")
        await carol.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "Carol's budget is 5k."}]
        )
        await client.flush()
        # Alice cannot read Carol's bank (another user's, in another tenant): fail open.
        intruder = client.scoped(api_key=ALICE_KEY, bank="user-carol")
        await intruder.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "Carol's budget?"}]
        )
        await carol.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "What is my budget?"}]
        )
        await client.flush()
        stats = client.memory_stats
    sent = chat_messages(llm)
    assert sent[1] == [{"role": "user", "content": "Carol's budget?"}]
    assert sent[2][0]["content"].startswith(TEMPLATE_HEAD + "- user: Carol's budget is 5k.")
    assert (stats.recall_failures, stats.retain_failures) == (1, 1)
    assert recall_texts(gateway, ACME_KEY, "budget", bank="user-carol")[0].startswith(
        "user: Carol's budget is 5k."
    )


async def test_a_rejected_key_fails_open(
    gateway: str, llm: OpenAICompatibleServer, caplog: pytest.LogCaptureFixture
) -> None:
    raw = openai.AsyncOpenAI(base_url=llm.base_url, api_key="sk", max_retries=0)
    async with with_memory(raw, gateway, api_key="wrong-key") as client:
        reply = await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hello"}]
        )
        await client.flush()
        stats = client.memory_stats
    assert reply.choices[0].message.content == "noted: hello"
    assert chat_messages(llm) == [[{"role": "user", "content": "hello"}]]
    assert (stats.recall_failures, stats.retain_failures, stats.retains) == (1, 1, 0)
    assert "recall answered HTTP 401" in caplog.text


async def test_a_bank_that_does_not_exist_yet_is_no_failure(
    gateway: str, llm: OpenAICompatibleServer
) -> None:
    raw = openai.AsyncOpenAI(base_url=llm.base_url, api_key="sk", max_retries=0)
    async with with_memory(raw, gateway, api_key=ALICE_KEY, retain=False) as client:
        await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "first words"}]
        )
        assert client.memory_stats.recall_failures == 0


async def test_gateway_down_or_hanging_fails_open(
    llm: OpenAICompatibleServer, black_hole: str
) -> None:
    raw = openai.AsyncOpenAI(base_url=llm.base_url, api_key="sk", max_retries=0)
    down = with_memory(raw, f"http://127.0.0.1:{free_port()}", api_key=ALICE_KEY)
    hung = with_memory(raw, black_hole, api_key=ALICE_KEY, recall_timeout=0.3, retain_timeout=0.3)
    for client in (down, hung):
        started = time.monotonic()
        reply = await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "anyone there?"}]
        )
        assert time.monotonic() - started < 3
        assert reply.choices[0].message.content == "noted: anyone there?"
        await client.flush()
        stats = client.memory_stats
        assert (stats.recall_failures, stats.retain_failures) == (1, 1)
    await down.aclose()
    await hung.aclose()  # closing the shared openai client twice is harmless
    assert len(chat_messages(llm)) == 2


def test_sync_stream_over_http(gateway: str, sse_llm: SseServer) -> None:
    raw = openai.OpenAI(base_url=sse_llm.base_url, api_key="sk", max_retries=0)
    with with_memory(raw, gateway, api_key=ALICE_KEY) as client:
        stream = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "say hello"}], stream=True
        )
        assert "".join(c.choices[0].delta.content or "" for c in stream) == "Hello world"
    assert "user: say hello\nassistant: Hello world" in recall_texts(gateway, ALICE_KEY, "hello")


async def test_async_stream_over_http(gateway: str, sse_llm: SseServer) -> None:
    raw = openai.AsyncOpenAI(base_url=sse_llm.base_url, api_key="sk", max_retries=0)
    async with with_memory(raw, gateway, api_key=ALICE_KEY) as client:
        stream = await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "say hello"}], stream=True
        )
        text = "".join([c.choices[0].delta.content or "" async for c in stream])
        assert text == "Hello world"
    found = await asyncio.to_thread(recall_texts, gateway, ALICE_KEY, "hello")
    assert "user: say hello\nassistant: Hello world" in found
