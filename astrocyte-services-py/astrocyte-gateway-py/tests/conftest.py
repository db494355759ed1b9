"""Shared fixtures: a real uvicorn server on a free loopback port.

``gateway_server(config)`` starts ``create_app(config)`` (``brain=`` optional) under
uvicorn in a background thread with its own event loop, so it serves sync and async
tests alike, and returns the base URL (a ``str``; the returned
:class:`RunningGateway` also carries ``.server``, ``.app`` and ``.stop()``). Every
server is stopped at the end of the test.
"""

from __future__ import annotations

import copy
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
import uvicorn
from jwt_helpers import LocalIdP, start_idp

from astrocyte_gateway.app import create_app

#: Fast settings for tests: in-process stores, the hashing embedder.
FAST: dict[str, Any] = {"storage": {"backend": "memory"}, "embedder": {"provider": "hashing"}}


def fast_config(**sections: Any) -> dict[str, Any]:
    """``FAST`` plus the given top-level sections."""
    return {**copy.deepcopy(FAST), **sections}


class RunningGateway(str):
    """The base URL of a running gateway, with handles to control it."""

    server: uvicorn.Server
    thread: threading.Thread
    app: Any

    def stop(self, timeout: float = 30.0) -> None:
        """Ask uvicorn to shut down gracefully (as on SIGTERM) and wait for it."""
        self.server.should_exit = True
        self.thread.join(timeout)


def start_gateway(config: Any = None, *, brain: Any = None, app: Any = None) -> RunningGateway:
    """Start a gateway on a free port of 127.0.0.1 and wait until it serves."""
    application = app if app is not None else create_app(config, brain=brain)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(application, log_level="warning", access_log=False, lifespan="on")
    )
    # uvicorn installs signal handlers only in the main thread; nothing to disable.
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("gateway failed to start")
        if time.monotonic() > deadline:
            raise TimeoutError("gateway did not start within 30 s")
        time.sleep(0.01)
    url = RunningGateway(f"http://127.0.0.1:{port}")
    url.server, url.thread, url.app = server, thread, application
    return url


@pytest.fixture
def gateway_server() -> Iterator[Callable[..., RunningGateway]]:
    """Factory: ``gateway_server(config_dict, brain=None) -> base URL``."""
    started: list[RunningGateway] = []

    def start(config: Mapping[str, Any] | Any = None, *, brain: Any = None) -> RunningGateway:
        running = start_gateway(config, brain=brain)
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


@pytest.fixture(scope="module")
def idp_server() -> Iterator[LocalIdP]:
    """A local OpenID provider (real uvicorn on loopback) shared by a test module."""
    idp = start_idp()
    yield idp
    assert idp.server is not None
    idp.server.stop()


@pytest.fixture
def idp(idp_server: LocalIdP) -> LocalIdP:
    """The module's provider, reset to its initial keys and counters for each test."""
    idp_server.reset()
    return idp_server
