"""The way an operator runs it: ``astrocyte-gateway --config astrocyte.yaml`` with a Kafka
source consumes as soon as it starts, the memories are recallable over HTTP, the source's
counters show in ``/v1/admin/sources``, and SIGTERM stops it cleanly.

Needs the gateway package (``astrocyte-gateway``, installed by ``scripts/test.sh``) and
the test broker.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import httpx
import pytest
import yaml
from conftest import eventually, produce, source_options

pytest.importorskip("astrocyte_gateway", reason="needs the astrocyte-gateway package")

KEY = "kafka-gateway-test-key-0123456789"
ADMIN = "kafka-gateway-admin-key-0123456789"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_gateway_consumes_a_kafka_source(tmp_path: Path, bootstrap: str, topic: str) -> None:
    port = _free_port()
    config = {
        "storage": {"path": str(tmp_path / "gw.db")},
        "embedder": {"provider": "hashing"},
        "deployment": {"mode": "standalone"},
        "gateway": {
            "auth": {
                "mode": "api_key",
                "api_keys": [
                    {"key": KEY, "principal": "user:ops"},
                    {"key": ADMIN, "principal": "service:admin"},
                ],
            },
            "admin_principals": ["service:admin"],
        },
        "sources": {
            "orders": {
                "type": "stream",
                "driver": "kafka",
                "target_bank_template": "orders",
                "options": source_options(bootstrap, topic),
            }
        },
    }
    path = tmp_path / "astrocyte.yaml"
    path.write_text(yaml.safe_dump(config))
    await produce(
        bootstrap,
        topic,
        [{"content": f"Order {n} shipped to Lisbon on day {n}."} for n in range(12)],
    )
    gateway = await asyncio.create_subprocess_exec(
        os.path.join(os.path.dirname(sys.executable), "astrocyte-gateway"),
        "--config",
        str(path),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:

            async def stored() -> bool:
                try:
                    r = await client.get("/v1/admin/sources", headers={"X-Api-Key": ADMIN})
                except httpx.TransportError:
                    return False  # not listening yet
                return r.status_code == 200 and (
                    r.json()["sources"]["orders"]["counters"]["stored"] == 12
                )

            await eventually(stored, within=60, what="12 messages stored by the gateway")
            r = await client.post(
                "/v1/recall",
                json={"query": "order shipped to Lisbon", "bank_id": "orders", "max_results": 20},
                headers={"X-Api-Key": KEY},
            )
            assert r.status_code == 200, r.text
            hits = r.json()["hits"]
            assert len(hits) == 12
            keys = {h["provenance"]["metadata"]["idempotency_key"] for h in hits}
            assert all(k.startswith(f"orders:{topic}/") for k in keys) and len(keys) == 12
            health = (await client.get("/health/ingest")).json()
            assert health["sources"]["orders"]["ok"]
    finally:
        gateway.send_signal(signal.SIGTERM)
        try:
            _, err = await asyncio.wait_for(gateway.communicate(), 45)
        except TimeoutError:
            gateway.kill()
            raise
    # A graceful stop (uvicorn re-raises the SIGTERM it handled once shutdown is done).
    log = err.decode(errors="replace")
    assert gateway.returncode in (0, -signal.SIGTERM), log[-2000:]
    assert "Application shutdown complete" in log and "Traceback" not in log, log[-2000:]
