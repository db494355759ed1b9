"""End to end: client -> APIM emulator running the UNCHANGED fragments and example policy
(expressions compiled with Mono) -> the REAL Astrocyte gateway and a fake OpenAI upstream,
all over loopback HTTP."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from apim_emulator import ApimEmulator
from apim_policy import POLICY_FILE
from apim_testing import API_KEY

TEMPLATE = "Relevant memories from earlier conversations:\n{memories}"
REQUEST = {"model": "m", "messages": [{"role": "user", "content": "Anything about me?"}]}


def policy_with(**settings: str) -> str:
    """The shipped example policy with some ``astrocyte-*`` variables set differently."""
    text = POLICY_FILE.read_text(encoding="utf-8")
    for key, value in settings.items():
        name = "astrocyte-" + key.replace("_", "-")
        attr = escape(value, quote=True).replace("\n", "&#10;")
        line = f'<set-variable name="{name}" value="{attr}" />'
        pattern = re.compile(rf'<set-variable name="{re.escape(name)}" value="[^"]*" />')
        if pattern.search(text):
            text = pattern.sub(line.replace("\\", r"\\"), text)
        else:
            anchor = '<include-fragment fragment-id="astrocyte-recall" />'
            text = text.replace(anchor, f"{line}\n        {anchor}")
    return text


def retain(astrocyte: str, bank: str, content: str) -> None:
    reply = httpx.post(
        f"{astrocyte}/v1/retain",
        json={"content": content, "bank_id": bank},
        headers={"X-Api-Key": API_KEY},
        timeout=30,
    )
    assert reply.status_code == 200, reply.text


def recall(astrocyte: str, bank: str, query: str) -> list[dict[str, Any]]:
    reply = httpx.post(
        f"{astrocyte}/v1/recall",
        json={"query": query, "bank_id": bank, "max_results": 10},
        headers={"X-Api-Key": API_KEY},
        timeout=30,
    )
    assert reply.status_code == 200, reply.text
    return reply.json()["hits"]


def chat(emulator: ApimEmulator, body: Any, **headers: str) -> httpx.Response:
    content = body if isinstance(body, str) else json.dumps(body)
    return httpx.post(
        emulator.base_url + "/chat/completions",
        content=content.encode("utf-8"),
        headers={"Content-Type": "application/json", **headers},
        timeout=30,
    )


def last_chat(upstream: Any) -> dict[str, Any]:
    return upstream.requests_to("/chat/completions")[-1].json


def forwarded_body(emulator: ApimEmulator) -> str:
    return emulator.forwarded[-1].body or ""


def memory_message(*lines: str, template: str = TEMPLATE) -> dict[str, str]:
    return {"role": "system", "content": template.replace("{memories}", "\n".join(lines))}


# -- small peers ---------------------------------------------------------------------------


class FakeAstrocyte:
    """A stand-in memory gateway answering /v1/recall as told (for malformed answers and
    header checks); records every request."""

    def __init__(self, status: int = 200, body: str = '{"hits": []}', delay: float = 0) -> None:
        self.status, self.body, self.delay = status, body, delay
        self.requests: list[tuple[str, dict[str, str], str]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                fake.requests.append(
                    (self.path, dict(self.headers), self.rfile.read(length).decode())
                )
                time.sleep(fake.delay)
                payload = fake.body.encode()
                self.send_response(fake.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class SseUpstream:
    """An OpenAI-style upstream that always streams its reply as server-sent events."""

    def __init__(self, deltas: list[str | None]) -> None:
        self.requests: list[dict[str, Any]] = []
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                upstream.requests.append(json.loads(self.rfile.read(length)))
                events = []
                for delta in deltas:
                    choice: dict[str, Any] = {"index": 0, "delta": {}}
                    if delta is not None:
                        choice["delta"] = {"content": delta}
                    else:
                        choice["delta"] = {"tool_calls": [{"index": 0, "id": "t1"}]}
                    events.append(f"data: {json.dumps({'choices': [choice]})}\n\n")
                events.append("data: [DONE]\n\n")
                payload = "".join(events).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_astrocyte() -> Iterator[Callable[..., FakeAstrocyte]]:
    made: list[FakeAstrocyte] = []

    def make(**kwargs: Any) -> FakeAstrocyte:
        made.append(FakeAstrocyte(**kwargs))
        return made[-1]

    yield make
    for fake in made:
        fake.close()


@pytest.fixture
def silent_port() -> Iterator[str]:
    """A port that accepts connections and never answers (a hung gateway)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


