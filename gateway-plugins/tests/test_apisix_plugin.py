"""The APISIX plugin ``astrocyte-memory`` against real peers, all on loopback.

APISIX itself cannot be installed here, so the UNCHANGED plugin file
(``apisix/apisix/plugins/astrocyte-memory.lua``) runs inside Debian's nginx +
lua-nginx-module through ``apisix_shim/`` (the ``apisix.core`` calls it makes, and a
runner standing in for APISIX's plugin runtime), in front of a recording
OpenAI-compatible LLM, with the real Astrocyte gateway as the memory service.

Schema tests run the plugin's ``check_schema`` under plain LuaJIT (no nginx needed);
the shim's JSON-schema subset has its own busted spec (``apisix_shim/spec``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import DEFAULT_REPLY
from nginx_harness import HERE, LUA_CORE_DIR, PLUGINS_DIR, Nginx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from upstreams import Astrocyte, BlackHole, SSEUpstream, http_get, http_post

from astrocyte.testing.openai_server import OpenAICompatibleServer

APISIX_DIR = PLUGINS_DIR / "apisix"
APISIX_SHIM_DIR = HERE / "apisix_shim"
RUNNER = "apisix_runner"
CHAT = "/v1/chat/completions"
JSON_HEADERS = {"Content-Type": "application/json"}
TEMPLATE = "Relevant memories from earlier conversations:\n{memories}"


def new_bank() -> str:
    return f"apisix-{uuid.uuid4().hex[:12]}"


def chat_body(*messages: dict[str, Any], **extra: Any) -> bytes:
    return json.dumps({"model": "test-model", "messages": list(messages), **extra}).encode()


def user(text: Any) -> dict[str, Any]:
    return {"role": "user", "content": text}


StartNginx = Callable[..., Nginx]


@pytest.fixture
def apisix(nginx_available: None) -> Iterator[StartNginx]:
    """Factory: nginx running the APISIX plugin with ``conf``, proxying to ``upstream``."""
    started: list[Nginx] = []

    def start(upstream: str, conf: dict[str, Any], **options: Any) -> Nginx:
        server = Nginx(
            upstream=upstream,
            runner=RUNNER,
            plugin_conf=conf,
            lua_paths=[APISIX_DIR, APISIX_SHIM_DIR],
            **options,
        )
        started.append(server.start())
        return server

    yield start
    for server in started:
        server.stop()


def llm_url(llm: OpenAICompatibleServer) -> str:
    return f"http://127.0.0.1:{llm.port}"


def conf_for(gw: Astrocyte, bank: str, **overrides: Any) -> dict[str, Any]:
    return {"astrocyte_url": gw.url, "api_key": gw.api_key, "bank": bank, **overrides}


def wait_for_hit(gw: Astrocyte, query: str, bank: str, contains: str) -> dict[str, Any]:
    """Like ``Astrocyte.wait_for_hit``, but a bank that does not exist yet (404, the
    asynchronous retain has not landed) counts as "not yet" rather than an error."""
    deadline = time.monotonic() + 10
    while True:
        try:
            return gw.wait_for_hit(query, bank, contains, timeout=0)
        except urllib.error.HTTPError as err:
            if err.code != 404:
                raise
        except AssertionError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"no memory containing {contains!r} in bank {bank!r}")
        time.sleep(0.05)


def last_chat(llm: OpenAICompatibleServer) -> Any:
    requests = llm.requests_to("chat/completions")
    assert requests, "the upstream LLM received no chat request"
    return requests[-1].json


# -- recall and injection ------------------------------------------------------------


def test_memories_injected_as_first_system_message(
    apisix: StartNginx, astrocyte_gateway: Astrocyte, fake_llm: OpenAICompatibleServer
) -> None:
    bank = new_bank()
    astrocyte_gateway.retain("Alice's favourite colour is green.", bank)
    nginx = apisix(llm_url(fake_llm), conf_for(astrocyte_gateway, bank))

    original = [
        {"role": "system", "content": "You are terse."},
        user("What is my favourite colour?"),
    ]
    status, _, raw = http_post(nginx.url + CHAT, chat_body(*original), JSON_HEADERS)

    assert status == 200
    assert json.loads(raw)["choices"][0]["message"]["content"] == DEFAULT_REPLY
    sent = last_chat(fake_llm)
    assert sent["messages"] == [
        {
            "role": "system",
            "content": "Relevant memories from earlier conversations:\n"
            "- Alice's favourite colour is green.",
        },
        *original,
    ]
    assert sent["model"] == "test-model"


def test_before_last_user_position_custom_template_and_array_content(
    apisix: StartNginx, astrocyte_gateway: Astrocyte, fake_llm: OpenAICompatibleServer
) -> None:
    bank = new_bank()
    astrocyte_gateway.retain("The project codename is Bluebird.", bank)
    conf = conf_for(
        astrocyte_gateway,
        bank,
        position="before_last_user",
        template="Known facts:\n{memories}\n(end of facts)",
    )
    nginx = apisix(llm_url(fake_llm), conf)

    earlier = [
        {"role": "system", "content": "You are helpful."},
        user("hi"),
        {"role": "assistant", "content": "hello"},
    ]
    last = user([{"type": "text", "text": "What is the"}, {"type": "text", "text": "codename?"}])
    status, _, _ = http_post(nginx.url + CHAT, chat_body(*earlier, last), JSON_HEADERS)

    assert status == 200
    assert last_chat(fake_llm)["messages"] == [
        *earlier,
        {
            "role": "system",
            "content": "Known facts:\n- The project codename is Bluebird.\n(end of facts)",
        },
        last,
    ]
    # The retained user text is the text parts of the array content.
    hit = wait_for_hit(astrocyte_gateway, "codename", bank, "assistant:")
    assert hit["text"] == f"user: What is the\ncodename?\nassistant: {DEFAULT_REPLY}"


def test_char_budget_keeps_whole_memory_lines(
    apisix: StartNginx, astrocyte_gateway: Astrocyte, fake_llm: OpenAICompatibleServer
) -> None:
    bank = new_bank()
    astrocyte_gateway.retain("Bob likes tea.", bank)
    astrocyte_gateway.retain("Bob likes long walks on the beach at sunset.", bank)
    hits = astrocyte_gateway.recall("What does Bob like?", bank)
    assert len(hits) == 2
    first = hits[0]["text"]
    header = "Memories:\n"
    # Room for the header and the first line only.
    budget = len(header) + len("- " + first) + 3
    conf = conf_for(astrocyte_gateway, bank, template=header + "{memories}", max_chars=budget)
    nginx = apisix(llm_url(fake_llm), conf)

    http_post(nginx.url + CHAT, chat_body(user("What does Bob like?")), JSON_HEADERS)

    assert last_chat(fake_llm)["messages"][0] == {
        "role": "system",
        "content": f"{header}- {first}",
    }


def test_bank_from_request_header_wins_over_configured_bank(
    apisix: StartNginx, astrocyte_gateway: Astrocyte, fake_llm: OpenAICompatibleServer
) -> None:
    configured, chosen = new_bank(), new_bank()
    astrocyte_gateway.retain("Configured bank memory.", configured)
    astrocyte_gateway.retain("Header bank memory.", chosen)
    conf = conf_for(astrocyte_gateway, configured, bank_header="X-Memory-Bank")
    nginx = apisix(llm_url(fake_llm), conf)

    headers = {**JSON_HEADERS, "X-Memory-Bank": chosen}
    http_post(nginx.url + CHAT, chat_body(user("Which bank memory?")), headers)

    assert last_chat(fake_llm)["messages"][0]["content"] == (
        "Relevant memories from earlier conversations:\n- Header bank memory."
    )
    wait_for_hit(astrocyte_gateway, "Which bank memory?", chosen, "assistant:")


def test_no_memories_no_system_message(
    apisix: StartNginx, astrocyte_gateway: Astrocyte, fake_llm: OpenAICompatibleServer
) -> None:
    nginx = apisix(llm_url(fake_llm), conf_for(astrocyte_gateway, new_bank(), retain=False))
    body = chat_body(user("Anything about me?"))

    status, _, _ = http_post(nginx.url + CHAT, body, JSON_HEADERS)

    assert status == 200
    assert last_chat(fake_llm) == json.loads(body)
    nginx.wait_for_log("nothing retained: retain disabled")


# -- retain --------------------------------------------------------------------------


def test_exchange_retained_and_recallable(
    apisix: StartNginx, astrocyte_gateway: Astrocyte, fake_llm: OpenAICompatibleServer
) -> None:
    bank = new_bank()
    fake_llm.chat_reply = "Your dog is called Rex."
    nginx = apisix(llm_url(fake_llm), conf_for(astrocyte_gateway, bank))

    status, _, _ = http_post(
        nginx.url + CHAT, chat_body(user("My dog is called Rex.")), JSON_HEADERS
    )

    assert status == 200
    hit = wait_for_hit(astrocyte_gateway, "What is my dog called?", bank, "Rex")
    assert hit["text"] == "user: My dog is called Rex.\nassistant: Your dog is called Rex."
    assert hit["provenance"]["content_type"] == "conversation"
    assert hit["provenance"]["metadata"] == {"source": "astrocyte-memory-plugin"}

    # The next conversation gets it back as a memory.
    http_post(nginx.url + CHAT, chat_body(user("What is my dog called?")), JSON_HEADERS)
    system = last_chat(fake_llm)["messages"][0]
    assert system["role"] == "system"
    assert "- user: My dog is called Rex. assistant: Your dog is called Rex." in system["content"]


def test_streamed_reply_assembled_for_retain(
    apisix: StartNginx, astrocyte_gateway: Astrocyte, sse_llm: SSEUpstream
) -> None:
    bank = new_bank()
    nginx = apisix(sse_llm.url, conf_for(astrocyte_gateway, bank))

    status, headers, raw = http_post(
        nginx.url + CHAT,
        chat_body(user("What is the capital of France?"), stream=True),
        JSON_HEADERS,
    )

    assert status == 200
    assert headers["content-type"].startswith("text/event-stream")
    # The client gets the stream exactly as the upstream sent it.
    events = [line for line in raw.decode().split("\n") if line.startswith("data: ")]
    assert events[-1] == "data: [DONE]"
    assert len(events) == 6
    hit = wait_for_hit(astrocyte_gateway, "capital of France", bank, "assistant:")
    assert hit["text"] == "user: What is the capital of France?\nassistant: Paris is the capital."
    # The upstream was asked to send it uncompressed.
    assert "accept-encoding" not in sse_llm.requests[-1].headers


def test_stream_without_content_deltas_is_not_retained(
    apisix: StartNginx, astrocyte_gateway: Astrocyte, sse_llm: SSEUpstream
) -> None:
    bank = new_bank()
    astrocyte_gateway.retain("An unrelated memory.", bank)
    sse_llm.deltas = []  # a tool call only
    nginx = apisix(sse_llm.url, conf_for(astrocyte_gateway, bank))

    status, _, raw = http_post(
        nginx.url + CHAT, chat_body(user("Look it up."), stream=True), JSON_HEADERS
    )

    assert status == 200
    assert b"tool_calls" in raw
    nginx.wait_for_log("nothing retained: no assistant text in the reply")
    hits = astrocyte_gateway.recall("Look it up.", bank)
    assert [hit["text"] for hit in hits] == ["An unrelated memory."]


# -- fail open -----------------------------------------------------------------------


def assert_passed_through(
    nginx: Nginx, llm: OpenAICompatibleServer, body: bytes, log_needle: str
) -> None:
    started = time.monotonic()
    status, _, raw = http_post(nginx.url + CHAT, body, JSON_HEADERS)
    elapsed = time.monotonic() - started

    assert status == 200
    assert json.loads(raw)["choices"][0]["message"]["content"] == DEFAULT_REPLY
    assert last_chat(llm) == json.loads(body)
    assert elapsed < 2.0, f"the request took {elapsed:.2f} s"
    nginx.wait_for_log(log_needle)


def test_memory_gateway_down_passes_through(
    apisix: StartNginx, down_astrocyte_url: str, fake_llm: OpenAICompatibleServer
) -> None:
    conf = {"astrocyte_url": down_astrocyte_url, "api_key": "k", "bank": "b"}
    nginx = apisix(llm_url(fake_llm), conf)
    body = chat_body(user("Hello?"))

    assert_passed_through(nginx, fake_llm, body, "[astrocyte-memory] recall failed")
    # Retain fails too, off the request path, and is only logged.
    nginx.wait_for_log("[astrocyte-memory] retain failed")


def test_memory_gateway_slow_passes_through_after_timeout(
    apisix: StartNginx, slow_astrocyte: BlackHole, fake_llm: OpenAICompatibleServer
) -> None:
    conf = {
        "astrocyte_url": slow_astrocyte.url,
        "api_key": "k",
        "bank": "b",
        "timeout_ms": 200,
        "retain": False,
    }
    nginx = apisix(llm_url(fake_llm), conf)
    before = slow_astrocyte.connections

    assert_passed_through(nginx, fake_llm, chat_body(user("Hello?")), "recall failed")
    assert slow_astrocyte.connections > before


def test_memory_gateway_401_passes_through(
    apisix: StartNginx, astrocyte_gateway: Astrocyte, fake_llm: OpenAICompatibleServer
) -> None:
    bank = new_bank()
    astrocyte_gateway.retain("A secret memory.", bank)
    conf = conf_for(astrocyte_gateway, bank, api_key="wrong-key")
    nginx = apisix(llm_url(fake_llm), conf)

    assert_passed_through(nginx, fake_llm, chat_body(user("A secret?")), "recall answered HTTP 401")
    nginx.wait_for_log("retain answered HTTP 401")


class RecallPeer:
    """A stand-in memory service: records /v1/recall and /v1/retain calls and answers
    with whatever the test queues (for answers the real gateway never gives, and for
    checking exactly what the plugin sends)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, str], Any]] = []
        self.answer: Response = JSONResponse({"hits": []})
        self.server = OpenAICompatibleServer(
            extra_routes=[
                Route("/v1/recall", self._handle, methods=["POST"]),
                Route("/v1/retain", self._handle, methods=["POST"]),
            ]
        )

    async def _handle(self, request: Request) -> Response:
        raw = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.calls.append((request.url.path, headers, json.loads(raw) if raw else None))
        if request.url.path.endswith("/retain"):
            return JSONResponse({"stored": True})
        return self.answer

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"


