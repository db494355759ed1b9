"""The retain pipeline: admit → normalise → PII barrier → chunk → entities → dedup →
embed → quota → store.

A batch is validated whole before anything is embedded, embedded in one call (the
embedder batches internally), and written in one all-or-nothing store write, so a bad
item, a PII rejection, a quota refusal or a failed write leaves nothing of the batch
behind.

Policies (:mod:`astrocyte.policy`) apply here because every way in — ``retain``,
``retain_many``, the CLI, bulk ingest — goes through :meth:`RetainPipeline.retain`:

* the rate limit is checked first, before any work;
* the PII barrier runs on the *normalised* text, before chunking, so redacted values
  never reach a chunk, the keyword index, a vector, the entity graph or a hash;
* duplicates are looked up before embedding (no embedding is spent on them) and again,
  with the quota check, inside the bank's write slot, so concurrent retains can neither
  both store the same content nor together overshoot a quota.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from astrocyte import validation as v
from astrocyte.config.schema import AstrocyteConfig
from astrocyte.errors import BankNotFound, PIIRejected, QuotaExceeded, RateLimited, ValidationError
from astrocyte.identity.context import AstrocyteContext
from astrocyte.ids import new_id
from astrocyte.pipeline.chunking import chunk_text
from astrocyte.pipeline.entities import entity_id, extract_mentions
from astrocyte.pipeline.normalise import normalise, supported_content_types
from astrocyte.policy.engine import PolicyEngine
from astrocyte.policy.pii import BankPIIPlan
from astrocyte.spi import Embedder, Entity, EntityLink, MemoryRecord, MetadataValue, VectorItem
from astrocyte.stores.storeset import StoreSet
from astrocyte.types import RetainBatchResult, RetainResult

_ITEM_KEYS = frozenset({"content", "metadata", "tags", "occurred_at", "source", "content_type"})

#: Audit events list memory ids only up to this many (a bulk retain can have 10k).
_AUDIT_MAX_IDS = 100
#: Batches with more content than this (characters) are prepared in a worker thread.
_PREPARE_IN_THREAD_CHARS = 64_000
#: With exact dedup, batches of at most this many chunks are embedded while their
#: hashes are looked up; bigger ones are looked up first so duplicates skip embedding.
_EMBED_WHILE_LOOKING_UP = 16


@dataclass(frozen=True, slots=True)
class _CleanItem:
    content: str
    metadata: dict[str, MetadataValue]
    tags: tuple[str, ...]
    occurred_at: datetime | None
    source: str | None
    content_type: str


@dataclass(slots=True)
class _Prepared:
    """One item turned into records, before dedup decides whether it is written."""

    source_id: str
    records: list[MemoryRecord]
    mentions: list[list[Entity]]
    existing_ids: list[str] | None = None  # set when the item is a duplicate
    vectors: list[VectorItem] = field(default_factory=list)

    @property
    def duplicate(self) -> bool:
        return self.existing_ids is not None


class RetainPipeline:
    """Turns retain requests into stored memories, applying the policies.

    ``policy`` is the instance's :class:`~astrocyte.policy.engine.PolicyEngine`; when
    omitted one is built from ``config`` and ``stores``. Pass the engine the facade
    uses for its other operations, so rate limits and audit are shared.
    """

    def __init__(
        self,
        config: AstrocyteConfig,
        stores: StoreSet,
        embedder: Embedder,
        policy: PolicyEngine | None = None,
    ) -> None:
        self._config = config
        self._stores = stores
        self._embedder = embedder
        self.policy = policy if policy is not None else PolicyEngine(config, stores)

    def clean(self, raw: Mapping[str, Any], prefix: str = "") -> _CleanItem:
        """Validate one item's fields; ``prefix`` names it in errors (``items[3].``)."""
        unknown = set(raw) - _ITEM_KEYS
        if unknown:
            raise ValidationError(
                f"{prefix}{sorted(unknown)[0]}", "unknown field", fix=f"use {sorted(_ITEM_KEYS)}"
            )
        limits = self._config.limits
        if "content" not in raw:
            raise ValidationError(f"{prefix}content", "is required")
        content_type = raw.get("content_type", "text")
        if not isinstance(content_type, str) or content_type not in supported_content_types():
            raise ValidationError(
                f"{prefix}content_type",
                f"unknown content type {content_type!r}",
                fix=f"use one of {supported_content_types()}",
            )
        return _CleanItem(
            content=v.content(raw["content"], limits.max_content_bytes, f"{prefix}content"),
            metadata=v.metadata(raw.get("metadata"), limits.max_metadata_keys, f"{prefix}metadata"),
            tags=v.tags(raw.get("tags"), limits.max_tags, f"{prefix}tags"),
            occurred_at=v.timestamp(raw.get("occurred_at"), f"{prefix}occurred_at"),
            source=v.optional_str(raw.get("source"), f"{prefix}source"),
            content_type=content_type,
        )

    async def retain(
        self,
        bank_id: str,
        items: Sequence[_CleanItem],
        *,
        context: AstrocyteContext | None = None,
    ) -> RetainBatchResult:
        """Store already-cleaned items in ``bank_id`` as one all-or-nothing batch.

        ``context`` is the caller: its principal is rate limited and its tenant's bytes
        are counted against the tenant quota; access was already checked by the facade.
        Raises :class:`~astrocyte.errors.RateLimited`,
        :class:`~astrocyte.errors.PIIRejected` or
        :class:`~astrocyte.errors.QuotaExceeded` without storing anything.
        """
        try:
            return await self._retain(bank_id, items, context)
        except (RateLimited, PIIRejected, QuotaExceeded) as exc:
            if self.policy.audit_active:
                await self.policy.record(
                    context, "retain.rejected", bank_id, reason=exc.code, **_reason(exc)
                )
            raise

    async def _retain(
        self, bank_id: str, items: Sequence[_CleanItem], context: AstrocyteContext | None
    ) -> RetainBatchResult:
        started = time.perf_counter()
        policy = self.policy
        policy.admit(context.principal if context else "local", bank_id, "retain")
        now = datetime.now(UTC)
        plan = policy.pii_plan(bank_id)
        redacted: dict[str, int] = {}

        def prepare_all() -> list[_Prepared]:
            return [
                self._prepare(bank_id, index, item, len(items), now, plan, redacted)
                for index, item in enumerate(items)
            ]

        # Normalising, scanning, chunking and entity extraction are pure CPU work,
        # ~0.3 µs per character: a big batch goes to a thread so the loop stays free.
        if sum(len(item.content) for item in items) > _PREPARE_IN_THREAD_CHARS:
            prepared = await asyncio.to_thread(prepare_all)
        else:
            prepared = prepare_all()

        dedup, quotas = policy.dedup, policy.quotas
        # Checks that need the bank's state (duplicate lookup, memory count) run first
        # outside the write slot, overlapped with embedding, and are repeated inside
        # it only if this engine wrote to the bank meanwhile: the mark is read before
        # them, so any write they might have missed changes it.
        mark = policy.write_mark(bank_id)
        used: int | None = None
        if not dedup.exact and not quotas.memories_active:
            await self._embed(bank_id, prepared)
        elif dedup.exact and sum(len(p.records) for p in prepared) > _EMBED_WHILE_LOOKING_UP:
            # A big batch (a re-ingested file) is looked up before embedding, so
            # duplicates cost no embedding.
            used, _ = await asyncio.gather(
                quotas.memories_used(bank_id, mark),
                self._mark_exact_duplicates(bank_id, prepared),
            )
            await self._embed(bank_id, [p for p in prepared if not p.duplicate])
        else:
            # A small batch is embedded while the lookups run, so they add no latency;
            # a duplicate wastes only a few embeddings.
            # Reads first: their store calls are in flight while an in-loop embedder
            # computes.
            *_, used, _ = await asyncio.gather(
                *([self._mark_exact_duplicates(bank_id, prepared)] if dedup.exact else []),
                quotas.memories_used(bank_id, mark),
                self._embed(bank_id, prepared),
            )

        reservation = None
        async with policy.write_slot(bank_id):
            if policy.write_mark(bank_id) != mark:
                mark = policy.write_mark(bank_id)
                if dedup.exact:
                    used, _ = await asyncio.gather(
                        quotas.memories_used(bank_id, mark),
                        self._mark_exact_duplicates(bank_id, prepared),
                    )
                else:
                    used = await quotas.memories_used(bank_id, mark)
            # An item that was a duplicate at the first look but no longer is (its
            # original was forgotten meanwhile) still needs its vectors.
            await self._embed(bank_id, [p for p in prepared if not p.duplicate and not p.vectors])
            if dedup.near_threshold is not None:
                await self._mark_near_duplicates(bank_id, prepared)
            fresh = [p for p in prepared if not p.duplicate]
            records = [r for p in fresh for r in p.records]
            used = await quotas.check_memories(bank_id, len(records), used)
            if quotas.bytes_active:
                nbytes = sum(len(r.text.encode()) for r in records)
                reservation = quotas.reserve_bytes(_tenant(context), nbytes)
            written = False
            try:
                if records:
                    # The bank is created only once the batch is known to be good, so a
                    # rejected first retain leaves no empty bank behind.
                    await self._ensure_bank(bank_id)
                    entities, links = _graph(bank_id, fresh)
                    vectors = [vec for p in fresh for vec in p.vectors]
                    await self._stores.write(records, vectors, entities, links)
                    policy.note_write(bank_id)
                    if used is not None:
                        quotas.remember_count(
                            bank_id, policy.write_mark(bank_id), used + len(records)
                        )
                written = True
            finally:
                if reservation is not None:
                    policy.quotas.settle(reservation, written=written)
        if reservation is not None and policy.quotas.persists:
            await asyncio.to_thread(policy.quotas.save_ledger)

        sources = await self._existing_sources(bank_id, prepared)
        results = [
            RetainResult(
                bank_id=bank_id,
                source_id=sources.get(p.existing_ids[0], p.source_id)
                if p.existing_ids
                else p.source_id,
                memory_ids=p.existing_ids
                if p.existing_ids is not None
                else [r.id for r in p.records],
                deduplicated=p.duplicate,
            )
            for p in prepared
        ]
        if policy.audit_active:
            ids = [r.id for r in records]
            details: dict[str, Any] = {
                "items": len(prepared),
                "memories": len(records),
                "deduplicated": sum(p.duplicate for p in prepared),
                "redacted": redacted,
            }
            if len(ids) <= _AUDIT_MAX_IDS:
                details["memory_ids"] = ids
            await policy.record(context, "retain", bank_id, **details)
        return RetainBatchResult(
            bank_id=bank_id,
            results=results,
            memory_count=len(records),
            elapsed_ms=round((time.perf_counter() - started) * 1000, 3),
        )

    def _prepare(
        self,
        bank_id: str,
        index: int,
        item: _CleanItem,
        count: int,
        now: datetime,
        plan: BankPIIPlan | None,
        redacted: dict[str, int],
    ) -> _Prepared:
        prefix = f"items[{index}]." if count > 1 else ""
        text = normalise(item.content, item.content_type)
        metadata, tags, source = item.metadata, item.tags, item.source
        placeholders: frozenset[str] = frozenset()
        if plan is not None:
            before = sum(redacted.values())
            text = _scan(plan, text, f"{prefix}content", redacted)
            if self.policy.pii.scan_metadata:
                metadata = {
                    key: _scan(plan, value, f"{prefix}metadata.{key}", redacted)
                    if isinstance(value, str)
                    else value
                    for key, value in metadata.items()
                }
                tags = tuple(
                    _scan(plan, tag, f"{prefix}tags[{i}]", redacted) for i, tag in enumerate(tags)
                )
                if source is not None:
                    source = _scan(plan, source, f"{prefix}source", redacted)
            if sum(redacted.values()) > before:
                placeholders = plan.placeholders
        chunks = chunk_text(
            text,
            self._config.chunking.strategy,
            max_chars=self._config.chunking.max_chars,
            overlap=self._config.chunking.overlap,
        )
        if not chunks:
            raise ValidationError(f"{prefix}content", "is empty after normalisation")
        source_id = source or new_id("src")
        records: list[MemoryRecord] = []
        mentions: list[list[Entity]] = []
        for chunk in chunks:
            records.append(
                MemoryRecord(
                    id=new_id("mem"),
                    bank_id=bank_id,
                    text=chunk.text,
                    source_id=source_id,
                    chunk_index=chunk.index,
                    content_type=item.content_type,
                    created_at=now,
                    # A memory with no stated time is taken to have happened when it
                    # was retained, so time filters and forget(before=) see every memory.
                    occurred_at=item.occurred_at or now,
                    tags=tags,
                    metadata=metadata,
                    content_hash=hashlib.sha256(chunk.text.encode()).hexdigest(),
                )
            )
            mentions.append(
                [
                    Entity(entity_id(bank_id, m.normalized), bank_id, m.name, m.normalized, m.kind)
                    for m in extract_mentions(chunk.text)
                    # "[EMAIL]" would otherwise become an entity linking every memory
                    # that had an address redacted.
                    if m.name not in placeholders
                ]
            )
        return _Prepared(source_id, records, mentions)

    async def _mark_exact_duplicates(self, bank_id: str, prepared: list[_Prepared]) -> None:
        """Mark items whose every chunk is already stored — in the bank, or as an
        earlier item of this batch — as duplicates of those memories.

        Run twice when the bank changed in between (before embedding, then in the write
        slot), so every item is decided afresh: a duplicate's original may have been
        forgotten, or an earlier item of the batch may itself have become a duplicate.
        """
        for p in prepared:
            p.existing_ids = None
        known = await self.policy.dedup.existing(
            bank_id, [r.content_hash for p in prepared for r in p.records]
        )
        for p in prepared:
            hashes = [r.content_hash for r in p.records]
            if all(h in known for h in hashes):
                p.existing_ids = [known[h] for h in hashes]
            else:
                for r in p.records:
                    known.setdefault(r.content_hash, r.id)

    async def _existing_sources(self, bank_id: str, prepared: list[_Prepared]) -> dict[str, str]:
        """Source ids of the memories duplicates point at, so a duplicate's result
        names the source that actually holds them."""
        ids = list(dict.fromkeys(p.existing_ids[0] for p in prepared if p.existing_ids))
        if not ids:
            return {}
        return {r.id: r.source_id for r in await self._stores.documents.get(bank_id, ids)}

    async def _mark_near_duplicates(self, bank_id: str, prepared: list[_Prepared]) -> None:
        """Mark items whose every chunk has a stored neighbour at least as similar as
        ``policy.dedup.near_threshold`` (one vector search per chunk)."""
        for p in prepared:
            if p.duplicate:
                continue
            nearest: list[str] = []
            for vector in p.vectors:
                hit = await self.policy.dedup.nearest(bank_id, vector.vector)
                if hit is None:
                    break
                nearest.append(hit)
            else:
                p.existing_ids = nearest

    async def _embed(self, bank_id: str, prepared: list[_Prepared]) -> None:
        records = [r for p in prepared for r in p.records]
        if not records:
            return
        matrix = await self._embedder.embed([r.text for r in records], kind="document")
        row = 0
        for p in prepared:
            for r in p.records:
                p.vectors.append(
                    VectorItem(r.id, bank_id, matrix[row], r.tags, r.occurred_at, r.metadata)
                )
                row += 1

    async def _ensure_bank(self, bank_id: str) -> None:
        documents = self._stores.documents
        if await documents.bank_exists(bank_id):
            return
        if not self._config.banks.auto_create:
            raise BankNotFound(bank_id)
        await documents.create_bank(bank_id)


