"""The broker restarts under a running consumer (``scripts/services/kafka.sh restart``,
data kept): health reports the outage, and messages produced afterwards are ingested."""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from pathlib import Path

import pytest
from astrocyte import Astrocyte
from astrocyte.ingest import IngestSupervisor
from conftest import REPO_ROOT, bank_records, eventually, make_config, produce, source_options

SERVICES = REPO_ROOT / "scripts" / "services" / "kafka.sh"


async def _restart_broker() -> None:
    proc = await asyncio.create_subprocess_exec(
        "bash",
        str(SERVICES),
        "restart",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 300)
    assert proc.returncode == 0, out.decode()[-3000:]


async def test_consumer_survives_a_broker_restart(
    bootstrap: str, topic: str, tmp_path: Path
) -> None:
    if not SERVICES.exists() or not bootstrap.endswith(
        ":" + os.environ.get("ASTROCYTE_KAFKA_PORT", "59092")
    ):
        pytest.skip("the broker is not the one scripts/services/kafka.sh manages")
    options = source_options(bootstrap, topic)
    config = make_config(
        tmp_path,
        {
            "events": {
                "type": "stream",
                "driver": "kafka",
                "target_bank_template": "events",
                "options": options,
            }
        },
    )
    before = [f"event {i} before the restart" for i in range(5)]
    after = [f"event {i} after the restart" for i in range(5)]
    await produce(bootstrap, topic, [{"content": c} for c in before])
    async with Astrocyte(config) as brain:
        supervisor = IngestSupervisor.from_config(brain, min_backoff=0.2, max_backoff=2.0)
        async with supervisor:
            source = supervisor.sources["events"]
            await eventually(lambda: source.stats.processed >= 5, what="first messages")
            assert (await source.health_check()).ok

            restart = asyncio.create_task(_restart_broker())
            unhealthy: list[str] = []
            while not restart.done():
                status = await source.health_check()
                if not status.ok:
                    unhealthy.append(status.detail)
                await asyncio.sleep(0.2)
            await restart
            assert unhealthy, "the health check never noticed the broker was down"

            await produce(bootstrap, topic, [{"content": c} for c in after])
            await eventually(
                lambda: source.stats.processed >= 10, within=120, what="messages after restart"
            )

            async def healthy() -> bool:
                return (await source.health_check()).ok

            await eventually(healthy, within=60, what="healthy again")
            texts = Counter(r.text for r in await bank_records(brain, "events"))
    assert texts == Counter(before + after)
