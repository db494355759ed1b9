"""OpenAIChatProvider against a real OpenAI-compatible HTTP server on loopback."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from astrocyte.errors import LLMError, ValidationError
from astrocyte.llm import OpenAIChatProvider
from astrocyte.spi import ChatMessage, LLMProvider
from astrocyte.testing.openai_server import OpenAICompatibleServer

KEY = "sk-chat-secret-9876543210"


def echo(messages: list[dict[str, Any]]) -> str | None:
    """Reply with the last user message upper-cased; 'refuse' yields null content."""
    last = str(messages[-1]["content"])
    return None if last == "refuse" else last.upper()


@pytest.fixture(scope="module")
def shared_server() -> Iterator[OpenAICompatibleServer]:
    # Module-wide: the server has its own thread and loop, and stopping uvicorn
    # per test would cost ~0.2 s each.
    with OpenAICompatibleServer(chat_reply=echo, api_key=KEY) as server:
        yield server


@pytest.fixture
def srv(shared_server: OpenAICompatibleServer) -> OpenAICompatibleServer:
    shared_server.clear()
    return shared_server


@pytest.fixture
async def llm(srv: OpenAICompatibleServer) -> AsyncIterator[OpenAIChatProvider]:
    provider = OpenAIChatProvider(
        base_url=srv.base_url, model="chat-model", api_key=KEY, backoff_base=0.01
    )
    yield provider
    await provider.close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


USER = [ChatMessage("system", "be brief"), ChatMessage("user", "hello there")]


async def test_completes_and_reports_usage(
    srv: OpenAICompatibleServer, llm: OpenAIChatProvider
) -> None:
    completion = await llm.complete(USER)
    assert completion.text == "HELLO THERE"
    assert completion.model == "chat-model"
    assert completion.prompt_tokens == 4
    assert completion.completion_tokens == 2
    (request,) = srv.requests
    assert request.path == "/v1/chat/completions"
    assert request.authorization == f"Bearer {KEY}"
    assert request.json == {
        "model": "chat-model",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hello there"},
        ],
        "temperature": 0.0,
        "stream": False,
    }
    assert isinstance(llm, LLMProvider)
    assert llm.model_id == "chat-model"


async def test_max_tokens_and_temperature(
    srv: OpenAICompatibleServer, llm: OpenAIChatProvider
) -> None:
    await llm.complete(USER, max_tokens=50, temperature=0.7)
    body = srv.requests[0].json
    assert body["max_tokens"] == 50
    assert body["temperature"] == 0.7


async def test_max_completion_tokens_param_extra_body_and_headers(
    srv: OpenAICompatibleServer,
) -> None:
    provider = OpenAIChatProvider(
        base_url=srv.base_url,
        model="o-model",
        api_key=KEY,
        max_tokens_param="max_completion_tokens",
        extra_body={"seed": 7, "model": "cannot-override"},
        headers={"X-Trace": "abc", "Authorization": "Bearer not-this-one"},
    )
    await provider.complete(USER, max_tokens=9)
    await provider.close()
    request = srv.requests[0]
    assert request.json["max_completion_tokens"] == 9
    assert "max_tokens" not in request.json
    assert request.json["seed"] == 7
    assert request.json["model"] == "o-model"
    assert request.headers["x-trace"] == "abc"
    assert request.authorization == f"Bearer {KEY}"


async def test_works_without_api_key() -> None:
    async with OpenAICompatibleServer(chat_reply="fine") as server:
        provider = OpenAIChatProvider(base_url=server.base_url, model="llama3")
        completion = await provider.complete([ChatMessage("user", "hi")])
        await provider.close()
    assert completion.text == "fine"
    assert server.requests[0].authorization is None


async def test_api_key_from_env(
    srv: OpenAICompatibleServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASTROCYTE_TEST_LLM_KEY", KEY)
    provider = OpenAIChatProvider(
        base_url=srv.base_url, model="m", api_key_env="ASTROCYTE_TEST_LLM_KEY"
    )
    assert (await provider.complete(USER)).text == "HELLO THERE"
    await provider.close()


async def test_null_content_is_an_error(llm: OpenAIChatProvider) -> None:
    with pytest.raises(LLMError, match="finish_reason='stop'"):
        await llm.complete([ChatMessage("user", "refuse")])


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("<html>bad gateway</html>", "not valid JSON"),
        ([1, 2], "not a JSON object"),
        ({"choices": []}, "no choices"),
        ({"choices": [{"index": 0}]}, "no message"),
        ({"choices": [{"message": {"role": "assistant", "content": 5}}]}, "not text"),
    ],
)
async def test_malformed_responses(
    srv: OpenAICompatibleServer, llm: OpenAIChatProvider, body: Any, needle: str
) -> None:
    srv.respond_next(body=body)
    with pytest.raises(LLMError) as info:
        await llm.complete(USER)
    assert needle in str(info.value)


async def test_missing_usage_and_model_are_tolerated(
    srv: OpenAICompatibleServer, llm: OpenAIChatProvider
) -> None:
    srv.respond_next(body={"choices": [{"message": {"role": "assistant", "content": "x"}}]})
    completion = await llm.complete(USER)
    assert completion.text == "x"
    assert completion.model == "chat-model"
    assert completion.prompt_tokens is None and completion.completion_tokens is None


async def test_retries_429_honouring_retry_after(
    srv: OpenAICompatibleServer, llm: OpenAIChatProvider
) -> None:
    srv.fail_next(1, 429, retry_after=0.3)
    started = time.monotonic()
    assert (await llm.complete(USER)).text == "HELLO THERE"
    assert time.monotonic() - started >= 0.29
    assert len(srv.requests) == 2


async def test_gives_up_after_retries_with_status(srv: OpenAICompatibleServer) -> None:
    provider = OpenAIChatProvider(
        base_url=srv.base_url, model="m", api_key=KEY, max_retries=1, backoff_base=0.01
    )
    srv.fail_next(3, 502, message="bad gateway upstream")
    with pytest.raises(LLMError) as info:
        await provider.complete(USER)
    await provider.close()
    assert len(srv.requests) == 2
    assert "HTTP 502" in str(info.value)
    assert "bad gateway upstream" in str(info.value)


async def test_404_suggests_checking_base_url(
    srv: OpenAICompatibleServer, llm: OpenAIChatProvider
) -> None:
    srv.fail_next(1, 404, message="model not found")
    with pytest.raises(LLMError) as info:
        await llm.complete(USER)
    assert len(srv.requests) == 1
    assert info.value.fix is not None and "base_url" in info.value.fix


async def test_secret_free_errors_and_logs(
    srv: OpenAICompatibleServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    provider = OpenAIChatProvider(
        base_url=srv.base_url, model="m", api_key=KEY, max_retries=1, backoff_base=0.01
    )
    srv.fail_next(1, 503, message=f"overloaded, key={KEY}")
    srv.fail_next(1, 401, message=f"Incorrect API key provided: {KEY}. " + "x" * 1000)
    with pytest.raises(LLMError) as info:
        await provider.complete(USER)
    await provider.close()
    message = str(info.value)
    assert "HTTP 401" in message
    assert len(message) < 500  # long provider bodies are cut short
    for text in (message, repr(info.value), repr(provider), caplog.text):
        assert KEY not in text


async def test_timeout(srv: OpenAICompatibleServer) -> None:
    provider = OpenAIChatProvider(base_url=srv.base_url, model="m", api_key=KEY, timeout=0.3)
    srv.hang_next(1, seconds=30)
    started = time.monotonic()
    with pytest.raises(LLMError, match="no response"):
        await provider.complete(USER)
    assert time.monotonic() - started < 2.0
    assert len(srv.requests) == 1
    await provider.close()


async def test_connection_refused() -> None:
    provider = OpenAIChatProvider(
        base_url=f"http://127.0.0.1:{closed_port()}/v1",
        model="m",
        max_retries=1,
        backoff_base=0.01,
    )
    with pytest.raises(LLMError, match=r"cannot reach .* after 2 attempt\(s\)"):
        await provider.complete(USER)
    await provider.close()


async def test_health(srv: OpenAICompatibleServer, llm: OpenAIChatProvider) -> None:
    status = await llm.health()
    assert status.ok
    assert srv.requests[-1].path == "/v1/models"
    srv.fail_next(1, 500)
    assert not (await llm.health()).ok


async def test_closed_provider_raises(llm: OpenAIChatProvider) -> None:
    await llm.close()
    with pytest.raises(LLMError, match="closed"):
        await llm.complete(USER)


async def test_rejects_bad_messages(llm: OpenAIChatProvider) -> None:
    with pytest.raises(ValidationError) as info:
        await llm.complete([])
    assert info.value.field == "messages"
    with pytest.raises(ValidationError) as info:
        await llm.complete([{"role": "user", "content": "x"}])  # type: ignore[list-item]
    assert info.value.field == "messages[0]"
    with pytest.raises(ValidationError) as info:
        await llm.complete([ChatMessage("tool", "x")])  # type: ignore[arg-type]
    assert info.value.field == "messages[0].role"
    with pytest.raises(ValidationError) as info:
        await llm.complete(USER, max_tokens=0)
    assert info.value.field == "max_tokens"


def test_server_works_from_sync_code() -> None:
    with (
        OpenAICompatibleServer(embed_dim=3, chat_reply="sync ok") as server,
        httpx.Client(base_url=server.base_url) as client,
    ):
        models = client.get("/models").json()
        chat = client.post(
            "/chat/completions",
            json={"model": "m", "messages": [{"role": "user", "content": "q"}]},
        ).json()
        emb = client.post("/embeddings", json={"model": "m", "input": "one"}).json()
        bad = client.post("/embeddings", content=b"{nope")
    assert models["data"][0]["id"] == "test-model"
    assert chat["choices"][0]["message"]["content"] == "sync ok"
    assert len(emb["data"][0]["embedding"]) == 3
    assert bad.status_code == 400
    assert [r.path for r in server.requests] == [
        "/v1/models",
        "/v1/chat/completions",
        "/v1/embeddings",
        "/v1/embeddings",
    ]
    with pytest.raises(RuntimeError):
        _ = server.base_url  # stopped


def test_usable_from_successive_event_loops(srv: OpenAICompatibleServer) -> None:
    provider = OpenAIChatProvider(base_url=srv.base_url, model="m", api_key=KEY)
    assert asyncio.run(provider.complete(USER)).text == "HELLO THERE"
    assert asyncio.run(provider.complete(USER)).text == "HELLO THERE"
    asyncio.run(provider.close())
