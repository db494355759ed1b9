"""What every framework adapter needs, whatever the framework: a sync bridge, a hit's
provenance as flat metadata, and the ``remember`` / ``recall`` tool bodies.

This module imports no framework. Framework modules (``astrocyte.integrations.<name>``)
and the separately installed integration packages build on it so that tools, retrievers
and memories behave the same in every framework: the same tool descriptions, the same
answer text, the same provenance keys.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from astrocyte.brain import Astrocyte
from astrocyte.errors import BankNotFound
from astrocyte.identity.access import storage_bank_id
from astrocyte.identity.context import LOCAL_CONTEXT, AstrocyteContext
from astrocyte.identity.patterns import Permission
from astrocyte.spi import MemoryRecord, MetadataValue, RecordFilter
from astrocyte.types import RecallHit, RecallResult

__all__ = [
    "RECALL_DESCRIPTION",
    "REMEMBER_DESCRIPTION",
    "MemoryTools",
    "find_records",
    "format_hits",
    "hit_metadata",
    "readable_storage",
    "recall_hits",
    "run_sync",
]

T = TypeVar("T")

#: Tool description of ``remember`` (what the model reads when choosing a tool).
REMEMBER_DESCRIPTION = (
    "Store a fact in long-term memory so it can be recalled later. "
    "Input: the fact, as a self-contained sentence."
)
#: Tool description of ``recall``.
RECALL_DESCRIPTION = (
    "Search long-term memory for facts relevant to a query. Returns the best matches, one per line."
)

# --- sync bridge -------------------------------------------------------------------------

_loop_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None


def _background_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _loop_lock:
        if _loop is None or _loop.is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(
                target=loop.run_forever, name="astrocyte-integrations", daemon=True
            ).start()
            _loop = loop
        return _loop


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion from sync code and return its result.

    It runs on one private background event loop shared by all integrations, so sync
    framework entry points also work where a loop is already running (a notebook, an
    async framework calling a sync tool). Within one process prefer one style per
    :class:`Astrocyte`: its stores are bound to the first loop that uses them."""
    return asyncio.run_coroutine_threadsafe(coro, _background_loop()).result()


# --- provenance --------------------------------------------------------------------------


def hit_metadata(hit: RecallHit) -> dict[str, Any]:
    """A recall hit's provenance as JSON-ready flat metadata.

    Keys: ``memory_id``, ``bank_id``, ``score``, ``origin``, ``source_id``,
    ``chunk_index``, ``content_type``, ``occurred_at`` / ``created_at`` (ISO 8601 or
    ``None``), ``tags`` (list) and ``metadata`` (the metadata given at retain)."""
    p = hit.provenance
    return {
        "memory_id": hit.memory_id,
        "bank_id": p.bank_id,
        "score": hit.score,
        "origin": hit.origin,
        "source_id": p.source_id,
        "chunk_index": p.chunk_index,
        "content_type": p.content_type,
        "occurred_at": p.occurred_at.isoformat() if p.occurred_at else None,
        "created_at": p.created_at.isoformat(),
        "tags": list(p.tags),
        "metadata": dict(p.metadata),
    }


def format_hits(result: RecallResult | Sequence[RecallHit]) -> str:
    """Hits as numbered lines (``"1. text"``), or ``"No memories found."``."""
    hits = result.hits if isinstance(result, RecallResult) else result
    if not hits:
        return "No memories found."
    return "\n".join(f"{i}. {hit.text}" for i, hit in enumerate(hits, 1))


async def recall_hits(
    brain: Astrocyte, query: str, bank_id: str | None, **kwargs: Any
) -> list[RecallHit]:
    """``brain.recall(query, bank_id, **kwargs).hits``, except that a bank nobody has
    written to yet has no hits instead of raising :class:`~astrocyte.BankNotFound`.

    Every integration recalls this way: an agent's first turn, before anything was
    retained, must not fail. It reveals nothing: grants are checked before existence, so
    a caller without ``read`` still gets :class:`~astrocyte.AccessDenied`."""
    try:
        result = await brain.recall(query, bank_id, **kwargs)
    except BankNotFound:
        return []
    return list(result.hits)


# --- exact reads -------------------------------------------------------------------------


def readable_storage(brain: Astrocyte, bank_id: str, context: AstrocyteContext | None) -> str:
    """Authorise ``context`` to read ``bank_id`` exactly as a recall would be (grant check,
    then the recall rate limit) and return the bank's storage id (tenant applied).

    For adapters whose framework needs exact reads — a session's history in order, an item
    by key, a listing — that ranking cannot give: they read the document store directly
    and must pass through here first."""
    caller = context if context is not None else LOCAL_CONTEXT
    brain.access.check(caller, bank_id, Permission.READ)
    storage = storage_bank_id(caller.tenant, bank_id)
    brain.policy.admit(caller.principal, storage, "recall")
    return storage


async def find_records(
    brain: Astrocyte,
    bank_id: str,
    where: RecordFilter | None = None,
    *,
    context: AstrocyteContext | None = None,
    limit: int | None = None,
    order: Literal["newest", "oldest"] | None = None,
) -> list[MemoryRecord]:
    """The memories of ``bank_id`` matching ``where`` (every one by default), read from
    the document store after :func:`readable_storage`; ``order`` sorts by ``occurred_at``.
    A bank nobody has written to yet has none. Not audited as a recall (the audit log
    records facade calls only)."""
    storage = readable_storage(brain, bank_id, context)
    documents = brain.stores.documents
    try:
        ids = await documents.find(storage, where or RecordFilter(), limit=limit, order=order)
        return await documents.get(storage, ids) if ids else []
    except BankNotFound:
        return []


# --- tools -------------------------------------------------------------------------------


@dataclass(frozen=True)
class MemoryTools:
    """The bodies of the ``remember`` and ``recall`` tools, bound to one bank and caller.

    Framework modules wrap these methods in their own tool types. A denied or invalid
    call raises Astrocyte's typed error (:class:`~astrocyte.AccessDenied`,
    :class:`~astrocyte.ValidationError`, ...) like any tool error, so the framework
    reports it the way it reports tool failures."""

    brain: Astrocyte
    bank_id: str
    context: AstrocyteContext | None = None
    max_results: int = 5
    tags: Sequence[str] | None = None
    metadata: dict[str, MetadataValue] = field(default_factory=dict)

    async def remember(self, content: str) -> str:
        """Retain ``content``; answers with the stored memory ids."""
        result = await self.brain.retain(
            content,
            self.bank_id,
            tags=list(self.tags) if self.tags is not None else None,
            metadata=dict(self.metadata) or None,
            context=self.context,
        )
        return f"Remembered ({result.chunk_count} memory, id {', '.join(result.memory_ids)})."

    async def recall(self, query: str) -> str:
        """Recall up to ``max_results`` memories for ``query`` as numbered lines."""
        hits = await recall_hits(
            self.brain, query, self.bank_id, max_results=self.max_results, context=self.context
        )
        return format_hits(hits)

    def remember_sync(self, content: str) -> str:
        """Blocking :meth:`remember` (see :func:`run_sync`)."""
        return run_sync(self.remember(content))

    def recall_sync(self, query: str) -> str:
        """Blocking :meth:`recall` (see :func:`run_sync`)."""
        return run_sync(self.recall(query))