@pytest.fixture(scope="module")
def recall_peer_server() -> Iterator[RecallPeer]:
    peer = RecallPeer()
    with peer.server:
        yield peer


@pytest.fixture
def recall_peer(recall_peer_server: RecallPeer) -> RecallPeer:
    recall_peer_server.calls.clear()
    recall_peer_server.answer = JSONResponse({"hits": []})
    return recall_peer_server


@pytest.mark.parametrize(
    ("answer", "needle"),
    [
        (Response("oops", status_code=500), "recall answered HTTP 500"),
        (Response("{not json", media_type="application/json"), "invalid JSON"),
    ],
    ids=["5xx", "bad-json"],
)
def test_memory_gateway_errors_pass_through(
    apisix: StartNginx,
    recall_peer: RecallPeer,
    fake_llm: OpenAICompatibleServer,
    answer: Response,
    needle: str,
) -> None:
    recall_peer.answer = answer
    conf = {"astrocyte_url": recall_peer.url, "api_key": "k", "bank": "b", "retain": False}
    nginx = apisix(llm_url(fake_llm), conf)

    assert_passed_through(nginx, fake_llm, chat_body(user("Hello?")), needle)


def test_forward_bearer_and_recall_request_shape(
    apisix: StartNginx, recall_peer: RecallPeer, fake_llm: OpenAICompatibleServer
) -> None:
    recall_peer.answer = JSONResponse({"hits": [{"text": "m1", "score": 1.0}]})
    conf = {
        "astrocyte_url": recall_peer.url,
        "api_key": "fallback-key",
        "forward_bearer": True,
        "bank": "team",
        "max_results": 3,
        "max_tokens": 50,
    }
    nginx = apisix(llm_url(fake_llm), conf)

    headers = {**JSON_HEADERS, "Authorization": "Bearer caller-token"}
    status, _, _ = http_post(nginx.url + CHAT, chat_body(user("Hi there")), headers)

    assert status == 200
    path, sent_headers, body = recall_peer.calls[0]
    assert path == "/v1/recall"
    assert sent_headers["authorization"] == "Bearer caller-token"
    assert "x-api-key" not in sent_headers
    assert body == {"query": "Hi there", "bank_id": "team", "max_results": 3, "max_tokens": 50}
    deadline = time.monotonic() + 5
    while len(recall_peer.calls) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    path, sent_headers, body = recall_peer.calls[1]
    assert path == "/v1/retain"
    assert sent_headers["authorization"] == "Bearer caller-token"
    assert body["content"] == f"user: Hi there\nassistant: {DEFAULT_REPLY}"
    assert body["content_type"] == "conversation"
    assert body["bank_id"] == "team"
    # One idempotency key per proxied request (nginx's $request_id).
    assert body["idempotency_key"].startswith("gw-")

    # Without a caller token the configured key is used.
    http_post(nginx.url + CHAT, chat_body(user("Hi again")), JSON_HEADERS)
    assert recall_peer.calls[2][1]["x-api-key"] == "fallback-key"
    assert "authorization" not in recall_peer.calls[2][1]


