"""``astrocyte-mcp``: serve Astrocyte's memory tools over MCP.

stdio (default; one process per client, identity from the command line)::

    astrocyte-mcp [--config astrocyte.yaml] [--principal user:alice]
                  [--on-behalf-of user:bob] [--tenant acme] [--allow-forget]

streamable HTTP (identity from each request's credentials, ``gateway.auth``)::

    astrocyte-mcp --transport http --config astrocyte.yaml [--host H] [--port P]

Without ``--config`` the library's opt-in lookup is used (``$ASTROCYTE_CONFIG``, then
``./astrocyte.yaml``), else the zero config. ``memory_forget`` is offered only with
``--allow-forget`` or ``ASTROCYTE_MCP_ALLOW_FORGET=1``. Logs go to stderr (stdout is the
stdio transport's wire).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import anyio
import pydantic
from astrocyte import Astrocyte
from astrocyte.config import AstrocyteConfig, find_config_file, load_config
from astrocyte.errors import AstrocyteError, ConfigError
from astrocyte.identity.context import LOCAL_CONTEXT, AstrocyteContext
from astrocyte.identity.patterns import split_principal

__all__ = ["ALLOW_FORGET_ENV", "DEFAULT_PORT", "build_context", "forget_allowed", "main"]

#: Environment variable that enables ``memory_forget`` like ``--allow-forget``.
ALLOW_FORGET_ENV = "ASTROCYTE_MCP_ALLOW_FORGET"

#: Default port of the HTTP transport (the gateway's default is 8420).
DEFAULT_PORT = 8421

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})

logger = logging.getLogger("astrocyte_mcp")


class UsageError(Exception):
    """A bad command line or environment; printed without a stack trace, exit 2."""


def forget_allowed(flag: bool, env: Mapping[str, str]) -> bool:
    """Whether ``memory_forget`` is enabled: ``--allow-forget`` or a true
    :data:`ALLOW_FORGET_ENV`. An unrecognised value is an error, not a silent no."""
    value = env.get(ALLOW_FORGET_ENV, "").strip().lower()
    if value not in _TRUE | _FALSE:
        raise UsageError(f"{ALLOW_FORGET_ENV}={value!r}: use 1/true/yes or 0/false/no")
    return flag or value in _TRUE


def build_context(
    principal: str | None, on_behalf_of: str | None, tenant: str | None
) -> AstrocyteContext:
    """The stdio caller's context (the library's local caller when nothing is given)."""
    if principal is None and on_behalf_of is None and tenant is None:
        return LOCAL_CONTEXT
    data: dict[str, Any] = {"principal": principal or LOCAL_CONTEXT.principal, "tenant": tenant}
    if on_behalf_of is not None:
        kind, ident = split_principal(on_behalf_of)
        if not kind:
            raise UsageError(f"--on-behalf-of {on_behalf_of!r}: must be 'type:id', e.g. user:bob")
        data["on_behalf_of"] = {"type": kind, "id": ident}
    try:
        return AstrocyteContext.model_validate(data)
    except pydantic.ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"]) or "identity"
        option = {"principal": "--principal", "tenant": "--tenant"}.get(where, "--on-behalf-of")
        raise UsageError(f"{option}: {error['msg']}") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="astrocyte-mcp", description="Serve Astrocyte memory tools over MCP."
    )
    parser.add_argument("--config", help="astrocyte.yaml (default: $ASTROCYTE_CONFIG)")
    parser.add_argument(
        "--transport", choices=["stdio", "http"], default="stdio", help="default: stdio"
    )
    parser.add_argument("--host", default="127.0.0.1", help="http: interface to bind")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="http: port")
    parser.add_argument("--principal", help="stdio: who is calling, e.g. user:alice")
    parser.add_argument("--on-behalf-of", help="stdio: the principal an agent acts for")
    parser.add_argument("--tenant", help="stdio: confine the caller to this tenant's banks")
    parser.add_argument(
        "--allow-forget",
        action="store_true",
        help=f"offer memory_forget (also: {ALLOW_FORGET_ENV}=1)",
    )
    parser.add_argument(
        "--json-response",
        action="store_true",
        help="http: answer with JSON bodies instead of SSE streams",
    )
    parser.add_argument("--log-level", default="warning", help="debug | info | warning")
    return parser


def _load(path: str | None) -> AstrocyteConfig:
    source = path or find_config_file()
    return load_config(source)


async def _serve_stdio(brain: Astrocyte, context: AstrocyteContext, allow_forget: bool) -> None:
    from mcp.server.stdio import stdio_server

    from astrocyte_mcp.server import create_server, fixed_identity

    server = create_server(brain, fixed_identity(context), allow_forget=allow_forget)
    try:
        async with stdio_server() as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())
    finally:
        await brain.close()


def _serve_http(config: AstrocyteConfig, args: argparse.Namespace, allow_forget: bool) -> None:
    import uvicorn
    from astrocyte_gateway.auth import build_authenticator
    from astrocyte_gateway.cli import check_servable

    from astrocyte_mcp.http import create_http_app

    # Same rule as the gateway: a network service needs authentication, and
    # gateway.auth.mode none is accepted only when stated on purpose.
    check_servable(config)
    authenticator = build_authenticator(config)
    brain = Astrocyte(config)
    app = create_http_app(
        brain,
        authenticator,
        allow_forget=allow_forget,
        host=args.host,
        json_response=args.json_response,
    )
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level.lower(),
        lifespan="on",
        proxy_headers=False,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the server until its client disconnects (stdio) or it is stopped (http)."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        allow_forget = forget_allowed(args.allow_forget, os.environ)
        if args.transport == "http":
            if args.principal or args.on_behalf_of or args.tenant:
                raise UsageError(
                    "--principal, --on-behalf-of and --tenant are for stdio; over http the "
                    "caller is taken from each request's credentials (gateway.auth)"
                )
            _serve_http(_load(args.config), args, allow_forget)
            return 0
        context = build_context(args.principal, args.on_behalf_of, args.tenant)
        brain = Astrocyte(_load(args.config))
        anyio.run(_serve_stdio, brain, context, allow_forget)
    except (UsageError, ConfigError) as exc:
        print(f"astrocyte-mcp: {exc}", file=sys.stderr)
        return 2
    except AstrocyteError as exc:
        print(f"astrocyte-mcp: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
