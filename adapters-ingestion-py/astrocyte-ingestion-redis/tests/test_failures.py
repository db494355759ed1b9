"""Failures that are not the messages' fault: store down, server restart, cut network,
a consumer that died holding entries. Nothing is lost, nothing is stored twice."""

from __future__ import annotations

import asyncio
import os
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from astrocyte import Astrocyte
from astrocyte.config.ingest_schema import SourceConfig
from astrocyte.ingest.stream import IngestUnavailable, StreamIngestor
from astrocyte.ingest.supervisor import IngestSupervisor
from astrocyte.testing import TcpProxy
from conftest import bank_count, bank_records, produce, source_config, wait_until
from redis.asyncio import Redis

from astrocyte_ingestion_redis import RedisStreamsDriver

SERVICE_SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "services" / "redis.sh"


async def test_store_down_acks_nothing_and_the_batch_is_retried(
    url: str, redis: Redis, stream: str, brain_factory: Callable[..., Astrocyte]
) -> None:
    source = {**source_config(url, [stream], consumer="w1"), "target_bank_template": "orders"}
    async with brain_factory({"orders": source}) as brain:
        real_retain_many = brain.retain_many
        down = True

        async def retain_many(*args: Any, **kwargs: Any) -> Any:
            if down:
                raise ConnectionError("document store unreachable")
            return await real_retain_many(*args, **kwargs)

        brain.retain_many = retain_many  # type: ignore[method-assign]
        driver = RedisStreamsDriver("orders", SourceConfig.model_validate(source))
        ingestor = StreamIngestor.from_config(brain, "orders")
        ids = await produce(redis, stream, [{"content": f"Order {i} packed."} for i in range(4)])

        # Directly: run() raises, the entries stay pending for this consumer, no DLQ.
        with pytest.raises(IngestUnavailable, match="document store unreachable"):
            await asyncio.wait_for(driver.run(ingestor, asyncio.Event()), 10)
        await driver.close()
        pending = await redis.xpending(stream, "astrocyte-orders")
        assert pending["pending"] == 4
        assert pending["consumers"] == [{"name": b"w1", "pending": 4}]
        assert await redis.exists(f"{stream}:dlq") == 0
        assert driver.counters.acked == 0
        assert ingestor.stats.failed_batches == 1 and ingestor.stats.processed == 0
        assert "document store unreachable" in (ingestor.stats.last_error or "")

        # Under the supervisor: it restarts the driver with back-off until the store is
        # back; the pending batch is then retained and acked.
        supervisor = IngestSupervisor.from_config(brain, min_backoff=0.05, max_backoff=0.2)
        async with supervisor:
            sup_stats = supervisor.sources["orders"].stats

            async def failed_twice() -> bool:
                return sup_stats.failed_batches >= 2

            await wait_until(failed_twice, what="retries while the store is down")
            down = False

            async def stored() -> bool:
                return sup_stats.stored == 4

            await wait_until(stored, what="the batch after the store came back")
            health = supervisor.health()["orders"]
            assert health["restarts"] >= 2
            assert health["counters"]["failed_batches"] >= 2
        assert (await redis.xpending(stream, "astrocyte-orders"))["pending"] == 0
        records = await bank_records(brain, "orders")
        assert sorted(r.metadata["idempotency_key"] for r in records) == sorted(
            f"orders:{stream}/{i}" for i in ids
        )


async def test_a_dead_consumers_pending_entries_are_claimed(
    url: str, redis: Redis, stream: str, brain_factory: Callable[..., Astrocyte]
) -> None:
    group = "astrocyte-claims"
    await redis.xgroup_create(stream, group, id="0", mkstream=True)
    texts = [f"Invoice {i} was paid in full." for i in range(6)]
    await produce(redis, stream, [{"content": t} for t in texts])
    # A consumer takes the entries and dies without acking them.
    taken = await redis.xreadgroup(group, "ghost", {stream: ">"}, count=100)
    assert len(taken[0][1]) == 6
    source = {
        **source_config(url, [stream], consumer="survivor", claim_idle_ms=300),
        "target_bank_template": "invoices",
    }
    async with brain_factory({"claims": source}) as brain:
        async with IngestSupervisor.from_config(brain) as supervisor:
            stats = supervisor.sources["claims"].stats

            async def stored() -> bool:
                return stats.stored == 6

            await wait_until(stored, what="the ghost's entries claimed and retained")
            driver = supervisor.sources["claims"].driver
            assert isinstance(driver, RedisStreamsDriver)
            assert driver.counters.claimed == 6
        assert sorted(r.text for r in await bank_records(brain, "invoices")) == sorted(texts)
    assert (await redis.xpending(stream, group))["pending"] == 0


