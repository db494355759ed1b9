"""Stream/poll ingest in the core: StreamIngestor (exactly-once retain of batches, dead
letters, back-pressure) and IngestSupervisor (drivers by entry point or import path,
restart with back-off, health).

The transport here is ``QueueDriver``, an in-process test driver reading batches from
an asyncio queue: the supervisor's job is transport-independent. Real brokers (Kafka,
Redis Streams) and the GitHub poller are tested in their packages under
``adapters-ingestion-py/``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from astrocyte import Astrocyte, ConfigError, load_config
from astrocyte.config.ingest_schema import SourceConfig
from astrocyte.embedders import HashingEmbedder
from astrocyte.ingest import (
    DeadLetter,
    IngestSupervisor,
    IngestUnavailable,
    StreamIngestor,
    StreamRecord,
    dead_letter_json,
)
from astrocyte.spi import HealthStatus
from astrocyte.testing.openai_server import OpenAICompatibleServer

CRASH = "crash"


class QueueDriver:
    """In-process test driver: batches come from ``queue``; ``CRASH`` raises."""

    instances: list[QueueDriver] = []  # noqa: RUF012 - test registry of built drivers

    def __init__(self, source_id: str, source: SourceConfig) -> None:
        self.source_id = source_id
        self.options = source.options
        self.queue: asyncio.Queue[list[StreamRecord] | str] = asyncio.Queue()
        self.acked: list[str] = []
        self.dead: list[DeadLetter] = []
        self.closed = 0
        QueueDriver.instances.append(self)

    async def run(self, ingestor: StreamIngestor, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                batch = await asyncio.wait_for(self.queue.get(), 0.05)
            except TimeoutError:
                continue
            if batch == CRASH:
                raise RuntimeError("transport dropped")
            assert isinstance(batch, list)
            outcome = await ingestor.ingest(batch)
            self.dead.extend(outcome.dead)
            # Acked only after ingest returned, like a real driver's commit.
            self.acked.extend(r.key for r in batch)

    async def health_check(self) -> HealthStatus:
        return HealthStatus(True, f"{len(self.acked)} acked")

    async def close(self) -> None:
        self.closed += 1


def _record(key: str, payload: Any, **extra: Any) -> StreamRecord:
    value = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return StreamRecord(key=key, value=value, **extra)


def _config(**source: Any) -> Any:
    return load_config(
        {
            "storage": {"backend": "memory"},
            "sources": {
                "events": {
                    "type": "stream",
                    "driver": "queue",
                    "target_bank_template": "team-{payload.team}",
                    **source,
                }
            },
            "policy": {"pii": {"action": "reject"}},
        }
    )


@pytest.fixture
async def brain() -> AsyncIterator[Astrocyte]:
    async with Astrocyte(_config(), embedder=HashingEmbedder()) as b:
        yield b


async def _count(brain: Astrocyte, bank: str) -> int:
    return sum(b.memory_count for b in await brain.list_banks() if b.bank_id == bank)


async def test_batch_is_retained_once_and_poison_is_dead_lettered(brain: Astrocyte) -> None:
    ingestor = StreamIngestor.from_config(brain, "events")
    batch = [
        _record("p0/1", {"content": "Deploy window moved to Thursday.", "team": "ops"}),
        _record("p0/2", b"{not json"),
        _record("p0/3", {"content": "Mail me at jo@example.com", "team": "ops"}),  # PII
        _record("p0/4", {"content": "no team field"}),  # no bank
        _record("p0/5", {"content": "Standup is at 9:30.", "team": "ops", "tags": ["meta"]}),
    ]
    outcome = await ingestor.ingest(batch)
    assert (outcome.stored, outcome.duplicates) == (2, 0)
    assert {d.record.key: d.error for d in outcome.dead} == {
        "p0/2": "malformed_payload",
        "p0/3": "pii_rejected",
        "p0/4": "malformed_payload",
    }
    hits = (await brain.recall("deploy window", "team-ops")).hits
    assert hits[0].text == "Deploy window moved to Thursday."
    assert hits[0].provenance.metadata["ingest_source"] == "events"
    assert await _count(brain, "team-ops") == 2

    # Redelivery of the whole batch (a crash before the ack): nothing new is stored.
    again = await ingestor.ingest(batch)
    assert (again.stored, again.duplicates, len(again.dead)) == (0, 2, 3)
    assert await _count(brain, "team-ops") == 2
    assert ingestor.stats.processed == 10 and ingestor.stats.dead_lettered == 6

    letter = json.loads(dead_letter_json(outcome.dead[0]))
    assert letter["key"] == "p0/2" and letter["value"] == "{not json"
    assert letter["error"] == "malformed_payload" and letter["message"]


async def test_transcripts_and_text_format(brain: Astrocyte) -> None:
    ingestor = StreamIngestor.from_config(brain, "events")
    turns = [
        {"speaker": "Ana", "text": f"Point number {i} about the launch plan."} for i in range(40)
    ]
    first = await ingestor.ingest([_record("t/1", {"turns": turns, "team": "launch"})])
    stored = await _count(brain, "team-launch")
    assert first.stored == 1 and stored > 1  # one message, several chunks
    replay = await ingestor.ingest([_record("t/1", {"turns": turns, "team": "launch"})])
    assert replay.duplicates == 1 and await _count(brain, "team-launch") == stored

    async with Astrocyte(
        _config(options={"format": "text"}, target_bank_template="raw"),
        embedder=HashingEmbedder(),
    ) as text_brain:
        when = datetime(2026, 5, 1, 12, tzinfo=UTC)
        raw = StreamIngestor.from_config(text_brain, "events")
        outcome = await raw.ingest([StreamRecord("r/1", b"plain text message", timestamp=when)])
        assert outcome.stored == 1
        hit = (await text_brain.recall("plain text", "raw")).hits[0]
        assert hit.text == "plain text message" and hit.provenance.occurred_at == when
        bad = await raw.ingest([StreamRecord("r/2", b"\xff\xfe")])
        assert [d.error for d in bad.dead] == ["malformed_payload"]


async def test_store_or_embedder_failure_is_not_acked() -> None:
    async with OpenAICompatibleServer(embed_dim=8) as server:
        config = load_config(
            {
                "storage": {"backend": "memory"},
                "embedder": {"provider": "openai", "base_url": server.base_url,
                             "model": "e", "api_key": "k", "max_retries": 0, "timeout": 5},
                "sources": {"events": {"type": "stream", "driver": "queue",
                                       "target_bank_template": "b"}},
            }
        )  # fmt: skip
        async with Astrocyte(config) as b:
            ingestor = StreamIngestor.from_config(b, "events")
            server.fail_next(1, 500)
            with pytest.raises(IngestUnavailable):
                await ingestor.ingest([_record("k1", {"content": "hello"})])
            assert ingestor.stats.failed_batches == 1 and ingestor.stats.last_error
            # The retry (redelivery) succeeds and stores the message once.
            outcome = await ingestor.ingest([_record("k1", {"content": "hello"})])
            assert outcome.stored == 1 and await _count(b, "b") == 1


async def test_rate_limit_pushes_back_instead_of_dead_lettering() -> None:
    config = load_config(
        {
            "storage": {"backend": "memory"},
            "policy": {"rate_limits": {"retain": {"per_principal": {"rate": 0.01, "burst": 1}}}},
            "sources": {"events": {"type": "stream", "driver": "queue",
                                   "target_bank_template": "b"}},
        }
    )  # fmt: skip
    async with Astrocyte(config, embedder=HashingEmbedder()) as b:
        ingestor = StreamIngestor.from_config(b, "events")
        await ingestor.ingest([_record("k1", {"content": "one"})])
        with pytest.raises(IngestUnavailable) as info:
            await ingestor.ingest([_record("k2", {"content": "two"})])
        assert info.value.retry_after is not None and info.value.retry_after > 0
        assert ingestor.stats.dead_lettered == 0


# --- supervision -------------------------------------------------------------------------


async def _until(predicate: Any) -> None:
    """Wait (at most 5 s) until ``predicate()`` holds."""
    async with asyncio.timeout(5):
        while not predicate():  # noqa: ASYNC110 - the condition is another task's state
            await asyncio.sleep(0.01)


async def test_supervisor_runs_restarts_and_stops_drivers(brain: Astrocyte) -> None:
    QueueDriver.instances.clear()
    supervisor = IngestSupervisor.from_config(
        brain, drivers={"queue": QueueDriver}, min_backoff=0.05, max_backoff=0.2
    )
    async with supervisor:
        driver = QueueDriver.instances[-1]
        await driver.queue.put([_record("a/1", {"content": "first note", "team": "x"})])
        await _until(lambda: driver.acked == ["a/1"])
        await driver.queue.put(CRASH)
        await driver.queue.put([_record("a/2", {"content": "second note", "team": "x"})])
        # Restarted after the back-off; the next batch is consumed.
        await _until(lambda: driver.acked == ["a/1", "a/2"])
        health = supervisor.health()["events"]
        assert health["restarts"] == 1 and health["total_failures"] == 1
        assert "transport dropped" in health["last_error"]
        assert health["counters"]["stored"] == 2 and health["state"] in {"healthy", "degraded"}
        assert (await supervisor.registry.check_health())["events"].ok
    assert driver.closed >= 2  # after the crash and at shutdown
    assert supervisor.registry.state("events") == "stopped"
    assert await _count(brain, "team-x") == 2


async def test_drivers_load_by_import_path_and_unknown_ones_fail_early(brain: Astrocyte) -> None:
    QueueDriver.instances.clear()
    config = _config(driver=f"{__name__}:QueueDriver")
    async with Astrocyte(config, embedder=HashingEmbedder()) as b:
        supervisor = IngestSupervisor.from_config(b)
        assert set(supervisor.sources) == {"events"} and len(QueueDriver.instances) == 1
    async with Astrocyte(_config(driver="no-such-driver"), embedder=HashingEmbedder()) as b:
        with pytest.raises(ConfigError) as info:
            IngestSupervisor.from_config(b)
        assert info.value.key == "sources.events.driver"
        assert "astrocyte-ingestion-no-such-driver" in str(info.value)


async def test_stop_lets_the_batch_in_hand_finish(brain: Astrocyte) -> None:
    QueueDriver.instances.clear()
    supervisor = IngestSupervisor.from_config(brain, drivers={"queue": QueueDriver})
    await supervisor.start()
    driver = QueueDriver.instances[-1]
    many = [_record(f"s/{i}", {"content": f"note {i}", "team": "y"}) for i in range(200)]
    await driver.queue.put(many)
    await _until(lambda: not driver.queue.qsize())
    await supervisor.stop()
    # Either the batch was taken and finished (all acked) or never taken: never half.
    assert driver.acked in ([], [r.key for r in many])
    assert await _count(brain, "team-y") in (0, 200)
