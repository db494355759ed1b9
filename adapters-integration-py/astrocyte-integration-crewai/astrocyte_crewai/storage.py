"""An Astrocyte bank as the storage backend of CrewAI's unified ``Memory``."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

try:
    from crewai.memory.storage.backend import StorageBackend
    from crewai.memory.types import MemoryRecord, ScopeInfo
    from crewai.memory.unified_memory import Memory
except ImportError as exc:  # pragma: no cover - exercised only without crewai
    raise ImportError(
        "astrocyte_crewai needs crewai 1.x: pip install astrocyte-integration-crewai"
    ) from exc

from astrocyte.brain import Astrocyte
from astrocyte.errors import BankNotFound
from astrocyte.identity.context import AstrocyteContext
from astrocyte.integrations.common import find_records, run_sync
from astrocyte.spi import MemoryRecord as StoredMemory
from astrocyte.spi import MetadataValue, RecordFilter
from astrocyte.types import RecallHit

__all__ = [
    "ID_FIELD",
    "SCOPE_FIELD",
    "AstrocyteStorage",
    "astrocyte_memory",
]

#: Metadata field holding the CrewAI record id (also the memory's ``source_id``).
ID_FIELD = "crewai_id"
#: Metadata field holding the CrewAI scope path (``/crew/<name>/agent/<role>/...``).
SCOPE_FIELD = "crewai_scope"
_CATEGORIES_FIELD = "crewai_categories"
_METADATA_FIELD = "crewai_metadata"
_IMPORTANCE_FIELD = "crewai_importance"
_SOURCE_FIELD = "crewai_source"
_PRIVATE_FIELD = "crewai_private"
_CREATED_FIELD = "crewai_created_at"
_QUERY_CACHE = 4096


def _in_scope(scope: str, prefix: str | None) -> bool:
    """Path-aware prefix match: ``/a`` holds ``/a`` and ``/a/b``, not ``/ab``."""
    if prefix is None or not prefix.strip("/"):
        return True
    base = "/" + prefix.strip("/")
    return scope == base or scope.startswith(base + "/")


def _naive_utc(moment: datetime) -> datetime:
    # CrewAI compares record times with datetime.utcnow() (naive UTC).
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _passes(record: MemoryRecord, where: dict[str, Any] | None) -> bool:
    return all(record.metadata.get(k) == v for k, v in (where or {}).items())


@dataclass
class _Stored:
    """One CrewAI record as held in the bank: its chunks, in order."""

    record: MemoryRecord
    memory_ids: list[str]


class AstrocyteStorage(StorageBackend):
    """CrewAI's ``StorageBackend`` over one Astrocyte bank.

    ``Memory(storage=AstrocyteStorage(brain, "crew-research", context=ctx),
    embedder=storage.embedder, llm=...)`` — or :func:`astrocyte_memory`, which does
    exactly that. Every call runs as ``context`` (default: the local single user) and
    is checked against ``access_grants``: ``save`` needs ``write``; ``search``,
    ``get_record``, ``list_*``, ``count`` and ``get_scope_info`` need ``read``;
    ``delete``, ``update`` and ``reset`` need ``read`` and ``forget`` (``update`` also
    ``write``). A denial raises :class:`astrocyte.AccessDenied`.

    ``search`` is :meth:`Astrocyte.recall` (semantic + keyword fusion) on the query's
    text, which this storage recovers from :attr:`embedder` (CrewAI hands a storage
    only the query vector); see the package README for the mapping and limits."""

    def __init__(
        self,
        brain: Astrocyte,
        bank_id: str,
        *,
        context: AstrocyteContext | None = None,
    ) -> None:
        self.brain = brain
        self.bank_id = bank_id
        self.context = context
        self._texts: OrderedDict[tuple[float, ...], str] = OrderedDict()
        self._lock = threading.Lock()

    # --- the embedder CrewAI must use with this storage ------------------------------

    def embedder(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed ``texts`` with the brain's embedder and remember each vector's text.

        Pass this as ``Memory(embedder=...)``: :meth:`search` gets only a vector from
        CrewAI and looks its text up here, so that recall runs on text (keyword and
        semantic strategies) and the similarities match the bank's own vectors."""
        texts = list(texts)
        if not texts:
            return []
        vectors = run_sync(self.brain.embedder.embed(texts))
        out = [[float(x) for x in row] for row in vectors]
        with self._lock:
            for text, vector in zip(texts, out, strict=True):
                self._texts[tuple(vector)] = text
                self._texts.move_to_end(tuple(vector))
            while len(self._texts) > _QUERY_CACHE:
                self._texts.popitem(last=False)
        return out

    def _query_text(self, query_embedding: Sequence[float]) -> str:
        with self._lock:
            text = self._texts.get(tuple(float(x) for x in query_embedding))
        if text is None:
            raise ValueError(
                "AstrocyteStorage.search got a vector its embedder did not make: build the "
                "Memory with embedder=storage.embedder (or use astrocyte_memory())"
            )
        return text

    # --- mapping ------------------------------------------------------------------------

    @staticmethod
    def _metadata(record: MemoryRecord) -> dict[str, MetadataValue]:
        created = _naive_utc(record.created_at)
        return {
            ID_FIELD: record.id,
            SCOPE_FIELD: record.scope or "/",
            _CATEGORIES_FIELD: json.dumps(list(record.categories), ensure_ascii=False),
            _METADATA_FIELD: json.dumps(record.metadata, ensure_ascii=False, default=str),
            _IMPORTANCE_FIELD: float(record.importance),
            _SOURCE_FIELD: record.source,
            _PRIVATE_FIELD: bool(record.private),
            _CREATED_FIELD: created.isoformat(),
        }

    @staticmethod
    def _record(text: str, meta: dict[str, MetadataValue] | Any) -> MemoryRecord | None:
        """The CrewAI record a memory stands for, or ``None`` for a memory this storage
        did not write (no ``crewai_id``)."""
        record_id = meta.get(ID_FIELD)
        if not isinstance(record_id, str):
            return None
        created = datetime.fromisoformat(str(meta.get(_CREATED_FIELD)))
        importance = meta.get(_IMPORTANCE_FIELD)
        source = meta.get(_SOURCE_FIELD)
        return MemoryRecord(
            id=record_id,
            content=text,
            scope=str(meta.get(SCOPE_FIELD) or "/"),
            categories=json.loads(str(meta.get(_CATEGORIES_FIELD) or "[]")),
            metadata=json.loads(str(meta.get(_METADATA_FIELD) or "{}")),
            importance=float(importance) if isinstance(importance, int | float) else 0.5,
            created_at=created,
            last_accessed=created,
            source=source if isinstance(source, str) else None,
            private=meta.get(_PRIVATE_FIELD) is True,
        )

    # --- async core ----------------------------------------------------------------------

    async def asave(self, records: list[MemoryRecord]) -> None:
        """Retain ``records`` in one batch: each record's content becomes one memory
        (or several chunks, if long) whose ``source_id`` is the CrewAI id."""
        if not records:
            return
        items = [
            {
                "content": r.content,
                "metadata": self._metadata(r),
                "source": r.id,
                "occurred_at": _naive_utc(r.created_at).replace(tzinfo=UTC),
            }
            for r in records
        ]
        await self.brain.retain_many(items, self.bank_id, context=self.context)

    async def asearch(
        self,
        query_embedding: list[float],
        scope_prefix: str | None = None,
        categories: list[str] | None = None,
        metadata_filter: dict[str, Any] | None = None,
        limit: int = 10,
        min_score: float = 0.0,
    ) -> list[tuple[MemoryRecord, float]]:
        """Recall on the query's text; each record's score is the cosine similarity of
        its text to the query (what CrewAI's thresholds expect), best first."""
        if limit <= 0:
            return []
        query = self._query_text(query_embedding)
        cap = self.brain.config.limits.max_results
        # Scope, category and metadata filters run after recall: fetch extra candidates.
        fetch = min(cap, max(4 * limit, 20))
        try:
            result = await self.brain.recall(
                query, self.bank_id, max_results=fetch, context=self.context
            )
        except BankNotFound:  # nothing saved yet: the bank is created on first save
            return []
        found: dict[str, tuple[MemoryRecord, RecallHit]] = {}
        for hit in result.hits:
            record = self._record(hit.text, hit.provenance.metadata)
            if record is None or record.id in found:
                continue
            if not _in_scope(record.scope, scope_prefix):
                continue
            if categories and not set(categories) & set(record.categories):
                continue
            if not _passes(record, metadata_filter):
                continue
            found[record.id] = (record, hit)
        if not found:
            return []
        pairs = list(found.values())
        vectors = await self.brain.embedder.embed([hit.text for _, hit in pairs])
        query_vector = np.asarray(query_embedding, dtype=np.float32)
        scored = [
            (record, float(np.clip(np.dot(vector, query_vector), 0.0, 1.0)))
            for (record, _), vector in zip(pairs, vectors, strict=True)
        ]
        scored = [(r, s) for r, s in scored if s >= min_score]
        scored.sort(key=lambda pair: pair[1], reverse=True)
        return scored[:limit]

    async def _stored(self, where: RecordFilter | None = None) -> list[_Stored]:
        """Every record this storage wrote in the bank, newest first."""
        # Listing goes through the document store, authorised exactly as a recall.
        memories = await find_records(self.brain, self.bank_id, where, context=self.context)
        chunks: dict[str, list[StoredMemory]] = {}
        for memory in memories:
            record_id = memory.metadata.get(ID_FIELD)
            if isinstance(record_id, str):
                chunks.setdefault(record_id, []).append(memory)
        out: list[_Stored] = []
        for parts in chunks.values():
            parts.sort(key=lambda m: m.chunk_index)
            text = " ".join(m.text for m in parts)
            record = self._record(text, dict(parts[0].metadata))
            if record is not None:
                out.append(_Stored(record, [m.id for m in parts]))
        out.sort(key=lambda s: s.record.created_at, reverse=True)
        return out

    async def _in(self, scope_prefix: str | None) -> list[MemoryRecord]:
        return [s.record for s in await self._stored() if _in_scope(s.record.scope, scope_prefix)]

    async def adelete(
        self,
        scope_prefix: str | None = None,
        categories: list[str] | None = None,
        record_ids: list[str] | None = None,
        older_than: datetime | None = None,
        metadata_filter: dict[str, Any] | None = None,
    ) -> int:
        """Forget the records matching every given criterion; returns how many."""
        wanted = set(record_ids) if record_ids is not None else None
        doomed: list[str] = []
        count = 0
        for stored in await self._stored():
            r = stored.record
            if wanted is not None and r.id not in wanted:
                continue
            if not _in_scope(r.scope, scope_prefix):
                continue
            if categories and not set(categories) & set(r.categories):
                continue
            if older_than is not None and r.created_at >= _naive_utc(older_than):
                continue
            if not _passes(r, metadata_filter):
                continue
            doomed.extend(stored.memory_ids)
            count += 1
        if doomed:
            await self.brain.forget(self.bank_id, memory_ids=doomed, context=self.context)
        return count

    async def aupdate(self, record: MemoryRecord) -> None:
        """Replace the record with ``record.id`` (forget, then retain)."""
        await self.adelete(record_ids=[record.id])
        await self.asave([record])

    async def aget_record(self, record_id: str) -> MemoryRecord | None:
        """The record with ``record_id``, or ``None``."""
        found = await self._stored(RecordFilter(metadata={ID_FIELD: record_id}))
        return found[0].record if found else None

    async def alist_records(
        self, scope_prefix: str | None = None, limit: int = 200, offset: int = 0
    ) -> list[MemoryRecord]:
        """Records in the scope, newest first."""
        return (await self._in(scope_prefix))[offset : offset + limit]

    async def aget_scope_info(self, scope: str) -> ScopeInfo:
        """Record count, categories, date range and child scopes of ``scope``."""
        records = await self._in(scope)
        return ScopeInfo(
            path=scope,
            record_count=len(records),
            categories=sorted({c for r in records for c in r.categories}),
            oldest_record=min((r.created_at for r in records), default=None),
            newest_record=max((r.created_at for r in records), default=None),
            child_scopes=_children([r.scope for r in records], scope),
        )

    # --- StorageBackend (sync entry points on the shared background loop) --------------

    def save(self, records: list[MemoryRecord]) -> None:
        """Blocking :meth:`asave`."""
        run_sync(self.asave(records))

    def search(
        self,
        query_embedding: list[float],
        scope_prefix: str | None = None,
        categories: list[str] | None = None,
        metadata_filter: dict[str, Any] | None = None,
        limit: int = 10,
        min_score: float = 0.0,
    ) -> list[tuple[MemoryRecord, float]]:
        """Blocking :meth:`asearch`."""
        return run_sync(
            self.asearch(
                query_embedding, scope_prefix, categories, metadata_filter, limit, min_score
            )
        )

    def delete(
        self,
        scope_prefix: str | None = None,
        categories: list[str] | None = None,
        record_ids: list[str] | None = None,
        older_than: datetime | None = None,
        metadata_filter: dict[str, Any] | None = None,
    ) -> int:
        """Blocking :meth:`adelete`."""
        return run_sync(
            self.adelete(scope_prefix, categories, record_ids, older_than, metadata_filter)
        )

    def update(self, record: MemoryRecord) -> None:
        """Blocking :meth:`aupdate`."""
        run_sync(self.aupdate(record))

    def get_record(self, record_id: str) -> MemoryRecord | None:
        """Blocking :meth:`aget_record`."""
        return run_sync(self.aget_record(record_id))

    def list_records(
        self, scope_prefix: str | None = None, limit: int = 200, offset: int = 0
    ) -> list[MemoryRecord]:
        """Blocking :meth:`alist_records`."""
        return run_sync(self.alist_records(scope_prefix, limit, offset))

    def get_scope_info(self, scope: str) -> ScopeInfo:
        """Blocking :meth:`aget_scope_info`."""
        return run_sync(self.aget_scope_info(scope))

    def list_scopes(self, parent: str = "/") -> list[str]:
        """Immediate child scopes of ``parent`` that hold records."""
        return _children([r.scope for r in run_sync(self._in(parent))], parent)

    def list_categories(self, scope_prefix: str | None = None) -> dict[str, int]:
        """Category → number of records in the scope."""
        counts: dict[str, int] = {}
        for r in run_sync(self._in(scope_prefix)):
            for c in r.categories:
                counts[c] = counts.get(c, 0) + 1
        return counts

    def count(self, scope_prefix: str | None = None) -> int:
        """Number of records in the scope (subscopes included)."""
        return len(run_sync(self._in(scope_prefix)))

    def reset(self, scope_prefix: str | None = None) -> None:
        """Forget every record this storage wrote in the scope (all, for ``None``)."""
        run_sync(self.adelete(scope_prefix=scope_prefix))


def _children(scopes: Sequence[str], parent: str) -> list[str]:
    base = "/" + parent.strip("/") if parent.strip("/") else ""
    out: set[str] = set()
    for scope in scopes:
        rest = scope[len(base) :].strip("/") if _in_scope(scope, parent) else ""
        if rest:
            out.add(f"{base}/{rest.split('/')[0]}")
    return sorted(out)


def astrocyte_memory(
    brain: Astrocyte,
    bank_id: str,
    *,
    context: AstrocyteContext | None = None,
    **memory_fields: Any,
) -> Memory:
    """A CrewAI ``Memory`` whose records live in ``bank_id``, running as ``context``.

    ``memory_fields`` go to ``Memory`` (``llm=`` for CrewAI's extraction and analysis,
    ``root_scope=``, ``read_only=``, scoring weights...); ``storage`` and ``embedder``
    are this adapter's. Pass the result as ``Crew(memory=...)`` or ``Agent(memory=...)``."""
    for owned in ("storage", "embedder"):
        if owned in memory_fields:
            raise TypeError(f"astrocyte_memory sets {owned!r} itself")
    storage = AstrocyteStorage(brain, bank_id, context=context)
    return Memory(storage=storage, embedder=storage.embedder, **memory_fields)