async def test_cut_connection_between_retain_and_ack(
    url: str, redis: Redis, stream: str, brain_factory: Callable[..., Astrocyte]
) -> None:
    """The network drops after the batch was retained, so its XACK fails: the batch
    comes back from the pending list and its redelivery stores nothing."""
    parsed = urllib.parse.urlsplit(url)
    async with TcpProxy(parsed.hostname or "127.0.0.1", parsed.port or 6379) as proxy:
        proxied = parsed._replace(netloc=f"127.0.0.1:{proxy.port}").geturl()
        source = {
            **source_config(proxied, [stream], consumer="w1", batch_size=5),
            "target_bank_template": "cut",
        }
        async with brain_factory({"cut": source}) as brain:
            supervisor = IngestSupervisor.from_config(brain, min_backoff=0.05, max_backoff=0.3)
            ingestor = supervisor.sources["cut"].ingestor
            real_ingest = ingestor.ingest
            cuts = 0

            async def ingest(records: Any) -> Any:
                nonlocal cuts
                outcome = await real_ingest(records)
                if cuts == 0:
                    cuts += 1
                    proxy.cut()  # retained; the ack will not get through
                    asyncio.get_running_loop().call_later(0.5, proxy.restore)
                return outcome

            ingestor.ingest = ingest  # type: ignore[method-assign]
            async with supervisor:
                await produce(redis, stream, [{"content": f"Cut test {i}."} for i in range(5)])

                async def redelivered() -> bool:
                    return ingestor.stats.duplicates == 5

                await wait_until(redelivered, what="the un-acked batch redelivered")
                await produce(redis, stream, [{"content": f"After cut {i}."} for i in range(3)])

                async def later() -> bool:
                    return ingestor.stats.stored == 8

                await wait_until(later, what="messages produced after the cut")
                assert supervisor.health()["cut"]["restarts"] >= 1
            assert await bank_count(brain, "cut") == 8
            assert (await redis.xpending(stream, "astrocyte-cut"))["pending"] == 0


async def test_server_restart_is_survived(
    url: str, redis: Redis, stream: str, brain_factory: Callable[..., Astrocyte]
) -> None:
    """The real server restarted with the service script (its data is kept)."""
    parsed = urllib.parse.urlsplit(url)
    port = int(os.environ.get("ASTROCYTE_REDIS_PORT", "56379"))
    if parsed.hostname not in ("127.0.0.1", "localhost") or parsed.port != port:
        pytest.skip("the server is not the one scripts/services/redis.sh manages")
    if not SERVICE_SCRIPT.exists():
        pytest.skip(f"{SERVICE_SCRIPT} is missing")
    source = {**source_config(url, [stream]), "target_bank_template": "restart"}
    async with brain_factory({"restart": source}) as brain:
        supervisor = IngestSupervisor.from_config(brain, min_backoff=0.1, max_backoff=0.5)
        async with supervisor:
            stats = supervisor.sources["restart"].stats
            await produce(redis, stream, [{"content": f"Before restart {i}."} for i in range(5)])

            async def first() -> bool:
                return stats.stored == 5

            await wait_until(first, what="messages before the restart")
            proc = await asyncio.create_subprocess_exec(
                "bash",
                str(SERVICE_SCRIPT),
                "restart",
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            out, _ = await asyncio.wait_for(proc.communicate(), 90)
            assert proc.returncode == 0, out.decode()
            await produce(redis, stream, [{"content": f"After restart {i}."} for i in range(5)])

            async def second() -> bool:
                return stats.stored == 10

            await wait_until(second, within=30, what="messages after the restart")
            assert supervisor.health()["restart"]["restarts"] >= 1
            assert stats.duplicates == 0
        texts = sorted(r.text for r in await bank_records(brain, "restart"))
        assert texts == sorted(
            [f"Before restart {i}." for i in range(5)] + [f"After restart {i}." for i in range(5)]
        )
