"""A consumer process killed (SIGKILL) between retaining a batch and committing its
offsets: a fresh process redelivers that batch, and every message is stored exactly
once in the embedded SQLite store."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections import Counter
from pathlib import Path

from astrocyte import Astrocyte, load_config
from conftest import bank_records, committed_offsets, produce, source_options

# The consumer process: the real supervisor + entry point on an embedded SQLite file.
# With HANG_AFTER=n, the n-th successful ingest announces the batch it just retained
# and then never returns, so the offsets are not committed until the test kills it
# (a test-only wrapper around StreamIngestor.ingest, not a failpoint in the package).
SCRIPT = """
import asyncio, json, sys

from astrocyte import Astrocyte, load_config
from astrocyte.ingest import IngestSupervisor, StreamIngestor

config_path, hang_after, expected = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
real_ingest = StreamIngestor.ingest
ingests = 0


async def ingest(self, records):
    global ingests
    outcome = await real_ingest(self, records)
    ingests += 1
    if ingests == hang_after:
        print(json.dumps({"retained": [r.key for r in records],
                          "processed": self.stats.processed}), flush=True)
        await asyncio.sleep(3600)  # retained, never acknowledged: SIGKILL comes here
    return outcome


StreamIngestor.ingest = ingest


async def main():
    with open(config_path) as f:
        config = load_config(json.load(f))
    async with Astrocyte(load_config(config)) as brain:
        async with IngestSupervisor.from_config(brain, min_backoff=0.1) as supervisor:
            source = supervisor.sources["sensors"]
            while sum(b.memory_count for b in await brain.list_banks()) < expected:
                await asyncio.sleep(0.1)
        # Leaving the block stopped the supervisor: the batch in hand was committed.
        print(json.dumps({"stats": source.stats.to_json(),
                          "driver": source.driver.stats.to_json()}), flush=True)


asyncio.run(main())
"""

N = 60


async def _spawn(script: Path, config: Path, hang_after: int) -> asyncio.subprocess.Process:
    # stderr to a file: a pipe nobody reads could fill up and block the consumer.
    with (script.parent / f"consumer-{hang_after}.log").open("wb") as log:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            str(script),
            str(config),
            str(hang_after),
            str(N),
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )


async def _json_line(
    proc: asyncio.subprocess.Process, log: Path, within: float
) -> dict[str, object]:
    """The next line the consumer prints (JSON), or its log if it died first."""
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), within)
    if not line:
        await proc.wait()
        logged = await asyncio.to_thread(log.read_text)
        raise AssertionError(f"consumer exited ({proc.returncode}): {logged[-3000:]}")
    return json.loads(line)  # type: ignore[no-any-return]


async def test_sigkill_between_retain_and_commit_stores_each_message_once(
    bootstrap: str, topic: str, tmp_path: Path
) -> None:
    db = tmp_path / "store.db"
    options = source_options(bootstrap, topic, batch_size=10)
    config = {
        "storage": {"backend": "embedded", "path": str(db)},
        "embedder": {"provider": "hashing"},
        "sources": {
            "sensors": {
                "type": "stream",
                "driver": "kafka",
                "target_bank_template": "sensors",
                "options": options,
            }
        },
    }
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config))
    script = tmp_path / "consumer.py"
    script.write_text(SCRIPT)
    contents = [f"sensor {i} reads {20 + i / 10:.1f} degrees" for i in range(N)]
    await produce(bootstrap, topic, [{"content": c} for c in contents])

    # 1. The first consumer retains three batches; the third is never committed.
    first = await _spawn(script, config_path, hang_after=3)
    try:
        announced = await _json_line(first, tmp_path / "consumer-3.log", within=60)
        first.send_signal(signal.SIGKILL)
        assert await asyncio.wait_for(first.wait(), 30) == -signal.SIGKILL
    finally:
        if first.returncode is None:
            first.kill()
            await first.wait()
    in_flight = announced["retained"]
    assert isinstance(in_flight, list) and 1 <= len(in_flight) <= 10
    committed = await committed_offsets(bootstrap, options["group_id"])
    committed_total = sum(off for tp, off in committed.items() if tp.topic == topic)
    async with Astrocyte(load_config(config)) as brain:
        stored_before = len(await bank_records(brain, "sensors"))
    # The killed batch is in the store but its offsets are not committed.
    assert stored_before == announced["processed"]
    assert committed_total == stored_before - len(in_flight)

    # 2. A fresh consumer resumes from the committed offsets and finishes.
    second = await _spawn(script, config_path, hang_after=0)
    try:
        report = await _json_line(second, tmp_path / "consumer-0.log", within=90)
        assert await asyncio.wait_for(second.wait(), 30) == 0
    finally:
        if second.returncode is None:
            second.kill()
            await second.wait()
    stats = report["stats"]
    assert isinstance(stats, dict)
    # Exactly the killed batch came back, as no-ops.
    assert stats["duplicates"] == len(in_flight)
    assert stats["stored"] == N - stored_before
    assert stats["failed_batches"] == 0 and stats["dead_lettered"] == 0

    # 3. A fresh Astrocyte on the file: every message exactly once, none missing.
    async with Astrocyte(load_config(config)) as brain:
        records = await bank_records(brain, "sensors")
    assert Counter(r.text for r in records) == Counter(contents)
    keys = [r.metadata["idempotency_key"] for r in records]
    assert len(set(keys)) == N
    assert set(in_flight) <= {str(k).removeprefix("sensors:") for k in keys}
    committed = await committed_offsets(bootstrap, options["group_id"])
    assert sum(off for tp, off in committed.items() if tp.topic == topic) == N
