"""Options, record mapping and wiring that need no broker."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiokafka import ConsumerRecord, TopicPartition
from astrocyte import Astrocyte
from astrocyte.config.ingest_schema import SourceConfig
from astrocyte.errors import ConfigError
from astrocyte.ingest import DeadLetter, IngestSupervisor, StreamRecord
from conftest import make_config
from hypothesis import given, settings
from hypothesis import strategies as st

from astrocyte_ingestion_kafka import KafkaDriver, parse_options, to_stream_record
from astrocyte_ingestion_kafka.driver import _MAX_DEAD_LETTER_BYTES, _dead_letter_value

BASE: dict[str, Any] = {"bootstrap_servers": "127.0.0.1:1", "topics": ["orders"]}


def test_defaults() -> None:
    opts = parse_options("crm", BASE)
    assert opts.bootstrap_servers == ("127.0.0.1:1",)
    assert opts.topics == ("orders",)
    assert opts.group_id == "astrocyte-crm" and opts.client_id == "astrocyte-crm"
    assert opts.dead_letter_topic_for("orders") == "orders.dlq"
    assert (opts.batch_size, opts.poll_timeout_ms, opts.auto_offset_reset) == (
        500,
        500,
        "earliest",
    )
    assert opts.client_kwargs()["security_protocol"] == "PLAINTEXT"
    assert "sasl_mechanism" not in opts.client_kwargs()


def test_topic_servers_list_and_overrides() -> None:
    opts = parse_options(
        "crm",
        {
            "bootstrap_servers": "a:9092, b:9092",
            "topics": "one, two",
            "group_id": "my-group",
            "dead_letter_topic": "all-dead",
            "batch_size": "7",  # e.g. from ${KAFKA_BATCH_SIZE}
            "auto_offset_reset": "latest",
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_plain_username": "u",
            "sasl_plain_password": "p",
            "format": "text",  # read by the core, accepted here
        },
    )
    assert opts.bootstrap_servers == ("a:9092", "b:9092") and opts.topics == ("one", "two")
    assert opts.group_id == "my-group" and opts.dead_letter_topic_for("one") == "all-dead"
    assert opts.batch_size == 7 and opts.auto_offset_reset == "latest"
    kwargs = opts.client_kwargs()
    assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512" and kwargs["sasl_plain_password"] == "p"


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"topics": ["t"]}, "bootstrap_servers"),
        ({"bootstrap_servers": [], "topics": ["t"]}, "bootstrap_servers"),
        ({"bootstrap_servers": "h:1"}, "topics"),
        ({**BASE, "topic": "x"}, "topics"),
        ({"bootstrap_servers": "h:1", "topics": []}, "topics"),
        ({"bootstrap_servers": "h:1", "topics": ["a", "a"]}, "topics"),
        ({"bootstrap_servers": "h:1", "topics": ["ok", "bad topic"]}, "topics[1]"),
        ({"bootstrap_servers": "h:1", "topic": "a/b"}, "topic"),
        ({**BASE, "batch_size": 0}, "batch_size"),
        ({**BASE, "batch_size": True}, "batch_size"),
        ({**BASE, "batch_size": "ten"}, "batch_size"),
        ({**BASE, "batch_size": "-3"}, "batch_size"),
        ({**BASE, "poll_timeout_ms": 0}, "poll_timeout_ms"),
        ({**BASE, "auto_offset_reset": "none"}, "auto_offset_reset"),
        ({**BASE, "group_id": ""}, "group_id"),
        ({**BASE, "dead_letter_topic": "orders"}, "dead_letter_topic"),
        ({"bootstrap_servers": "h:1", "topics": ["a", "a.dlq"]}, "dead_letter_topic"),
        ({**BASE, "security_protocol": "TLS"}, "security_protocol"),
        ({**BASE, "security_protocol": "SASL_SSL"}, "sasl_plain_username"),
        (
            {**BASE, "security_protocol": "SASL_SSL", "sasl_plain_username": "u"},
            "sasl_plain_password",
        ),
        (
            {
                **BASE,
                "security_protocol": "SASL_PLAINTEXT",
                "sasl_mechanism": "GSSAPI",
                "sasl_plain_username": "u",
                "sasl_plain_password": "p",
            },
            "sasl_mechanism",
        ),
        ({**BASE, "sasl_plain_username": "u"}, "sasl_mechanism"),
        ({**BASE, "ssl_cafile": "/ca.pem"}, "ssl_cafile"),
        ({**BASE, "bootstrap": "h:1"}, "bootstrap"),
    ],
)
def test_bad_options_name_their_key(options: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_options("crm", options)
    assert info.value.key == f"sources.crm.options.{key}"


_LEGAL = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-",
    min_size=1,
    max_size=60,
)


@given(name=_LEGAL)
def test_legal_topic_names_are_accepted(name: str) -> None:
    if name in (".", ".."):
        with pytest.raises(ConfigError):
            parse_options("s", {"bootstrap_servers": "h:1", "topic": name})
        return
    opts = parse_options("s", {"bootstrap_servers": "h:1", "topic": name})
    assert opts.topics == (name,) and opts.dead_letter_topic_for(name) == f"{name}.dlq"


@given(name=st.text(min_size=1, max_size=30).filter(lambda s: re.search(r"[^A-Za-z0-9._-]", s)))
def test_illegal_topic_names_are_rejected(name: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_options("s", {"bootstrap_servers": "h:1", "topic": name})
    assert info.value.key == "sources.s.options.topic"


_HEADERS = st.lists(
    st.tuples(st.text(max_size=10), st.one_of(st.none(), st.binary(max_size=20))), max_size=5
)


@given(
    topic=_LEGAL,
    partition=st.integers(0, 1000),
    offset=st.integers(0, 2**62),
    value=st.one_of(st.none(), st.binary(max_size=200)),
    headers=_HEADERS,
    timestamp=st.one_of(st.just(-1), st.integers(0, 4_102_444_800_000)),
)
def test_record_mapping(
    topic: str,
    partition: int,
    offset: int,
    value: bytes | None,
    headers: list[tuple[str, bytes | None]],
    timestamp: int,
) -> None:
    record = ConsumerRecord(
        topic=topic,
        partition=partition,
        offset=offset,
        timestamp=timestamp,
        timestamp_type=0,
        key=None,
        value=value,
        checksum=None,
        serialized_key_size=-1,
        serialized_value_size=-1,
        headers=tuple(headers),
    )
    mapped = to_stream_record(record)
    assert mapped.key == f"{topic}/{partition}/{offset}"
    assert mapped.value == (value or b"")
    assert mapped.position == (TopicPartition(topic, partition), offset)
    expected_headers = {
        k: (v or b"").decode("utf-8", errors="replace") for k, v in dict(headers).items()
    }
    assert dict(mapped.headers) == expected_headers
    if timestamp < 0:
        assert mapped.timestamp is None
    else:
        assert mapped.timestamp == datetime.fromtimestamp(timestamp / 1000, tz=UTC)


def test_oversized_dead_letter_is_cut_but_stays_json() -> None:
    big = StreamRecord("t/0/1", b"x" * (2 * _MAX_DEAD_LETTER_BYTES))
    body = _dead_letter_value(DeadLetter(big, "malformed_payload", "not JSON"))
    doc = json.loads(body)
    assert len(body) <= _MAX_DEAD_LETTER_BYTES
    assert doc["value_truncated"] is True and doc["value_bytes"] == len(big.value)
    assert doc["error"] == "malformed_payload" and doc["key"] == "t/0/1"
    small = StreamRecord("t/0/2", b"{bad")
    assert json.loads(_dead_letter_value(DeadLetter(small, "e", "m")))["value"] == "{bad"


async def test_constructor_does_no_io_and_health_says_not_consuming() -> None:
    # Port 1 refuses connections: a constructor doing I/O would fail or hang here.
    driver = KafkaDriver("s", SourceConfig(type="stream", driver="kafka", options=BASE))
    status = await driver.health_check()
    assert not status.ok and "not consuming" in status.detail
    assert driver.lag() is None and driver.metrics()["running"] is False
    await driver.close()  # idempotent without a run


async def test_supervisor_finds_the_driver_by_entry_point(tmp_path: Path) -> None:
    config = make_config(
        tmp_path,
        {
            "orders": {
                "type": "stream",
                "driver": "kafka",
                "target_bank_template": "orders",
                "options": BASE,
            }
        },
    )
    async with Astrocyte(config) as brain:
        supervisor = IngestSupervisor.from_config(brain)
        driver = supervisor.sources["orders"].driver
        assert isinstance(driver, KafkaDriver)
        assert driver.options.group_id == "astrocyte-orders"


async def test_bad_options_fail_in_from_config(tmp_path: Path) -> None:
    config = make_config(
        tmp_path,
        {"orders": {"type": "stream", "driver": "kafka", "options": {"topics": ["t"]}}},
    )
    async with Astrocyte(config) as brain:
        with pytest.raises(ConfigError) as info:
            IngestSupervisor.from_config(brain)
    assert info.value.key == "sources.orders.options.bootstrap_servers"


@settings(max_examples=30)
@given(st.dictionaries(st.text(min_size=1, max_size=12), st.integers(), max_size=3))
def test_unknown_option_keys_are_rejected(extra: dict[str, int]) -> None:
    known = set(parse_options.__globals__["_KNOWN"]) | {"format"}
    unknown = sorted(k for k in extra if k not in known)
    options = {**BASE, **{k: v for k, v in extra.items() if k not in known}}
    if not unknown:
        assert parse_options("s", options).topics == ("orders",)
        return
    with pytest.raises(ConfigError) as info:
        parse_options("s", options)
    assert info.value.key == f"sources.s.options.{unknown[0]}"
