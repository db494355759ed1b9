"""The shared run machinery, fast: caching embedder, ladder planning, input checks.

Uses the hashing test embedder and the in-memory store, so nothing here loads a model.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pytest

from astrocyte.bench.locomo import run_locomo
from astrocyte.bench.longmemeval import run_longmemeval
from astrocyte.bench.quality import CachingEmbedder, check_ks, render_report, safe_bank_id
from astrocyte.embedders import HashingEmbedder
from astrocyte.errors import ValidationError
from astrocyte.recall.rerank import Candidate
from astrocyte.spi import Vector

DATA = Path(__file__).parent / "data"
LOCOMO = DATA / "locomo_synthetic.json"
LONGMEMEVAL = DATA / "longmemeval_synthetic.json"
MEMORY = {"storage": {"backend": "memory"}}


class CountingEmbedder(HashingEmbedder):
    """Records every text it is asked to embed."""

    def __init__(self) -> None:
        super().__init__(dimensions=64)
        self.seen: list[str] = []
        self.closed = False

    async def embed(
        self, texts: Sequence[str], *, kind: Literal["document", "query"] = "document"
    ) -> Vector:
        self.seen.extend(texts)
        return await super().embed(texts, kind=kind)

    async def close(self) -> None:
        self.closed = True


async def test_caching_embedder_embeds_each_text_once() -> None:
    inner = CountingEmbedder()
    cached = CachingEmbedder(inner)
    first = await cached.embed(["a b", "c d", "a b"])
    assert inner.seen == ["a b", "c d"]
    assert (cached.hits, cached.misses) == (0, 2)
    second = await cached.embed(["c d", "e f"])
    assert inner.seen == ["a b", "c d", "e f"]
    assert (cached.hits, cached.misses) == (1, 3)
    direct = await HashingEmbedder(dimensions=64).embed(["a b", "c d", "a b", "e f"])
    assert np.array_equal(first, direct[:3])
    assert np.array_equal(second, direct[[1, 3]])
    assert first.dtype == np.float32 and first.shape == (3, 64)
    # Queries are never cached, so each rung pays for its own query embedding.
    await cached.embed(["a b"], kind="query")
    await cached.embed(["a b"], kind="query")
    assert inner.seen[-2:] == ["a b", "a b"]
    assert (await cached.embed([])).shape == (0, 64)
    assert cached.model_id == inner.model_id and cached.dimensions == 64
    await cached.close()
    assert not inner.closed  # the wrapped embedder belongs to the caller


async def test_caching_embedder_evicts_least_recently_used() -> None:
    inner = CountingEmbedder()
    cached = CachingEmbedder(inner, max_entries=2)
    await cached.embed(["one", "two"])
    await cached.embed(["one"])  # "one" is now the most recent
    # More new texts in one call than the cache holds still come back complete.
    out = await cached.embed(["three", "four", "five"])
    assert out.shape == (3, 64)
    inner.seen.clear()
    await cached.embed(["one", "four", "five"])
    assert inner.seen == ["one"]


def test_check_ks_sorts_and_dedupes() -> None:
    assert check_ks([10, 5, 10]) == [5, 10]
    for bad in ([], [0], [5, "10"], "5", [True], [1001]):
        with pytest.raises(ValidationError):
            check_ks(bad)  # type: ignore[arg-type]


def test_safe_bank_id() -> None:
    assert safe_bank_id("locomo", "conv-26") == "locomo-conv-26"
    assert safe_bank_id("lme", "a/b c") == "lme-a_b_c"
    assert len(safe_bank_id("lme", "x" * 300)) == 128


async def test_bad_inputs_fail_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="does not exist"):
        await run_locomo(tmp_path / "missing.json", embedder=HashingEmbedder())
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    with pytest.raises(ValidationError, match="not valid JSON"):
        await run_longmemeval(broken, embedder=HashingEmbedder())
    mapping = tmp_path / "mapping.json"
    mapping.write_text('{"a": 1}', encoding="utf-8")
    with pytest.raises(ValidationError, match="JSON list"):
        await run_locomo(mapping, embedder=HashingEmbedder())
    with pytest.raises(ValidationError, match="limit"):
        await run_locomo(LOCOMO, limit=0, embedder=HashingEmbedder())


class Reverse:
    """A reranker that reverses the fused order (to prove the +rerank rung runs it)."""

    async def rerank(self, query: str, candidates: Sequence[Candidate]) -> list[Candidate]:
        return list(reversed(candidates))


async def test_configured_reranker_is_its_own_rung(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("astrocyte_bench_test_rerank")
    module.Reverse = Reverse  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    config = {**MEMORY, "recall": {"rerank": {"provider": f"{module.__name__}:Reverse"}}}
    report = await run_locomo(
        LOCOMO, ks=[5], config=config, ablation=True, embedder=HashingEmbedder()
    )
    rungs = {r["name"]: r for r in report["rungs"]}
    assert [r["name"] for r in report["rungs"]] == [
        "keyword",
        "semantic",
        "rrf(semantic+keyword)",
        "+graph",
        "+temporal",
        "+rerank",
    ]
    assert all(r["status"] == "ran" for r in report["rungs"])
    assert rungs["+rerank"]["reranker"] == f"{module.__name__}:Reverse"
    assert rungs["+temporal"]["reranker"] == "none"
    # Reversing the top 50 of a ~30-turn bank moves the evidence out of the top 5.
    temporal = rungs["+temporal"]["metrics"]["overall"]["metrics"]
    reranked = rungs["+rerank"]["metrics"]["overall"]["metrics"]
    assert reranked["recall@5"] < temporal["recall@5"]
    # The memory backend is not redirected (nothing touches disk).
    assert report["config"]["storage"]["backend"] == "memory"
    assert not any("redirected" in note for note in report["notes"])


async def test_without_ablation_the_config_is_one_rung(tmp_path: Path) -> None:
    config = tmp_path / "astrocyte.yaml"
    config.write_text(
        "storage:\n  backend: memory\nrecall:\n  strategies: [semantic, keyword]\n"
        "llm:\n  provider: openai\n  model: none\n  api_key: sk-not-real\n",
        encoding="utf-8",
    )
    report = await run_locomo(LOCOMO, ks=[3, 5], config=config, limit=1, embedder=HashingEmbedder())
    assert [r["name"] for r in report["rungs"]] == ["config"]
    assert report["rungs"][0]["strategies"] == ["semantic", "keyword"]
    assert report["dataset"]["samples"] == 1
    assert report["dataset"]["questions"] == 14
    assert report["limit"] == 1
    assert report["config_path"] == str(config)
    assert report["config"]["llm"] is None  # removed: retrieval scoring uses no LLM
    assert any("llm removed" in note for note in report["notes"])
    assert "sk-not-real" not in repr(report)
    text = render_report(report)
    assert "config" in text and "recall@3" in text


async def test_report_of_an_empty_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.json"
    empty.write_text("[]", encoding="utf-8")
    report = await run_longmemeval(empty, config=MEMORY, embedder=HashingEmbedder())
    assert report["dataset"]["evaluated"] == 0
    assert report["rungs"][0]["metrics"]["overall"] is None
    assert "longmemeval" in render_report(report)
