"""Sustained stream-ingest throughput and end-to-end lag, against ``retain_many``.

    python benchmarks/ingest_throughput.py --messages 5000 --drivers kafka,redis

Needs the real brokers (``scripts/services.sh start kafka redis`` then
``eval "$(scripts/services.sh env kafka redis)"``) and the driver packages
(``astrocyte-ingestion-kafka``, ``astrocyte-ingestion-redis``) installed.

For each driver, on the same ``--messages`` synthetic chat turns (the core perf suite's
seeded sentences, ~90 characters each):

1. **Baseline.** ``retain_many`` in batches of ``--batch`` into a fresh embedded bank
   with the real local embedder (all-MiniLM-L6-v2 int8 ONNX): messages per second.
2. **Ingest.** All messages are produced to a fresh topic / stream first, each carrying
   its produce time; then an ``IngestSupervisor`` runs the driver (same batch size) into
   another fresh embedded bank until every message is stored. Reported: messages per
   second from the first to the last retain, the ratio to the baseline (target: ingest
   within 1.5x of ``retain_many``, i.e. ratio <= 1.5), and lag.
3. **Lag.** A second, live phase produces ``--live`` messages at a fixed rate (half the
   baseline throughput) while the consumer runs: per message, the time from produce to
   the memory's ``created_at`` (p50/p95/p99). That is the lag a user sees in steady
   state, not the backlog drain of phase 2.

Results are printed and appended to ``benchmarks/results/ingest_throughput.json``. Every
loop is bounded in time; only loopback servers named by the environment are contacted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from astrocyte import Astrocyte, __version__, load_config
from astrocyte.bench.perf import percentile, sentence
from astrocyte.embedders import LocalOnnxEmbedder
from astrocyte.ingest import IngestSupervisor
from astrocyte.spi import RecordFilter

RESULTS = Path(__file__).parent / "results" / "ingest_throughput.json"
TARGET_RATIO = 1.5
BANK = "bench"


def _messages(count: int, seed: int = 11) -> list[str]:
    rng = random.Random(seed)
    return [sentence(rng) for _ in range(count)]


def _payload(text: str, sent_at: float) -> bytes:
    return json.dumps({"content": text, "metadata": {"sent_at": sent_at}}).encode()


# --- producers (one per broker) ----------------------------------------------------------


class KafkaProducer:
    """Sends to one topic over one long-lived aiokafka producer."""

    def __init__(self, topic: str) -> None:
        from aiokafka import AIOKafkaProducer

        self.topic = topic
        self._producer = AIOKafkaProducer(
            bootstrap_servers=os.environ["ASTROCYTE_TEST_KAFKA_BOOTSTRAP"]
        )

    async def start(self) -> None:
        await self._producer.start()

    async def send(self, payloads: list[bytes]) -> None:
        futures = [await self._producer.send(self.topic, p) for p in payloads]
        await asyncio.gather(*futures)

    async def close(self) -> None:
        await self._producer.stop()


class RedisProducer:
    """XADDs to one stream over one connection pool, pipelined."""

    def __init__(self, stream: str) -> None:
        import redis.asyncio as aioredis

        self.stream = stream
        self._client = aioredis.from_url(os.environ["ASTROCYTE_TEST_REDIS_URL"])

    async def start(self) -> None:
        await self._client.ping()

    async def send(self, payloads: list[bytes]) -> None:
        for start in range(0, len(payloads), 500):
            pipe = self._client.pipeline(transaction=False)
            for p in payloads[start : start + 500]:
                pipe.xadd(self.stream, {"payload": p})
            await pipe.execute()

    async def close(self) -> None:
        await self._client.aclose()


def _source(driver: str, target: str, batch: int) -> dict[str, Any]:
    if driver == "kafka":
        options: dict[str, Any] = {
            "bootstrap_servers": os.environ["ASTROCYTE_TEST_KAFKA_BOOTSTRAP"],
            "topics": [target],
            "group_id": f"bench-{target}",
            "batch_size": batch,
        }
    else:
        options = {
            "url": os.environ["ASTROCYTE_TEST_REDIS_URL"],
            "streams": [target],
            "group": f"bench-{target}",
            "batch_size": batch,
        }
    return {"type": "stream", "driver": driver, "target_bank_template": BANK, "options": options}


PRODUCERS: dict[str, type[KafkaProducer] | type[RedisProducer]] = {
    "kafka": KafkaProducer,
    "redis": RedisProducer,
}


# --- phases ------------------------------------------------------------------------------


async def _baseline(
    texts: list[str], batch: int, embedder: LocalOnnxEmbedder, tmp: Path
) -> dict[str, Any]:
    config = load_config({"storage": {"path": str(tmp / "baseline.db")}})
    async with Astrocyte(config, embedder=embedder) as brain:
        await brain.retain("warm-up", "warm")
        started = time.perf_counter()
        for start in range(0, len(texts), batch):
            await brain.retain_many([{"content": t} for t in texts[start : start + batch]], BANK)
        elapsed = time.perf_counter() - started
    return {"seconds": round(elapsed, 3), "messages_per_s": round(len(texts) / elapsed, 1)}


async def _count(brain: Astrocyte) -> int:
    return sum(b.memory_count for b in await brain.list_banks() if b.bank_id == BANK)


async def _wait_for(supervisor: IngestSupervisor, expected: int, limit_s: float) -> float:
    """Wait until the source has stored ``expected`` messages (its in-memory counter, so
    the wait adds no store reads); returns when, as ``perf_counter``."""
    stats = supervisor.sources["bench"].stats
    async with asyncio.timeout(limit_s):
        while stats.stored < expected:  # noqa: ASYNC110 - the counter is the consumer's
            await asyncio.sleep(0.01)
    return time.perf_counter()


async def _ingest(
    driver: str,
    texts: list[str],
    live: int,
    batch: int,
    baseline_rate: float,
    embedder: LocalOnnxEmbedder,
    tmp: Path,
) -> dict[str, Any]:
    target = f"bench-{driver}-{uuid.uuid4().hex[:8]}"
    producer = PRODUCERS[driver](target)
    await producer.start()
    try:
        await producer.send([_payload(t, time.time()) for t in texts])
        config = load_config(
            {
                "storage": {"path": str(tmp / f"{driver}.db")},
                "sources": {"bench": _source(driver, target, batch)},
            }
        )
        async with Astrocyte(config, embedder=embedder) as brain:
            await brain.retain("warm-up", "warm")
            supervisor = IngestSupervisor.from_config(brain)
            started = time.perf_counter()
            async with supervisor:
                backlog_s = await _wait_for(supervisor, len(texts), 1800) - started
                # Live phase: a steady rate below capacity; lag is per message.
                rate = max(1.0, baseline_rate / 2)
                live_texts = _messages(live, seed=99)
                t0 = time.monotonic()
                for i, text in enumerate(live_texts):
                    await producer.send([_payload(text, time.time())])
                    await asyncio.sleep(max(0.0, t0 + (i + 1) / rate - time.monotonic()))
                await _wait_for(supervisor, len(texts) + live, 600)
                health = supervisor.health()["bench"]
            stored = await _count(brain)
            if stored != len(texts) + live:
                raise RuntimeError(f"{stored} memories for {len(texts) + live} messages")
            live_set = set(live_texts)
            ids = await brain.stores.documents.find(BANK, RecordFilter(), limit=len(texts) + live)
            lags = [
                (r.created_at.timestamp() - float(r.metadata["sent_at"])) * 1000  # type: ignore[arg-type]
                for r in await brain.stores.documents.get(BANK, ids)
                if r.text in live_set and isinstance(r.metadata.get("sent_at"), float)
            ]
    finally:
        await producer.close()
    rate_ingest = len(texts) / backlog_s
    return {
        "messages": len(texts),
        "backlog_seconds": round(backlog_s, 3),
        "messages_per_s": round(rate_ingest, 1),
        "ratio_to_retain_many": round(baseline_rate / rate_ingest, 3),
        "live": {
            "messages": live,
            "rate_per_s": round(max(1.0, baseline_rate / 2), 1),
            "lag_ms": {
                "p50": round(percentile(lags, 50), 1) if lags else None,
                "p95": round(percentile(lags, 95), 1) if lags else None,
                "p99": round(percentile(lags, 99), 1) if lags else None,
                "n": len(lags),
            },
        },
        "counters": health.get("counters"),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--live", type=int, default=300)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--drivers", default="kafka,redis")
    args = parser.parse_args()
    drivers = [d for d in args.drivers.split(",") if d]
    texts = _messages(args.messages)
    embedder = LocalOnnxEmbedder()
    run: dict[str, Any] = {
        "benchmark": "ingest_throughput",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "astrocyte": __version__,
        "python": platform.python_version(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "embedder": embedder.model_id,
        "batch": args.batch,
        "target_ratio": TARGET_RATIO,
    }
    with tempfile.TemporaryDirectory(prefix="astrocyte-ingest-bench-") as tmp_dir:
        tmp = Path(tmp_dir)
        run["retain_many"] = await _baseline(texts, args.batch, embedder, tmp)
        print(f"retain_many: {run['retain_many']['messages_per_s']} msg/s")
        for driver in drivers:
            result = await _ingest(
                driver,
                texts,
                args.live,
                args.batch,
                run["retain_many"]["messages_per_s"],
                embedder,
                tmp,
            )
            run[driver] = result
            print(
                f"{driver}: {result['messages_per_s']} msg/s "
                f"(ratio {result['ratio_to_retain_many']}x, target <= {TARGET_RATIO}), "
                f"live lag p50 {result['live']['lag_ms']['p50']} ms "
                f"p99 {result['live']['lag_ms']['p99']} ms"
            )
    await embedder.close()
    run["meets_target"] = all(run[d]["ratio_to_retain_many"] <= TARGET_RATIO for d in drivers)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    existing = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"runs": []}
    existing["runs"].append(run)
    RESULTS.write_text(json.dumps(existing, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    asyncio.run(main())
