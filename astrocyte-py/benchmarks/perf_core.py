"""Core performance on the embedded default with the real local embedder.

A script form of ``astrocyte bench perf`` (same code: :mod:`astrocyte.bench.perf`):
bulk retain throughput, single retain latency, recall p50/p95/p99 at each bank size,
RSS growth and cold start. Prints a table and writes JSON (and optionally a PNG).

    python benchmarks/perf_core.py --sizes 1000,10000,100000 --out benchmarks/results/perf_core.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

from astrocyte.bench.perf import plot, render, run_perf


def main() -> None:
    """Parse arguments, run the suite, write the report."""
    parser = argparse.ArgumentParser(description="Astrocyte core performance benchmark")
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--config", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/perf_core.json"))
    parser.add_argument("--plot", type=Path, default=None)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    report = asyncio.run(
        run_perf(sizes, queries=args.queries, batch=args.batch, config=args.config)
    )
    print(render(report))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    if args.plot and plot(report, args.plot):
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
