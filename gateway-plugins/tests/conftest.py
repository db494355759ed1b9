"""Shared fixtures of the gateway-plugin tests (Kong and APISIX plugins alike).

Everything is real and on loopback: the Astrocyte gateway (``astrocyte_gateway``), a
recording OpenAI-compatible LLM (``astrocyte.testing.openai_server``), a streaming (SSE)
LLM, a memory gateway that never answers, and nginx + lua-nginx-module (``nginx_harness``).

Without nginx / the Lua module the nginx tests are skipped, or fail when
``ASTROCYTE_REQUIRE_SERVICES=1`` (CI), so a missing package cannot pass silently.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from nginx_harness import missing_reason
from upstreams import (
    Astrocyte,
    BlackHole,
    SSEUpstream,
    free_port,
    start_astrocyte,
)

from astrocyte.testing.openai_server import OpenAICompatibleServer

DEFAULT_REPLY = "Noted, I will remember that."


def require_nginx() -> None:
    """Skip (or fail under ASTROCYTE_REQUIRE_SERVICES=1) when nginx + Lua are missing."""
    reason = missing_reason()
    if reason is None:
        return
    if os.environ.get("ASTROCYTE_REQUIRE_SERVICES") == "1":
        pytest.fail(f"ASTROCYTE_REQUIRE_SERVICES=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def nginx_available() -> None:
    require_nginx()


@pytest.fixture(scope="session")
def astrocyte_gateway() -> Iterator[Astrocyte]:
    """The real Astrocyte gateway (memory storage, hashing embedder, one API key)."""
    gw = start_astrocyte()
    yield gw
    gw.stop()


@pytest.fixture(scope="session")
def fake_llm_server() -> Iterator[OpenAICompatibleServer]:
    with OpenAICompatibleServer(chat_reply=DEFAULT_REPLY) as srv:
        yield srv


@pytest.fixture
def fake_llm(fake_llm_server: OpenAICompatibleServer) -> OpenAICompatibleServer:
    """The recording OpenAI-compatible LLM, cleared and with the default reply."""
    fake_llm_server.clear()
    fake_llm_server.chat_reply = DEFAULT_REPLY
    return fake_llm_server


@pytest.fixture(scope="session")
def sse_llm_server() -> Iterator[SSEUpstream]:
    srv = SSEUpstream().start()
    yield srv
    srv.stop()


@pytest.fixture
def sse_llm(sse_llm_server: SSEUpstream) -> SSEUpstream:
    """A streaming LLM (always SSE), cleared, default deltas."""
    sse_llm_server.requests.clear()
    sse_llm_server.deltas = ["Paris ", "is the ", "capital."]
    return sse_llm_server


@pytest.fixture(scope="session")
def slow_astrocyte() -> Iterator[BlackHole]:
    """A 'memory gateway' that accepts connections and never answers."""
    hole = BlackHole()
    yield hole
    hole.stop()


@pytest.fixture
def down_astrocyte_url() -> str:
    """A loopback URL where nothing listens (connection refused)."""
    return f"http://127.0.0.1:{free_port()}"
