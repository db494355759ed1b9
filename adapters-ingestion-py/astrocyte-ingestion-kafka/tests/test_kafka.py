"""The driver against a real Kafka broker, run the way users run it: through
``IngestSupervisor.from_config`` (entry point ``kafka``) or, where a test needs
control, directly."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from aiokafka import TopicPartition
from astrocyte import Astrocyte
from astrocyte.config.ingest_schema import SourceConfig
from astrocyte.ingest import IngestSupervisor, StreamIngestor, StreamSettings
from conftest import (
    bank_count,
    bank_records,
    committed_offsets,
    eventually,
    make_config,
    produce,
    read_all,
    source_options,
)

from astrocyte_ingestion_kafka import KafkaDriver


def _stream(options: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "stream", "driver": "kafka", "options": options, **extra}


def _supervisor(brain: Astrocyte) -> IngestSupervisor:
    return IngestSupervisor.from_config(brain, min_backoff=0.1, max_backoff=1.0)


async def test_end_to_end_messages_become_recallable_memories(
    bootstrap: str, topic: str, tmp_path: Path
) -> None:
    options = source_options(bootstrap, topic, batch_size=8)
    config = make_config(tmp_path, {"orders": _stream(options, target_bank_template="orders")})
    events = [
        {"content": f"Order {1000 + i} for customer {i} shipped by courier", "tags": ["ship"]}
        for i in range(24)
    ]
    events.append({"content": "The warehouse in Rotterdam flooded on Tuesday"})
    events.append(
        {
            "turns": [
                {"speaker": "alice", "text": "Did the zeppelin parts arrive?"},
                {"speaker": "bob", "text": "Yes, the zeppelin parts came this morning."},
            ]
        }
    )
    sent = await produce(bootstrap, topic, events)
    async with Astrocyte(config) as brain, _supervisor(brain) as supervisor:
        source = supervisor.sources["orders"]
        await eventually(lambda: source.stats.processed >= len(events), what="all processed")
        # The batch in hand is committed right after ingest returns.
        await eventually(lambda: source.driver.stats.records_committed >= len(events))
        status = await source.health_check()
        assert status.ok, status.detail
        assert "3 partition(s) assigned" in status.detail and "lag 0" in status.detail

        stats = source.stats
        assert (stats.processed, stats.stored, stats.duplicates, stats.dead_lettered) == (
            len(events),
            len(events),
            0,
            0,
        )
        assert stats.failed_batches == 0 and supervisor.health()["orders"]["restarts"] == 0

        records = await bank_records(brain, "orders")
        assert len(records) == len(events)
        keys = {r.metadata["idempotency_key"] for r in records}
        assert keys == {f"orders:{topic}/{p}/{o}" for p, o in sent}
        assert all(r.metadata["ingest_source"] == "orders" for r in records)
        assert all(r.occurred_at is not None for r in records)  # the Kafka timestamp

        hits = (await brain.recall("warehouse Rotterdam flooded", "orders")).hits
        assert hits and hits[0].text == "The warehouse in Rotterdam flooded on Tuesday"
        hits = (await brain.recall("zeppelin parts", "orders")).hits
        assert any("zeppelin" in h.text and "alice" in h.text for h in hits)
        group = options["group_id"]
    assert not (await source.health_check()).ok  # stopped
    committed = await committed_offsets(bootstrap, group)
    ends: Counter[int] = Counter(p for p, _ in sent)
    assert {tp.partition: off for tp, off in committed.items() if tp.topic == topic} == dict(ends)


async def test_text_format_and_payload_bank(bootstrap: str, topic: str, tmp_path: Path) -> None:
    options = source_options(bootstrap, topic, format="text")
    config = make_config(tmp_path, {"logs": _stream(options, target_bank_template="logs")})
    lines = [f"line {i}: disk {i} of the storage array is degraded" for i in range(6)]
    await produce(bootstrap, topic, lines)
    async with Astrocyte(config) as brain, _supervisor(brain) as supervisor:
        stats = supervisor.sources["logs"].stats
        await eventually(lambda: stats.processed >= len(lines))
        texts = sorted(r.text for r in await bank_records(brain, "logs"))
    assert texts == sorted(lines) and stats.dead_lettered == 0


async def test_poison_messages_are_dead_lettered_and_the_consumer_moves_on(
    bootstrap: str, topic: str, tmp_path: Path
) -> None:
    options = source_options(bootstrap, topic)
    config = make_config(
        tmp_path,
        {"crm": _stream(options)},  # no template: each payload names its bank
        policy={"pii": {"detectors": {"email": "reject"}}},
    )
    values: list[Any] = [
        {"content": "first good note about the kiwi harvest", "bank_id": "crm"},
        b"{not json",
        {"content": "a note that names no bank"},
        {"content": "mail me at jane.doe@example.com", "bank_id": "crm"},
        {"content": "bad bank", "bank_id": "no spaces allowed"},
        {"content": "second good note about the mango harvest", "bank_id": "crm"},
    ]
    # One partition, so "later" is well defined: the good message after the poison.
    sent = await produce(bootstrap, topic, values, partition=0)
    async with Astrocyte(config) as brain, _supervisor(brain) as supervisor:
        source = supervisor.sources["crm"]
        await eventually(lambda: source.stats.processed >= len(values))
        await eventually(lambda: source.driver.stats.records_committed >= len(values))
        texts = sorted(r.text for r in await bank_records(brain, "crm"))
        stats = source.stats
        assert (stats.processed, stats.stored, stats.dead_lettered, stats.failed_batches) == (
            6,
            2,
            4,
            0,
        )
        assert source.driver.stats.dead_letters_published == 4
    assert texts == [
        "first good note about the kiwi harvest",
        "second good note about the mango harvest",
    ]

    letters = await read_all(bootstrap, f"{topic}.dlq", 4)
    assert len(letters) == 4
    by_offset = {}
    for letter in letters:
        doc = json.loads(letter.value)
        headers = dict(letter.headers)
        assert headers["astrocyte.error"].decode() == doc["error"]
        assert headers["astrocyte.source"] == b"crm"
        assert headers["astrocyte.origin"].decode() == doc["key"]
        assert doc["message"] and headers["astrocyte.error_message"]
        _, partition, offset = doc["key"].rsplit("/", 2)
        assert int(partition) == 0
        # The original key and headers travel with the letter.
        assert letter.key == f"k{offset}".encode() and headers["n"] == offset.encode()
        assert doc["headers"] == {"n": offset}
        by_offset[int(offset)] = doc
    assert sorted(by_offset) == [o for _, o in sent[1:5]]
    assert by_offset[1]["error"] == "malformed_payload" and by_offset[1]["value"] == "{not json"
    assert by_offset[2]["error"] == "malformed_payload" and "bank" in by_offset[2]["message"]
    assert by_offset[3]["error"] == "pii_rejected" and "email" in by_offset[3]["message"]
    assert "jane.doe" not in by_offset[3]["message"]  # the error never echoes the PII
    assert by_offset[4]["error"] == "malformed_payload"
    committed = await committed_offsets(bootstrap, options["group_id"])
    assert committed[TopicPartition(topic, 0)] == len(values)


async def test_store_failure_is_not_committed_and_is_redelivered(
    bootstrap: str, topic: str, tmp_path: Path
) -> None:
    """The store fails after retaining part of a batch: the batch is not committed,
    the supervisor restarts the driver, the redelivered records are no-ops."""
    options = source_options(bootstrap, topic, batch_size=5)
    config = make_config(tmp_path, {"notes": _stream(options, target_bank_template="notes")})
    events = [{"content": f"note {i} about topic {i * 7}"} for i in range(15)]
    await produce(bootstrap, topic, events)
    async with Astrocyte(config) as brain:
        real = brain.retain_many
        calls = 0

        async def flaky(*args: Any, **kwargs: Any) -> Any:
            # Test double of a store that dies right after a write went through.
            nonlocal calls
            calls += 1
            result = await real(*args, **kwargs)
            if calls == 1:
                raise ConnectionError("store connection lost after the write")
            return result

        brain.retain_many = flaky  # type: ignore[method-assign]
        async with _supervisor(brain) as supervisor:
            source = supervisor.sources["notes"]
            await eventually(lambda: source.driver.stats.records_committed >= len(events))
            stats = source.stats
            assert stats.failed_batches == 1 and "store connection lost" in str(stats.last_error)
            # The failed batch was stored but not counted (ingest raised); it came back
            # after the restart as duplicates.
            assert stats.stored + stats.duplicates == len(events) == stats.processed
            assert 1 <= stats.duplicates <= 5
            assert source.driver.stats.rewinds == 1
            assert supervisor.health()["notes"]["restarts"] >= 1
            records = await bank_records(brain, "notes")
    assert sorted(r.text for r in records) == sorted(e["content"] for e in events)


async def test_replay_by_another_group_stores_nothing_twice(
    bootstrap: str, topic: str, tmp_path: Path
) -> None:
    """A second consumer group (e.g. after an offset reset) replays the topic: every
    record is a duplicate, the bank is unchanged."""
    events = [{"content": f"reading {i}: pressure {990 + i} hPa"} for i in range(12)]
    await produce(bootstrap, topic, events)
    first = source_options(bootstrap, topic)
    second = {**first, "group_id": first["group_id"] + "-replay"}
    async with Astrocyte(make_config(tmp_path, {}, backend="embedded")) as brain:
        for opts, stored, duplicates in ((first, 12, 0), (second, 0, 12)):
            driver, ingestor = _direct(brain, "meteo", opts)
            stop = asyncio.Event()
            task = asyncio.create_task(driver.run(ingestor, stop))
            await eventually(lambda i=ingestor: i.stats.processed >= len(events))  # type: ignore[misc]
            stop.set()
            await asyncio.wait_for(task, 30)
            await driver.close()
            assert (ingestor.stats.stored, ingestor.stats.duplicates) == (stored, duplicates)
            assert await bank_count(brain, "meteo") == len(events)


def _direct(brain: Astrocyte, name: str, options: dict[str, Any]) -> tuple[KafkaDriver, Any]:
    """A driver and its ingestor built by hand (as the supervisor would), retaining
    into the bank named like the source."""
    source = SourceConfig(type="stream", driver="kafka", options=options, target_bank_template=name)
    settings = StreamSettings.from_config(brain, name, source)
    return KafkaDriver(name, source), StreamIngestor(brain, settings)


async def test_rebalance_between_two_consumers(bootstrap: str, topic: str, tmp_path: Path) -> None:
    """Two drivers of one source share the partitions; when one stops, the other takes
    over its partitions and every record is stored exactly once."""
    opts = source_options(bootstrap, topic, batch_size=10)
    async with Astrocyte(make_config(tmp_path, {})) as brain:
        a, ia = _direct(brain, "feed", opts)
        b, ib = _direct(brain, "feed", opts)
        stop_a, stop_b = asyncio.Event(), asyncio.Event()
        task_a = asyncio.create_task(a.run(ia, stop_a))
        await eventually(lambda: len(a.metrics()["assignment"]) == 3, what="a owns all")
        task_b = asyncio.create_task(b.run(ib, stop_b))
        await eventually(
            lambda: (
                len(a.metrics()["assignment"]) + len(b.metrics()["assignment"]) == 3
                and bool(b.metrics()["assignment"])
                and bool(a.metrics()["assignment"])
            ),
            what="partitions split between a and b",
        )
        first = [{"content": f"feed item {i}"} for i in range(30)]
        await produce(bootstrap, topic, first)
        await eventually(lambda: ia.stats.processed + ib.stats.processed >= 30)
        assert ia.stats.stored > 0 and ib.stats.stored > 0

        stop_a.set()
        await asyncio.wait_for(task_a, 30)
        await a.close()  # leaves the group: b is assigned everything
        await eventually(lambda: len(b.metrics()["assignment"]) == 3, what="b owns all")
        more = [{"content": f"feed item {i}"} for i in range(30, 45)]
        await produce(bootstrap, topic, more)
        await eventually(lambda: ib.stats.stored + ia.stats.stored >= 45)
        stop_b.set()
        await asyncio.wait_for(task_b, 30)
        await b.close()
        texts = Counter(r.text for r in await bank_records(brain, "feed"))
    assert texts == Counter(e["content"] for e in first + more)  # each exactly once
    assert b.stats.rebalances >= 1
    committed = await committed_offsets(bootstrap, opts["group_id"])
    assert sum(off for tp, off in committed.items() if tp.topic == topic) == 45
    assert not (await b.health_check()).ok


@pytest.mark.parametrize("batch_size", [1, 50])
async def test_batch_size_bounds_each_ingest(
    bootstrap: str, topic: str, tmp_path: Path, batch_size: int
) -> None:
    opts = source_options(bootstrap, topic, batch_size=batch_size)
    await produce(bootstrap, topic, [{"content": f"tick {i}"} for i in range(20)])
    async with Astrocyte(make_config(tmp_path, {})) as brain:
        driver, ingestor = _direct(brain, "ticks", opts)
        sizes: list[int] = []
        real = ingestor.ingest

        async def spy(records: Any) -> Any:
            sizes.append(len(records))
            return await real(records)

        ingestor.ingest = spy  # type: ignore[method-assign]
        stop = asyncio.Event()
        task = asyncio.create_task(driver.run(ingestor, stop))
        await eventually(lambda: ingestor.stats.processed >= 20)
        stop.set()
        await asyncio.wait_for(task, 30)
        await driver.close()
    assert sum(sizes) == 20 and max(sizes) <= batch_size
