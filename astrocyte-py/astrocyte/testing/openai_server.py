"""A real OpenAI-compatible HTTP server for tests (Starlette + uvicorn, loopback only).

It serves ``POST /v1/embeddings``, ``POST /v1/chat/completions`` and
``GET /v1/models`` the way OpenAI does, records every request, and can be told to
misbehave: fail with a status (429 with ``Retry-After``, 500...), hang, or answer
with any body (malformed JSON, wrong shapes). Providers under test talk to it over
a real socket, so timeouts, retries and headers are exercised for real.

Requires the ``dev`` extra (``starlette`` and ``uvicorn``)::

    from astrocyte.testing.openai_server import OpenAICompatibleServer

    async with OpenAICompatibleServer(embed_dim=8, chat_reply="hi") as srv:
        embedder = OpenAIEmbedder(base_url=srv.base_url, model="m", api_key="k")
        srv.fail_next(2, 429, retry_after=0.1)   # next two requests get 429
        await embedder.embed(["a", "b"])         # retried, then succeeds
        assert srv.requests[-1].authorization == "Bearer k"
        assert srv.requests[-1].json["input"] == ["a", "b"]

It also works as a plain ``with`` block (for sync tests or session fixtures): the
server runs its own event loop on a background thread, independent of the test's.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import numpy as np
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

__all__ = ["ChatReply", "OpenAICompatibleServer", "RecordedRequest", "tool_call_message"]

ChatReply = str | Callable[[list[dict[str, Any]]], "str | Mapping[str, Any] | None"]
"""A fixed reply, or a function of the request's ``messages`` returning the reply
text (``None`` answers with ``content: null``, like a refusal) or a whole assistant
message as a mapping — e.g. ``tool_call_message("recall", {"query": "tea"})`` — so a
test can script tool calls and answer the tool-result turn differently."""

EmbedFn = Callable[[str], Sequence[float]]
"""Custom embedding: text to a vector of the configured width."""


def tool_call_message(
    name: str, arguments: Mapping[str, Any], *, call_id: str | None = None
) -> dict[str, Any]:
    """An assistant message calling one tool, for a ``chat_reply`` function to return.

    ``call_id`` defaults to ``call_<name>``; several calls in one message can be built by
    concatenating the ``tool_calls`` lists of several of these."""
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": call_id or f"call_{name}",
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(dict(arguments))},
            }
        ],
    }


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request the server received (faulted ones included)."""

    method: str
    path: str
    headers: Mapping[str, str]
    """Header names are lower-case."""
    json: Any
    """Decoded JSON body, or ``None`` if the body was empty or not JSON."""
    received_at: float
    """``time.monotonic()`` when the request arrived."""

    @property
    def authorization(self) -> str | None:
        """The ``Authorization`` header, if any."""
        return self.headers.get("authorization")


@dataclass(slots=True)
class _Fault:
    remaining: int
    path: str | None
    status: int = 200
    retry_after: str | None = None
    hang_seconds: float | None = None
    body: bytes | None = None
    content_type: str = "application/json"
    hits: int = field(default=0)

    def applies_to(self, path: str) -> bool:
        return self.path is None or path.endswith(self.path)


