"""Fixtures: real uvicorn servers of the MCP HTTP app on free loopback ports."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from astrocyte import Astrocyte
from astrocyte.config import load_config
from astrocyte_gateway.auth import build_authenticator
from helpers import RunningServer, server_config, start_app

from astrocyte_mcp.http import create_http_app


@pytest.fixture
def http_server() -> Iterator[Callable[..., RunningServer]]:
    """Factory: ``http_server(allow_forget=, json_response=, **config_sections)`` -> running server
    of :func:`create_http_app` over :func:`server_config`; stopped after the test."""
    started: list[RunningServer] = []

    def start(
        *, allow_forget: bool = False, json_response: bool = False, **extra: Any
    ) -> RunningServer:
        config = load_config(server_config(**extra))
        app = create_http_app(
            Astrocyte(config),
            build_authenticator(config),
            allow_forget=allow_forget,
            json_response=json_response,
        )
        running = start_app(app)
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()
