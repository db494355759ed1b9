"""The graph strategy finds evidence that semantic and keyword search miss.

The team profile declares that "Cap" and the employee id "E-4417" are both Tomas Varga.
The evidence turn calls him "Cap" and talks about a watermelon; the question names him
by his id and asks what he contributes to the offsite. No word is shared (keyword
misses) and the meaning is far apart while several distractor turns are about what
others bring to the offsite (semantic misses). Retain linked the evidence to every
name of the alias group, so the graph reaches it from "E-4417".
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from astrocyte import Astrocyte, load_config
from astrocyte.embedders import LocalOnnxEmbedder

EVIDENCE = "Maya: Cap promised he would handle the watermelon for Saturday."
TURNS = [
    EVIDENCE,
    "Omar: I am contributing the speaker system to the offsite.",
    "Priya: My contribution to the offsite is the projector and cables.",
    "Maya: Every employee contributing to the offsite should tell Priya.",
    "Omar: The offsite budget covers what each employee is contributing.",
    "Priya: Lena is contributing board games to the team offsite.",
    "Omar: Employees who contribute snacks to the offsite get reimbursed.",
    "Maya: The venue for the offsite has a big garden and a grill.",
    "Priya: Remember to book the bus for the offsite by Thursday.",
    "Omar: Our manager asked what everybody is bringing to the offsite.",
    "Maya: My flat in Porto finally has working heating.",
    "Priya: The quarterly report is due next week.",
]
QUESTION = "What is employee E-4417 contributing to the offsite?"
PROFILE = {"team": {"aliases": {"Tomas Varga": ["E-4417", "Cap"]}}}


async def _top5(
    strategies: Sequence[str], tmp_path: Path, embedder: LocalOnnxEmbedder
) -> list[str]:
    config = load_config(
        {
            "storage": {
                "backend": "embedded",
                "path": str(tmp_path / f"{'-'.join(strategies)}.db"),
            },
            "recall": {"strategies": list(strategies)},
            "extraction_profiles": PROFILE,
        }
    )
    async with Astrocyte(config, embedder=embedder) as brain:
        await brain.retain_many(
            [
                {"content": t, "content_type": "conversation", "profile": "team", "source": str(i)}
                for i, t in enumerate(TURNS)
            ],
            "team",
        )
        result = await brain.recall(QUESTION, "team", max_results=5)
        return [h.text for h in result.hits]


@pytest.mark.model
async def test_graph_finds_alias_evidence_semantic_and_keyword_miss(
    tmp_path: Path, local_embedder: LocalOnnxEmbedder
) -> None:
    assert EVIDENCE in await _top5(["graph"], tmp_path, local_embedder)
    assert EVIDENCE not in await _top5(["semantic"], tmp_path, local_embedder)
    assert EVIDENCE not in await _top5(["keyword"], tmp_path, local_embedder)
    # Fused, the graph's evidence makes it into the top 5 as well.
    assert EVIDENCE in await _top5(["semantic", "keyword", "graph"], tmp_path, local_embedder)
