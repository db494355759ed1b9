"""A consumer process killed between retain and XACK loses nothing and stores nothing twice.

The consumer runs in a subprocess (the supervisor + this driver, found by its entry
point, storing into an embedded SQLite file). A test-only wrapper around
``StreamIngestor.ingest`` in the script announces when the N-th batch was retained and
then waits; the test SIGKILLs the process right there, before the batch is acked. A
fresh consumer process then finishes the stream, and a fresh ``Astrocyte`` on the
file must hold every message exactly once.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest
from astrocyte import Astrocyte, load_config
from astrocyte.spi import RecordFilter
from conftest import produce, source_config
from redis.asyncio import Redis

SCRIPT = r"""
import asyncio, json, sys

from astrocyte import Astrocyte, load_config
from astrocyte.ingest.supervisor import IngestSupervisor

config = load_config(json.loads(sys.argv[1]))
hang_after = int(sys.argv[2])  # announce and hang after this many ingests (0: never)
expected = int(sys.argv[3])    # stop once this many messages were processed


async def main() -> None:
    async with Astrocyte(config) as brain:
        supervisor = IngestSupervisor.from_config(brain)
        ingestor = supervisor.sources["crashy"].ingestor
        real_ingest = ingestor.ingest
        calls = 0

        async def ingest(records):
            nonlocal calls
            outcome = await real_ingest(records)  # retained (committed) ...
            calls += 1
            if calls == hang_after:
                print("RETAINED", len(records), flush=True)
                await asyncio.sleep(3600)  # ... and killed here, before the XACK
            return outcome

        ingestor.ingest = ingest
        async with supervisor:
            while ingestor.stats.processed < expected:
                await asyncio.sleep(0.05)
        print("STATS", json.dumps(ingestor.stats.to_json()), flush=True)


asyncio.run(main())
"""


async def _spawn(script: Path, config: dict[str, Any], hang_after: int, expected: int) -> Any:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        json.dumps(config),
        str(hang_after),
        str(expected),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


@pytest.mark.parametrize("restart_as", ["same-consumer", "other-consumer"])
async def test_sigkill_between_retain_and_ack(
    url: str, redis: Redis, stream: str, tmp_path: Path, restart_as: str
) -> None:
    total, batch = 50, 10
    texts = [
        f"Crash-test message {i}: parcel {1000 + i} reached hub {i % 7}." for i in range(total)
    ]
    ids = await produce(redis, stream, [{"content": t} for t in texts])
    script = tmp_path / "consumer.py"
    script.write_text(SCRIPT)

    def config(consumer: str) -> dict[str, Any]:
        options = {"batch_size": batch, "consumer": consumer, "claim_idle_ms": 500}
        return {
            "storage": {"backend": "embedded", "path": str(tmp_path / "store.db")},
            "embedder": {"provider": "hashing"},
            "sources": {
                "crashy": {
                    **source_config(url, [stream], **options),
                    "target_bank_template": "parcels",
                }
            },
        }

    # First consumer: killed with SIGKILL after its 2nd batch was retained, not acked.
    first = await _spawn(script, config("worker-1"), hang_after=2, expected=total)
    assert first.stdout is not None
    line = await asyncio.wait_for(first.stdout.readline(), 60)
    if not line.startswith(b"RETAINED"):
        _, err = await first.communicate()
        pytest.fail(f"consumer did not reach the crash point: {line!r} {err.decode()[-2000:]}")
    assert line.split() == [b"RETAINED", str(batch).encode()]
    os.kill(first.pid, signal.SIGKILL)
    assert await first.wait() == -signal.SIGKILL

    pending = await redis.xpending(stream, "astrocyte-crashy")
    assert pending["pending"] == batch  # the killed batch is un-acked ...
    assert pending["consumers"] == [{"name": b"worker-1", "pending": batch}]
    async with Astrocyte(load_config(config("worker-1"))) as brain:  # ... but retained
        assert len(await brain.stores.documents.find("parcels", RecordFilter())) == 2 * batch

    # A fresh process: the same consumer re-reads its own pending entries at once; a
    # new one claims them once they are idle for claim_idle_ms.
    consumer = "worker-1" if restart_as == "same-consumer" else "worker-2"
    second = await _spawn(script, config(consumer), hang_after=0, expected=total - batch)
    out, err = await asyncio.wait_for(second.communicate(), 90)
    assert second.returncode == 0, err.decode()[-3000:]
    stats = json.loads(out.decode().split("STATS", 1)[1])
    assert stats["duplicates"] == batch  # the killed batch, redelivered: no-ops
    assert stats["stored"] == total - 2 * batch
    assert stats["dead_lettered"] == 0 and stats["failed_batches"] == 0

    assert (await redis.xpending(stream, "astrocyte-crashy"))["pending"] == 0
    async with Astrocyte(load_config(config("check"))) as brain:
        docs = brain.stores.documents
        records = await docs.get("parcels", await docs.find("parcels", RecordFilter()))
    assert len(records) == total
    assert sorted(r.text for r in records) == sorted(texts)  # each exactly once
    keys = [r.metadata["idempotency_key"] for r in records]
    assert sorted(keys) == sorted(f"crashy:{stream}/{i}" for i in ids)
