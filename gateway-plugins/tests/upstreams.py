"""Real loopback peers for the gateway-plugin tests (used by ``conftest.py``).

- :func:`start_astrocyte` — the real Astrocyte gateway (``astrocyte_gateway.create_app``)
  under uvicorn, in-memory storage and the hashing embedder, API-key auth.
- :class:`SSEUpstream` — an OpenAI-style ``/v1/chat/completions`` that always streams
  (``text/event-stream``), since ``OpenAICompatibleServer`` does not stream.
- :func:`start_chat_upstream` — a minimal non-streaming chat completions endpoint with a
  fixed reply, for benchmarks (``OpenAICompatibleServer`` adds ~40 ms per keep-alive
  request under wrk, which would drown what is measured).
- :class:`BlackHole` — accepts TCP connections and never answers: a memory gateway that is
  "slow" for as long as the test cares.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

ASTROCYTE_API_KEY = "plugin-test-key-0123456789"
ASTROCYTE_PRINCIPAL = "user:alice"


def free_port() -> int:
    """A port of 127.0.0.1 nothing listens on (at the time of the call)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve_app(app: Any, *, lifespan: str = "off") -> tuple[uvicorn.Server, threading.Thread, int]:
    """Serve an ASGI app on a free loopback port from a thread; returns (server, thread, port)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan=lifespan)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("server failed to start")
        if time.monotonic() > deadline:
            raise TimeoutError("server did not start within 30 s")
        time.sleep(0.01)
    return server, thread, port


def _post_json(url: str, body: Any, headers: dict[str, str], timeout: float = 10) -> Any:
    data = json.dumps(body).encode()
    req = urllib.request.Request(
        url, data=data, headers={"Content-Type": "application/json", **headers}, method="POST"
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read())


@dataclass
class Astrocyte:
    """A running Astrocyte gateway and a tiny client for assertions."""

    url: str
    api_key: str
    server: uvicorn.Server
    thread: threading.Thread

    def recall(self, query: str, bank: str, max_results: int = 10) -> list[dict[str, Any]]:
        """Hits for ``query``; ``[]`` for a bank that does not exist (yet)."""
        body = {"query": query, "bank_id": bank, "max_results": max_results}
        try:
            answer = _post_json(f"{self.url}/v1/recall", body, {"X-Api-Key": self.api_key})
        except urllib.error.HTTPError as err:
            if err.code == 404:
                return []
            raise
        return answer["hits"]

    def retain(self, content: str, bank: str, **extra: Any) -> Any:
        body = {"content": content, "bank_id": bank, **extra}
        return _post_json(f"{self.url}/v1/retain", body, {"X-Api-Key": self.api_key})

    def wait_for_hit(
        self, query: str, bank: str, contains: str, timeout: float = 10.0
    ) -> dict[str, Any]:
        """The first hit whose text contains ``contains``; polls, since retain is async."""
        deadline = time.monotonic() + timeout
        while True:
            for hit in self.recall(query, bank):
                if contains in hit["text"]:
                    return hit
            if time.monotonic() > deadline:
                raise AssertionError(f"no memory containing {contains!r} in bank {bank!r}")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)


def start_astrocyte(api_key: str = ASTROCYTE_API_KEY) -> Astrocyte:
    from astrocyte_gateway.app import create_app

    config = {
        "storage": {"backend": "memory"},
        "embedder": {"provider": "hashing"},
        "deployment": {"mode": "standalone"},
        "gateway": {
            "auth": {
                "mode": "api_key",
                "api_keys": [{"key": api_key, "principal": ASTROCYTE_PRINCIPAL}],
            }
        },
    }
    server, thread, port = serve_app(create_app(config), lifespan="on")
    return Astrocyte(f"http://127.0.0.1:{port}", api_key, server, thread)


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    json: Any


@dataclass
class SSEUpstream:
    """Streams ``deltas`` as OpenAI chat-completion chunks, then ``data: [DONE]``.

    ``deltas=[]`` streams a tool call only (no content delta), which cannot be
    assembled into a reply.
    """

    deltas: list[str] = field(default_factory=lambda: ["Paris ", "is the ", "capital."])
    requests: list[Recorded] = field(default_factory=list)
    port: int = 0
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> SSEUpstream:
        app = Starlette(routes=[Route("/v1/chat/completions", self._chat, methods=["POST"])])
        self._server, self._thread, self.port = serve_app(app)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(10)

    async def _chat(self, request: Request) -> StreamingResponse:
        raw = await request.body()
        self.requests.append(
            Recorded(
                request.url.path,
                {k.lower(): v for k, v in request.headers.items()},
                json.loads(raw) if raw else None,
            )
        )
        deltas = list(self.deltas)

        async def events() -> AsyncIterator[bytes]:
            base = {"id": "chatcmpl-sse", "object": "chat.completion.chunk", "model": "m"}
            first = {**base, "choices": [{"index": 0, "delta": {"role": "assistant"}}]}
            yield f"data: {json.dumps(first)}\n\n".encode()
            if not deltas:
                call = {
                    "index": 0,
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "lookup", "arguments": "{}"},
                }
                chunk = {**base, "choices": [{"index": 0, "delta": {"tool_calls": [call]}}]}
                yield f"data: {json.dumps(chunk)}\n\n".encode()
            for piece in deltas:
                chunk = {**base, "choices": [{"index": 0, "delta": {"content": piece}}]}
                yield f"data: {json.dumps(chunk)}\n\n".encode()
            done = {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
            yield f"data: {json.dumps(done)}\n\n".encode()
            yield b"data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")


class BlackHole:
    """Accepts connections and reads, but never answers (until stopped)."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.port = self._sock.getsockname()[1]
        self.connections = 0
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        self._sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            self._held.append(conn)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for conn in self._held:
            conn.close()
        self._sock.close()


def http_post(
    url: str, body: bytes, headers: dict[str, str] | None = None, timeout: float = 10
) -> tuple[int, dict[str, str], bytes]:
    """POST raw bytes; returns (status, lower-cased headers, body) even for 4xx/5xx."""
    req = urllib.request.Request(url, data=body, headers=headers or {}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()


def http_get(url: str, timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, method="GET")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()


@dataclass
class ChatUpstream:
    url: str
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def start_chat_upstream(reply: str) -> ChatUpstream:
    """``POST /v1/chat/completions`` answering ``reply`` at once (no recording)."""

    async def chat(request: Request) -> JSONResponse:
        body = json.loads(await request.body() or b"{}")
        message = {"role": "assistant", "content": reply}
        return JSONResponse(
            {
                "id": "chatcmpl-bench",
                "object": "chat.completion",
                "model": body.get("model", ""),
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            }
        )

    server, thread, port = serve_app(
        Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])
    )
    return ChatUpstream(f"http://127.0.0.1:{port}", server, thread)
