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
from astrocyte.recall.fusion import Fused, weighted_rrf
from astrocyte.recall.rerank import Candidate, PassthroughReranker, Reranker
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
from astrocyte.spi import Embedder, MemoryRecord, RecordFilter, Vector
from astrocyte.stores.storeset import StoreSet
from astrocyte.types import StrategyTrace


@dataclass(slots=True)
class RankedCandidates:
    """The best fused candidates of a recall, hydrated and reranked, plus traces.

    Only as many candidates as the caller needs are hydrated; ``total`` counts every
    distinct memory the strategies returned and ``exhausted`` says whether all of them
    were examined (so more may exist when it is False).
    """

    candidates: list[Candidate]
    traces: list[StrategyTrace] = field(default_factory=list)
    total: int = 0
    exhausted: bool = True


@dataclass(frozen=True, slots=True)
class _Ranked:
    bank_id: str
    fused: Fused


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
        need: int,
        candidates: int | None = None,
    ) -> RankedCandidates:
        """Rank memories of ``bank_ids`` for ``query``; ``where`` is a hard filter.

        ``need`` is how many hits the caller will keep; ``candidates`` how many each
        strategy is asked for (default: ``candidates_per_strategy``).
        """
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
            merged = _fuse_banks([ranked for ranked, _ in per_bank], self._config.rrf_k)
        passthrough = isinstance(self._reranker, PassthroughReranker)
        wanted = need if passthrough else max(need, self._config.rerank.top_n)
        hydrated, exhausted = await self._hydrate(merged, where, wanted)
        if not passthrough:
            top_n = self._config.rerank.top_n
            hydrated = await self._reranker.rerank(query, hydrated[:top_n]) + hydrated[top_n:]
        return RankedCandidates(hydrated, traces, total=len(merged), exhausted=exhausted)

    async def _hydrate(
        self, ranked: Sequence[_Ranked], where: RecordFilter | None, need: int
    ) -> tuple[list[Candidate], bool]:
        """Load records best-first until ``need`` candidates pass the filter.

        Loading every fused candidate (often 150+) would cost more than the rest of a
        small recall; most callers keep 10.
        """
        out: list[Candidate] = []
        position = 0
        while position < len(ranked) and len(out) < need:
            # Over-fetch a little: some ids are filtered out or are orphans.
            step = ranked[position : position + max(2 * (need - len(out)), 8)]
            position += len(step)
            by_bank: dict[str, list[str]] = {}
            for item in step:
                by_bank.setdefault(item.bank_id, []).append(item.fused.id)
            records: dict[tuple[str, str], MemoryRecord] = {}
            for bank_id, ids in by_bank.items():
                for loaded in await self._stores.documents.get(bank_id, ids):
                    records[(bank_id, loaded.id)] = loaded
            for item in step:
                record = records.get((item.bank_id, item.fused.id))
                # Missing records are orphans of an interrupted write or delete;
                # `where` is re-checked because not every strategy can filter (graph).
                if record is None or (where is not None and not where.matches(record)):
                    continue
                out.append(Candidate(record, item.fused.score, item.fused.ranks))
        return out[:need], position >= len(ranked) and len(out) <= need

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
    ) -> tuple[list[_Ranked], list[StrategyTrace]]:
        sq = StrategyQuery(bank_id, query, where, limit, query_vector)
        results = await asyncio.gather(*(self._run(s, sq) for s in self._strategies))
        rankings = {s.name: ids for s, (ids, _) in zip(self._strategies, results, strict=True)}
        traces = [trace for _, trace in results]
        weights: dict[str, float] = {str(k): w for k, w in self._config.weights.items()}
        fused = weighted_rrf(rankings, weights, k=self._config.rrf_k)
        return [_Ranked(bank_id, f) for f in fused], traces

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


def _fuse_banks(per_bank: Sequence[list[_Ranked]], k: int) -> list[_Ranked]:
    """Fuse per-bank rankings with RRF, treating each bank as one ranking."""
    by_key: dict[str, _Ranked] = {}
    rankings: dict[str, list[str]] = {}
    for index, ranked in enumerate(per_bank):
        keys = []
        for item in ranked:
            key = f"{item.bank_id}\x1f{item.fused.id}"
            by_key[key] = item
            keys.append(key)
        rankings[str(index)] = keys
    return [
        _Ranked(
            by_key[f.id].bank_id, Fused(by_key[f.id].fused.id, f.score, by_key[f.id].fused.ranks)
        )
        for f in weighted_rrf(rankings, k=k)
    ]