# -- bodies and routes ---------------------------------------------------------------


def test_large_body_from_temp_file(
    apisix: StartNginx, astrocyte_gateway: Astrocyte, fake_llm: OpenAICompatibleServer
) -> None:
    bank = new_bank()
    astrocyte_gateway.retain("Carol works at the observatory.", bank)
    nginx = apisix(
        llm_url(fake_llm), conf_for(astrocyte_gateway, bank), client_body_buffer_size="1k"
    )
    document = "lorem ipsum " * 40_000  # ~480 KB, far above the 1 KB buffer
    original = [
        {"role": "system", "content": "Summarise."},
        user(document),
        {"role": "assistant", "content": "Done."},
        user("Where does Carol work?"),
    ]

    status, _, _ = http_post(nginx.url + CHAT, chat_body(*original), JSON_HEADERS)

    assert status == 200
    assert "buffered to a temporary file" in nginx.error_log()
    assert last_chat(fake_llm)["messages"] == [
        {
            "role": "system",
            "content": "Relevant memories from earlier conversations:\n"
            "- Carol works at the observatory.",
        },
        *original,
    ]
    wait_for_hit(astrocyte_gateway, "Where does Carol work?", bank, "assistant:")


def test_body_bytes_kept_apart_from_the_inserted_message(
    apisix: StartNginx, astrocyte_gateway: Astrocyte, fake_llm: OpenAICompatibleServer
) -> None:
    """Empty arrays, key order and big integers survive (stock lua-cjson would turn
    ``[]`` into ``{}``)."""
    bank = new_bank()
    astrocyte_gateway.retain("Dana prefers metric units.", bank)
    nginx = apisix(llm_url(fake_llm), conf_for(astrocyte_gateway, bank, retain=False))
    raw = (
        b'{"tools": [], "model": "test-model", "seed": 12345678901234567,'
        b' "messages": [{"role": "user", "content": "Units?"}]}'
    )

    http_post(nginx.url + CHAT, raw, JSON_HEADERS)

    sent = last_chat(fake_llm)
    assert sent["tools"] == []
    assert sent["seed"] == 12345678901234567
    assert list(sent) == ["tools", "model", "seed", "messages"]
    assert sent["messages"][0]["content"].endswith("- Dana prefers metric units.")