class OpenAICompatibleServer:
    """An OpenAI-style API on ``127.0.0.1`` and a free port, for the life of a
    ``with`` / ``async with`` block.

    Args:
        embed_dim: width of the embeddings it returns (a request's ``dimensions``
            field overrides it, as with OpenAI's text-embedding-3 models).
        chat_reply: the assistant's reply, or a function of the ``messages``.
        embed_fn: custom text -> vector; default is a deterministic pseudo-random
            vector seeded by the text, deliberately *not* unit-length so tests can
            check that clients normalise.
        api_key: if set, requests without ``Authorization: Bearer <api_key>`` get
            an OpenAI-style 401.
        models: ids listed by ``GET /v1/models``.
        extra_routes: more Starlette routes served alongside, e.g. a search endpoint a
            proxy source queries, so one loopback server plays every HTTP peer of a test.

    Misbehaviour is queued with :meth:`fail_next`, :meth:`hang_next` and
    :meth:`respond_next`; each applies to the next ``n`` matching requests, in
    the order queued.
    """

    def __init__(
        self,
        *,
        embed_dim: int = 8,
        chat_reply: ChatReply = "ok",
        embed_fn: EmbedFn | None = None,
        api_key: str | None = None,
        models: Sequence[str] = ("test-model",),
        extra_routes: Sequence[BaseRoute] = (),
    ) -> None:
        self.embed_dim = embed_dim
        self.chat_reply: ChatReply = chat_reply
        self.embed_fn = embed_fn
        self.api_key = api_key
        self.models = tuple(models)
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._faults: list[_Fault] = []
        self._port: int | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._release: asyncio.Event | None = None
        self._startup_error: BaseException | None = None
        self.app = Starlette(
            routes=[
                Route("/v1/embeddings", self._embeddings, methods=["POST"]),
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
                *extra_routes,
            ]
        )

    # -- lifecycle -------------------------------------------------------------

    @property
    def port(self) -> int:
        """The port it listens on (only while running)."""
        if self._port is None:
            raise RuntimeError("the server is not running")
        return self._port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/v1``: what a client's ``base_url`` should be."""
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> None:
        """Start serving on a background thread; returns once it accepts requests."""
        if self._thread is not None:
            raise RuntimeError("the server is already running")
        # Bind before starting so the port is known and cannot be taken meanwhile.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_config=None,  # leave the test runner's logging alone
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._startup_error = None
        self._thread = threading.Thread(
            target=self._run, args=(self._server, sock), name="openai-test-server", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if self._startup_error is not None or not self._thread.is_alive():
                self._cleanup()
                raise RuntimeError(f"test server failed to start: {self._startup_error!r}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("test server did not start within 10s")
            time.sleep(0.005)

    def stop(self) -> None:
        """Release hanging requests, stop the server and join its thread."""
        server, loop, release = self._server, self._loop, self._release
        if server is not None:
            server.should_exit = True
        if loop is not None and release is not None and not loop.is_closed():
            # The loop may close between the check and the call.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(release.set)
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._cleanup()

    def _cleanup(self) -> None:
        self._server = None
        self._thread = None
        self._loop = None
        self._release = None
        self._port = None

    def _run(self, server: uvicorn.Server, sock: socket.socket) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._release = asyncio.Event()
            await server.serve(sockets=[sock])

        try:
            asyncio.run(main())
        except BaseException as exc:
            self._startup_error = exc
        finally:
            sock.close()

    def __enter__(self) -> OpenAICompatibleServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> OpenAICompatibleServer:
        # start()/stop() block briefly; keep the caller's loop free meanwhile.
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)

    # -- what happened ---------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first (a snapshot)."""
        with self._lock:
            return list(self._requests)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        """Requests whose path ends with ``path`` (e.g. ``"embeddings"``)."""
        return [r for r in self.requests if r.path.endswith(path)]

    def clear(self) -> None:
        """Forget recorded requests and queued faults."""
        with self._lock:
            self._requests.clear()
            self._faults.clear()

    # -- misbehaviour ------------------------------------------------------------

    def fail_next(
        self,
        n: int = 1,
        status: int = 500,
        *,
        retry_after: float | str | None = None,
        message: str | None = None,
        path: str | None = None,
    ) -> None:
        """Answer the next ``n`` requests (to ``path``, if given) with ``status`` and
        an OpenAI-style error body, plus ``Retry-After: <retry_after>`` if set."""
        body = json.dumps(
            {
                "error": {
                    "message": message or f"injected failure (HTTP {status})",
                    "type": "server_error" if status >= 500 else "invalid_request_error",
                    "code": None,
                }
            }
        ).encode()
        self._queue(
            _Fault(
                remaining=n,
                path=path,
                status=status,
                retry_after=None if retry_after is None else str(retry_after),
                body=body,
            )
        )

    def hang_next(self, n: int = 1, *, seconds: float = 60.0, path: str | None = None) -> None:
        """Hold the next ``n`` requests for ``seconds`` (or until the server stops)
        before answering normally: for client timeout tests."""
        self._queue(_Fault(remaining=n, path=path, hang_seconds=seconds))

    def respond_next(
        self,
        n: int = 1,
        *,
        body: str | bytes | Mapping[str, Any] | Sequence[Any],
        status: int = 200,
        content_type: str = "application/json",
        path: str | None = None,
    ) -> None:
        """Answer the next ``n`` requests with exactly ``body`` (a mapping or list is
        JSON-encoded; str/bytes go out verbatim, e.g. malformed JSON)."""
        if isinstance(body, str):
            raw = body.encode()
        elif isinstance(body, bytes):
            raw = body
        else:
            raw = json.dumps(body).encode()
        self._queue(
            _Fault(remaining=n, path=path, status=status, body=raw, content_type=content_type)
        )

    def _queue(self, fault: _Fault) -> None:
        if fault.remaining < 1:
            raise ValueError("n must be >= 1")
        with self._lock:
            self._faults.append(fault)

    def _take_fault(self, path: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.applies_to(path):
                    fault.remaining -= 1
                    fault.hits += 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    # -- endpoints ---------------------------------------------------------------

    async def _intercept(self, request: Request) -> tuple[Any, Response | None]:
        """Record the request; return its JSON body and any response that must be
        sent instead of the normal one (fault, auth failure, bad JSON)."""
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        path = request.url.path
        with self._lock:
            self._requests.append(
                RecordedRequest(
                    method=request.method,
                    path=path,
                    headers={k.lower(): v for k, v in request.headers.items()},
                    json=body,
                    received_at=time.monotonic(),
                )
            )
        fault = self._take_fault(path)
        if fault is not None:
            if fault.hang_seconds is not None:
                release = self._release
                if release is not None:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(release.wait(), fault.hang_seconds)
            else:
                headers = {"retry-after": fault.retry_after} if fault.retry_after else None
                return body, Response(
                    fault.body or b"",
                    status_code=fault.status,
                    media_type=fault.content_type,
                    headers=headers,
                )
        expected_auth = None if self.api_key is None else f"Bearer {self.api_key}"
        if expected_auth is not None and request.headers.get("authorization") != expected_auth:
            return body, _error(401, "Incorrect API key provided", "invalid_api_key")
        if request.method == "POST" and not isinstance(body, dict):
            return body, _error(400, "request body must be a JSON object", None)
        return body, None

    async def _embeddings(self, request: Request) -> Response:
        body, early = await self._intercept(request)
        if early is not None:
            return early
        inputs = body.get("input")
        if isinstance(inputs, str):
            inputs = [inputs]
        if not isinstance(inputs, list) or not all(isinstance(t, str) for t in inputs):
            return _error(400, "'input' must be a string or a list of strings", None)
        width = body.get("dimensions", self.embed_dim)
        if not isinstance(width, int) or width < 1:
            return _error(400, "'dimensions' must be a positive integer", None)
        vectors = [self._vector(text, width) for text in inputs]
        tokens = sum(len(text.split()) for text in inputs)
        return JSONResponse(
            {
                "object": "list",
                "data": [
                    {"object": "embedding", "index": i, "embedding": vec}
                    for i, vec in enumerate(vectors)
                ],
                "model": body.get("model", ""),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    async def _chat(self, request: Request) -> Response:
        body, early = await self._intercept(request)
        if early is not None:
            return early
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return _error(400, "'messages' must be a non-empty list", None)
        reply = self.chat_reply(messages) if callable(self.chat_reply) else self.chat_reply
        if isinstance(reply, Mapping):
            message: dict[str, Any] = {"role": "assistant", "content": None, **reply}
        else:
            message = {"role": "assistant", "content": reply}
        finish = "tool_calls" if message.get("tool_calls") else "stop"
        content = message.get("content")
        prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in messages)
        completion_tokens = len(content.split()) if isinstance(content, str) else 0
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        completion_id = f"chatcmpl-test-{len(self._requests)}"
        model = body.get("model", "")
        if body.get("stream") is True:
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return StreamingResponse(
                _sse_chunks(
                    completion_id, model, message, finish, usage if include_usage else None
                ),
                media_type="text/event-stream",
            )
        return JSONResponse(
            {
                "id": completion_id,
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                "usage": usage,
            }
        )

    async def _models(self, request: Request) -> Response:
        _, early = await self._intercept(request)
        if early is not None:
            return early
        return JSONResponse(
            {
                "object": "list",
                "data": [{"id": m, "object": "model", "owned_by": "test"} for m in self.models],
            }
        )

    def _vector(self, text: str, width: int) -> list[float]:
        if self.embed_fn is not None:
            return [float(x) for x in self.embed_fn(text)]
        seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
        # Scaled so a client that forgets to normalise is caught.
        values = np.random.default_rng(seed).normal(size=width) * 3.0
        return [float(x) for x in values]


async def _sse_chunks(
    completion_id: str,
    model: str,
    message: Mapping[str, Any],
    finish: str,
    usage: Mapping[str, int] | None,
) -> AsyncIterator[bytes]:
    """A reply as OpenAI streams it: role, content in word-sized deltas, each tool call
    (id and name first, arguments in two halves), the finish reason, usage if asked,
    then ``[DONE]``."""
    base = {"id": completion_id, "object": "chat.completion.chunk", "created": int(time.time())}

    def chunk(delta: Mapping[str, Any], finish_reason: str | None = None) -> bytes:
        choice = {"index": 0, "delta": dict(delta), "finish_reason": finish_reason}
        payload = {**base, "model": model, "choices": [choice]}
        return f"data: {json.dumps(payload)}\n\n".encode()

    yield chunk({"role": "assistant", "content": ""})
    content = message.get("content")
    if isinstance(content, str):
        for piece in re.findall(r"\S+\s*|\s+", content):
            yield chunk({"content": piece})
    for index, call in enumerate(message.get("tool_calls") or ()):
        function = call.get("function", {})
        arguments = str(function.get("arguments", ""))
        half = len(arguments) // 2
        yield chunk(
            {
                "tool_calls": [
                    {
                        "index": index,
                        "id": call.get("id"),
                        "type": "function",
                        "function": {"name": function.get("name"), "arguments": arguments[:half]},
                    }
                ]
            }
        )
        yield chunk({"tool_calls": [{"index": index, "function": {"arguments": arguments[half:]}}]})
    yield chunk({}, finish)
    if usage is not None:
        tail = {**base, "model": model, "choices": [], "usage": dict(usage)}
        yield f"data: {json.dumps(tail)}\n\n".encode()
    yield b"data: [DONE]\n\n"


def _error(status: int, message: str, code: str | None) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": message, "type": "invalid_request_error", "code": code}},
        status_code=status,
    )
