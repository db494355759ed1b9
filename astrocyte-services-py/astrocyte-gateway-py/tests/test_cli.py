"""The console script starts a real server (subprocess) and refuses library mode."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml
from helpers import ALICE_KEY


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cmd(*args: str) -> list[str]:
    # The installed console script, as an operator runs it.
    script = Path(sys.executable).parent / "astrocyte-gateway"
    assert script.exists(), "pip install -e astrocyte-services-py/astrocyte-gateway-py"
    return [str(script), *args]


def test_cli_serves_and_logs_json(tmp_path: Path):
    config = {
        "storage": {"backend": "memory"},
        "embedder": {"provider": "hashing"},
        "deployment": {"mode": "standalone"},
        "gateway": {
            "auth": {"api_keys": [{"key": "${TEST_GATEWAY_KEY}", "principal": "user:alice"}]}
        },
    }
    path = tmp_path / "astrocyte.yaml"
    path.write_text(yaml.safe_dump(config))
    port = _free_port()
    env = {**os.environ, "TEST_GATEWAY_KEY": ALICE_KEY}
    proc = subprocess.Popen(
        _cmd("--config", str(path), "--port", str(port)),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/health/live").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)
        r = httpx.post(
            f"{url}/v1/retain",
            json={"content": "hello", "bank_id": "b"},
            headers={"X-Api-Key": ALICE_KEY, "X-Request-ID": "cli-1"},
        )
        assert r.status_code == 200, r.text
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    # uvicorn re-raises the signal after a clean shutdown.
    assert proc.returncode in (0, -signal.SIGTERM), stderr
    assert "Application shutdown complete" in stderr
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    entry = next(e for e in lines if e["request_id"] == "cli-1")
    assert entry["status"] == 200 and entry["principal"] == "user:alice"
    assert ALICE_KEY not in stderr


def test_cli_refuses_library_mode(tmp_path: Path):
    path = tmp_path / "astrocyte.yaml"
    path.write_text(
        yaml.safe_dump({"storage": {"backend": "memory"}, "embedder": {"provider": "hashing"}})
    )
    done = subprocess.run(
        _cmd("--config", str(path), "--port", str(_free_port())),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "deployment.mode" in done.stderr


def test_no_auth_in_library_mode_warns_loudly(tmp_path: Path):
    import logging

    from astrocyte_gateway.app import create_app

    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("astrocyte_gateway.auth")
    logger.addHandler(handler)
    try:
        create_app(
            {
                "storage": {"backend": "memory"},
                "embedder": {"provider": "hashing"},
                "gateway": {"auth": {"mode": "none"}},
            }
        )
    finally:
        logger.removeHandler(handler)
    assert any(r.levelno == logging.WARNING and "OFF" in r.getMessage() for r in records)
