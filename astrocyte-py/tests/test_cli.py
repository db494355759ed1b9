"""The `astrocyte` console script, driven as a user would, in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# The console script installed next to the interpreter running the tests: whatever
# `astrocyte` PATH finds first may belong to another environment.
EXE = str(Path(sys.executable).with_name("astrocyte"))


def run(
    *args: str, config: Path | None = None, db: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASTROCYTE_")}
    cmd = [EXE]
    if config is not None:
        cmd += ["--config", str(config)]
    if db is not None:
        cmd += ["--db", str(db)]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, env=env, timeout=120)


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    path = tmp_path / "astrocyte.yaml"
    path.write_text("embedder:\n  provider: hashing\n", encoding="utf-8")
    return path


def test_retain_recall_forget_banks_stats_roundtrip(tmp_path: Path, cfg: Path) -> None:
    db = tmp_path / "cli.db"
    out = run(
        "retain",
        "Maya adopted a cat named Biscuit",
        "-b",
        "maya",
        "--tag",
        "pets",
        "--meta",
        "session_id=2",
        "--meta",
        "speaker=Maya",
        "--source",
        "S2:1",
        "--occurred-at",
        "2024-03-20T20:30:00Z",
        config=cfg,
        db=db,
    )
    assert out.returncode == 0, out.stderr
    assert "retained 1 memory in maya" in out.stdout

    jsonl = tmp_path / "conv.jsonl"
    jsonl.write_text(
        "\n".join(
            json.dumps({"content": f"Tomas ran {k} km on day {k}", "metadata": {"day": k}})
            for k in range(1, 31)
        )
        + "\n",
        encoding="utf-8",
    )
    out = run("--json", "retain", "--file", str(jsonl), "-b", "maya", config=cfg, db=db)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["memories"] == 30

    out = run("--json", "recall", "cat Biscuit", "-b", "maya", "-k", "3", config=cfg, db=db)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    top = result["hits"][0]
    assert top["text"] == "Maya adopted a cat named Biscuit"
    assert top["provenance"]["source_id"] == "S2:1"
    assert top["provenance"]["metadata"] == {"session_id": 2, "speaker": "Maya"}
    assert top["provenance"]["tags"] == ["pets"]
    assert len(result["hits"]) == 3

    human = run("recall", "cat Biscuit", "-b", "maya", "-k", "1", config=cfg, db=db)
    assert "Maya adopted a cat named Biscuit" in human.stdout
    assert "source S2:1" in human.stdout and "why:" in human.stdout

    out = run("reflect", "what cat", "-b", "maya", config=cfg, db=db)
    assert out.returncode == 0 and out.stdout.startswith("Extractive answer")

    out = run("--json", "banks", config=cfg, db=db)
    assert json.loads(out.stdout)[0]["memory_count"] == 31

    out = run("--json", "forget", "-b", "maya", "--tag", "pets", config=cfg, db=db)
    assert json.loads(out.stdout)["deleted_count"] == 1
    out = run("--json", "stats", config=cfg, db=db)
    stats = json.loads(out.stdout)
    assert stats["memories"] == 30 and stats["embedder"].startswith("hashing")


@pytest.mark.parametrize(
    ("args", "needle", "code"),
    [
        (("recall", "x", "-b", "ghost"), "bank 'ghost' does not exist", 1),
        (("retain", "", "-b", "b"), "content: is empty", 2),
        (("recall", "q", "-b", "bad bank"), "bank_id", 2),
        (("retain", "x", "-b", "b", "--meta", "novalue"), "--meta", 2),
        (("forget", "-b", "b"), "no selector", 2),
    ],
)
def test_errors_are_one_line_and_typed(
    tmp_path: Path, cfg: Path, args: tuple[str, ...], needle: str, code: int
) -> None:
    db = tmp_path / "e.db"
    run("retain", "seed", "-b", "b", config=cfg, db=db)
    out = run(*args, config=cfg, db=db)
    assert out.returncode == code
    assert needle in out.stderr and "Traceback" not in out.stderr


def test_bad_config_file_names_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("recall:\n  rrf_kk: 3\n", encoding="utf-8")
    out = run("banks", config=bad)
    assert out.returncode == 2 and "recall.rrf_kk: unknown key" in out.stderr


def test_bad_jsonl_line_is_reported_with_its_number(tmp_path: Path, cfg: Path) -> None:
    jsonl = tmp_path / "bad.jsonl"
    jsonl.write_text('{"content": "ok"}\n{not json}\n', encoding="utf-8")
    out = run("retain", "--file", str(jsonl), "-b", "b", config=cfg, db=tmp_path / "x.db")
    assert out.returncode == 2 and "bad.jsonl:2" in out.stderr
    assert run("--json", "banks", config=cfg, db=tmp_path / "x.db").stdout.strip() == "[]"


@pytest.mark.model
def test_demo_runs_on_the_real_model_and_shows_provenance(tmp_path: Path) -> None:
    out = run("demo", db=tmp_path / "demo.db")
    assert out.returncode == 0, out.stderr
    assert "Retained 32 conversation turns" in out.stdout
    assert "1:43:10" in out.stdout  # the half-marathon answer is recalled
    assert "speaker=" in out.stdout and "source S" in out.stdout