@pytest.fixture
def closed_port() -> str:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}"


# -- the happy path ------------------------------------------------------------------------


def test_recall_injects_memories_and_retain_makes_the_exchange_recallable(
    make_emulator: Callable[..., ApimEmulator], upstream: Any, astrocyte: str, bank: str
) -> None:
    retain(astrocyte, bank, "The user's favourite colour is teal.")
    upstream.chat_reply = "Teal, as you told me."
    emulator = make_emulator(service_url=upstream.base_url, astrocyte_url=astrocyte, bank=bank)
    request = {
        "model": "gpt-test",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "What is my favourite colour?"},
        ],
    }

    reply = chat(emulator, request, **{"Accept-Encoding": "gzip"})

    assert reply.status_code == 200, reply.text
    assert reply.json()["choices"][0]["message"]["content"] == "Teal, as you told me."
    # Asked for uncompressed, so the reply can be read for retain.
    assert "Accept-Encoding" not in emulator.forwarded[-1].headers
    sent = last_chat(upstream)
    assert sent["messages"] == [
        memory_message("- The user's favourite colour is teal."),
        *request["messages"],
    ]
    assert sent["model"] == "gpt-test"
    assert emulator.errors == []

    emulator.wait_one_way()
    assert len(emulator.one_way_calls) == 1
    call = emulator.one_way_calls[0]
    assert call.error is None and call.status == 200
    assert call.url == f"{astrocyte}/v1/retain"
    assert call.headers["X-Api-Key"] == API_KEY
    body = json.loads(call.body)
    assert body["content"] == "user: What is my favourite colour?\nassistant: Teal, as you told me."
    assert body["content_type"] == "conversation"
    assert body["bank_id"] == bank
    assert body["metadata"] == {"source": "astrocyte-memory-plugin", "gateway": "azure-apim"}
    assert body["idempotency_key"] == f"apim-{emulator.exchanges[-1].request_id}"

    texts = [hit["text"] for hit in recall(astrocyte, bank, "Teal, as you told me")]
    assert any("Teal, as you told me." in text for text in texts), texts


def test_the_clients_json_is_kept_byte_for_byte_around_the_inserted_message(
    make_emulator: Callable[..., ApimEmulator], upstream: Any, astrocyte: str, bank: str
) -> None:
    retain(astrocyte, bank, "Deploys happen on Tuesdays.")
    emulator = make_emulator(service_url=upstream.base_url, astrocyte_url=astrocyte, bank=bank)
    # Things a JObject round trip would rewrite: offset dates, 1.0, exponents, spacing.
    raw = (
        '{ "model" : "m",  "temperature": 1.0, "n": 1e0, "tools": [],\n'
        '  "metadata": {"at": "2024-05-01T10:00:00+02:00"},\n'
        '  "messages" : [ {"role": "user", "content": "When do deploys happen? \\u00e9"} ] }'
    )

    assert chat(emulator, raw).status_code == 200

    system = memory_message("- Deploys happen on Tuesdays.")
    at = raw.index('{"role": "user"')
    expected = raw[:at] + json.dumps(system, separators=(",", ":")) + "," + raw[at:]
    assert forwarded_body(emulator) == expected


