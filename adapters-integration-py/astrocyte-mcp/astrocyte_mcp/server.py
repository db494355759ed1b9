"""The MCP server: a low-level ``mcp`` :class:`~mcp.server.lowlevel.Server` whose tools
call an :class:`~astrocyte.Astrocyte`.

Who the caller is comes from an :data:`IdentityResolver`: a fixed context for stdio
(:func:`fixed_identity`, from the command line) or the authenticated caller of each HTTP
request (:func:`astrocyte_mcp.http.request_identity`). Access control is the library's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import mcp.types as types
from astrocyte import Astrocyte
from astrocyte.identity.context import AstrocyteContext
from mcp.server import Server, ServerRequestContext
from mcp.shared.exceptions import MCPError

from astrocyte_mcp._version import __version__
from astrocyte_mcp.tools import call_tool, tool_specs

__all__ = ["SERVER_NAME", "IdentityResolver", "create_server", "fixed_identity"]

SERVER_NAME = "astrocyte"

#: Turns a request's context into the caller's :class:`AstrocyteContext`; raises
#: :class:`~mcp.shared.exceptions.MCPError` when there is no caller.
IdentityResolver = Callable[[ServerRequestContext[Any, Any]], AstrocyteContext]

INSTRUCTIONS = (
    "Long-term memory in named banks. memory_retain stores text; memory_recall finds "
    "relevant memories (with provenance); memory_reflect answers a question from memory "
    "with citations; memory_banks lists the banks you may read. Omit bank_id to use your "
    "default bank."
)


def fixed_identity(context: AstrocyteContext) -> IdentityResolver:
    """Every request runs as ``context`` (stdio: one process, one caller)."""

    def resolve(_ctx: ServerRequestContext[Any, Any]) -> AstrocyteContext:
        return context

    return resolve


def create_server(
    brain: Astrocyte,
    identity: IdentityResolver,
    *,
    allow_forget: bool = False,
) -> Server[Any]:
    """An MCP server offering the memory tools over ``brain``.

    ``memory_forget`` is offered (listed and callable) only with ``allow_forget``; even
    then the caller needs the ``forget`` permission. ``brain`` stays the caller's to
    close.
    """
    specs = tool_specs(allow_forget=allow_forget)
    listing = types.ListToolsResult(tools=[s.tool for s in specs.values()])

    async def list_tools(
        ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return listing

    async def call(
        ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        spec = specs.get(params.name)
        if spec is None:
            # Not a tool error: the tool does not exist (or is disabled) on this server.
            raise MCPError(
                code=types.INVALID_PARAMS,
                message=f"unknown tool {params.name!r}; available: {', '.join(specs)}",
            )
        return await call_tool(spec, brain, identity(ctx), params.arguments)

    def input_schema(name: str) -> Mapping[str, Any] | None:
        spec = specs.get(name)
        return spec.tool.input_schema if spec is not None else None

    return Server(
        SERVER_NAME,
        version=__version__,
        title="Astrocyte memory",
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call,
        get_tool_input_schema=input_schema,
    )
