"""Shared fixtures: the broker address comes from ``ASTROCYTE_TEST_KAFKA_BOOTSTRAP``.

Start the broker with ``bash scripts/services.sh start kafka`` and
``eval "$(bash scripts/services.sh env kafka)"``. Without the variable the broker tests
skip, unless ``ASTROCYTE_REQUIRE_SERVICES=1`` (as in CI), where they fail instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from astrocyte import Astrocyte, load_config
from astrocyte.spi import MemoryRecord, RecordFilter
from astrocyte.testing import service_env

BOOTSTRAP_VAR = "ASTROCYTE_TEST_KAFKA_BOOTSTRAP"
REPO_ROOT = Path(__file__).resolve().parents[3]


def _bootstrap() -> str:
    return service_env(BOOTSTRAP_VAR, hint="run scripts/services.sh start kafka, then its env")[
        BOOTSTRAP_VAR
    ]


@pytest.fixture
def bootstrap() -> str:
    """host:port of the test broker."""
    return _bootstrap()


@pytest.fixture
async def topic(bootstrap: str) -> AsyncIterator[str]:
    """A fresh topic with 3 partitions, deleted (with its dead-letter topic) after."""
    name = f"t-{uuid.uuid4().hex[:12]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=3, replication_factor=1)])
        yield name
        existing = set(await admin.list_topics())
        doomed = [t for t in (name, f"{name}.dlq") if t in existing]
        if doomed:
            with contextlib.suppress(Exception):  # best effort: the broker may be restarting
                await admin.delete_topics(doomed)
    finally:
        await admin.close()


async def produce(
    bootstrap: str,
    topic: str,
    values: Iterable[bytes | str | Mapping[str, Any]],
    *,
    partition: int | None = None,
) -> list[tuple[int, int]]:
    """Send each value (a mapping is sent as JSON), spread over the partitions
    round-robin unless ``partition`` is given; returns ``(partition, offset)`` each."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        futures = []
        for i, value in enumerate(values):
            if isinstance(value, Mapping):
                body = json.dumps(value).encode()
            elif isinstance(value, str):
                body = value.encode()
            else:
                body = value
            part = partition if partition is not None else i % 3
            futures.append(
                await producer.send(
                    topic, body, key=f"k{i}".encode(), partition=part, headers=[("n", b"%d" % i)]
                )
            )
        metas = await asyncio.gather(*futures)
        return [(m.partition, m.offset) for m in metas]
    finally:
        await producer.stop()


async def read_all(bootstrap: str, topic: str, expected: int, within: float = 30.0) -> list[Any]:
    """The first ``expected`` records of ``topic`` (all partitions, no group)."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    out: list[Any] = []
    try:
        deadline = time.monotonic() + within
        while len(out) < expected and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                out.extend(records)
    finally:
        await consumer.stop()
    return out


async def committed_offsets(bootstrap: str, group: str) -> dict[TopicPartition, int]:
    """The group's committed offsets (next offset to read) per partition."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        found = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {tp: meta.offset for tp, meta in found.items()}


async def eventually(
    check: Callable[[], Awaitable[bool] | bool], within: float = 60.0, what: str = ""
) -> None:
    """Poll ``check`` until it is true; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {within}s waiting for {what or check}")
        await asyncio.sleep(0.1)


def source_options(bootstrap: str, topic: str, **extra: Any) -> dict[str, Any]:
    """Options of a test source on ``topic``: small batches, quick polls and a
    session timeout short enough for fast rebalances."""
    return {
        "bootstrap_servers": bootstrap,
        "topics": [topic],
        "group_id": f"g-{uuid.uuid4().hex[:12]}",
        "poll_timeout_ms": 200,
        "session_timeout_ms": 6000,
        **extra,
    }


def make_config(
    tmp_path: Path,
    sources: Mapping[str, Any],
    *,
    backend: str = "memory",
    **sections: Any,
) -> Any:
    """A config with the hashing embedder, ``backend`` storage under tmp_path and
    ``sources``."""
    return load_config(
        {
            "storage": {"backend": backend, "path": str(tmp_path / "astrocyte.db")},
            "embedder": {"provider": "hashing"},
            "sources": dict(sources),
            **sections,
        }
    )


async def bank_count(brain: Astrocyte, bank: str) -> int:
    """Memories in ``bank`` (0 if it does not exist yet)."""
    return sum(b.memory_count for b in await brain.list_banks() if b.bank_id == bank)


async def bank_records(brain: Astrocyte, bank: str) -> list[MemoryRecord]:
    """Every memory of ``bank``, read straight from the document store."""
    documents = brain.stores.documents
    if not await documents.bank_exists(bank):
        return []
    return await documents.get(bank, await documents.find(bank, RecordFilter()))
