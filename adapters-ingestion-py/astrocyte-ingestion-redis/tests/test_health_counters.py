"""Counters (processed / stored / duplicates / dead_lettered / failed_batches) and health."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from astrocyte import Astrocyte
from astrocyte.config.ingest_schema import SourceConfig
from astrocyte.ingest.supervisor import IngestSupervisor
from conftest import produce, source_config, wait_until
from redis.asyncio import Redis

from astrocyte_ingestion_redis import RedisStreamsDriver


async def test_counters_and_health_through_the_supervisor(
    url: str, redis: Redis, stream: str, brain_factory: Callable[..., Astrocyte]
) -> None:
    source = {**source_config(url, [stream]), "target_bank_template": "metrics"}
    group = "astrocyte-metrics"
    async with brain_factory({"metrics": source}) as brain:
        supervisor = IngestSupervisor.from_config(brain)
        supervised = supervisor.sources["metrics"]
        # Not started yet: reported as not running, without touching Redis.
        assert not (await supervised.health_check()).ok
        async with supervisor:
            await produce(
                redis, stream, [{"content": f"Reading {i} is 4{i} kPa."} for i in range(4)]
            )
            await produce(redis, stream, [b"\xff\xfe not json"])

            async def first_pass() -> bool:
                return supervised.stats.processed == 5

            await wait_until(first_pass, what="first pass")
            counters = supervisor.health()["metrics"]["counters"]
            assert {
                k: counters[k]
                for k in ("processed", "stored", "duplicates", "dead_lettered", "failed_batches")
            } == {
                "processed": 5,
                "stored": 4,
                "duplicates": 0,
                "dead_lettered": 1,
                "failed_batches": 0,
            }
            assert counters["last_error"] is None
            assert counters["last_batch_age_seconds"] is not None
            health = await supervised.health_check()
            assert health.ok, health.detail
            assert f"{stream}: pending=0 lag=0" in health.detail

            # Rewind the group: everything is delivered again; the stored ones are
            # duplicates now, the poison one is dead-lettered again.
            await redis.xgroup_setid(stream, group, "0")

            async def second_pass() -> bool:
                return supervised.stats.processed == 10

            await wait_until(second_pass, what="second pass")
            stats = supervised.stats
            assert (stats.stored, stats.duplicates, stats.dead_lettered) == (4, 4, 2)
            assert stats.failed_batches == 0
            driver = supervised.driver
            assert isinstance(driver, RedisStreamsDriver)
            assert driver.counters.acked == 10
            assert driver.counters.dead_letters_published == 2
            assert await redis.xlen(f"{stream}:dlq") == 2
            assert supervisor.health()["metrics"]["restarts"] == 0

        # Stopped: new entries wait for the group, and the driver's probe sees the lag.
        await produce(redis, stream, [{"content": "Late reading."}] * 3)
        probe = RedisStreamsDriver("metrics", SourceConfig.model_validate(source))
        try:
            health = await probe.health_check()
        finally:
            await probe.close()
        assert health.ok and f"{stream}: pending=0 lag=3" in health.detail


async def test_pending_entries_show_in_health(url: str, redis: Redis, stream: str) -> None:
    source = SourceConfig.model_validate(source_config(url, [stream], group="g"))
    await redis.xgroup_create(stream, "g", id="0", mkstream=True)
    await produce(redis, stream, [{"content": "x"}] * 2)
    await redis.xreadgroup("g", "someone", {stream: ">"}, count=10)
    driver = RedisStreamsDriver("s", source)
    try:
        health = await driver.health_check()
    finally:
        await driver.close()
    assert health.ok and f"{stream}: pending=2 lag=0" in health.detail


async def test_health_never_raises(url: str, stream: str) -> None:
    unreachable = RedisStreamsDriver(
        "s", SourceConfig.model_validate(source_config("redis://127.0.0.1:1/0", [stream]))
    )
    health = await asyncio.wait_for(unreachable.health_check(), 10)
    assert not health.ok and "unreachable" in health.detail
    await unreachable.close()
    # A stream with no consumer group (run() has not created it yet).
    no_group = RedisStreamsDriver("s", SourceConfig.model_validate(source_config(url, [stream])))
    health = await no_group.health_check()
    await no_group.close()
    assert not health.ok and "no consumer group" in health.detail
