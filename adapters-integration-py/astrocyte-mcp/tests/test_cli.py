"""The ``astrocyte-mcp`` command: options, usage errors and the HTTP transport."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from helpers import FAST, bearer, command, free_port, http_client, server_config, write_config

from astrocyte_mcp.cli import ALLOW_FORGET_ENV, build_context, forget_allowed, main


def test_context_from_options() -> None:
    ctx = build_context("agent:helper", "user:bob", "acme")
    assert ctx.principal == "agent:helper"
    assert ctx.on_behalf_of is not None and ctx.on_behalf_of.principal == "user:bob"
    assert ctx.tenant == "acme"
    assert build_context(None, None, None).principal == "local"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--principal", "bad principal!"], "--principal"),
        (["--tenant", "a/b"], "--tenant"),
        (["--on-behalf-of", "bob"], "--on-behalf-of"),
        (["--transport", "http", "--principal", "user:alice"], "stdio"),
    ],
)
def test_usage_errors_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_http_refuses_a_config_without_authentication(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, dict(FAST))  # deployment.mode library, no keys
    assert main(["--transport", "http", "--config", str(config)]) == 2
    assert "deployment.mode" in capsys.readouterr().err


def test_bad_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, {"storage": {"backend": "nope"}})
    assert main(["--config", str(config)]) == 2
    assert "storage" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flag", "env", "expected"),
    [
        (False, {}, False),
        (True, {}, True),
        (False, {ALLOW_FORGET_ENV: "yes"}, True),
        (False, {ALLOW_FORGET_ENV: "0"}, False),
        (True, {ALLOW_FORGET_ENV: "false"}, True),
    ],
)
def test_forget_switch(flag: bool, env: dict[str, str], expected: bool) -> None:
    assert forget_allowed(flag, env) is expected


def test_forget_switch_rejects_an_unclear_value(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(ALLOW_FORGET_ENV, "maybe")
    assert main(["--principal", "user:x"]) == 2
    assert ALLOW_FORGET_ENV in capsys.readouterr().err


@pytest.fixture
def http_process(tmp_path: Path) -> Iterator[str]:
    """``astrocyte-mcp --transport http`` in a subprocess; yields the MCP URL."""
    config = write_config(tmp_path, server_config())
    port = free_port()
    process = subprocess.Popen(
        [command(), "--transport", "http", "--port", str(port), "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                assert process.stderr is not None
                raise RuntimeError(process.stderr.read().decode())
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(30)


async def test_http_command_serves_authenticated_mcp(http_process: str) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(http_process, json={})
    assert response.status_code == 401
    async with http_client(http_process, bearer("alice")) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert "memory_forget" not in names and "memory_recall" in names
        stored = await client.call_tool(
            "memory_retain", {"content": "served over http", "bank_id": "alice-notes"}
        )
        assert not stored.is_error, stored.content
        found = await client.call_tool(
            "memory_recall", {"query": "served", "bank_id": "alice-notes"}
        )
        assert found.structured_content["hits"][0]["text"] == "served over http"
