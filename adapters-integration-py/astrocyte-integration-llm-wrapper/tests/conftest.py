"""Shared fixtures: real servers on loopback ports, each on a thread of its own.

* ``llm``: :class:`astrocyte.testing.openai_server.OpenAICompatibleServer` (records every
  request; replies ``noted: <last user text>``).
* ``sse_llm``: a tiny OpenAI-style *streaming* chat server (below): it answers every chat
  completion with Server-Sent Events, one chunk per piece of :attr:`SseServer.pieces`,
  and can hold the stream after the first chunk until the test releases it.
* ``start_gateway``: the real Astrocyte gateway under uvicorn, started the way the
  gateway's own tests do.
* ``brain``: an in-process Astrocyte on the memory backend.
"""

from __future__ import annotations

import asyncio
import copy
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import uvicorn
from astrocyte import Astrocyte
from astrocyte.testing.openai_server import OpenAICompatibleServer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

#: Fast settings: in-process stores, the hashing embedder.
FAST: dict[str, Any] = {"storage": {"backend": "memory"}, "embedder": {"provider": "hashing"}}

TEMPLATE_HEAD = "Relevant memories from earlier conversations:\n"


def fast_config(**sections: Any) -> dict[str, Any]:
    """``FAST`` plus the given top-level sections."""
    return {**copy.deepcopy(FAST), **sections}


def last_user_text(messages: list[dict[str, Any]]) -> str:
    users = [str(m.get("content")) for m in messages if m.get("role") == "user"]
    return users[-1] if users else ""


def echo_reply(messages: list[dict[str, Any]]) -> str:
    """The fake model's reply: it names what it was told last."""
    return f"noted: {last_user_text(messages)}"


class Served:
    """An ASGI app under uvicorn on a free loopback port, on a daemon thread."""

    def __init__(self, app: Any, *, lifespan: str = "off") -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(
            uvicorn.Config(
                app,
                log_config=None,
                log_level="warning",
                access_log=False,
                lifespan=lifespan,  # type: ignore[arg-type]
                timeout_graceful_shutdown=2,
            )
        )
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("server failed to start")
            if time.monotonic() > deadline:
                raise TimeoutError("server did not start within 30 s")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)


class SseServer:
    """A streaming chat-completions endpoint: ``POST /v1/chat/completions``."""

    def __init__(self) -> None:
        self.pieces: list[str | None] = ["Hel", "lo ", "wor", "ld"]
        self.requests: list[dict[str, Any]] = []
        self.hold_after_first = False
        self.release = threading.Event()
        self.finished = threading.Event()
        self._served: Served | None = None

    @property
    def base_url(self) -> str:
        assert self._served is not None
        return f"{self._served.url}/v1"

    def chunks(self) -> list[dict[str, Any]]:
        """The chunks one stream sends (role first, a content delta per piece, stop)."""
        head = {"id": "chatcmpl-sse", "object": "chat.completion.chunk", "created": 1}
        out: list[dict[str, Any]] = [
            {**head, "choices": [{"index": 0, "delta": {"role": "assistant"}}]}
        ]
        out += [
            {**head, "choices": [{"index": 0, "delta": {"content": p}, "finish_reason": None}]}
            for p in self.pieces
        ]
        out.append({**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        return out

    async def _chat(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append(body)
        chunks = [{**c, "model": body.get("model", "")} for c in self.chunks()]

        async def events() -> AsyncIterator[bytes]:
            for i, chunk in enumerate(chunks):
                yield f"data: {json.dumps(chunk)}\n\n".encode()
                if i == 1 and self.hold_after_first:
                    await asyncio.to_thread(self.release.wait, 20)
            yield b"data: [DONE]\n\n"
            self.finished.set()

        return StreamingResponse(events(), media_type="text/event-stream")

    def start(self) -> SseServer:
        app = Starlette(routes=[Route("/v1/chat/completions", self._chat, methods=["POST"])])
        self._served = Served(app)
        return self

    def stop(self) -> None:
        self.release.set()
        if self._served is not None:
            self._served.stop()


@pytest.fixture
def llm() -> Iterator[OpenAICompatibleServer]:
    with OpenAICompatibleServer(chat_reply=echo_reply) as server:
        yield server


@pytest.fixture
def sse_llm() -> Iterator[SseServer]:
    server = SseServer().start()
    yield server
    server.stop()


@pytest.fixture
async def brain() -> AsyncIterator[Astrocyte]:
    async with Astrocyte.from_config(FAST) as b:
        yield b


@pytest.fixture
def sync_brain() -> Iterator[Astrocyte]:
    """A brain for sync tests (the wrapper uses it from its own loop thread)."""
    b = Astrocyte.from_config(FAST)
    yield b
    asyncio.run(b.close())


@pytest.fixture
def start_gateway() -> Iterator[Callable[..., str]]:
    """Factory: ``start_gateway(config_dict, brain=None) -> base URL`` of a running
    gateway (``astrocyte_gateway.app.create_app`` under uvicorn, lifespan on)."""
    gateway_app = pytest.importorskip("astrocyte_gateway.app")
    started: list[Served] = []

    def start(config: Any = None, *, brain: Any = None) -> str:
        served = Served(gateway_app.create_app(config, brain=brain), lifespan="on")
        started.append(served)
        return served.url

    yield start
    for served in started:
        served.stop()


def free_port() -> int:
    """A loopback port nothing listens on (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def black_hole() -> Iterator[str]:
    """A URL whose server accepts connections and never answers (for timeouts)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()
