"""Performance and scale suite: ``astrocyte bench perf``.

Measures one bank growing through the requested sizes, on the embedded default (or on
whatever stores ``--config`` names):

* raw embedder throughput (texts/s) — the ceiling for bulk retain;
* bulk retain throughput through ``retain_many`` (memories/s) and single ``retain``
  latency;
* recall latency p50/p95/p99 at each size, query embedding included;
* process RSS growth per 100k memories;
* cold start: a fresh process importing astrocyte, opening the store, loading the
  model and answering its first recall.

Texts come from a seeded generator of chat-like sentences, so runs are repeatable and
every strategy has work to do (names for graph, shared words for keyword).
"""

from __future__ import annotations

import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from astrocyte._version import __version__
from astrocyte.brain import Astrocyte
from astrocyte.config import AstrocyteConfig, load_config
from astrocyte.spi import Embedder

_NAMES = (
    "Maya Tomas Leonor Rui Ines Alice Bob Priya Kenji Sofia Omar Lena Marco Yuki Chen Amara "
    "Diego Hana Ivan Zoe"
).split()

_VERBS = (
    "visited cooked painted fixed bought sold planned cancelled recommended borrowed "
    "photographed described booked missed found"
).split()

_OBJECTS = (
    "a vintage bicycle|the garden shed|a birthday cake|the quarterly report|"
    "a trip to Kyoto|the hiking boots|a jazz concert|the leaking tap|a pottery class|"
    "the old piano|a surf lesson|the team offsite|a sourdough starter|"
    "the mountain cabin|a chess set|the wedding playlist"
).split("|")

_WHEN = (
    "last weekend|on Tuesday|in March|yesterday|after work|before the move|"
    "during the holidays|this morning|two weeks ago|at the conference"
).split("|")

_TAILS = (
    "and loved it|but it rained|with friends|for the first time|again|"
    "which was stressful|and felt proud|on a whim|as a surprise|slowly"
).split("|")

BANK = "bench"


def sentence(rng: random.Random) -> str:
    """One synthetic chat turn."""
    who, other = rng.sample(_NAMES, 2)
    return (
        f"{who}: I {rng.choice(_VERBS)} {rng.choice(_OBJECTS)} {rng.choice(_WHEN)} "
        f"{rng.choice(_TAILS)}, {other} said it was {rng.choice(['great', 'odd', 'fun'])}."
    )


def question(rng: random.Random) -> str:
    """One synthetic question about the turns."""
    verb = rng.choice(_VERBS).removesuffix("ed")
    return f"When did {rng.choice(_NAMES)} {verb} {rng.choice(_OBJECTS)}?"


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (``pct`` in 0..100) of a non-empty sample."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), -(-len(ordered) * pct // 100)))
    return ordered[int(rank) - 1]