def test_other_routes_untouched(
    apisix: StartNginx, slow_astrocyte: BlackHole, fake_llm: OpenAICompatibleServer
) -> None:
    conf = {"astrocyte_url": slow_astrocyte.url, "api_key": "k", "bank": "b"}
    nginx = apisix(llm_url(fake_llm), conf)
    before = slow_astrocyte.connections

    status, _, raw = http_get(nginx.url + "/v1/models")
    assert status == 200
    assert json.loads(raw)["data"][0]["id"] == "test-model"

    embed = json.dumps({"model": "e", "input": ["What is my favourite colour?"]}).encode()
    status, _, _ = http_post(nginx.url + "/v1/embeddings", embed, JSON_HEADERS)
    assert status == 200
    assert fake_llm.requests_to("embeddings")[-1].json == json.loads(embed)

    # A GET to the chat path is not a chat completion either.
    http_get(nginx.url + CHAT)

    assert slow_astrocyte.connections == before
    assert "[astrocyte-memory]" not in nginx.error_log()


def test_invalid_conf_stops_nginx_from_starting(
    nginx_available: None, fake_llm: OpenAICompatibleServer
) -> None:
    server = Nginx(
        upstream=llm_url(fake_llm),
        runner=RUNNER,
        plugin_conf={"astrocyte_url": "http://127.0.0.1:1", "position": "middle"},
        lua_paths=[APISIX_DIR, APISIX_SHIM_DIR],
    )
    with pytest.raises(RuntimeError, match="invalid astrocyte-memory conf"):
        server.start()


