"""Option validation (no I/O) and how stream entries become records."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from astrocyte import load_config
from astrocyte.config.ingest_schema import SourceConfig
from astrocyte.errors import ConfigError
from astrocyte.ingest.stream import BatchOutcome, StreamRecord
from astrocyte.ingest.supervisor import IngestSupervisor, load_driver
from conftest import close_client, redis_url
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from astrocyte_ingestion_redis import RedisStreamsDriver, RedisStreamsOptions, entry_record

URL = "redis://127.0.0.1:6379/0"


def _driver(**options: Any) -> RedisStreamsDriver:
    return RedisStreamsDriver(
        "events",
        SourceConfig.model_validate({"type": "stream", "driver": "redis", "options": options}),
    )


def test_defaults() -> None:
    opts = _driver(url=URL, stream="events").options
    assert opts.streams == ("events",)
    assert opts.group == "astrocyte-events"
    assert opts.consumer == f"{socket.gethostname()}-{os.getpid()}"
    assert opts.dead_letter_stream_of("events") == "events:dlq"
    assert (opts.batch_size, opts.block_ms, opts.claim_idle_ms) == (500, 1000, 60_000)
    assert (opts.start_id, opts.maxlen, opts.field) == ("0", None, "payload")


def test_the_entry_point_names_the_driver() -> None:
    assert load_driver("redis") is RedisStreamsDriver


@pytest.mark.parametrize(
    ("options", "bad_key"),
    [
        ({"stream": "s"}, "url"),
        ({"url": "http://127.0.0.1:6379", "stream": "s"}, "url"),
        ({"url": URL}, "stream"),
        ({"url": URL, "stream": "s", "streams": ["t"]}, "streams"),
        ({"url": URL, "streams": []}, "streams"),
        ({"url": URL, "streams": "s"}, "streams"),
        ({"url": URL, "streams": ["s", "s"]}, "streams"),
        ({"url": URL, "stream": ""}, "stream"),
        ({"url": URL, "stream": "s", "batchsize": 10}, "batchsize"),
        ({"url": URL, "stream": "s", "batch_size": 0}, "batch_size"),
        ({"url": URL, "stream": "s", "batch_size": True}, "batch_size"),
        ({"url": URL, "stream": "s", "batch_size": "500"}, "batch_size"),
        ({"url": URL, "stream": "s", "block_ms": 0}, "block_ms"),
        ({"url": URL, "stream": "s", "block_ms": 5000, "socket_timeout": 5}, "socket_timeout"),
        ({"url": URL, "stream": "s", "claim_idle_ms": -1}, "claim_idle_ms"),
        ({"url": URL, "stream": "s", "start_id": "latest"}, "start_id"),
        ({"url": URL, "stream": "s", "maxlen": 0}, "maxlen"),
        ({"url": URL, "stream": "s", "group": ""}, "group"),
        ({"url": URL, "stream": "s", "dead_letter_stream": "s"}, "dead_letter_stream"),
        ({"url": URL, "stream": "s", "field": 3}, "field"),
    ],
)
def test_bad_options_name_their_key(options: dict[str, Any], bad_key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _driver(**options)
    assert caught.value.key == f"sources.events.options.{bad_key}"


def test_a_bad_option_fails_the_supervisor_before_anything_starts(tmp_path: Any) -> None:
    from astrocyte import Astrocyte

    config = load_config(
        {
            "storage": {"backend": "memory"},
            "embedder": {"provider": "hashing"},
            "sources": {
                "bad": {
                    "type": "stream",
                    "driver": "redis",
                    "options": {"url": URL, "stream": "s", "block_ms": -5},
                }
            },
        }
    )
    brain = Astrocyte(config)
    with pytest.raises(ConfigError, match=r"sources\.bad\.options\.block_ms"):
        IngestSupervisor.from_config(brain)
    asyncio.run(brain.close())


def test_dead_letter_stream_template() -> None:
    opts = RedisStreamsOptions.parse(
        "x", {"url": URL, "streams": ["a", "b"], "dead_letter_stream": "dead:{stream}"}
    )
    assert [opts.dead_letter_stream_of(s) for s in opts.streams] == ["dead:a", "dead:b"]
    shared = RedisStreamsOptions.parse(
        "x", {"url": URL, "stream": "a", "dead_letter_stream": "all-dead"}
    )
    assert shared.dead_letter_stream_of("a") == "all-dead"


_names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12)
_values = st.binary(max_size=64)
_ids = st.tuples(st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1)).map(
    lambda t: f"{t[0]}-{t[1]}"
)


@given(stream=_names, entry_id=_ids, fields=st.dictionaries(_names, _values, min_size=1))
def test_entry_record_properties(stream: str, entry_id: str, fields: dict[str, bytes]) -> None:
    raw = {k.encode(): v for k, v in fields.items()}
    record = entry_record(stream, entry_id, raw, "payload")
    assert record == entry_record(stream, entry_id, dict(raw), "payload")  # stable
    assert record.key == f"{stream}/{entry_id}"
    assert record.position == (stream, entry_id)
    millis = int(entry_id.split("-")[0])
    if millis < 253_402_300_800_000:  # up to year 9999
        assert record.timestamp == datetime.fromtimestamp(millis / 1000, UTC)
    else:  # an explicit id past what a datetime holds: no time, but still a record
        assert record.timestamp is None
    if "payload" in fields:
        assert record.value == fields["payload"]  # byte for byte
        assert set(record.headers) == set(fields) - {"payload"}
    else:
        whole = json.loads(record.value)
        assert set(whole) == set(fields)
        for k, v in fields.items():
            assert whole[k] == v.decode("utf-8", errors="replace")


class _Capture:
    """A stand-in ingestor that records what the driver hands it and stops the run."""

    def __init__(self, stop: asyncio.Event, expected: int) -> None:
        self.stop = stop
        self.expected = expected
        self.records: list[StreamRecord] = []

    async def ingest(self, records: Sequence[StreamRecord]) -> BatchOutcome:
        self.records.extend(records)
        if len(self.records) >= self.expected:
            self.stop.set()
        return BatchOutcome(stored=len(records))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    entries=st.lists(
        st.dictionaries(_names, _values, min_size=1, max_size=4), min_size=1, max_size=6
    ),
    batch_size=st.integers(1, 4),
)
def test_entries_reach_the_ingestor_unchanged_through_a_real_server(
    entries: list[dict[str, bytes]], batch_size: int
) -> None:
    url = redis_url()

    async def scenario() -> None:
        stream = f"astrocyte-test:{uuid.uuid4().hex[:12]}"
        client = Redis.from_url(url)
        try:
            ids = [(await client.xadd(stream, e)).decode() for e in entries]  # type: ignore[arg-type]
            source = {
                "type": "stream",
                "driver": "redis",
                "options": {
                    "url": url,
                    "stream": stream,
                    "batch_size": batch_size,
                    "block_ms": 100,
                },
            }
            driver = RedisStreamsDriver("p", SourceConfig.model_validate(source))
            stop = asyncio.Event()
            capture = _Capture(stop, len(entries))
            try:
                await asyncio.wait_for(driver.run(capture, stop), 20)  # type: ignore[arg-type]
            finally:
                await driver.close()
            assert [r.key for r in capture.records] == [f"{stream}/{i}" for i in ids]
            for record, entry, entry_id in zip(capture.records, entries, ids, strict=True):
                raw = {k.encode(): v for k, v in entry.items()}
                assert record == entry_record(stream, entry_id, raw, "payload")
            assert driver.counters.acked == len(entries)
            assert driver.counters.batches == -(-len(entries) // batch_size)
            assert (await client.xpending(stream, "astrocyte-p"))["pending"] == 0
        finally:
            await client.delete(stream)
            await close_client(client)

    asyncio.run(scenario())
