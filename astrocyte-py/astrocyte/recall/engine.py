"""Where a recall is ranked.

``RecallEngine.recall`` runs the enabled strategies concurrently per bank, fuses their
rankings with weighted RRF, hydrates and filters the records, fuses across banks when
several were asked, and applies the reranker. Cutting to the budget and building the
public result is left to the caller (the facade's recall operation).

Federated hits (:mod:`astrocyte.recall.proxy`) join the same fusion: each proxy source
is one more ranking of the bank it serves (it is queried while the local strategies
run), and the caller's external context one more ranking of the recall (of the bank's
fusion when one bank is recalled, of the cross-bank fusion otherwise).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import httpx

from astrocyte.config.schema import RecallConfig
from astrocyte.recall.fusion import Fused, weighted_rrf
from astrocyte.recall.proxy import OutsideHit, ProxySource, query_proxy, utc_now
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
from astrocyte.types import ProxyReport, StrategyTrace

#: Ranking name of the caller's external context in fusion and in ``RecallHit.ranks``.
EXTERNAL = "external"


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
    proxies: list[ProxyReport] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class FederatedQuery:
    """A proxy source to ask during a recall, for one bank (its storage id)."""

    source: ProxySource
    bank_id: str


@dataclass(frozen=True, slots=True)
class RecallHints:
    """Optional inputs of a recall beyond the query and the hard filter.

    ``time_hint``/``keyword_text``: see :class:`~astrocyte.recall.strategies.StrategyQuery`.
    ``proxies``: proxy sources to query concurrently; ``external``: caller-given hits.
    ``now``: the clock for outside hits' ``created_at``.
    """

    time_hint: tuple[datetime | None, datetime | None] | None = None
    keyword_text: str | None = None
    proxies: Sequence[FederatedQuery] = ()
    external: Sequence[OutsideHit] = ()
    now: datetime | None = None


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
        hints: RecallHints | None = None,
    ) -> RankedCandidates:
        """Rank memories of ``bank_ids`` for ``query``; ``where`` is a hard filter.

        ``need`` is how many hits the caller will keep; ``candidates`` how many each
        strategy is asked for (default: ``candidates_per_strategy``). ``hints`` adds
        a parsed time range, proxy sources and external context.
        """
        hints = hints or RecallHints()
        limit = candidates or self._config.candidates_per_strategy
        vector_task: asyncio.Task[Vector] | None = None

        async def query_vector() -> Vector:
            # Embedded once per recall, however many banks ask for it.
            nonlocal vector_task
            if vector_task is None:
                vector_task = asyncio.ensure_future(self._embed_query(query))
            return await vector_task

        now = hints.now or utc_now()
        client: httpx.AsyncClient | None = None
        proxy_tasks: list[asyncio.Task[tuple[ProxyReport, list[OutsideHit]]]] = []
        if hints.proxies:
            # Started before the local strategies so a proxy's latency overlaps theirs;
            # each task bounds itself by its source's timeout and never raises.
            client = httpx.AsyncClient(follow_redirects=False)
            proxy_tasks = [
                asyncio.ensure_future(
                    query_proxy(client, f.source, f.bank_id, query, limit=limit, now=now)
                )
                for f in hints.proxies
            ]
        try:
            per_bank = await asyncio.gather(
                *(self._recall_bank(query, b, where, limit, query_vector, hints) for b in bank_ids)
            )
            proxied = list(await asyncio.gather(*proxy_tasks))
        finally:
            if vector_task is not None and not vector_task.done():
                vector_task.cancel()
            for task in proxy_tasks:
                task.cancel()
            if proxy_tasks:
                await asyncio.gather(*proxy_tasks, return_exceptions=True)
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.aclose()
        outside: dict[tuple[str, str], OutsideHit] = {}
        extra: dict[str, dict[str, list[str]]] = {}
        for query_spec, (_, hits) in zip(hints.proxies, proxied, strict=True):
            ids = extra.setdefault(query_spec.bank_id, {}).setdefault(query_spec.source.origin, [])
            for hit in hits:
                outside[(query_spec.bank_id, hit.record.id)] = hit
                ids.append(hit.record.id)
        external_ids = [h.record.id for h in hints.external]
        for hit in hints.external:
            outside[(hit.record.bank_id, hit.record.id)] = hit
        if external_ids and len(bank_ids) == 1:
            # One bank: the external context is one more ranking of that bank's fusion.
            extra.setdefault(bank_ids[0], {})[EXTERNAL] = external_ids
            for hit in hints.external:
                # Ranked under that bank, but the record still names no bank.
                outside[(bank_ids[0], hit.record.id)] = hit
            external_ids = []
        traces = [t for _, bank_traces in per_bank for t in bank_traces]
        ranked = [
            self._fuse_bank(bank_id, rankings, extra.get(bank_id, {}))
            for bank_id, (rankings, _) in zip(bank_ids, per_bank, strict=True)
        ]
        if external_ids:
            ranked.append(
                [
                    _Ranked(h.record.bank_id, Fused(h.record.id, 0.0, {EXTERNAL: rank}))
                    for rank, h in enumerate(hints.external, start=1)
                ]
            )
        if len(ranked) == 1:
            merged = ranked[0]
        else:
            weights = {str(len(ranked) - 1): self._config.external_weight} if external_ids else {}
            merged = _fuse_banks(ranked, self._config.rrf_k, weights)
        passthrough = isinstance(self._reranker, PassthroughReranker)
        wanted = need if passthrough else max(need, self._config.rerank.top_n)
        hydrated, exhausted = await self._hydrate(merged, where, wanted, outside)
        if not passthrough:
            top_n = self._config.rerank.top_n
            hydrated = await self._reranker.rerank(query, hydrated[:top_n]) + hydrated[top_n:]
        return RankedCandidates(
            hydrated,
            traces,
            total=len(merged),
            exhausted=exhausted,
            proxies=[report for report, _ in proxied],
        )

    def _fuse_bank(
        self,
        bank_id: str,
        rankings: Mapping[str, Sequence[str]],
        extra: Mapping[str, Sequence[str]],
    ) -> list[_Ranked]:
        """One bank's fusion: its strategies plus the outside rankings it gets."""
        weights: dict[str, float] = {str(k): w for k, w in self._config.weights.items()}
        for name in extra:
            weights[name] = (
                self._config.external_weight if name == EXTERNAL else self._config.proxy_weight
            )
        fused = weighted_rrf({**rankings, **extra}, weights, k=self._config.rrf_k)
        return [_Ranked(bank_id, f) for f in fused]

    async def _hydrate(
        self,
        ranked: Sequence[_Ranked],
        where: RecordFilter | None,
        need: int,
        outside: Mapping[tuple[str, str], OutsideHit] | None = None,
    ) -> tuple[list[Candidate], bool]:
        """Load records best-first until ``need`` candidates pass the filter.

        Loading every fused candidate (often 150+) would cost more than the rest of a
        small recall; most callers keep 10. Outside hits (proxy, external) carry their
        record already; the hard filter applies to them too, so a hit that cannot show
        it matches (no tags, no time) is dropped rather than trusted.
        """
        outside = outside or {}
        out: list[Candidate] = []
        position = 0
        while position < len(ranked) and len(out) < need:
            # Over-fetch a little: some ids are filtered out or are orphans.
            step = ranked[position : position + max(2 * (need - len(out)), 8)]
            position += len(step)
            by_bank: dict[str, list[str]] = {}
            for item in step:
                if (item.bank_id, item.fused.id) not in outside:
                    by_bank.setdefault(item.bank_id, []).append(item.fused.id)
            records: dict[tuple[str, str], MemoryRecord] = {}
            for bank_id, ids in by_bank.items():
                for loaded in await self._stores.documents.get(bank_id, ids):
                    records[(bank_id, loaded.id)] = loaded
            for item in step:
                key = (item.bank_id, item.fused.id)
                hit = outside.get(key)
                record = hit.record if hit is not None else records.get(key)
                # Missing records are orphans of an interrupted write or delete;
                # `where` is re-checked because not every strategy can filter (graph).
                if record is None or (where is not None and not where.matches(record)):
                    continue
                origin = hit.origin if hit is not None else "local"
                out.append(Candidate(record, item.fused.score, item.fused.ranks, origin))
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
        hints: RecallHints,
    ) -> tuple[dict[str, list[str]], list[StrategyTrace]]:
        sq = StrategyQuery(
            bank_id,
            query,
            where,
            limit,
            query_vector,
            time_hint=hints.time_hint,
            keyword_text=hints.keyword_text,
        )
        results = await asyncio.gather(*(self._run(s, sq) for s in self._strategies))
        rankings = {s.name: ids for s, (ids, _) in zip(self._strategies, results, strict=True)}
        return rankings, [trace for _, trace in results]

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


def _fuse_banks(
    per_bank: Sequence[list[_Ranked]], k: int, weights: Mapping[str, float] | None = None
) -> list[_Ranked]:
    """Fuse per-bank rankings with RRF, treating each bank as one ranking.

    The per-bank rank survives in ``ranks`` (the cross-bank ranks are not kept);
    ``weights`` maps a ranking's index (as a string) to its weight, default 1.
    """
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
        for f in weighted_rrf(rankings, weights, k=k)
    ]