def _scan(plan: BankPIIPlan, text: str, field_name: str, redacted: dict[str, int]) -> str:
    result = plan.scan(text, field_name)
    for kind, n in result.redacted.items():
        redacted[kind] = redacted.get(kind, 0) + n
    return result.text


def _graph(bank_id: str, prepared: list[_Prepared]) -> tuple[list[Entity], list[EntityLink]]:
    entities: dict[str, Entity] = {}
    links: list[EntityLink] = []
    for p in prepared:
        for record, found in zip(p.records, p.mentions, strict=True):
            for entity in found:
                entities.setdefault(entity.id, entity)
                links.append(EntityLink(bank_id, record.id, entity.id))
    return list(entities.values()), links


def _tenant(context: AstrocyteContext | None) -> str | None:
    return getattr(context, "tenant", None) if context is not None else None


def _reason(exc: RateLimited | PIIRejected | QuotaExceeded) -> dict[str, Any]:
    """Audit details of a refusal (never the offending content)."""
    if isinstance(exc, RateLimited):
        return {"retry_after_s": exc.retry_after_s, "scope": exc.scope}
    if isinstance(exc, PIIRejected):
        return {"field": exc.field, "kinds": exc.kinds}
    return {"quota": exc.quota, "limit": exc.limit, "used": exc.used, "requested": exc.requested}
