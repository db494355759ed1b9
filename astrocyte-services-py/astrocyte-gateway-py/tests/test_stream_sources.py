"""Stream/poll sources run inside the gateway: started by its lifespan, visible in
/health/ingest and /v1/admin/sources with counters, stopped on shutdown.

The driver here is an in-process test driver (``TickerDriver``, loaded by import path
like any ``module:Class`` driver) so the gateway's suite needs no broker; the real
Kafka driver is run through a real gateway in ``astrocyte-ingestion-kafka``'s tests.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest
from astrocyte import ConfigError
from astrocyte.ingest import StreamIngestor, StreamRecord
from astrocyte.spi import HealthStatus
from helpers import ADMIN_KEY, api_key_config, h

from astrocyte_gateway.app import create_app

STARTED: list[str] = []
STOPPED: list[str] = []


class TickerDriver:
    """Emits ``options.count`` messages in one batch, then idles until stopped."""

    def __init__(self, source_id: str, source: Any) -> None:
        self.source_id = source_id
        self.count = int(source.options.get("count", 3))

    async def run(self, ingestor: StreamIngestor, stop: asyncio.Event) -> None:
        STARTED.append(self.source_id)
        batch = [
            StreamRecord(f"tick/{i}", json.dumps({"content": f"tick number {i}"}).encode())
            for i in range(self.count)
        ]
        await ingestor.ingest(batch)
        await stop.wait()
        STOPPED.append(self.source_id)

    async def health_check(self) -> HealthStatus:
        return HealthStatus(True, "ticking")

    async def close(self) -> None:
        return None


def _config() -> dict[str, Any]:
    return api_key_config(
        sources={
            "ticker": {
                "type": "stream",
                "driver": f"{__name__}:TickerDriver",
                "target_bank_template": "ticks",
                "principal": "user:alice",
                "options": {"count": 4},
            }
        }
    )


async def test_gateway_runs_stream_sources(gateway_server):
    STARTED.clear()
    STOPPED.clear()
    url = gateway_server(_config())
    async with httpx.AsyncClient(base_url=url) as client:
        deadline = time.monotonic() + 10
        while True:
            r = await client.get("/v1/admin/sources", headers=h(ADMIN_KEY))
            assert r.status_code == 200, r.text
            source = r.json()["sources"]["ticker"]
            if source["counters"]["stored"] == 4 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        assert source["source_type"] == "stream" and source["ok"] and source["restarts"] == 0
        assert source["counters"]["processed"] == 4 and source["counters"]["dead_lettered"] == 0
        health = (await client.get("/health/ingest")).json()
        assert health["ok"] and health["sources"]["ticker"]["ok"]
        r = await client.post(
            "/v1/recall", json={"query": "tick number", "bank_id": "ticks"}, headers=h()
        )
        assert len(r.json()["hits"]) == 4
    assert STARTED == ["ticker"]
    url.stop()
    assert STOPPED == ["ticker"]  # shutdown asked the driver to stop


def test_unknown_driver_fails_at_startup() -> None:
    config = _config()
    config["sources"]["ticker"]["driver"] = "no-such-driver"
    with pytest.raises(ConfigError, match="no ingest driver named 'no-such-driver'"):
        create_app(config)
