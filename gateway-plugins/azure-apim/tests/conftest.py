"""Fixtures of the Azure API Management fragment tests.

The C# toolchain (Debian's ``mono-mcs``, ``mono-runtime`` and ``libnewtonsoft-json-cil-dev``)
is needed to compile and run the policy expressions: without it those tests skip, unless
``ASTROCYTE_REQUIRE_SERVICES=1`` (as in CI), where they fail instead.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from apim_emulator import (
    ApimEmulator,
    ExpressionRunner,
    Operation,
    compile_expressions,
    find_toolchain,
    load_all,
)
from apim_policy import all_policy_files, load_policy

API_KEY = "apim-test-key-0123456789"
PRINCIPAL = "user:alice"


def _missing(reason: str) -> None:
    if os.environ.get("ASTROCYTE_REQUIRE_SERVICES") == "1":
        pytest.fail(f"ASTROCYTE_REQUIRE_SERVICES=1 but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def toolchain() -> tuple[str, str, Path]:
    found = find_toolchain()
    if found is None:
        _missing(
            "Mono is not installed "
            "(apt-get install -y mono-mcs mono-runtime libnewtonsoft-json-cil-dev)"
        )
    assert found is not None
    return found


@pytest.fixture(scope="session")
def compiled(toolchain: tuple[str, str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """runner.exe with every expression of every shipped policy file compiled in."""
    policies = [load_policy(p) for p in all_policy_files()]
    exe, _ = compile_expressions(policies, tmp_path_factory.mktemp("apim-csharp"))
    return exe


@pytest.fixture(scope="session")
def runner(compiled: Path) -> Iterator[ExpressionRunner]:
    proc = ExpressionRunner(compiled)
    yield proc
    proc.close()


@pytest.fixture(scope="session")
def astrocyte() -> Iterator[str]:
    """The real Astrocyte gateway (in-memory store, hashing embedder) on loopback."""
    import uvicorn
    from astrocyte_gateway.app import create_app

    config = {
        "storage": {"backend": "memory"},
        "embedder": {"provider": "hashing"},
        "deployment": {"mode": "standalone"},
        "gateway": {
            "auth": {"mode": "api_key", "api_keys": [{"key": API_KEY, "principal": PRINCIPAL}]}
        },
    }
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(config), log_level="warning", access_log=False, lifespan="on")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the Astrocyte gateway did not start")
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(30)


@pytest.fixture
def bank() -> str:
    """A fresh bank per test, so memories of one test never show up in another."""
    return f"apim-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def upstream() -> Iterator[Any]:
    """The fake OpenAI-compatible LLM (records requests); reply set per test."""
    from astrocyte.testing.openai_server import OpenAICompatibleServer

    with OpenAICompatibleServer(chat_reply="Noted.") as server:
        yield server


CHAT_OPERATIONS = [
    Operation(id="chat-completions", method="POST", url_template="/chat/completions"),
    Operation(id="list-models", method="GET", url_template="/models"),
    Operation(id="embeddings", method="POST", url_template="/embeddings"),
]


@pytest.fixture
def make_emulator(runner: ExpressionRunner) -> Iterator[Callable[..., ApimEmulator]]:
    """``make_emulator(service_url=, astrocyte_url=, bank=, policy_text=None, api_key=)``."""
    started: list[ApimEmulator] = []

    def make(
        *,
        service_url: str,
        astrocyte_url: str,
        bank: str,
        policy_text: str | None = None,
        api_key: str = API_KEY,
    ) -> ApimEmulator:
        policy, fragments = load_all(policy_text)
        emulator = ApimEmulator(
            runner=runner,
            policy=policy,
            fragments=fragments,
            named_values={
                "astrocyte-url": astrocyte_url,
                "astrocyte-api-key": api_key,
                "astrocyte-bank": bank,
            },
            service_url=service_url,
            api_path="llm",
            operations=CHAT_OPERATIONS,
        ).start()
        started.append(emulator)
        return emulator

    yield make
    for emulator in started:
        emulator.stop()
