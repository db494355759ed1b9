"""`astrocyte bench locomo|longmemeval` driven as a user would, on our synthetic files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
EXE = str(Path(sys.executable).with_name("astrocyte"))


@pytest.mark.model
@pytest.mark.parametrize(
    ("dataset", "fixture"),
    [("locomo", "locomo_synthetic.json"), ("longmemeval", "longmemeval_synthetic.json")],
)
def test_bench_quality_command_writes_report_and_table(
    tmp_path: Path, dataset: str, fixture: str
) -> None:
    out = tmp_path / "report.json"
    done = subprocess.run(
        [EXE, "bench", dataset, "--data", str(DATA / fixture), "--k", "5,10", "--ablation",
         "--out", str(out)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert report["embedder"]["model_id"] == "all-MiniLM-L6-v2-int8"
    assert report["benchmark"] == dataset and report["dataset"]["sha256"]
    text = json.dumps(report)
    for rung in ("keyword", "semantic", "rrf(semantic+keyword)", "+graph", "+temporal", "+rerank"):
        assert rung in text
        assert rung in done.stdout
    assert "overall" in done.stdout


def test_bench_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [EXE, "bench", "locomo", "--data", str(tmp_path / "nope.json")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2 and "nope.json" in done.stderr
