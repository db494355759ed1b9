"""astrocyte-mcp: Astrocyte's memory as Model Context Protocol tools.

* :func:`create_server` - an ``mcp`` low-level server over an :class:`~astrocyte.Astrocyte`
  (tools ``memory_retain``, ``memory_recall``, ``memory_reflect``, ``memory_banks`` and,
  when allowed, ``memory_forget``);
* :func:`create_http_app` - that server on streamable HTTP, every request authenticated
  by the gateway's authenticators;
* ``astrocyte-mcp`` (:func:`astrocyte_mcp.cli.main`) - the command serving either.
"""

from astrocyte_mcp._version import __version__
from astrocyte_mcp.http import create_http_app, request_identity
from astrocyte_mcp.server import create_server, fixed_identity
from astrocyte_mcp.tools import FORGET_TOOL, TOOL_NAMES

__all__ = [
    "FORGET_TOOL",
    "TOOL_NAMES",
    "__version__",
    "create_http_app",
    "create_server",
    "fixed_identity",
    "request_identity",
]
