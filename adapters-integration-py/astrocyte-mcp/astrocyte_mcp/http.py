"""Streamable-HTTP transport: the MCP endpoint behind the gateway's authenticators.

Every HTTP request is authenticated on its own with
``astrocyte_gateway.auth.build_authenticator(config)`` (``gateway.auth``: API keys, HS256
or OIDC JWTs), before the MCP layer sees it; a request without valid credentials gets
401 (or the authenticator's 403) and never reaches a tool. The authenticated
:class:`~astrocyte_gateway.auth.Caller` rides in the ASGI scope to the tool call, which
runs under its :class:`~astrocyte.identity.context.AstrocyteContext`. The SDK binds a
stateful MCP session to the credential that opened it, so another caller cannot use it.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import mcp.types as types
from astrocyte import Astrocyte
from astrocyte.identity.context import AstrocyteContext
from astrocyte_gateway.auth import Authenticator, AuthError, Caller
from mcp.server import ServerRequestContext
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.shared.exceptions import MCPError
from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send

from astrocyte_mcp.server import create_server

__all__ = ["CALLER_SCOPE_KEY", "MCP_PATH", "AuthMiddleware", "create_http_app", "request_identity"]

#: Where the authenticated caller is kept in the ASGI scope.
CALLER_SCOPE_KEY = "astrocyte_mcp.caller"

#: The MCP endpoint's path.
MCP_PATH = "/mcp"


def request_identity(ctx: ServerRequestContext[Any, Any]) -> AstrocyteContext:
    """The context of the HTTP request that carried this MCP message."""
    request = ctx.request
    scope = getattr(request, "scope", None)
    caller = scope.get(CALLER_SCOPE_KEY) if isinstance(scope, dict) else None
    if not isinstance(caller, Caller):
        # AuthMiddleware guards every route; reaching here means the app was assembled
        # without it. Refuse rather than run as anyone.
        raise MCPError(code=types.INTERNAL_ERROR, message="request is not authenticated")
    return caller.context


def _session_owner(caller: Caller) -> AuthenticatedUser:
    """The SDK's user object, so that a stateful session accepts only requests of the
    caller (principal, delegation and tenant) that opened it."""
    ctx = caller.context
    subject = json.dumps(
        [
            ctx.principal,
            ctx.on_behalf_of.principal if ctx.on_behalf_of is not None else None,
            ctx.tenant,
        ]
    )
    return AuthenticatedUser(
        AccessToken(token="", client_id=caller.principal, scopes=[], subject=subject)
    )


class AuthMiddleware:
    """ASGI middleware: authenticate each HTTP request or answer 401/403."""

    def __init__(self, app: ASGIApp, authenticator: Authenticator) -> None:
        self.app = app
        self.authenticator = authenticator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in scope["headers"]
        }
        try:
            caller = await self.authenticator.authenticate(headers)
        except AuthError as exc:
            await _auth_error(send, exc)
            return
        scope = {**scope, "user": _session_owner(caller), CALLER_SCOPE_KEY: caller}
        await self.app(scope, receive, send)


async def _auth_error(send: Send, exc: AuthError) -> None:
    body = json.dumps({"error": {"code": exc.code, "message": exc.message}}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if exc.status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="astrocyte-mcp"'))
    await send({"type": "http.response.start", "status": exc.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def create_http_app(
    brain: Astrocyte,
    authenticator: Authenticator,
    *,
    allow_forget: bool = False,
    host: str = "127.0.0.1",
    json_response: bool = False,
    close_on_shutdown: bool = True,
) -> ASGIApp:
    """The ASGI app serving MCP at :data:`MCP_PATH`, every request authenticated.

    ``host`` is the interface the app is served on: on loopback the SDK's DNS-rebinding
    protection (Host / Origin checks) is on. With ``close_on_shutdown`` the brain and
    the authenticator are closed when the app shuts down.
    """
    server = create_server(brain, request_identity, allow_forget=allow_forget)
    inner = server.streamable_http_app(
        streamable_http_path=MCP_PATH, json_response=json_response, host=host
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        try:
            async with server.session_manager.run():
                yield
        finally:
            if close_on_shutdown:
                await authenticator.close()
                await brain.close()

    inner.router.lifespan_context = lifespan
    return AuthMiddleware(inner, authenticator)
