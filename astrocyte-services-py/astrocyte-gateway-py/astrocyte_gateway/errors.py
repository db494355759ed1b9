"""One error shape for every failure, and the mapping from library errors to statuses.

Every error response is ``{"error": {"code", "message", "request_id"}}`` (validation
errors add ``details``). Messages of 4xx errors come from the library's typed errors,
which are written to be shown to the caller (field, problem, fix; never a secret).
Messages of 5xx errors are generic: the exception is logged with the request id, and
the client gets only the id to quote, never a stack trace, a host name or a key.

=====================================================  ======  ===================
exception                                              status  code
=====================================================  ======  ===================
malformed JSON body                                    400     ``malformed_json``
request model / :class:`astrocyte.errors.ValidationError`  422  ``validation_error``
                                                               (or the subclass's)
:class:`~astrocyte_gateway.auth.AuthError`             401/403 its own ``code``
:class:`~astrocyte.errors.AccessDenied`                403     ``access_denied``
:class:`~astrocyte.errors.QuotaExceeded`               403     ``quota_exceeded``
:class:`~astrocyte.errors.BankNotFound`                404     ``bank_not_found``
:class:`ConflictError` (gateway-level conflicts)       409     ``conflict``
:class:`~astrocyte.errors.PayloadTooLarge`, body limit 413     ``payload_too_large``
:class:`~astrocyte.errors.RateLimited`                 429     ``rate_limited`` +
                                                               ``Retry-After``
:class:`~astrocyte.errors.ProviderError` (embedder/LLM) 502    ``provider_error``
:class:`~astrocyte.errors.StoreError` /
:class:`~astrocyte.errors.ProviderUnavailable`         503     its own ``code``
library call over ``gateway.request_timeout_seconds``  504     ``timeout``
anything else                                          500     ``internal_error``
=====================================================  ======  ===================

Why ``QuotaExceeded`` is 403 and not 429: a quota (memories per bank, bytes per
tenant) does not refill with time, so a client that backs off and retries as 429
invites would retry forever; 403 says "refused until an operator acts".
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

from astrocyte.errors import (
    AccessDenied,
    AstrocyteError,
    BankNotFound,
    PayloadTooLarge,
    ProviderError,
    QuotaExceeded,
    RateLimited,
    StoreError,
    ValidationError,
)
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from astrocyte_gateway.auth.base import AuthError

__all__ = [
    "GENERIC_MESSAGES",
    "ApiError",
    "ConflictError",
    "RequestTooLarge",
    "error_body",
    "error_response",
    "install_error_handlers",
    "request_id_of",
]

logger = logging.getLogger("astrocyte_gateway.errors")

GENERIC_MESSAGES = {
    500: "internal error; quote the request id when reporting it",
    502: "an embedding or LLM provider failed; retry later",
    503: "a storage backend is unavailable; retry later",
    504: "the request took longer than the gateway allows",
}

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
}


class ApiError(Exception):
    """An error the gateway itself raises, already carrying its HTTP form."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        super().__init__(message)


class ConflictError(ApiError):
    """The request conflicts with the current state (409)."""

    def __init__(self, message: str) -> None:
        super().__init__(409, "conflict", message)


class RequestTooLarge(StarletteHTTPException):
    """The request body exceeds ``gateway.max_request_bytes`` (413).

    An ``HTTPException`` on purpose: it is raised from inside ``receive`` while a route
    reads the body, and FastAPI passes ``HTTPException`` s from body parsing through
    unchanged (anything else would become a 400).
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(413, f"request body is over the limit of {limit} bytes")


def request_id_of(request: Request) -> str | None:
    """The request id the middleware assigned (``None`` outside the middleware)."""
    state = request.scope.get("state") or {}
    value = state.get("request_id")
    return value if isinstance(value, str) else None


def error_body(
    code: str, message: str, request_id: str | None, **extra: Any
) -> dict[str, dict[str, Any]]:
    """The JSON error document."""
    return {"error": {"code": code, "message": message, "request_id": request_id, **extra}}


def error_response(
    request: Request,
    status: int,
    code: str,
    message: str,
    *,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """A JSON error response carrying the request's id."""
    return JSONResponse(
        error_body(code, message, request_id_of(request), **extra),
        status_code=status,
        headers=headers,
    )


def _retry_after(seconds: float) -> str:
    # Retry-After takes whole seconds; rounding down would invite a retry that is
    # refused again.
    return str(max(1, math.ceil(seconds)))


def map_library_error(exc: AstrocyteError) -> tuple[int, str, str, dict[str, str]]:
    """``(status, code, message, headers)`` for a library error."""
    headers: dict[str, str] = {}
    code = exc.code
    if isinstance(exc, PayloadTooLarge):
        status = 413
    elif isinstance(exc, ValidationError):
        status = 422
    elif isinstance(exc, AccessDenied | QuotaExceeded):
        status = 403
    elif isinstance(exc, BankNotFound):
        status = 404
    elif isinstance(exc, RateLimited):
        status = 429
        headers["Retry-After"] = _retry_after(exc.retry_after_s)
    elif isinstance(exc, ProviderError):
        status = 502
    elif isinstance(exc, StoreError):
        status = 503
    else:
        # ConfigError at request time and anything new: a server-side problem.
        status, code = 500, "internal_error"
    message = GENERIC_MESSAGES[status] if status >= 500 else str(exc)
    return status, code, message, headers


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    # Only location, message and type: pydantic's "input" would echo the request
    # (which may hold a key or personal data) back into responses and logs.
    return [
        {
            "loc": [str(part) for part in err.get("loc", ())],
            "msg": str(err.get("msg", "")),
            "type": str(err.get("type", "")),
        }
        for err in exc.errors()
    ]


async def _on_library_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AstrocyteError)
    status, code, message, headers = map_library_error(exc)
    if status >= 500:
        logger.error(
            "library error %s on %s %s (request %s): %s",
            type(exc).__name__,
            request.method,
            request.url.path,
            request_id_of(request),
            exc,
        )
    return error_response(request, status, code, message, headers=headers)


async def _on_auth_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AuthError)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return error_response(request, exc.status, exc.code, exc.message, headers=headers)


async def _on_api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(request, exc.status, exc.code, exc.message, headers=exc.headers)


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = _validation_details(exc)
    if any(d["type"] == "json_invalid" for d in details):
        return error_response(request, 400, "malformed_json", "request body is not valid JSON")
    summary = "; ".join(f"{'.'.join(d['loc'])}: {d['msg']}" for d in details[:5])
    return error_response(
        request, 422, "validation_error", summary or "invalid request", details=details
    )


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    code = _HTTP_CODES.get(status, "internal_error" if status >= 500 else "http_error")
    message = GENERIC_MESSAGES.get(status, "") if status >= 500 else str(exc.detail)
    return error_response(request, status, code, message, headers=exc.headers)


async def _on_timeout(request: Request, exc: Exception) -> JSONResponse:
    logger.error(
        "timeout on %s %s (request %s)", request.method, request.url.path, request_id_of(request)
    )
    return error_response(request, 504, "timeout", GENERIC_MESSAGES[504])


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that give every error the gateway's JSON shape.

    Unexpected exceptions are answered (500, generic) by
    :class:`~astrocyte_gateway.middleware.GatewayMiddleware`, which also logs them.
    """
    app.add_exception_handler(AstrocyteError, _on_library_error)
    app.add_exception_handler(AuthError, _on_auth_error)
    app.add_exception_handler(ApiError, _on_api_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(TimeoutError, _on_timeout)
