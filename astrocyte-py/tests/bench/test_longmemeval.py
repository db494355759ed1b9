"""LongMemEval end to end on the synthetic fixture, with the real local embedding model.

`data/longmemeval_synthetic.json` is our own file in LongMemEval's schema: five
scorable questions of five types plus one abstention (``_abs``) question, haystacks of
4-6 dated sessions drawn from a shared pool (as in the public file), ``has_answer``
turns on user and assistant side.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from astrocyte.bench.longmemeval import render_report, run_longmemeval
from astrocyte.embedders import LocalOnnxEmbedder

DATA = Path(__file__).parent / "data" / "longmemeval_synthetic.json"
TYPES = {
    "single-session-user": 1,
    "single-session-assistant": 1,
    "multi-session": 1,
    "temporal-reasoning": 1,
    "knowledge-update": 1,
}
KS = [1, 3, 5]

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def report(local_embedder: LocalOnnxEmbedder) -> dict[str, Any]:
    """The full ablation ladder over the fixture, with per-question details."""
    return asyncio.run(
        run_longmemeval(DATA, ks=KS, ablation=True, embedder=local_embedder, details=True)
    )


def _rung(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(r for r in report["rungs"] if r["name"] == name)


def _question(rung: dict[str, Any], question_id: str) -> dict[str, Any]:
    return next(q for q in rung["questions"] if q["question_id"] == question_id)


def _scored_turn_texts() -> tuple[int, int]:
    """(turns, distinct turn texts) over the non-abstention instances."""
    data = json.loads(DATA.read_text(encoding="utf-8"))
    texts = [
        f"{turn['role']}: {turn['content']}"
        for instance in data
        if not instance["question_id"].endswith("_abs")
        for session in instance["haystack_sessions"]
        for turn in session
    ]
    return len(texts), len(set(texts))


def test_report_describes_the_run(report: dict[str, Any]) -> None:
    assert report["benchmark"] == "longmemeval"
    dataset = report["dataset"]
    assert (dataset["instances"], dataset["evaluated"]) == (6, 5)
    assert dataset["evaluated_by_type"] == TYPES
    assert report["parsing"]["abstention_skipped"] == 1
    assert report["parsing"]["sessions_without_date"] == 0
    turns, distinct = _scored_turn_texts()
    assert (turns, distinct) == (100, 58)
    assert report["ingest"]["stores"] == 5  # a fresh store per instance
    assert report["ingest"]["items"] == turns
    # Haystacks share sessions: each distinct text is embedded once per run.
    assert report["embedder"]["cache"] == {"hits": turns - distinct, "misses": distinct}


def test_per_type_counts_and_consistency(report: dict[str, Any]) -> None:
    for rung in report["rungs"][:-1]:
        metrics = rung["metrics"]
        assert metrics["overall"]["count"] == 5
        assert "support" not in metrics["overall"]  # every question marks has_answer turns
        assert {g: s["count"] for g, s in metrics["groups"].items()} == TYPES
        values = metrics["overall"]["metrics"]
        assert all(0.0 <= v <= 1.0 for v in values.values())
        for k in KS:
            assert (
                values[f"session_recall_all@{k}"]
                <= values[f"session_recall@{k}"]
                <= values[f"session_recall_any@{k}"]
            )
        assert rung["recall"]["queries"] == 5


def test_near_verbatim_question_finds_its_session_and_turn(report: dict[str, Any]) -> None:
    for name in ("semantic", "rrf(semantic+keyword)", "+graph", "+temporal"):
        dog = _question(_rung(report, name), "syn001")
        assert dog["answer_turns"] == ["answer_dog#0"]
        assert dog["metrics"]["session_recall_any@1"] == 1.0, (name, dog["retrieved"])
        assert dog["metrics"]["turn_recall@5"] == 1.0, (name, dog["retrieved"])


def test_multi_session_question_needs_both_sessions(report: dict[str, Any]) -> None:
    instruments = _question(_rung(report, "rrf(semantic+keyword)"), "syn003")
    assert instruments["answer_sessions"] == ["answer_harmonica", "answer_ukulele"]
    metrics = instruments["metrics"]
    assert metrics["session_recall@5"] in (0.0, 0.5, 1.0)
    assert metrics["session_recall_all@5"] == (1.0 if metrics["session_recall@5"] == 1.0 else 0.0)


def test_rerank_is_passthrough_and_render(report: dict[str, Any]) -> None:
    rerank = _rung(report, "+rerank")
    assert rerank["status"] == "passthrough" and rerank["metrics"] is None
    text = render_report(report)
    assert "by question_type" in text
    assert "s.any@5" in text and "t.rec@5" in text and "s.ndcg@5" in text
    assert "t.rec = turn_recall" in text
    assert "knowledge-update" in text
