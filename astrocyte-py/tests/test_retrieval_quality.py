"""Hybrid RRF recall beats every single strategy on a conversation written for it.

`data/hybrid_conversation.jsonl` (ours) is a three-session chat between two colleagues
mixing personal news with look-alike operational lines that differ only in sequential
identifiers (invoices INV-21041.., tickets OPS-5601.., access codes PK-7731..). The
questions are of two kinds:

* identifier questions: the embedding model sees "OPS-5606" as nearly the same as
  "OPS-5605", so semantic search alone confuses the look-alikes; BM25 matches exactly;
* paraphrase questions ("sibling relocate" for "brother went to live"): no shared
  words, so BM25 alone finds nothing; the embedding model does.

Runs on the embedded store with the real local embedding model.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from astrocyte import Astrocyte, load_config
from astrocyte.embedders import LocalOnnxEmbedder

DATA = Path(__file__).parent / "data" / "hybrid_conversation.jsonl"

IDENTIFIER_QUESTIONS = {
    "What does invoice INV-21046 cover?": "D1:12",
    "What is on invoice INV-21043?": "D1:3",
    "Which flight is TP1352?": "D1:6",
    "What was ticket OPS-5606 about?": "D2:11",
    "What did ticket OPS-5602 report?": "D2:4",
    "What is PK-7734 the code for?": "D3:6",
}
PARAPHRASE_QUESTIONS = {
    "Which city did Priya's sibling relocate to?": "D1:9",
    "What kind of pet did Priya get?": "D2:1",
    "What instrument is Omar studying?": "D2:7",
    "What health advice did Omar receive?": "D2:8",
    "Is Priya going part-time?": "D3:11",
}
QUESTIONS = {**IDENTIFIER_QUESTIONS, **PARAPHRASE_QUESTIONS}
HYBRID = ["semantic", "keyword", "graph", "temporal"]


async def _top5_turns(
    strategies: Sequence[str], tmp_path: Path, embedder: LocalOnnxEmbedder
) -> dict[str, list[str]]:
    """For each question, the turn ids of the top-5 hits with these strategies."""
    config = load_config(
        {
            "storage": {
                "backend": "embedded",
                "path": str(tmp_path / f"{'-'.join(strategies)}.db"),
            },
            "recall": {"strategies": list(strategies)},
        }
    )
    items = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines()]
    async with Astrocyte(config, embedder=embedder) as brain:
        await brain.retain_many(items, "team")
        out = {}
        for question in QUESTIONS:
            result = await brain.recall(question, "team", max_results=5)
            out[question] = [str(h.provenance.metadata["turn_id"]) for h in result.hits]
        return out


def _missed(top5: dict[str, list[str]]) -> set[str]:
    return {q for q, gold in QUESTIONS.items() if gold not in top5[q]}


@pytest.mark.model
async def test_hybrid_rrf_beats_each_single_strategy_on_evidence_recall_at_5(
    tmp_path: Path, local_embedder: LocalOnnxEmbedder
) -> None:
    hybrid = await _top5_turns(HYBRID, tmp_path, local_embedder)
    singles = {
        name: await _top5_turns([name], tmp_path, local_embedder)
        for name in ("semantic", "keyword", "graph")
    }
    # Hybrid finds the exact evidence turn of every question in its top 5.
    for question, gold in QUESTIONS.items():
        assert gold in hybrid[question], (question, hybrid[question])
    # Each single strategy misses some, for the reason the fixture was built around.
    assert _missed(singles["keyword"]) == set(PARAPHRASE_QUESTIONS)
    semantic_missed = _missed(singles["semantic"])
    assert semantic_missed and semantic_missed <= set(IDENTIFIER_QUESTIONS)
    assert set(PARAPHRASE_QUESTIONS) <= _missed(singles["graph"])
    recall_at_5 = {name: 1 - len(_missed(top5)) / len(QUESTIONS) for name, top5 in singles.items()}
    assert all(score < 1.0 for score in recall_at_5.values()), recall_at_5
