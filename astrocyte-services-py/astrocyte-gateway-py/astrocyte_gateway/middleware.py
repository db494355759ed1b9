"""The gateway's outer ASGI layer: request ids, the body limit, access logs, tracing
and the last-resort 500.

A plain ASGI middleware (not Starlette's ``BaseHTTPMiddleware``) because it must wrap
``receive``: the body limit is enforced *while the body streams in*, so an oversized
upload is refused after at most ``max_request_bytes`` (plus one chunk) are read,
whatever ``Content-Length`` claims or when the body is chunked.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from astrocyte_gateway import timing, tracing
from astrocyte_gateway.errors import GENERIC_MESSAGES, RequestTooLarge, error_body

__all__ = ["REQUEST_ID_HEADER", "GatewayMiddleware", "access_logger"]

REQUEST_ID_HEADER = "x-request-id"

#: One JSON object per line per request: method, path, status, duration_ms,
#: principal, request_id. Configure a handler with format "%(message)s" to get pure
#: JSON lines (the CLI does).
access_logger = logging.getLogger("astrocyte_gateway.access")
_logger = logging.getLogger("astrocyte_gateway")

# A caller-supplied id is echoed into headers and logs, so only a short, plain token
# is accepted; anything else is replaced (never partially trusted).
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@+=-]{0,127}$")


# One encoder for every access-log line: ``json.dumps`` with non-default separators
# builds a new encoder per call.
_encode_line = json.JSONEncoder(separators=(",", ":")).encode


def _request_headers(scope: Scope) -> tuple[str | None, str | None]:
    """The first ``X-Request-ID`` and ``Content-Length`` values, in one pass over the
    headers (servers send names lower-cased, but a direct ASGI caller may not)."""
    given: str | None = None
    declared: str | None = None
    for key, value in scope.get("headers", ()):
        name = key.lower()
        if name == b"x-request-id":
            if given is None:
                given = value.decode("latin-1")
        elif name == b"content-length" and declared is None:
            declared = value.decode("latin-1")
    return given, declared


class GatewayMiddleware:
    """Request id, body limit, access log, request span and generic 500 for one app.

    Args:
        app: the wrapped ASGI app.
        max_request_bytes: largest accepted request body (``gateway.max_request_bytes``).
    """

    def __init__(self, app: ASGIApp, *, max_request_bytes: int) -> None:
        self.app = app
        self.max_request_bytes = max_request_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        timings = timing.begin()
        started = timings["start"]
        given, declared = _request_headers(scope)
        request_id = given if given and _SANE_REQUEST_ID.match(given) else uuid.uuid4().hex
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        method = str(scope.get("method", ""))
        path = str(scope.get("path", ""))
        status_code = 500
        response_started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status_code, response_started
            if message["type"] == "http.response.start":
                status_code = int(message["status"])
                response_started = True
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"
                ]
                headers.append((b"x-request-id", request_id.encode()))
                headers.append((timing.HEADER, timing.header_value(timings)))
                message = {**message, "headers": headers}
            await send(message)

        traced = tracing.active()
        request_span = (
            tracing.span(
                f"HTTP {method}",
                {
                    "http.request.method": method,
                    "url.path": path,
                    "astrocyte.request_id": request_id,
                },
            )
            if traced
            else tracing.NO_SPAN
        )
        with request_span as span:
            try:
                await self._dispatch(scope, receive, send_wrapper, request_id, declared)
            except RequestTooLarge as exc:
                # The body limit tripped outside a route's body parsing (e.g. a
                # streaming reader that lets it escape): still a 413, not a 500.
                if not response_started:
                    await _send_json(
                        send_wrapper,
                        413,
                        error_body("payload_too_large", str(exc.detail), request_id),
                    )
            except Exception:
                # The app did not answer: log the stack trace here (server side, with
                # the request id) and give the client only the id.
                _logger.exception("unhandled error on %s %s (request %s)", method, path, request_id)
                if not response_started:
                    await _send_json(
                        send_wrapper,
                        500,
                        error_body("internal_error", GENERIC_MESSAGES[500], request_id),
                    )
            finally:
                principal = state.get("principal")
                if traced:
                    route = scope.get("route")
                    template = getattr(route, "path", None)
                    if isinstance(template, str):
                        span.update_name(f"{method} {template}")
                    span.set_attribute("http.response.status_code", status_code)
                    if principal is not None:
                        span.set_attribute("enduser.id", principal)
                if access_logger.isEnabledFor(logging.INFO):
                    access_logger.info(
                        _encode_line(
                            {
                                "method": method,
                                "path": path,
                                "status": status_code,
                                "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                                "principal": principal,
                                "request_id": request_id,
                            }
                        )
                    )

    async def _dispatch(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        request_id: str,
        declared: str | None,
    ) -> None:
        limit = self.max_request_bytes
        if declared is not None and declared.strip().isdigit() and int(declared) > limit:
            # Refused before a single body byte is read.
            await _send_json(
                send,
                413,
                error_body(
                    "payload_too_large",
                    f"request body is {int(declared)} bytes, over the limit of {limit}",
                    request_id,
                ),
            )
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Raised inside the route's body read; handled as a 413 there.
                    raise RequestTooLarge(limit)
            return message

        await self.app(scope, limited_receive, send)


async def _send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
