"""What routes depend on: the gateway's state, the authenticated caller, and a
wrapper for library calls (timeout + tracing span)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

from astrocyte import Astrocyte
from astrocyte.config import AstrocyteConfig
from astrocyte.ingest import IngestSupervisor, SourceRegistry, WebhookIngest
from fastapi import Depends, Request

from astrocyte_gateway import timing, tracing
from astrocyte_gateway.auth.base import Authenticator, Caller
from astrocyte_gateway.errors import ApiError
from astrocyte_gateway.models import ErrorResponse

__all__ = [
    "AUTH_RESPONSES",
    "CallerDep",
    "GatewayState",
    "StateDep",
    "authenticate",
    "current_caller",
    "gateway_state",
    "library_call",
]


@dataclass(slots=True)
class GatewayState:
    """Everything the routes share, built once per app by :func:`create_app`."""

    config: AstrocyteConfig
    brain: Astrocyte
    owns_brain: bool
    authenticator: Authenticator
    registry: SourceRegistry
    ingest: WebhookIngest
    supervisor: IngestSupervisor


# Dependencies are ``async def`` even when they never await: FastAPI runs a plain
# ``def`` dependency in its thread pool, a hop that cost more than the rest of the
# dependency solving per request (and competes with the embedder's threads).


async def gateway_state(request: Request) -> GatewayState:
    """The app's :class:`GatewayState`."""
    state: GatewayState = request.app.state.gateway
    return state


StateDep = Annotated[GatewayState, Depends(gateway_state)]


async def authenticate(request: Request, state: GatewayState) -> Caller:
    """Authenticate ``request`` with the app's authenticator and record the principal
    in the request scope (for the access log and the span)."""
    # Straight from the raw ASGI headers: no Headers object, names lower-cased, and
    # the last of repeated headers wins, as in a dict built from ``request.headers``.
    headers = {
        key.decode("latin-1").lower(): value.decode("latin-1")
        for key, value in request.scope["headers"]
    }
    caller = await state.authenticator.authenticate(headers)
    request.scope.setdefault("state", {})["principal"] = caller.principal
    return caller


async def current_caller(request: Request, state: StateDep) -> Caller:
    """Authenticate the request (every ``/v1`` route but the webhooks depends on it).

    The principal is recorded in the request scope for the access log and the span.
    """
    return await authenticate(request, state)


CallerDep = Annotated[Caller, Depends(current_caller)]


async def require_admin(caller: CallerDep) -> Caller:
    """The caller, if listed in ``gateway.admin_principals``; else 403."""
    if not caller.is_admin:
        raise ApiError(403, "forbidden", "this route is for gateway administrators only")
    return caller


AdminDep = Annotated[Caller, Depends(require_admin)]

#: Error responses every authenticated route documents.
AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "Missing or invalid credentials"},
    403: {"model": ErrorResponse, "description": "Authenticated but not allowed"},
    413: {"model": ErrorResponse, "description": "Request body over the limit"},
    422: {"model": ErrorResponse, "description": "Invalid request"},
    429: {"model": ErrorResponse, "description": "Rate limited (see Retry-After)"},
    503: {"model": ErrorResponse, "description": "A store is unavailable"},
}


def library_call(
    state: GatewayState,
    operation: str,
    caller: Caller | None = None,
    *,
    attributes: Mapping[str, Any] | None = None,
) -> AbstractAsyncContextManager[object]:
    """Run a library call under ``gateway.request_timeout_seconds`` inside a span
    ``astrocyte.<operation>`` (the library has no per-stage hooks to trace deeper)."""
    timeout = state.config.gateway.request_timeout_seconds
    if not tracing.active():
        # Nothing records spans: only the timeout, without building the attributes.
        return _timed_call(timeout)
    return _traced_call(timeout, operation, caller, attributes)


@asynccontextmanager
async def _timed_call(seconds: float) -> AsyncIterator[None]:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(seconds):
            yield
    finally:
        timing.record_library(time.perf_counter() - started)


@asynccontextmanager
async def _traced_call(
    seconds: float,
    operation: str,
    caller: Caller | None,
    attributes: Mapping[str, Any] | None,
) -> AsyncIterator[None]:
    attrs: dict[str, Any] = {"astrocyte.operation": operation, **(attributes or {})}
    if caller is not None:
        attrs["enduser.id"] = caller.principal
        attrs["astrocyte.tenant"] = caller.context.tenant
    with tracing.span(f"astrocyte.{operation}", attrs):
        async with _timed_call(seconds):
            yield