def rss_bytes() -> int | None:
    """Resident set size of this process (Linux ``/proc``), or None elsewhere."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _config(config: Path | None, workdir: Path) -> AstrocyteConfig:
    base = load_config(config) if config else AstrocyteConfig()
    if config is None or base.storage.backend == "embedded":
        storage = base.storage.model_copy(update={"path": str(workdir / "perf.db")})
        base = base.model_copy(update={"storage": storage})
    return base


async def _latencies(brain: Astrocyte, queries: Sequence[str]) -> list[float]:
    out = []
    for text in queries:
        started = time.perf_counter()
        await brain.recall(text, BANK)
        out.append((time.perf_counter() - started) * 1000)
    return out


def _summary(values: Sequence[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(values, 50), 3),
        "p95_ms": round(percentile(values, 95), 3),
        "p99_ms": round(percentile(values, 99), 3),
        "mean_ms": round(statistics.fmean(values), 3),
    }


async def run_perf(
    sizes: Sequence[int],
    *,
    queries: int = 200,
    batch: int = 512,
    config: Path | None = None,
    embedder: Embedder | None = None,
    workdir: Path | None = None,
    cold_start: bool = True,
) -> dict[str, Any]:
    """Run the suite; returns the JSON-ready report. ``sizes`` must be increasing."""
    sizes = sorted(set(sizes))
    if not sizes or sizes[0] < 1:
        raise ValueError("sizes must be positive")
    rng = random.Random(42)
    own_dir = workdir is None
    workdir = workdir or Path(tempfile.mkdtemp(prefix="astrocyte-perf-"))
    cfg = _config(config, workdir)
    brain = Astrocyte(cfg, embedder=embedder) if embedder else Astrocyte(cfg)
    report: dict[str, Any] = {
        "benchmark": "perf",
        "astrocyte": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "storage": cfg.storage.backend,
        "embedder": brain.embedder.model_id,
        "batch": batch,
        "queries_per_size": queries,
        "sizes": [],
    }
    try:
        sample = [sentence(rng) for _ in range(2048)]
        await brain.embedder.embed(sample[:64])  # load and warm up
        # RSS growth is measured between consecutive sizes: the first size also pays
        # fixed costs (the query-time ONNX session, SQLite caches), which would be
        # wildly inflated if divided by its few memories and scaled to 100k.
        previous: tuple[int, int] | None = None
        started = time.perf_counter()
        for i in range(0, len(sample), batch):
            await brain.embedder.embed(sample[i : i + batch])
        raw = len(sample) / (time.perf_counter() - started)
        report["raw_embedder_texts_per_s"] = round(raw, 1)
        stored, retain_seconds = 0, 0.0
        for size in sizes:
            texts = [sentence(rng) for _ in range(size - stored)]
            started = time.perf_counter()
            for i in range(0, len(texts), batch):
                await brain.retain_many([{"content": t} for t in texts[i : i + batch]], BANK)
            elapsed = time.perf_counter() - started
            retain_seconds += elapsed
            stored = size
            probe = [question(rng) for _ in range(queries)]
            await _latencies(brain, probe[:10])  # warm caches (vector matrix, FTS pages)
            recall = _summary(await _latencies(brain, probe))
            rss = rss_bytes()
            row: dict[str, Any] = {
                "memories": size,
                "retain_memories_per_s": round(len(texts) / elapsed, 1) if texts else None,
                "recall": recall,
                "rss_bytes": rss,
            }
            if rss is not None and previous is not None:
                grown, added = rss - previous[1], size - previous[0]
                row["rss_growth_per_100k_bytes"] = round(grown / added * 100_000)
            if rss is not None:
                previous = (size, rss)
            db = workdir / "perf.db"
            if db.exists():
                row["db_bytes"] = db.stat().st_size
            report["sizes"].append(row)
            _print_row(row, raw)
        report["bulk_retain_memories_per_s"] = round(stored / retain_seconds, 1)
        report["bulk_retain_vs_raw_embedder"] = round(raw / report["bulk_retain_memories_per_s"], 2)
        singles = []
        for _ in range(50):
            started = time.perf_counter()
            await brain.retain(sentence(rng), BANK)
            singles.append((time.perf_counter() - started) * 1000)
        report["single_retain"] = _summary(singles)
    finally:
        await brain.close()
    if cold_start and cfg.storage.backend == "embedded":
        report["cold_start"] = _cold_start(Path(cfg.storage.path), config)
    if own_dir:
        for path in workdir.iterdir():
            path.unlink()
        workdir.rmdir()
    return report


def _print_row(row: dict[str, Any], raw: float) -> None:
    rate = row["retain_memories_per_s"]
    recall = row["recall"]
    ratio = f"{raw / rate:.2f}x raw" if rate else "-"
    print(
        f"{row['memories']:>8} memories | retain {rate or 0:8.1f}/s ({ratio}) | recall p50 "
        f"{recall['p50_ms']:7.2f} ms  p95 {recall['p95_ms']:7.2f}  p99 {recall['p99_ms']:7.2f}",
        file=sys.stderr,
    )


_COLD_START = """
import asyncio, json, sys, time
t0 = time.perf_counter()
from astrocyte import Astrocyte, load_config
t1 = time.perf_counter()
async def main():
    cfg = load_config(json.loads(sys.argv[1]))
    async with Astrocyte(cfg) as brain:
        t2 = time.perf_counter()
        await brain.recall("When did Maya visit the garden shed?", "bench")
        t3 = time.perf_counter()
    print(json.dumps({"import_s": t1 - t0, "open_s": t2 - t1, "first_recall_s": t3 - t2,
                      "total_s": t3 - t0}))
asyncio.run(main())
"""


def _cold_start(db: Path, config: Path | None) -> dict[str, float]:
    """Time a fresh process from import to its first recall on the built store."""
    cfg = load_config(config) if config else AstrocyteConfig()
    data = cfg.model_dump(mode="json", exclude_none=True)
    data["storage"]["path"] = str(db)
    out = subprocess.run(
        [sys.executable, "-c", _COLD_START, json.dumps(data)],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    timings: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return {k: round(v, 3) for k, v in timings.items()}


def render(report: dict[str, Any]) -> str:
    """A readable table of a perf report."""
    lines = [
        f"astrocyte {report['astrocyte']} · {report['storage']} store · {report['embedder']}"
        f" · {report['cpus']} CPUs",
        f"raw embedder: {report['raw_embedder_texts_per_s']} texts/s;"
        f" bulk retain: {report['bulk_retain_memories_per_s']} memories/s"
        f" ({report['bulk_retain_vs_raw_embedder']}x slower than raw)",
        f"single retain: p50 {report['single_retain']['p50_ms']} ms,"
        f" p95 {report['single_retain']['p95_ms']} ms",
        "",
        f"{'memories':>10} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'RSS/100k MB':>12}",
    ]
    for row in report["sizes"]:
        growth = row.get("rss_growth_per_100k_bytes")
        mb = f"{growth / 1e6:.0f}" if growth is not None else "-"
        r = row["recall"]
        lines.append(
            f"{row['memories']:>10} {r['p50_ms']:>8} {r['p95_ms']:>8} {r['p99_ms']:>8} {mb:>12}"
        )
    if "cold_start" in report:
        c = report["cold_start"]
        lines.append(
            f"\ncold start: import {c['import_s']}s + open {c['open_s']}s + first recall "
            f"{c['first_recall_s']}s = {c['total_s']}s"
        )
    return "\n".join(lines)


def plot(report: dict[str, Any], path: Path) -> bool:
    """Write a PNG of recall latency vs bank size; False when matplotlib is missing
    (install the ``astrocyte[bench]`` extra)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    sizes = [row["memories"] for row in report["sizes"]]
    fig, ax = plt.subplots(figsize=(6, 4))
    for key in ("p50_ms", "p95_ms", "p99_ms"):
        ax.plot(sizes, [row["recall"][key] for row in report["sizes"]], marker="o", label=key)
    ax.set_xscale("log")
    ax.set_xlabel("memories in bank")
    ax.set_ylabel("recall latency (ms)")
    ax.set_title(f"astrocyte {report['astrocyte']} recall latency ({report['storage']})")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True