def test_position_template_and_char_budget(
    make_emulator: Callable[..., ApimEmulator], upstream: Any, astrocyte: str, bank: str
) -> None:
    retain(astrocyte, bank, "Alice's cat is called Miso.")
    template = "Known facts:\n{memories}\n(end)"
    emulator = make_emulator(
        service_url=upstream.base_url,
        astrocyte_url=astrocyte,
        bank=bank,
        policy_text=policy_with(position="before_last_user", template=template, max_chars="30"),
    )
    history = [
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "What is my cat called?"},
    ]

    assert chat(emulator, {"model": "m", "messages": history}).status_code == 200

    # 30 chars for the whole message: the template takes 20, so the only memory is cut.
    line = "- Alice's cat is called Miso."
    cut = line[: 30 - (len(template) - len("{memories}")) - 3] + "..."
    system = memory_message(cut, template=template)
    assert len(system["content"]) == 30
    assert last_chat(upstream)["messages"] == [*history[:3], system, history[3]]


def test_hits_are_formatted_in_order_within_max_results_and_token_budget(
    make_emulator: Callable[..., ApimEmulator],
    upstream: Any,
    fake_astrocyte: Callable[..., FakeAstrocyte],
    bank: str,
) -> None:
    hits = [
        {"text": "  First   fact,\n spread out  "},
        {"text": "Second fact."},
        {"text": "Third fact."},
    ]
    fake = fake_astrocyte(body=json.dumps({"hits": hits}))
    template = "M:\n{memories}"
    emulator = make_emulator(
        service_url=upstream.base_url,
        astrocyte_url=fake.url,
        bank=bank,
        policy_text=policy_with(max_results="3", max_tokens="11", template=template),
    )

    assert chat(emulator, REQUEST).status_code == 200

    # 11 tokens = 44 chars: "M:\n" + two lines is 42; the third line would make 56.
    system = memory_message("- First fact, spread out", "- Second fact.", template=template)
    assert len(system["content"]) == 42
    assert last_chat(upstream)["messages"] == [system, *REQUEST["messages"]]
    sent = json.loads(fake.requests[0][2])
    assert sent == {
        "query": "Anything about me?",
        "bank_id": bank,
        "max_results": 3,
        "max_tokens": 11,
    }


