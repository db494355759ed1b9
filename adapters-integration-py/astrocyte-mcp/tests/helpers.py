"""Test helpers: configs with API keys and grants, MCP clients over stdio and HTTP.

HTTP servers are real uvicorn servers on a free loopback port (in a thread, or in a
subprocess through the ``astrocyte-mcp`` command); stdio servers are ``astrocyte-mcp``
subprocesses spawned by the SDK's stdio client.
"""

from __future__ import annotations

import copy
import hashlib
import json
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import uvicorn
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from astrocyte_mcp.http import MCP_PATH

FAST: dict[str, Any] = {"storage": {"backend": "memory"}, "embedder": {"provider": "hashing"}}

#: API keys of the test callers (principal, tenant).
KEYS: dict[str, tuple[str, str, str | None]] = {
    "alice": ("alice-key-0123456789abcdef", "user:alice", None),
    "carol": ("carol-key-0123456789abcdef", "user:carol", None),
    "dave": ("dave-key-0123456789abcdef0", "user:dave", "acme"),
    "erin": ("erin-key-0123456789abcdef0", "user:erin", "globex"),
}

#: alice reads/writes/forgets her notes and "shared"; carol may only write "shared";
#: dave and erin (each in their own tenant) may do anything in their tenant.
GRANTS: list[dict[str, Any]] = [
    {
        "principals": ["user:alice"],
        "banks": ["alice-notes", "shared"],
        "permissions": ["read", "write", "forget"],
    },
    {"principals": ["user:carol"], "banks": ["shared"], "permissions": ["write"]},
    {"principals": ["user:dave", "user:erin"], "banks": ["*"], "permissions": ["read", "write"]},
]


def server_config(**extra: Any) -> dict[str, Any]:
    """Memory backend, API-key auth for :data:`KEYS`, :data:`GRANTS`."""
    keys = [
        {
            "key_sha256": hashlib.sha256(key.encode()).hexdigest(),
            "principal": principal,
            **({"tenant": tenant} if tenant else {}),
        }
        for key, principal, tenant in KEYS.values()
    ]
    return {
        **copy.deepcopy(FAST),
        "deployment": {"mode": "standalone"},
        "gateway": {"auth": {"mode": "api_key", "api_keys": keys}},
        "access_grants": copy.deepcopy(GRANTS),
        **extra,
    }


def write_config(directory: Path, config: dict[str, Any]) -> Path:
    """``config`` as astrocyte.yaml (JSON is YAML) in ``directory``."""
    path = directory / "astrocyte.yaml"
    path.write_text(json.dumps(config))
    return path


def command() -> str:
    """The installed ``astrocyte-mcp`` console script of this interpreter."""
    script = Path(sys.executable).parent / "astrocyte-mcp"
    assert script.exists(), "install the package: pip install -e .[test]"
    return str(script)


def stdio_params(*args: str, env: dict[str, str] | None = None) -> StdioServerParameters:
    return StdioServerParameters(command=command(), args=list(args), env=env)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RunningServer:
    """A uvicorn server in a background thread."""

    def __init__(self, server: uvicorn.Server, thread: threading.Thread, port: int) -> None:
        self.server, self.thread, self.port = server, thread, port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{MCP_PATH}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)


def start_app(app: Any) -> RunningServer:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("server failed to start")
        if time.monotonic() > deadline:
            raise TimeoutError("server did not start within 30 s")
        time.sleep(0.01)
    return RunningServer(server, thread, port)


@asynccontextmanager
async def http_client(
    url: str, headers: dict[str, str] | None = None, *, mode: str = "auto"
) -> AsyncIterator[Client]:
    """The SDK's client over streamable HTTP, sending ``headers`` on every request.

    ``mode`` "auto" negotiates the newest protocol (2026-07-28, per-request envelopes);
    "legacy" uses the initialize handshake and a stateful session."""
    async with (
        create_mcp_http_client(headers=headers) as http,
        Client(streamable_http_client(url, http_client=http), mode=mode) as client,
    ):
        yield client


def bearer(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[name][0]}"}
