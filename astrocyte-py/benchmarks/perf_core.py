"""Core performance on the embedded default with the real local embedder.

Measures, in one bank that grows through the requested sizes:

* raw embedder throughput (sentences/s, the ceiling for bulk retain);
* bulk retain throughput through ``retain_many`` (memories/s);
* recall latency p50/p95/p99 at each size, query embedding included.

Usage::

    python benchmarks/perf_core.py --sizes 1000,10000,100000 --out benchmarks/results/perf_core.json

Texts are synthetic chat-like sentences from a seeded generator, so runs are
repeatable; they exercise every strategy (names for graph, shared words for keyword).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from astrocyte import Astrocyte, __version__, load_config
from astrocyte.embedders import LocalOnnxEmbedder

_NAMES = [
    "Maya",
    "Tomas",
    "Leonor",
    "Rui",
    "Ines",
    "Alice",
    "Bob",
    "Priya",
    "Kenji",
    "Sofia",
    "Omar",
    "Lena",
    "Marco",
    "Yuki",
    "Chen",
    "Amara",
    "Diego",
    "Hana",
    "Ivan",
    "Zoe",
]
_VERBS = [
    "visited",
    "cooked",
    "painted",
    "fixed",
    "bought",
    "sold",
    "planned",
    "cancelled",
    "recommended",
    "borrowed",
    "photographed",
    "described",
    "booked",
    "missed",
    "found",
]
_OBJECTS = [
    "a vintage bicycle",
    "the garden shed",
    "a birthday cake",
    "the quarterly report",
    "a trip to Kyoto",
    "the hiking boots",
    "a jazz concert",
    "the leaking tap",
    "a pottery class",
    "the old piano",
    "a surf lesson",
    "the team offsite",
    "a sourdough starter",
    "the mountain cabin",
    "a chess set",
    "the wedding playlist",
]
_WHEN = [
    "last weekend",
    "on Tuesday",
    "in March",
    "yesterday",
    "after work",
    "before the move",
    "during the holidays",
    "this morning",
    "two weeks ago",
    "at the conference",
]
_FEELINGS = [
    "and loved it",
    "but it rained",
    "with friends",
    "for the first time",
    "again",
    "which was stressful",
    "and felt proud",
    "on a whim",
    "as a surprise",
    "slowly",
]


def sentence(rng: random.Random) -> str:
    """One synthetic chat turn."""
    who, other = rng.sample(_NAMES, 2)
    return (
        f"{who}: I {rng.choice(_VERBS)} {rng.choice(_OBJECTS)} {rng.choice(_WHEN)} "
        f"{rng.choice(_FEELINGS)}, {other} said it was {rng.choice(['great', 'odd', 'fun'])}."
    )


def query(rng: random.Random) -> str:
    """One synthetic question."""
    return (
        f"When did {rng.choice(_NAMES)} {rng.choice(_VERBS).rstrip('ed')} {rng.choice(_OBJECTS)}?"
    )


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


async def run(sizes: list[int], queries: int, batch: int, threads: int | None) -> dict[str, Any]:
    """Run the benchmark and return the report."""
    rng = random.Random(42)
    embedder = LocalOnnxEmbedder(intra_op_num_threads=threads)
    workdir = Path(tempfile.mkdtemp(prefix="astrocyte-bench-"))
    config = load_config({"storage": {"backend": "embedded", "path": str(workdir / "b.db")}})
    report: dict[str, Any] = {
        "benchmark": "perf_core",
        "astrocyte": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "embedder": embedder.model_id,
        "batch": batch,
        "queries_per_size": queries,
        "sizes": [],
    }
    # Raw embedder throughput on the same kind of text, for the "within 2x" target.
    sample = [sentence(rng) for _ in range(2048)]
    await embedder.embed(sample[:64])  # load + warm up
    started = time.perf_counter()
    for i in range(0, len(sample), batch):
        await embedder.embed(sample[i : i + batch])
    raw = len(sample) / (time.perf_counter() - started)
    report["raw_embedder_sentences_per_s"] = round(raw, 1)
    print(f"raw embedder: {raw:.0f} sentences/s (batch {batch})")

    async with Astrocyte(config, embedder=embedder) as brain:
        stored = 0
        retain_seconds = 0.0
        for size in sizes:
            texts = [sentence(rng) for _ in range(size - stored)]
            started = time.perf_counter()
            for i in range(0, len(texts), batch):
                await brain.retain_many([{"content": t} for t in texts[i : i + batch]], "bench")
            elapsed = time.perf_counter() - started
            retain_seconds += elapsed
            stored = size
            rate = len(texts) / elapsed if texts else 0.0

            probe = [query(rng) for _ in range(queries)]
            for q in probe[:10]:  # warm caches (vector matrix, FTS pages)
                await brain.recall(q, "bench")
            latencies = []
            for q in probe:
                t0 = time.perf_counter()
                await brain.recall(q, "bench")
                latencies.append((time.perf_counter() - t0) * 1000)
            row = {
                "memories": size,
                "retain_memories_per_s": round(rate, 1),
                "retain_vs_raw_embedder": round(raw / rate, 2) if rate else None,
                "recall_p50_ms": round(percentile(latencies, 50), 2),
                "recall_p95_ms": round(percentile(latencies, 95), 2),
                "recall_p99_ms": round(percentile(latencies, 99), 2),
                "recall_mean_ms": round(statistics.fmean(latencies), 2),
                "db_bytes": (workdir / "b.db").stat().st_size,
            }
            report["sizes"].append(row)
            print(
                f"{size:>7} memories | retain {rate:7.0f}/s ({row['retain_vs_raw_embedder']}x raw)"
                f" | recall p50 {row['recall_p50_ms']:6.2f} ms p95 {row['recall_p95_ms']:6.2f}"
                f" ms p99 {row['recall_p99_ms']:6.2f} ms"
            )
        report["bulk_retain_memories_per_s"] = round(stored / retain_seconds, 1)
    await embedder.close()
    report["workdir"] = str(workdir)
    return report


def main() -> None:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--threads", type=int, default=None, help="ONNX intra-op threads")
    parser.add_argument("--out", default="benchmarks/results/perf_core.json")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    report = asyncio.run(run(sizes, args.queries, args.batch, args.threads))
    shutil.rmtree(report.pop("workdir"), ignore_errors=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