def test_bank_from_a_jwt_claim(
    make_emulator: Callable[..., ApimEmulator], upstream: Any, astrocyte: str, bank: str
) -> None:
    import base64

    team = bank + "-claim"
    retain(astrocyte, team, "The claim bank knows the wiki moved to /docs.")
    emulator = make_emulator(
        service_url=upstream.base_url,
        astrocyte_url=astrocyte,
        bank=bank,
        policy_text=policy_with(bank_claim="team"),
    )

    def b64(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    token = f"{b64({'alg': 'none'})}.{b64({'sub': 'u1', 'team': team})}.c2ln"
    chat(emulator, REQUEST, Authorization=f"Bearer {token}")

    assert last_chat(upstream)["messages"][0] == memory_message(
        "- The claim bank knows the wiki moved to /docs."
    )


def test_text_parts_of_an_array_content_are_the_query(
    make_emulator: Callable[..., ApimEmulator], upstream: Any, astrocyte: str, bank: str
) -> None:
    retain(astrocyte, bank, "The build server is named hopper.")
    emulator = make_emulator(service_url=upstream.base_url, astrocyte_url=astrocyte, bank=bank)
    content = [
        {"type": "text", "text": "What is the build server"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        {"type": "text", "text": "named?"},
    ]

    assert chat(emulator, {"model": "m", "messages": [{"role": "user", "content": content}]})

    assert last_chat(upstream)["messages"][0] == memory_message(
        "- The build server is named hopper."
    )
    emulator.wait_one_way()
    body = json.loads(emulator.one_way_calls[0].body)
    assert body["content"].startswith("user: What is the build server\nnamed?\nassistant: ")


def test_bank_from_request_header(
    make_emulator: Callable[..., ApimEmulator], upstream: Any, astrocyte: str, bank: str
) -> None:
    other = bank + "-team"
    retain(astrocyte, other, "The team standup is at 9:30.")
    emulator = make_emulator(service_url=upstream.base_url, astrocyte_url=astrocyte, bank=bank)
    request = {"model": "m", "messages": [{"role": "user", "content": "When is standup?"}]}

    chat(emulator, request)
    assert last_chat(upstream)["messages"] == request["messages"]  # default bank: empty

    chat(emulator, request, **{"X-Astrocyte-Bank": other})
    assert last_chat(upstream)["messages"][0] == memory_message("- The team standup is at 9:30.")
    emulator.wait_one_way()
    assert json.loads(emulator.one_way_calls[-1].body)["bank_id"] == other


def test_forwarding_the_callers_bearer_token(
    make_emulator: Callable[..., ApimEmulator], upstream: Any, astrocyte: str, bank: str
) -> None:
    retain(astrocyte, bank, "Invoices are due on the 5th.")
    emulator = make_emulator(
        service_url=upstream.base_url,
        astrocyte_url=astrocyte,
        bank=bank,
        api_key="not-the-key",  # only the caller's token can work
        policy_text=policy_with(forward_bearer="true"),
    )
    request = {"model": "m", "messages": [{"role": "user", "content": "When are invoices due?"}]}

    chat(emulator, request, Authorization=f"Bearer {API_KEY}")

    assert last_chat(upstream)["messages"][0] == memory_message("- Invoices are due on the 5th.")
    emulator.wait_one_way()
    call = emulator.one_way_calls[-1]
    assert call.headers["Authorization"] == f"Bearer {API_KEY}" and call.status == 200


def test_a_large_body_is_handled(
    make_emulator: Callable[..., ApimEmulator], upstream: Any, astrocyte: str, bank: str
) -> None:
    retain(astrocyte, bank, "The office wifi is called orbit.")
    emulator = make_emulator(service_url=upstream.base_url, astrocyte_url=astrocyte, bank=bank)
    filler = [{"role": "assistant", "content": "x" * 1000} for _ in range(1000)]
    request = {"model": "m", "messages": [*filler, {"role": "user", "content": "Wifi name?"}]}

    assert chat(emulator, request).status_code == 200

    sent = last_chat(upstream)["messages"]
    assert sent[0] == memory_message("- The office wifi is called orbit.")
    assert sent[1:] == request["messages"]


# -- fail open -----------------------------------------------------------------------------


def assert_unchanged(emulator: ApimEmulator, upstream: Any, reply: httpx.Response) -> None:
    assert reply.status_code == 200, reply.text
    assert reply.json()["choices"][0]["message"]["content"] == "Noted."
    assert forwarded_body(emulator) == json.dumps(REQUEST)
    assert last_chat(upstream) == REQUEST
    assert emulator.errors == []


def recall_failure(emulator: ApimEmulator) -> str:
    traces = [t for t in emulator.exchanges[-1].traces if t["source"] == "astrocyte-memory"]
    assert len(traces) == 1 and traces[0]["severity"] == "error", traces
    return traces[0]["message"]


def test_gateway_down(
    make_emulator: Callable[..., ApimEmulator], upstream: Any, closed_port: str, bank: str
) -> None:
    emulator = make_emulator(service_url=upstream.base_url, astrocyte_url=closed_port, bank=bank)
    reply = chat(emulator, REQUEST)
    assert_unchanged(emulator, upstream, reply)
    assert recall_failure(emulator).endswith("gateway unreachable or timed out")
    emulator.wait_one_way()  # retain fails too, after the client already has its reply
    assert emulator.one_way_calls[-1].error is not None


def test_gateway_slow(
    make_emulator: Callable[..., ApimEmulator], upstream: Any, silent_port: str, bank: str
) -> None:
    emulator = make_emulator(service_url=upstream.base_url, astrocyte_url=silent_port, bank=bank)
    started = time.monotonic()
    reply = chat(emulator, REQUEST)
    elapsed = time.monotonic() - started
    assert_unchanged(emulator, upstream, reply)
    assert recall_failure(emulator).endswith("gateway unreachable or timed out")
    # The default (and APIM's minimum) timeout: one second, not the 60 s default.
    assert 1.0 <= elapsed < 5.0


def test_gateway_answers_401(
    make_emulator: Callable[..., ApimEmulator], upstream: Any, astrocyte: str, bank: str
) -> None:
    emulator = make_emulator(
        service_url=upstream.base_url, astrocyte_url=astrocyte, bank=bank, api_key="wrong"
    )
    reply = chat(emulator, REQUEST)
    assert_unchanged(emulator, upstream, reply)
    assert recall_failure(emulator).endswith("gateway answered HTTP 401")
    emulator.wait_one_way()
    assert emulator.one_way_calls[-1].status == 401  # logged by nobody, harmless


@pytest.mark.parametrize(
    ("status", "body", "why"),
    [
        (500, '{"detail": "boom"}', "gateway answered HTTP 500"),
        (200, "<html>not json</html>", "response is not a JSON object"),
        (200, '{"results": []}', "response has no hits array"),
        (200, "[1, 2]", "response is not a JSON object"),
    ],
)
def test_gateway_answers_garbage(
    make_emulator: Callable[..., ApimEmulator],
    upstream: Any,
    fake_astrocyte: Callable[..., FakeAstrocyte],
    bank: str,
    status: int,
    body: str,
    why: str,
) -> None:
    fake = fake_astrocyte(status=status, body=body)
    emulator = make_emulator(service_url=upstream.base_url, astrocyte_url=fake.url, bank=bank)
    reply = chat(emulator, REQUEST)
    assert_unchanged(emulator, upstream, reply)
    assert recall_failure(emulator).endswith(why)
    path, headers, sent = fake.requests[0]
    assert path == "/v1/recall" and headers["X-Api-Key"] == API_KEY
    assert json.loads(sent) == {"query": "Anything about me?", "bank_id": bank, "max_results": 5}


def test_hits_without_usable_text_inject_nothing(
    make_emulator: Callable[..., ApimEmulator],
    upstream: Any,
    fake_astrocyte: Callable[..., FakeAstrocyte],
    bank: str,
) -> None:
    hits = [{"text": "   "}, {"text": 42}, "nope", {"memory_id": "m1"}]
    fake = fake_astrocyte(body=json.dumps({"hits": hits}))
    emulator = make_emulator(service_url=upstream.base_url, astrocyte_url=fake.url, bank=bank)
    reply = chat(emulator, REQUEST)
    assert_unchanged(emulator, upstream, reply)
    assert [t for t in emulator.exchanges[-1].traces if t["severity"] == "error"] == []


# -- what is left alone --------------------------------------------------------------------


def test_other_operations_are_untouched(
    make_emulator: Callable[..., ApimEmulator],
    upstream: Any,
    fake_astrocyte: Callable[..., FakeAstrocyte],
    bank: str,
) -> None:
    fake = fake_astrocyte()
    emulator = make_emulator(service_url=upstream.base_url, astrocyte_url=fake.url, bank=bank)

    models = httpx.get(emulator.base_url + "/models", timeout=30)
    embeddings = httpx.post(
        emulator.base_url + "/embeddings", json={"model": "e", "input": ["a"]}, timeout=30
    )

    assert models.status_code == 200 and models.json()["data"][0]["id"] == "test-model"
    assert embeddings.status_code == 200
    assert upstream.requests_to("/embeddings")[-1].json == {"model": "e", "input": ["a"]}
    assert fake.requests == []
    emulator.wait_one_way()
    assert emulator.one_way_calls == []
    assert all(ex.traces == [] for ex in emulator.exchanges)


def test_a_chat_request_without_user_text_is_untouched(
    make_emulator: Callable[..., ApimEmulator],
    upstream: Any,
    fake_astrocyte: Callable[..., FakeAstrocyte],
    bank: str,
) -> None:
    fake = fake_astrocyte()
    emulator = make_emulator(service_url=upstream.base_url, astrocyte_url=fake.url, bank=bank)
    request = {"model": "m", "messages": [{"role": "system", "content": "Only a system prompt"}]}
    assert chat(emulator, request).status_code == 200
    assert last_chat(upstream) == request
    chat(emulator, "not json at all")
    assert forwarded_body(emulator) == "not json at all"
    assert fake.requests == []


def test_retain_can_be_switched_off(
    make_emulator: Callable[..., ApimEmulator], upstream: Any, astrocyte: str, bank: str
) -> None:
    emulator = make_emulator(
        service_url=upstream.base_url,
        astrocyte_url=astrocyte,
        bank=bank,
        policy_text=policy_with(retain="false"),
    )
    assert chat(emulator, REQUEST).status_code == 200
    emulator.wait_one_way()
    assert emulator.one_way_calls == []


# -- streaming -----------------------------------------------------------------------------


STREAM_REQUEST = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "Hi?"}]}