# -- schema (plain LuaJIT, no nginx) ------------------------------------------------------

VALID_URL = "http://127.0.0.1:8080"

SCHEMA_CASES: list[tuple[str, dict[str, Any], str | None]] = [
    ("minimal", {"astrocyte_url": VALID_URL}, None),
    (
        "full",
        {
            "astrocyte_url": "https://astrocyte.internal/base",
            "api_key": "k",
            "forward_bearer": True,
            "bank": "b",
            "bank_header": "X-Bank",
            "bank_claim": "org.bank",
            "timeout_ms": 250,
            "retain_timeout_ms": 5000,
            "position": "before_last_user",
            "template": "Notes: {memories}",
            "max_chars": 500,
            "max_tokens": 100,
            "max_results": 10,
            "max_query_chars": 1000,
            "retain": False,
            "retain_tags": ["chat", "gateway"],
            "max_reply_bytes": 65536,
        },
        None,
    ),
    ("missing url", {"api_key": "k"}, 'property "astrocyte_url" is required'),
    ("url not http", {"astrocyte_url": "ftp://x"}, "astrocyte_url must be an http(s) URL"),
    ("url empty", {"astrocyte_url": ""}, "conf.astrocyte_url: string too short"),
    ("url number", {"astrocyte_url": 8080}, "conf.astrocyte_url: wrong type: expected string"),
    ("bad position", {"astrocyte_url": VALID_URL, "position": "last"}, "is not one of"),
    ("template without placeholder", {"astrocyte_url": VALID_URL, "template": "x"}, "{memories}"),
    ("timeout zero", {"astrocyte_url": VALID_URL, "timeout_ms": 0}, "to be at least 1"),
    ("timeout float", {"astrocyte_url": VALID_URL, "timeout_ms": 1.5}, "expected integer"),
    ("timeout too big", {"astrocyte_url": VALID_URL, "timeout_ms": 600000}, "at most 60000"),
    ("max_results too big", {"astrocyte_url": VALID_URL, "max_results": 1000}, "at most 100"),
    ("max_chars negative", {"astrocyte_url": VALID_URL, "max_chars": -1}, "at least 1"),
    ("retain string", {"astrocyte_url": VALID_URL, "retain": "yes"}, "expected boolean"),
    ("bearer string", {"astrocyte_url": VALID_URL, "forward_bearer": 1}, "expected boolean"),
    ("empty api_key", {"astrocyte_url": VALID_URL, "api_key": ""}, "string too short"),
    ("tags not strings", {"astrocyte_url": VALID_URL, "retain_tags": [1]}, "retain_tags[1]"),
    ("tags object", {"astrocyte_url": VALID_URL, "retain_tags": {"a": 1}}, "expected array"),
]


