"""The driver against a real Redis, run the way users run it: through the supervisor."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from astrocyte import Astrocyte
from astrocyte.ingest.supervisor import IngestSupervisor
from conftest import bank_count, bank_records, produce, source_config, wait_until
from redis.asyncio import Redis

from astrocyte_ingestion_redis import RedisStreamsDriver


async def test_messages_land_in_the_bank_and_recall_finds_them(
    url: str, redis: Redis, stream: str, brain_factory: Callable[..., Astrocyte]
) -> None:
    cities = ["Lisbon", "Oslo", "Nairobi", "Quito", "Hanoi", "Perth", "Tunis", "Lima"]
    messages = [
        {"content": f"Shipment {i} for the {city} warehouse left the dock.", "tags": ["ops"]}
        for i, city in enumerate(cities)
    ]
    messages.append(
        {
            "turns": [
                {"speaker": "alice", "text": "Did the Reykjavik order arrive?"},
                {"speaker": "bob", "text": "Yes, the Reykjavik order arrived on Tuesday."},
            ]
        }
    )
    source = {**source_config(url, [stream]), "target_bank_template": "shipments"}
    async with brain_factory({"orders": source}) as brain:
        supervisor = IngestSupervisor.from_config(brain)
        driver = supervisor.sources["orders"].driver
        assert isinstance(driver, RedisStreamsDriver)  # found by its entry point name
        async with supervisor:
            ids = await produce(redis, stream, messages)
            stats = supervisor.sources["orders"].stats

            async def all_processed() -> bool:
                return stats.processed == len(messages)

            await wait_until(all_processed, what="all messages processed")
            assert (stats.stored, stats.duplicates, stats.dead_lettered) == (len(messages), 0, 0)
            assert stats.failed_batches == 0
            assert await bank_count(brain, "shipments") == len(messages)
            for city in ("Nairobi", "Hanoi"):
                hits = (await brain.recall(f"{city} warehouse shipment", "shipments")).hits
                assert city in hits[0].text
            hits = (await brain.recall("Reykjavik order arrive", "shipments")).hits
            assert "Reykjavik" in hits[0].text
            # Every entry acknowledged, nothing left for the group.
            pending = await redis.xpending(stream, "astrocyte-orders")
            assert pending["pending"] == 0
        records = await bank_records(brain, "shipments")
        keys = sorted(str(r.metadata["idempotency_key"]) for r in records)
        assert keys == sorted(f"orders:{stream}/{i}" for i in ids)
        assert all(r.metadata["ingest_source"] == "orders" for r in records)
        # The entry id's time became occurred_at (the payload gave none).
        by_key = {r.metadata["idempotency_key"]: r for r in records}
        first = by_key[f"orders:{stream}/{ids[0]}"]
        assert first.occurred_at is not None
        assert int(first.occurred_at.timestamp() * 1000) == int(ids[0].split("-")[0])


async def test_poison_messages_are_dead_lettered_and_the_consumer_moves_on(
    url: str, redis: Redis, stream: str, brain_factory: Callable[..., Astrocyte]
) -> None:
    good = [
        {"content": f"Ticket {n} was resolved by the night shift.", "bank_id": "tickets"}
        for n in (1, 2, 3)
    ]
    poison: list[Any] = [
        b"{this is not json",
        {"content": "A ticket naming no bank at all."},
        {"content": "Write to jane.doe@example.com about the refund.", "bank_id": "tickets"},
        {"content": "A bank id that is not one.", "bank_id": "no spaces allowed"},
        {"bank_id": "tickets"},
    ]
    policy = {"pii": {"action": "reject"}}
    async with brain_factory({"tickets": source_config(url, [stream])}, policy=policy) as brain:
        async with IngestSupervisor.from_config(brain) as supervisor:
            # Interleaved (good, poison, good, poison, good, poison, poison, poison):
            # one batch mixes both kinds.
            order = [good[0], poison[0], good[1], poison[1], good[2], *poison[2:]]
            ids = await produce(redis, stream, order)
            stats = supervisor.sources["tickets"].stats
            total = len(good) + len(poison)

            async def done() -> bool:
                return stats.processed == total

            await wait_until(done, what="every message handled")
            later = await produce(
                redis, stream, [{"content": "Ticket 4 reopened.", "bank_id": "tickets"}]
            )

            async def later_stored() -> bool:
                return stats.stored == len(good) + 1

            await wait_until(later_stored, what="the message after the poison ones")
            assert stats.dead_lettered == len(poison)
            assert stats.failed_batches == 0
            assert await redis.xpending(stream, "astrocyte-tickets") == {
                "pending": 0,
                "min": None,
                "max": None,
                "consumers": [],
            }
        assert await bank_count(brain, "tickets") == len(good) + 1
        assert later

    dead = await redis.xrange(f"{stream}:dlq")
    assert len(dead) == len(poison)
    letters = [{k.decode(): v for k, v in fields.items()} for _, fields in dead]
    for letter in letters:
        assert set(letter) == {"key", "error", "message", "payload", "source", "timestamp"}
        assert letter["source"] == b"tickets"
        assert letter["key"].decode().startswith(f"{stream}/")
        assert letter["message"]
    by_payload = {bytes(letter["payload"]): letter for letter in letters}
    bad_json = by_payload[b"{this is not json"]
    assert bad_json["error"] == b"malformed_payload"
    assert b"not valid JSON" in bad_json["message"]
    no_bank = by_payload[json.dumps(poison[1]).encode()]
    assert no_bank["error"] == b"malformed_payload" and b"no target bank" in no_bank["message"]
    pii = by_payload[json.dumps(poison[2]).encode()]
    assert pii["error"] == b"pii_rejected", pii
    assert b"jane.doe@example.com" not in pii["message"]
    # The key of a dead letter is the entry's own key: stream/entry id.
    keys = {letter["key"].decode() for letter in letters}
    assert keys <= {f"{stream}/{i}" for i in ids}


async def test_an_entry_without_the_payload_field_is_taken_whole(
    url: str, redis: Redis, stream: str, brain_factory: Callable[..., Astrocyte]
) -> None:
    sources = {"flat": {**source_config(url, [stream])}}
    async with brain_factory(sources) as brain:
        async with IngestSupervisor.from_config(brain) as supervisor:
            await redis.xadd(
                stream, {"content": "The Antwerp depot closes at six.", "bank_id": "depots"}
            )
            stats = supervisor.sources["flat"].stats

            async def stored() -> bool:
                return stats.stored == 1

            await wait_until(stored, what="the flat entry")
        hits = (await brain.recall("Antwerp depot", "depots")).hits
        assert hits and hits[0].text == "The Antwerp depot closes at six."


async def test_text_format_and_a_custom_field(
    url: str, redis: Redis, stream: str, brain_factory: Callable[..., Astrocyte]
) -> None:
    source = {
        **source_config(url, [stream], field="body", format="text"),
        "target_bank_template": "notes",
    }
    async with brain_factory({"notes": source}) as brain:
        async with IngestSupervisor.from_config(brain) as supervisor:
            await redis.xadd(
                stream, {"body": "Plain text: the Gdansk ferry is late.", "trace": "abc"}
            )
            stats = supervisor.sources["notes"].stats

            async def stored() -> bool:
                return stats.stored == 1

            await wait_until(stored, what="the text entry")
        (record,) = await bank_records(brain, "notes")
        assert record.text == "Plain text: the Gdansk ferry is late."


async def test_several_streams_each_with_its_own_dead_letter_stream(
    url: str, redis: Redis, brain_factory: Callable[..., Astrocyte]
) -> None:
    streams = [f"{n}-{id(redis)}" for n in ("astrocyte-test:a", "astrocyte-test:b")]
    await redis.delete(*streams, *(f"{s}:dlq" for s in streams))
    try:
        source = {**source_config(url, streams), "target_bank_template": "multi"}
        async with brain_factory({"multi": source}) as brain:
            async with IngestSupervisor.from_config(brain) as supervisor:
                for s in streams:
                    await produce(redis, s, [{"content": f"Event {i} of {s}."} for i in range(7)])
                    await produce(redis, s, [b"not json"])
                stats = supervisor.sources["multi"].stats

                async def done() -> bool:
                    return stats.processed == 16

                await wait_until(done, what="both streams consumed")
            assert await bank_count(brain, "multi") == 14
        for s in streams:
            (letter,) = await redis.xrange(f"{s}:dlq")
            assert letter[1][b"key"].decode().startswith(f"{s}/")
    finally:
        await redis.delete(*streams, *(f"{s}:dlq" for s in streams))


async def test_stop_finishes_and_acks_the_batch_in_hand(
    url: str, redis: Redis, stream: str, brain_factory: Callable[..., Astrocyte]
) -> None:
    """``stop`` set while a batch is being retained: the batch is still acked."""
    from astrocyte.config.ingest_schema import SourceConfig
    from astrocyte.ingest.stream import StreamIngestor

    source = {**source_config(url, [stream], consumer="c1"), "target_bank_template": "inbox"}
    async with brain_factory({"inbox": source}) as brain:
        driver = RedisStreamsDriver("inbox", SourceConfig.model_validate(source))
        ingestor = StreamIngestor.from_config(brain, "inbox")
        stop = asyncio.Event()
        real_ingest = ingestor.ingest

        async def slow_ingest(records: Any) -> Any:
            stop.set()  # asked to stop mid-batch
            await asyncio.sleep(0.3)
            return await real_ingest(records)

        ingestor.ingest = slow_ingest  # type: ignore[method-assign]
        await produce(redis, stream, [{"content": f"Memo {i}."} for i in range(5)])
        try:
            await asyncio.wait_for(driver.run(ingestor, stop), 10)
        finally:
            await driver.close()
        assert ingestor.stats.stored == 5
        assert (await redis.xpending(stream, "astrocyte-inbox"))["pending"] == 0
        assert driver.counters.acked == 5


async def test_explicit_entry_ids_past_any_datetime_are_still_ingested(
    url: str, redis: Redis, stream: str, brain_factory: Callable[..., Astrocyte]
) -> None:
    """A producer may choose ids; one whose milliseconds are no datetime must not wedge
    the consumer (the record just has no timestamp)."""
    source = {**source_config(url, [stream]), "target_bank_template": "ids"}
    async with brain_factory({"ids": source}) as brain:
        async with IngestSupervisor.from_config(brain) as supervisor:
            await redis.xadd(
                stream, {"payload": json.dumps({"content": "Far future."})}, id="99999999999999-0"
            )
            await produce(redis, stream, [{"content": "Right after it."}])
            stats = supervisor.sources["ids"].stats

            async def stored() -> bool:
                return stats.stored == 2

            await wait_until(stored, what="both entries")
            assert stats.failed_batches == 0
            assert supervisor.health()["ids"]["restarts"] == 0
        texts = sorted(r.text for r in await bank_records(brain, "ids"))
        assert texts == ["Far future.", "Right after it."]
