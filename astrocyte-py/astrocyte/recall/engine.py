"""Where a recall is ranked.

``RecallEngine.recall`` runs the enabled strategies concurrently per bank, fuses their
rankings with weighted RRF, hydrates and filters the records, fuses across banks when
several were asked, and applies the reranker. Cutting to the budget and building the
public result is left to the caller (the facade's recall operation).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from astrocyte.config.schema import RecallConfig
from astrocyte.recall.fusion import weighted_rrf
from astrocyte.recall.rerank import Candidate, Reranker
from astrocyte.recall.strategies import (
    GraphStrategy,
    KeywordStrategy,
    SemanticStrategy,
    Skip,
    Strategy,
    StrategyQuery,
    TemporalStrategy,
    VectorFn,
)
from astrocyte.spi import Embedder, RecordFilter, Vector
from astrocyte.stores.storeset import StoreSet
from astrocyte.types import StrategyTrace


@dataclass(slots=True)
class RankedCandidates:
    """Fused, hydrated, reranked candidates of a recall, plus the strategy traces."""

    candidates: list[Candidate]
    traces: list[StrategyTrace] = field(default_factory=list)


class RecallEngine:
    """Runs strategies, fuses, hydrates, reranks."""

    def __init__(
        self,
        stores: StoreSet,
        embedder: Embedder,
        config: RecallConfig,
        reranker: Reranker,
    ) -> None:
        self._stores = stores
        self._embedder = embedder
        self._config = config
        self._reranker = reranker
        available: dict[str, Strategy] = {
            "semantic": SemanticStrategy(stores.vectors),
            "keyword": KeywordStrategy(stores.documents),
            "graph": GraphStrategy(stores.graph, stores.documents, depth=config.graph_depth),
            "temporal": TemporalStrategy(stores.documents),
        }
        self._strategies = [available[name] for name in dict.fromkeys(config.strategies)]

    async def recall(
        self,
        query: str,
        bank_ids: Sequence[str],
        where: RecordFilter | None,
        *,
        candidates: int | None = None,
    ) -> RankedCandidates:
        """Rank memories of ``bank_ids`` for ``query``; ``where`` is a hard filter."""
        limit = candidates or self._config.candidates_per_strategy
        vector_task: asyncio.Task[Vector] | None = None

        async def query_vector() -> Vector:
            # Embedded once per recall, however many banks ask for it.
            nonlocal vector_task
            if vector_task is None:
                vector_task = asyncio.ensure_future(self._embed_query(query))
            return await vector_task

        try:
            per_bank = await asyncio.gather(
                *(self._recall_bank(query, b, where, limit, query_vector) for b in bank_ids)
            )
        finally:
            if vector_task is not None and not vector_task.done():
                vector_task.cancel()
        traces = [t for _, bank_traces in per_bank for t in bank_traces]
        if len(per_bank) == 1:
            merged = per_bank[0][0]
        else:
            merged = _fuse_banks([c for c, _ in per_bank], self._config.rrf_k)
        top_n = self._config.rerank.top_n
        head = await self._reranker.rerank(query, merged[:top_n])
        return RankedCandidates(head + merged[top_n:], traces)

    async def _embed_query(self, query: str) -> Vector:
        matrix = await self._embedder.embed([query], kind="query")
        row: Vector = matrix[0]
        return row

    async def _recall_bank(
        self,
        query: str,
        bank_id: str,
        where: RecordFilter | None,
        limit: int,
        query_vector: VectorFn,
    ) -> tuple[list[Candidate], list[StrategyTrace]]:
        sq = StrategyQuery(bank_id, query, where, limit, query_vector)
        results = await asyncio.gather(*(self._run(s, sq) for s in self._strategies))
        rankings = {s.name: ids for s, (ids, _) in zip(self._strategies, results, strict=True)}
        traces = [trace for _, trace in results]
        weights: dict[str, float] = {str(k): w for k, w in self._config.weights.items()}
        fused = weighted_rrf(rankings, weights, k=self._config.rrf_k)
        records = await self._stores.documents.get(bank_id, [f.id for f in fused])
        by_id = {r.id: r for r in records}
        out: list[Candidate] = []
        for f in fused:
            record = by_id.get(f.id)
            # Missing records are orphans of an interrupted write or delete; `where`
            # is re-checked because not every strategy can filter (graph).
            if record is None or (where is not None and not where.matches(record)):
                continue
            out.append(Candidate(record, f.score, f.ranks))
        return out, traces

    async def _run(
        self, strategy: Strategy, query: StrategyQuery
    ) -> tuple[list[str], StrategyTrace]:
        started = time.perf_counter()
        skipped = error = None
        ids: list[str] = []
        try:
            ids = await strategy.search(query)
        except Skip as skip:
            skipped = str(skip)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
        elapsed = (time.perf_counter() - started) * 1000
        trace = StrategyTrace(
            name=strategy.name,
            bank_id=query.bank_id,
            candidates=len(ids),
            elapsed_ms=round(elapsed, 3),
            skipped=skipped,
            error=error,
        )
        return ids, trace


def _fuse_banks(per_bank: Sequence[list[Candidate]], k: int) -> list[Candidate]:
    """Fuse per-bank rankings with RRF, treating each bank as one ranking."""
    by_key: dict[str, Candidate] = {}
    rankings: dict[str, list[str]] = {}
    for index, candidates in enumerate(per_bank):
        keys = []
        for c in candidates:
            key = f"{c.record.bank_id}\x1f{c.record.id}"
            by_key[key] = c
            keys.append(key)
        rankings[str(index)] = keys
    fused = weighted_rrf(rankings, k=k)
    return [Candidate(by_key[f.id].record, f.score, by_key[f.id].ranks) for f in fused]
