"""LoCoMo end to end on the synthetic fixture, with the real local embedding model.

`data/locomo_synthetic.json` is our own two-conversation file in LoCoMo's schema, with
the public file's quirks: messy evidence strings, an empty evidence list, junk entries,
a dangling turn id, an image turn, an ISO and an unparseable session date.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from astrocyte.bench.locomo import render_report, run_locomo
from astrocyte.embedders import LocalOnnxEmbedder

DATA = Path(__file__).parent / "data" / "locomo_synthetic.json"
LADDER = ["keyword", "semantic", "rrf(semantic+keyword)", "+graph", "+temporal", "+rerank"]
SCORED = {"multi-hop": 4, "temporal": 3, "open-domain": 2, "single-hop": 8}
KS = [1, 5, 10]

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def report(local_embedder: LocalOnnxEmbedder) -> dict[str, Any]:
    """The full ablation ladder over the fixture, with per-question details."""
    return asyncio.run(
        run_locomo(DATA, ks=KS, ablation=True, embedder=local_embedder, details=True)
    )


def _rung(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(r for r in report["rungs"] if r["name"] == name)


def _question(rung: dict[str, Any], text: str) -> dict[str, Any]:
    return next(q for q in rung["questions"] if q["question"] == text)


def test_report_describes_the_run(report: dict[str, Any]) -> None:
    assert report["benchmark"] == "locomo"
    dataset = report["dataset"]
    assert dataset["path"] == str(DATA.resolve())
    assert len(dataset["sha256"]) == 64
    assert (dataset["samples"], dataset["questions"], dataset["evaluated"]) == (2, 21, 20)
    assert dataset["evaluated_by_category"] == {**SCORED, "adversarial": 3}
    assert report["ks"] == KS and report["max_results"] == 10
    assert report["parsing"]["questions_without_evidence"] == 1
    assert report["parsing"]["sessions_without_date"] == 1
    assert report["parsing"]["evidence_ids_dangling"] == 1
    assert report["embedder"]["model_id"] == "all-MiniLM-L6-v2-int8"
    assert report["ingest"] == {
        **report["ingest"],
        "stores": 2,  # one fresh store per sample
        "items": 54,
        "memories": 54,  # every turn is one memory
    }
    assert report["config"]["storage"]["path"] == "<temporary file per sample>"
    assert set(report["environment"]["versions"]) == {"astrocyte", "python", "numpy", "onnxruntime"}
    assert [r["name"] for r in report["rungs"]] == LADDER


def test_per_category_counts_match_the_fixture(report: dict[str, Any]) -> None:
    for rung in report["rungs"][:-1]:
        metrics = rung["metrics"]
        assert metrics["overall"]["count"] == 17  # categories 1-4 only
        assert {g: s["count"] for g, s in metrics["groups"].items()} == SCORED
        assert metrics["separate"]["adversarial"]["count"] == 3
        assert rung["recall"]["queries"] == 20
        assert rung["recall"]["latency_ms"]["p50"] > 0


def test_metrics_are_consistent(report: dict[str, Any]) -> None:
    for rung in report["rungs"][:-1]:
        summaries = [rung["metrics"]["overall"], *rung["metrics"]["groups"].values()]
        for summary in summaries:
            values = summary["metrics"]
            assert all(0.0 <= v <= 1.0 for v in values.values())
            for k in KS:
                assert (
                    values[f"recall_all@{k}"] <= values[f"recall@{k}"] <= values[f"recall_any@{k}"]
                )
            assert values["recall@1"] <= values["recall@5"] <= values["recall@10"]


def test_near_verbatim_questions_find_their_turn(report: dict[str, Any]) -> None:
    for name in LADDER[:-1]:
        rung = _rung(report, name)
        cat = _question(rung, "What is the name of the grey rescue cat Ines adopted?")
        assert cat["evidence"] == ["D2:7"]
        assert cat["metrics"]["recall_any@5"] == 1.0, (name, cat["retrieved"])
    # Semantic search finds a paraphrase keyword search cannot match word for word.
    semantic = _question(_rung(report, "semantic"), "Who teaches Kofi the cello?")
    assert semantic["metrics"]["recall_any@5"] == 1.0, semantic["retrieved"]


def test_image_captions_are_searchable(report: dict[str, Any]) -> None:
    photo = _question(
        _rung(report, "keyword"), "What was Ines's cat doing in the photo she shared?"
    )
    assert "D2:7" in photo["retrieved"][:5]


def test_temporal_runs_only_on_questions_that_name_a_time(report: dict[str, Any]) -> None:
    temporal = _rung(report, "+temporal")
    trace = temporal["strategy_traces"]["temporal"]
    # Relative or absolute dates in a question give the temporal strategy a range;
    # every other question skips it for want of one.
    assert trace["ran"] + trace["skipped"] == 20 and trace["errors"] == 0
    assert set(trace["reasons"]) <= {"no time range"}


def test_rerank_without_a_reranker_is_reported_not_faked(report: dict[str, Any]) -> None:
    rerank = _rung(report, "+rerank")
    assert rerank["status"] == "passthrough"
    assert rerank["metrics"] is None
    assert "identical by construction" in rerank["note"]
    assert "recall" not in rerank


def test_render_report(report: dict[str, Any]) -> None:
    text = render_report(report)
    for name in LADDER:
        assert name in text
    assert "recall@5" in text and "s.rec@10" in text and "ndcg@10" in text
    assert "s.rec = session_recall" in text  # abbreviated headers come with a legend
    assert "adversarial (separate)" in text
    assert "identical by construction" in text