@pytest.fixture(scope="module")
def schema_results() -> dict[str, dict[str, Any]]:
    luajit = shutil.which("luajit")
    if luajit is None:
        pytest.skip("luajit not installed (apt-get install -y luajit2 lua-cjson)")
    lua_path = ";".join(f"{d}/?.lua" for d in (LUA_CORE_DIR, APISIX_DIR, APISIX_SHIM_DIR))
    proc = subprocess.run(
        [luajit, str(APISIX_SHIM_DIR / "check_schema.lua")],
        input=json.dumps([conf for _, conf, _ in SCHEMA_CASES]).encode(),
        capture_output=True,
        env={"LUA_PATH": lua_path + ";;"},
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    results = json.loads(proc.stdout)
    return {name: result for (name, _, _), result in zip(SCHEMA_CASES, results, strict=True)}


@pytest.mark.parametrize(
    ("name", "error"),
    [(name, error) for name, _, error in SCHEMA_CASES],
    ids=[name for name, _, _ in SCHEMA_CASES],
)
def test_check_schema(
    schema_results: dict[str, dict[str, Any]], name: str, error: str | None
) -> None:
    result = schema_results[name]
    if error is None:
        assert result["ok"], result["err"]
    else:
        assert not result["ok"]
        assert error in result["err"]


def test_check_schema_fills_in_defaults(schema_results: dict[str, dict[str, Any]]) -> None:
    assert schema_results["minimal"]["conf"] == {
        "astrocyte_url": VALID_URL,
        "forward_bearer": False,
        "timeout_ms": 300,
        "retain_timeout_ms": 3000,
        "position": "first",
        "template": TEMPLATE,
        "max_chars": 2000,
        "max_results": 5,
        "max_query_chars": 2000,
        "retain": True,
        "max_reply_bytes": 1048576,
    }


def test_schema_shim_unit_spec() -> None:
    busted = shutil.which("busted")
    if busted is None:
        pytest.skip("busted not installed (apt-get install -y lua-busted)")
    proc = subprocess.run(
        [busted, "-o", "utfTerminal", str(Path("tests") / "apisix_shim" / "spec")],
        cwd=PLUGINS_DIR,
        capture_output=True,
        timeout=60,
        check=False,
    )
    output = proc.stdout.decode() + proc.stderr.decode()
    assert proc.returncode == 0, output
    assert " 0 failures" in output and " 0 errors" in output


def test_luacheck_clean() -> None:
    luacheck = shutil.which("luacheck")
    if luacheck is None:
        pytest.skip("luacheck not installed (apt-get install -y lua-check)")
    runs = [
        [
            "--std",
            "ngx_lua",
            "apisix",
            "tests/apisix_shim",
            "--exclude-files",
            "tests/apisix_shim/spec/*",
        ],
        ["--std", "ngx_lua+busted", "tests/apisix_shim/spec"],
    ]
    for args in runs:
        proc = subprocess.run(
            [luacheck, "--no-color", *args],
            cwd=PLUGINS_DIR,
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 0, proc.stdout.decode() + proc.stderr.decode()