@pytest.fixture
def sse_upstream() -> Iterator[Callable[[list[str | None]], SseUpstream]]:
    made: list[SseUpstream] = []

    def make(deltas: list[str | None]) -> SseUpstream:
        made.append(SseUpstream(deltas))
        return made[-1]

    yield make
    for upstream in made:
        upstream.close()


def test_streamed_reply_is_not_retained_by_default(
    make_emulator: Callable[..., ApimEmulator],
    sse_upstream: Callable[[list[str | None]], SseUpstream],
    astrocyte: str,
    bank: str,
) -> None:
    upstream = sse_upstream(["Hel", "lo!"])
    emulator = make_emulator(service_url=upstream.base_url, astrocyte_url=astrocyte, bank=bank)
    reply = chat(emulator, STREAM_REQUEST)
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "text/event-stream"
    assert '"content": "Hel"' in reply.text and reply.text.endswith("data: [DONE]\n\n")
    emulator.wait_one_way()
    assert emulator.one_way_calls == []
    assert emulator.exchanges[-1].traces[-1]["message"].startswith("retain skipped")


def test_streamed_reply_is_assembled_for_retain_when_enabled(
    make_emulator: Callable[..., ApimEmulator],
    sse_upstream: Callable[[list[str | None]], SseUpstream],
    astrocyte: str,
    bank: str,
) -> None:
    upstream = sse_upstream(["The answer ", "is ", "forty-two."])
    emulator = make_emulator(
        service_url=upstream.base_url,
        astrocyte_url=astrocyte,
        bank=bank,
        policy_text=policy_with(retain_streams="true"),
    )
    reply = chat(emulator, STREAM_REQUEST)
    assert reply.status_code == 200 and reply.text.count("data: ") == 4
    emulator.wait_one_way()
    call = emulator.one_way_calls[-1]
    assert json.loads(call.body)["content"] == "user: Hi?\nassistant: The answer is forty-two."
    assert call.status == 200
    texts = [hit["text"] for hit in recall(astrocyte, bank, "The answer is forty-two")]
    assert any("forty-two" in text for text in texts), texts


