"""The perf suite runs end to end at small sizes and reports every figure."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from astrocyte.bench.perf import percentile, render, run_perf
from astrocyte.embedders import HashingEmbedder


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 95) == 95.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([7.0], 50) == 7.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0


async def test_run_perf_reports_every_size_and_figure(tmp_path: Path) -> None:
    report = await run_perf(
        [50, 120], queries=12, batch=32, embedder=HashingEmbedder(dimensions=64),
        workdir=tmp_path, cold_start=False,
    )  # fmt: skip
    assert [row["memories"] for row in report["sizes"]] == [50, 120]
    for row in report["sizes"]:
        recall = row["recall"]
        assert 0 < recall["p50_ms"] <= recall["p95_ms"] <= recall["p99_ms"]
        assert row["retain_memories_per_s"] > 0 and row["db_bytes"] > 0
    assert report["bulk_retain_memories_per_s"] > 0
    assert report["single_retain"]["p50_ms"] > 0
    assert "recall p50" not in render(report)  # the table has its own header
    assert "120" in render(report)


@pytest.mark.model
def test_bench_perf_command_writes_json_with_cold_start(tmp_path: Path) -> None:
    out = tmp_path / "perf.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASTROCYTE_")}
    exe = str(Path(sys.executable).with_name("astrocyte"))
    done = subprocess.run(
        [exe, "bench", "perf", "--sizes", "100", "--queries", "10", "--batch", "64",
         "--out", str(out)],
        capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert report["sizes"][0]["memories"] == 100
    assert report["cold_start"]["total_s"] > 0
    assert report["embedder"] == "all-MiniLM-L6-v2-int8"
    assert "cold start" in done.stdout


def test_bench_rejects_bad_k(tmp_path: Path) -> None:
    data = tmp_path / "x.json"
    data.write_text("[]")
    exe = str(Path(sys.executable).with_name("astrocyte"))
    done = subprocess.run(
        [exe, "bench", "locomo", "--data", str(data), "--k", "5,zero"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2 and "--k" in done.stderr
