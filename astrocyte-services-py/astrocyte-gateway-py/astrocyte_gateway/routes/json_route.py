"""A route class with a short path for the common request of the memory routes.

FastAPI's generic request handler costs more per request than everything else the
gateway does around a recall: it parses the content type with :mod:`email`, decodes
the body with :func:`json.loads`, validates the resulting dict, then solves the
dependency tree (state, caller, and the caller's own state). :class:`JsonBodyRoute`
answers the common case itself: a ``Content-Type: application/json`` body that the
route's request model accepts is validated straight from the bytes by pydantic's Rust
core, the caller is authenticated, and the endpoint is called with the same three
arguments the dependencies would have given it.

Every other request goes through FastAPI's own handler, untouched, so its answers
stay exactly FastAPI's: a body the model rejects (the 422 details, the 400 for
malformed JSON, the order of the auth and body checks), another content type,
dependency overrides (tests), and FastAPI's native telemetry when the deployment has
configured it (it records the request's body and values and its own spans).

The route and the OpenAPI document are FastAPI's as usual: only the handler differs.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, get_type_hints

import pydantic
from fastapi import routing as fastapi_routing
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from astrocyte_gateway.routes.deps import (
    GatewayState,
    authenticate,
    current_caller,
    gateway_state,
)

__all__ = ["JsonBodyRoute"]

try:  # FastAPI >= 0.13x: request-scoped data for its native OpenTelemetry support.
    from fastapi.telemetry import get_telemetry_data as _telemetry_data
except ImportError:  # pragma: no cover - older FastAPI has no native telemetry
    _telemetry_data = None  # type: ignore[assignment]

_Handler = Callable[[Request], Coroutine[Any, Any, Response]]
_Endpoint = Callable[[Any, GatewayState, Any], Awaitable[Response]]

# The only endpoint shape the short path knows how to call.
_PARAMETERS = ("body", "state", "caller")
_DEPENDENCIES = (("state", gateway_state), ("caller", current_caller))


def _plain_json(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether the first Content-Type header is exactly ``application/json`` (the one
    FastAPI reads; any parameter or other JSON type takes FastAPI's path)."""
    for key, value in headers:
        if key.lower() == b"content-type":
            return value.lower() == b"application/json"
    return False


class JsonBodyRoute(APIRoute):
    """An :class:`~fastapi.routing.APIRoute` whose common requests skip FastAPI's
    generic body parsing and dependency solving (see the module docstring).

    The short path is used only for an ``async def`` endpoint taking exactly
    ``(body: <pydantic model>, state: StateDep, caller: CallerDep)`` and returning a
    :class:`~starlette.responses.Response`, with no other dependency on the route,
    its router or its inclusion; any other route gets FastAPI's handler alone.
    """

    def get_route_handler(self) -> _Handler:
        """FastAPI's handler, behind the short path when this route's shape allows."""
        generic = super().get_route_handler()
        model = self._short_path_model()
        if model is None:
            return generic
        endpoint: _Endpoint = self.endpoint

        async def handler(request: Request) -> Response:
            if (
                not _plain_json(request.scope["headers"])
                or (_telemetry_data is not None and _telemetry_data() is not None)
                or getattr(request.app, "dependency_overrides", None)
            ):
                return await generic(request)
            try:
                raw = await request.body()
            except HTTPException:
                raise  # the body limit's 413, as FastAPI's handler lets it through
            except Exception:
                # FastAPI answers an unreadable body itself (400).
                return await generic(request)
            try:
                body = model.model_validate_json(raw)
            except pydantic.ValidationError:
                # FastAPI builds the error from the (cached) body exactly as always.
                return await generic(request)
            state: GatewayState = request.app.state.gateway
            caller = await authenticate(request, state)
            return await endpoint(body, state, caller)

        return handler

    def _short_path_model(self) -> type[pydantic.BaseModel] | None:
        """The body model when the endpoint has the one shape the short path calls."""
        endpoint = self.endpoint
        if not inspect.iscoroutinefunction(endpoint):
            return None
        if tuple(inspect.signature(endpoint).parameters) != _PARAMETERS:
            return None
        hints = get_type_hints(endpoint)
        model, returns = hints.get("body"), hints.get("return")
        if not (isinstance(model, type) and issubclass(model, pydantic.BaseModel)):
            return None
        if not (isinstance(returns, type) and issubclass(returns, Response)):
            return None
        dependant = self._effective_dependant()
        if (
            dependant.path_params
            or dependant.query_params
            or dependant.header_params
            or dependant.cookie_params
            or len(dependant.body_params) != 1
        ):
            return None
        solved = tuple((d.name, d.call) for d in dependant.dependencies)
        return model if solved == _DEPENDENCIES else None

    def _effective_dependant(self) -> Any:
        """The dependant FastAPI's handler is being built for.

        Recent FastAPI includes a router without copying its routes: the handler is
        built per inclusion, with the inclusion's dependencies merged into a separate
        dependant that a context variable points at while this method runs. Those
        must be seen, or the short path would skip them; older FastAPI copies the
        route on inclusion, so ``self.dependant`` is already complete there.
        """
        current = getattr(fastapi_routing, "_effective_route_context_var", None)
        context = current.get() if current is not None else None
        if context is not None and getattr(context, "original_route", None) is self:
            dependant = getattr(context, "dependant", None)
            if dependant is not None:
                return dependant
        return self.dependant
