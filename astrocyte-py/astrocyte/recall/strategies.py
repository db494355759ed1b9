"""Recall strategies: each turns a query into a best-first list of memory ids.

The engine runs them concurrently and fuses their lists (:mod:`astrocyte.recall.fusion`).
A strategy that has nothing to contribute for a query raises :class:`Skip` with the
reason, which shows up in the recall trace.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from astrocyte.pipeline.entities import query_name_candidates
from astrocyte.spi import DocumentStore, GraphStore, RecordFilter, Vector, VectorStore
from astrocyte.stores.text import COMMON_WORD_MIN_BANK, COMMON_WORD_SHARE

VectorFn = Callable[[], Awaitable[Vector]]
"""Returns the query embedding (computed once per recall, on first await)."""


class Skip(Exception):
    """Raised by a strategy that does not apply to this query (not an error)."""


@dataclass(frozen=True, slots=True)
class StrategyQuery:
    """What every strategy gets: the bank, the query, the hard filter and a limit.

    ``vector`` is awaited only by strategies that need the query embedding; it is
    computed once per recall and shared. ``time_hint`` is a time range read from the
    query text: only the temporal strategy uses it, as a ranking signal, never as a
    filter. ``keyword_text`` is the query with that time expression taken out, for
    keyword search (dates in words rarely appear in the memories themselves).
    """

    bank_id: str
    text: str
    where: RecordFilter | None
    limit: int
    vector: VectorFn
    time_hint: tuple[datetime | None, datetime | None] | None = None
    keyword_text: str | None = None


class Strategy(Protocol):
    """A recall strategy."""

    name: str

    async def search(self, query: StrategyQuery) -> list[str]:
        """Memory ids best-first, at most ``query.limit``."""
        ...


class SemanticStrategy:
    """Nearest neighbours of the query embedding."""

    name = "semantic"

    def __init__(self, vectors: VectorStore) -> None:
        self._vectors = vectors

    async def search(self, query: StrategyQuery) -> list[str]:
        """Cosine-nearest memories."""
        vector = await query.vector()
        hits = await self._vectors.search(
            query.bank_id, vector, limit=query.limit, where=query.where
        )
        return [h.id for h in hits]


class KeywordStrategy:
    """BM25-style keyword match, as implemented by the document store."""

    name = "keyword"

    def __init__(self, documents: DocumentStore) -> None:
        self._documents = documents

    async def search(self, query: StrategyQuery) -> list[str]:
        """Best keyword matches."""
        text = query.text if query.keyword_text is None else query.keyword_text
        if not text.strip():
            raise Skip("query is only a time expression")
        hits = await self._documents.keyword_search(
            query.bank_id, text, limit=query.limit, where=query.where
        )
        return [h.id for h in hits]


class GraphStrategy:
    """Memories that mention the entities named in the query, or their neighbours.

    Entities mentioned by a large share of the bank (a speaker's own name in a chat
    log) are ignored, by the same rule keyword search applies to common words: they
    would pull in a third of the bank and, fused, promote whatever else ranks. So are
    entities linked to more than :data:`FANOUT` times the candidates asked for: which
    of their memories come back would be an arbitrary sample, and loading every link
    would dominate the recall's latency on a large bank.
    """

    #: See the class docstring.
    FANOUT = 10

    name = "graph"

    def __init__(self, graph: GraphStore, documents: DocumentStore, depth: int = 1) -> None:
        self._graph = graph
        self._documents = documents
        self._depth = depth

    async def search(self, query: StrategyQuery) -> list[str]:
        """Memories linked to known entities the query names, closest first."""
        names = query_name_candidates(query.text)
        if not names:
            raise Skip("query names no entity")
        entities = await self._graph.find_entities(query.bank_id, names)
        if not entities:
            raise Skip("no known entity in query")
        cap = self.FANOUT * query.limit
        if any(e.mentions > cap for e in entities):
            entities = [e for e in entities if e.mentions <= cap]
            if not entities:
                raise Skip(f"only entities linked to more than {cap} memories")
        bank_size = await self._documents.count(query.bank_id)
        if bank_size >= COMMON_WORD_MIN_BANK:
            entities = [e for e in entities if e.mentions <= COMMON_WORD_SHARE * bank_size]
            if not entities:
                raise Skip("only entities common to the whole bank")
        # Graph hits carry no payload to filter on; the engine applies `where` to
        # every hydrated record, so the limit is widened to leave room for that.
        limit = query.limit if query.where is None else query.limit * 4
        hits = await self._graph.neighbourhood(
            query.bank_id, [e.id for e in entities], depth=self._depth, limit=limit
        )
        return [h.memory_id for h in hits]


class TemporalStrategy:
    """Most recent memories inside the requested time range.

    It only runs when the recall has a time range — given by the caller (also a hard
    filter for every strategy) or read from the query (``time_hint``; used here only):
    recency over a whole bank says nothing about relevance and would only add noise to
    fusion.
    """

    name = "temporal"

    def __init__(self, documents: DocumentStore) -> None:
        self._documents = documents

    async def search(self, query: StrategyQuery) -> list[str]:
        """In-range memories, newest first."""
        where = query.where
        if (where is None or (where.time_from is None and where.time_to is None)) and (
            query.time_hint is not None
        ):
            start, end = query.time_hint
            where = replace(where or RecordFilter(), time_from=start, time_to=end)
        if where is None or (where.time_from is None and where.time_to is None):
            raise Skip("no time range")
        return await self._documents.find(query.bank_id, where, limit=query.limit, order="newest")