def test_a_stream_without_content_deltas_is_not_retained(
    make_emulator: Callable[..., ApimEmulator],
    sse_upstream: Callable[[list[str | None]], SseUpstream],
    astrocyte: str,
    bank: str,
) -> None:
    upstream = sse_upstream([None, None])  # tool calls only
    emulator = make_emulator(
        service_url=upstream.base_url,
        astrocyte_url=astrocyte,
        bank=bank,
        policy_text=policy_with(retain_streams="true"),
    )
    assert chat(emulator, STREAM_REQUEST).status_code == 200
    emulator.wait_one_way()
    assert emulator.one_way_calls == []


def test_an_unbuffered_stream_cannot_be_read_and_is_skipped(
    make_emulator: Callable[..., ApimEmulator],
    sse_upstream: Callable[[list[str | None]], SseUpstream],
    astrocyte: str,
    bank: str,
) -> None:
    upstream = sse_upstream(["Hi"])
    text = policy_with(retain_streams="true").replace(
        "<backend>\n        <base />",
        '<backend>\n        <forward-request buffer-response="false" />',
    )
    emulator = make_emulator(
        service_url=upstream.base_url, astrocyte_url=astrocyte, bank=bank, policy_text=text
    )
    reply = chat(emulator, STREAM_REQUEST)
    assert reply.status_code == 200 and "data: [DONE]" in reply.text
    emulator.wait_one_way()
    assert emulator.one_way_calls == []
    assert emulator.errors == []
