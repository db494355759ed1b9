"""The Kong plugin, end to end on loopback: real nginx + lua-nginx-module running the
unchanged ``kong/plugins/astrocyte-memory`` files (through the PDK test shim), the real
Astrocyte gateway, and a recording OpenAI-compatible LLM (plus a streaming one).
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from nginx_harness import KONG_DIR, KONG_SHIM_DIR, Nginx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from upstreams import Astrocyte, BlackHole, SSEUpstream, http_get, http_post, serve_app

from astrocyte.testing.openai_server import OpenAICompatibleServer

pytestmark = pytest.mark.usefixtures("nginx_available")

BANK_HEADER = "X-Astrocyte-Bank"
TEMPLATE = "Relevant memories from earlier conversations:\n{memories}"
CHAT = "/v1/chat/completions"
JSON = {"Content-Type": "application/json"}

StartNginx = Callable[..., Nginx]


@pytest.fixture
def start_kong(astrocyte_gateway: Astrocyte) -> Iterator[StartNginx]:
    """Factory: nginx running the Kong plugin with the default test config + overrides."""
    started: list[Nginx] = []

    def start(upstream: str, conf: dict[str, Any] | None = None, **harness: Any) -> Nginx:
        plugin_conf = {
            "astrocyte_url": astrocyte_gateway.url,
            "api_key": astrocyte_gateway.api_key,
            "bank_header": BANK_HEADER,
            **(conf or {}),
        }
        ngx = Nginx(
            upstream=upstream,
            runner="kong_runner",
            plugin_conf=plugin_conf,
            lua_paths=[KONG_DIR, KONG_SHIM_DIR],
            **harness,
        )
        started.append(ngx.start())
        return ngx

    yield start
    for ngx in started:
        ngx.stop()


def llm_url(llm: OpenAICompatibleServer) -> str:
    return f"http://127.0.0.1:{llm.port}"


def new_bank() -> str:
    return f"bank-{uuid.uuid4().hex[:12]}"


def chat(question: str, **extra: Any) -> dict[str, Any]:
    return {
        "model": "gpt-test",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": question},
        ],
        **extra,
    }


def post_chat(
    ngx: Nginx, body: dict[str, Any] | bytes, bank: str | None = None
) -> tuple[int, dict[str, str], bytes]:
    headers = dict(JSON)
    if bank:
        headers[BANK_HEADER] = bank
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return http_post(ngx.url + CHAT, raw, headers)


def upstream_body(llm: OpenAICompatibleServer) -> dict[str, Any]:
    sent = llm.requests_to("chat/completions")
    assert len(sent) == 1
    return sent[0].json


def test_memories_injected_as_exact_system_message(
    start_kong: StartNginx, fake_llm: OpenAICompatibleServer, astrocyte_gateway: Astrocyte
) -> None:
    bank = new_bank()
    astrocyte_gateway.retain("Alice's favourite colour is teal.", bank)
    ngx = start_kong(llm_url(fake_llm))
    body = chat("What is my favourite colour?", temperature=0.2, tools=[])

    status, _, reply = post_chat(ngx, body, bank)

    assert status == 200
    assert json.loads(reply)["choices"][0]["message"]["content"] == fake_llm.chat_reply
    received = upstream_body(fake_llm)
    assert received["messages"][0] == {
        "role": "system",
        "content": "Relevant memories from earlier conversations:\n"
        "- Alice's favourite colour is teal.",
    }
    # Everything else reaches the LLM as the client sent it (empty array included).
    assert received["messages"][1:] == body["messages"]
    assert {k: v for k, v in received.items() if k != "messages"} == {
        k: v for k, v in body.items() if k != "messages"
    }


def test_position_template_and_budget(
    start_kong: StartNginx, fake_llm: OpenAICompatibleServer, astrocyte_gateway: Astrocyte
) -> None:
    bank = new_bank()
    astrocyte_gateway.retain("Bob plays the cello in an orchestra.", bank)
    astrocyte_gateway.retain("Bob's cello is named Ludwig.", bank)
    template = "<memories>\n{memories}\n</memories>"
    # Room for the tags plus exactly one memory line: whole lines only.
    ngx = start_kong(
        llm_url(fake_llm),
        {"position": "before_last_user", "template": template, "max_chars": 70, "retain": False},
    )
    body = chat("What is Bob's cello called?")
    best = astrocyte_gateway.recall("What is Bob's cello called?", bank)[0]["text"]

    post_chat(ngx, body, bank)

    messages = upstream_body(fake_llm)["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "system", "user"]
    injected = messages[3]["content"]
    lines = injected.split("\n")
    assert lines[0] == "<memories>" and lines[-1] == "</memories>"
    assert len(lines) == 3
    assert lines[1] in {"- Bob plays the cello in an orchestra.", "- Bob's cello is named Ludwig."}
    assert len(injected) <= 70
    assert lines[1] == "- " + best  # the gateway's ranking is kept


def test_exchange_retained_and_recallable(
    start_kong: StartNginx, fake_llm: OpenAICompatibleServer, astrocyte_gateway: Astrocyte
) -> None:
    bank = new_bank()
    fake_llm.chat_reply = "Your flight to Lisbon leaves at 9:40."
    ngx = start_kong(llm_url(fake_llm))
    question = "When does my flight to Lisbon leave?"

    status, _, _ = post_chat(ngx, chat(question), bank)

    assert status == 200
    hit = astrocyte_gateway.wait_for_hit("flight Lisbon", bank, "Lisbon leaves at 9:40")
    assert hit["text"] == f"user: {question}\nassistant: Your flight to Lisbon leaves at 9:40."
    assert hit["provenance"]["content_type"] == "conversation"
    assert hit["provenance"]["metadata"] == {"source": "astrocyte-memory-plugin"}

    # The next conversation gets it back as a memory.
    fake_llm.clear()
    post_chat(ngx, chat("What time is the Lisbon flight?"), bank)
    system = upstream_body(fake_llm)["messages"][0]
    assert system["role"] == "system"
    remembered = f"- user: {question} assistant: Your flight to Lisbon leaves at 9:40."
    assert remembered in system["content"]


def _assert_passed_through(
    fake_llm: OpenAICompatibleServer, body: dict[str, Any], status: int, reply: bytes
) -> None:
    assert status == 200
    assert json.loads(reply)["choices"][0]["message"]["content"] == fake_llm.chat_reply
    assert upstream_body(fake_llm) == body


def test_pass_through_when_memory_gateway_is_down(
    start_kong: StartNginx, fake_llm: OpenAICompatibleServer, down_astrocyte_url: str
) -> None:
    ngx = start_kong(llm_url(fake_llm), {"astrocyte_url": down_astrocyte_url})
    body = chat("Anything about me?")

    status, _, reply = post_chat(ngx, body, new_bank())

    _assert_passed_through(fake_llm, body, status, reply)
    log = ngx.wait_for_log("recall failed: connect to 127.0.0.1")
    assert "request passed on unchanged" in log
    ngx.wait_for_log("retain failed: connect to")  # retain fails quietly too


def test_pass_through_when_memory_gateway_is_slow(
    start_kong: StartNginx, fake_llm: OpenAICompatibleServer, slow_astrocyte: BlackHole
) -> None:
    ngx = start_kong(
        llm_url(fake_llm),
        {"astrocyte_url": slow_astrocyte.url, "timeout_ms": 300, "retain": False},
    )
    body = chat("Anything about me?")

    started = time.monotonic()
    status, _, reply = post_chat(ngx, body, new_bank())
    elapsed = time.monotonic() - started

    _assert_passed_through(fake_llm, body, status, reply)
    assert 0.25 < elapsed < 2.0
    ngx.wait_for_log("recall failed: reading status line: timeout")


def test_pass_through_when_memory_gateway_answers_401(
    start_kong: StartNginx, fake_llm: OpenAICompatibleServer
) -> None:
    ngx = start_kong(llm_url(fake_llm), {"api_key": "wrong-key"})
    body = chat("Anything about me?")

    status, _, reply = post_chat(ngx, body, new_bank())

    _assert_passed_through(fake_llm, body, status, reply)
    ngx.wait_for_log("recall answered HTTP 401")
    ngx.wait_for_log("retain answered HTTP 401")  # logged, never seen by the client


def test_body_larger_than_client_body_buffer(
    start_kong: StartNginx, fake_llm: OpenAICompatibleServer, astrocyte_gateway: Astrocyte
) -> None:
    bank = new_bank()
    astrocyte_gateway.retain("The project codename is Heliotrope.", bank)
    ngx = start_kong(llm_url(fake_llm), client_body_buffer_size="8k")
    history = [
        {"role": "user" if i % 2 == 0 else "assistant", "content": f"turn {i} " + "x" * 2000}
        for i in range(100)
    ]
    body = {"model": "m", "messages": [*history, {"role": "user", "content": "The codename?"}]}
    raw = json.dumps(body).encode()
    assert len(raw) > 150_000

    status, _, _ = post_chat(ngx, raw, bank)

    assert status == 200
    ngx.wait_for_log("a client request body is buffered to a temporary file")
    received = upstream_body(fake_llm)
    assert received["messages"][0] == {
        "role": "system",
        "content": "Relevant memories from earlier conversations:\n"
        "- The project codename is Heliotrope.",
    }
    assert received["messages"][1:] == body["messages"]
    astrocyte_gateway.wait_for_hit("codename", bank, "user: The codename?")


def test_other_routes_untouched(
    start_kong: StartNginx, fake_llm: OpenAICompatibleServer, slow_astrocyte: BlackHole
) -> None:
    # Any call to the memory gateway would hang in the black hole and show up in its count.
    ngx = start_kong(llm_url(fake_llm), {"astrocyte_url": slow_astrocyte.url})
    before = slow_astrocyte.connections

    emb = {"model": "e", "input": ["chat/completions in a body is not a route"]}
    status, _, reply = http_post(ngx.url + "/v1/embeddings", json.dumps(emb).encode(), JSON)
    assert status == 200 and len(json.loads(reply)["data"]) == 1
    status, _, _ = http_get(ngx.url + "/v1/models")
    assert status == 200

    assert [r.json for r in fake_llm.requests_to("embeddings")] == [emb]
    time.sleep(0.2)
    assert slow_astrocyte.connections == before


def test_streaming_reply_assembled_for_retain(
    start_kong: StartNginx, sse_llm: SSEUpstream, astrocyte_gateway: Astrocyte
) -> None:
    bank = new_bank()
    ngx = start_kong(sse_llm.url)
    question = "What is the capital of France?"

    status, headers, raw = post_chat(ngx, chat(question, stream=True), bank)

    assert status == 200
    assert headers["content-type"].startswith("text/event-stream")
    events = [line for line in raw.decode().split("\n") if line.startswith("data: ")]
    assert events[-1] == "data: [DONE]"  # the stream reaches the client intact
    hit = astrocyte_gateway.wait_for_hit(question, bank, "Paris")
    assert hit["text"] == f"user: {question}\nassistant: Paris is the capital."


def test_stream_without_content_is_not_retained(
    start_kong: StartNginx, sse_llm: SSEUpstream, astrocyte_gateway: Astrocyte
) -> None:
    bank = new_bank()
    sse_llm.deltas = []  # a tool call only
    ngx = start_kong(sse_llm.url, error_log_level="debug")

    status, _, _ = post_chat(ngx, chat("Look it up", stream=True), bank)

    assert status == 200
    ngx.wait_for_log("retain skipped: no assistant text in the reply")
    assert astrocyte_gateway.recall("Look it up", bank) == []


def test_upstream_error_passes_through_without_retain(
    start_kong: StartNginx, fake_llm: OpenAICompatibleServer, astrocyte_gateway: Astrocyte
) -> None:
    bank = new_bank()
    fake_llm.fail_next(1, 503)
    ngx = start_kong(llm_url(fake_llm), error_log_level="debug")

    status, _, reply = post_chat(ngx, chat("Hello?"), bank)

    assert status == 503
    assert "injected failure" in json.loads(reply)["error"]["message"]
    ngx.wait_for_log("retain skipped: upstream answered HTTP 503")
    assert astrocyte_gateway.recall("Hello?", bank) == []


def test_bank_from_jwt_claim(
    start_kong: StartNginx, fake_llm: OpenAICompatibleServer, astrocyte_gateway: Astrocyte
) -> None:
    bank = new_bank()
    claims = base64.urlsafe_b64encode(json.dumps({"sub": bank}).encode()).rstrip(b"=")
    token = f"eyJhbGciOiJub25lIn0.{claims.decode()}.sig"
    fake_llm.chat_reply = "Your bank comes from the token."
    ngx = start_kong(llm_url(fake_llm), {"bank_claim": "sub", "bank": "unused-default"})

    raw = json.dumps(chat("Where is this stored?")).encode()
    status, _, _ = http_post(ngx.url + CHAT, raw, {**JSON, "Authorization": f"Bearer {token}"})

    assert status == 200
    astrocyte_gateway.wait_for_hit("stored", bank, "Your bank comes from the token.")


@pytest.fixture(scope="module")
def odd_memory_gateway() -> Iterator[dict[str, str]]:
    """A memory gateway whose recall answers are chunked, or not JSON at all."""

    async def chunked(request: Request) -> StreamingResponse:
        await request.body()
        payload = json.dumps({"hits": [{"text": "Chunked memory arrives whole.", "score": 1}]})

        async def pieces():  # several chunks, split mid-token
            for i in range(0, len(payload), 7):
                yield payload[i : i + 7].encode()

        return StreamingResponse(pieces(), media_type="application/json")

    async def garbage(request: Request) -> Response:
        await request.body()
        return Response("<html>oops</html>", media_type="application/json")

    app = Starlette(
        routes=[
            Route("/chunked/v1/recall", chunked, methods=["POST"]),
            Route("/garbage/v1/recall", garbage, methods=["POST"]),
        ]
    )
    server, thread, port = serve_app(app)
    base = f"http://127.0.0.1:{port}"
    yield {"chunked": base + "/chunked", "garbage": base + "/garbage"}
    server.should_exit = True
    thread.join(10)


def test_chunked_recall_answer(
    start_kong: StartNginx, fake_llm: OpenAICompatibleServer, odd_memory_gateway: dict[str, str]
) -> None:
    ngx = start_kong(
        llm_url(fake_llm), {"astrocyte_url": odd_memory_gateway["chunked"], "retain": False}
    )

    post_chat(ngx, chat("Anything?"), new_bank())

    assert upstream_body(fake_llm)["messages"][0] == {
        "role": "system",
        "content": "Relevant memories from earlier conversations:\n- Chunked memory arrives whole.",
    }


def test_pass_through_when_recall_answer_is_not_json(
    start_kong: StartNginx, fake_llm: OpenAICompatibleServer, odd_memory_gateway: dict[str, str]
) -> None:
    ngx = start_kong(
        llm_url(fake_llm), {"astrocyte_url": odd_memory_gateway["garbage"], "retain": False}
    )
    body = chat("Anything?")

    status, _, reply = post_chat(ngx, body, new_bank())

    _assert_passed_through(fake_llm, body, status, reply)
    ngx.wait_for_log("recall answered with invalid JSON")
