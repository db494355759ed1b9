"""The retain pipeline: admit → normalise → PII barrier → chunk → extract (entities,
metadata, tags) → dedup → embed → quota → store.

How an item is chunked and what is extracted from it is decided by its *extraction
profile* (:mod:`astrocyte.pipeline.profiles`): the one the item names, else the built-in
for its content type, which reproduces the behaviour from before profiles existed.
Conversations and transcripts whose lines name speakers are chunked by whole turns
(:func:`~astrocyte.pipeline.dialogue.chunk_dialogue`) and every chunk carries its
``speakers`` and ``turn_ids`` (and ``speaker`` when there is one) in its metadata;
caller metadata wins over these derived keys. A conversation may also be sent as a
list of ``{speaker, text, timestamp?, turn_id?}`` turns.

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
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from astrocyte import validation as v
from astrocyte.config.schema import AstrocyteConfig
from astrocyte.errors import BankNotFound, PIIRejected, QuotaExceeded, RateLimited, ValidationError
from astrocyte.identity.context import AstrocyteContext
from astrocyte.ids import keyed_id, new_id
from astrocyte.pipeline.chunking import chunk_text
from astrocyte.pipeline.dialogue import Turn, chunk_dialogue, parse_turns, turns_from_records
from astrocyte.pipeline.entities import EntityMention, entity_id, extract_mentions
from astrocyte.pipeline.llm_entities import LLMEntityExtractor
from astrocyte.pipeline.normalise import (
    email_date,
    normalise,
    normalise_event,
    normalise_text,
    supported_content_types,
)
from astrocyte.pipeline.profiles import (
    ProfileRegistry,
    ResolvedProfile,
    apply_tag_rules,
    expand_aliases,
    json_path,
    map_metadata,
)
from astrocyte.policy.engine import PolicyEngine
from astrocyte.policy.pii import BankPIIPlan
from astrocyte.recall.authority import TIER_METADATA_KEY, AuthorityTiers
from astrocyte.spi import (
    Embedder,
    Entity,
    EntityLink,
    LLMProvider,
    MemoryRecord,
    MetadataValue,
    VectorItem,
)
from astrocyte.stores.storeset import StoreSet
from astrocyte.types import RetainBatchResult, RetainResult

_ITEM_KEYS = frozenset(
    {
        "content",
        "metadata",
        "tags",
        "occurred_at",
        "source",
        "content_type",
        "profile",
        "idempotency_key",
    }
)
#: Longest accepted idempotency key (characters).
MAX_IDEMPOTENCY_KEY_CHARS = 512
#: Content types whose text is parsed into speaker turns and chunked by whole turns.
DIALOGUE_TYPES = frozenset({"conversation", "transcript"})

log = logging.getLogger(__name__)

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
    profile: str | None = None
    #: Turns of a structured transcript (``content`` is then their rendered text).
    turns: tuple[Turn, ...] | None = None
    #: The caller's key for this item: a replay of a stored key is a no-op.
    idempotency_key: str | None = None


@dataclass(slots=True)
class _Prepared:
    """One item turned into records, before dedup decides whether it is written."""

    source_id: str
    records: list[MemoryRecord]
    mentions: list[list[Entity]]
    existing_ids: list[str] | None = None  # set when the item is a duplicate
    vectors: list[VectorItem] = field(default_factory=list)
    #: Set when the item's profile wants LLM entities; ``mentions`` hold the rules'
    #: until :meth:`RetainPipeline._extract_with_llm` replaces them.
    llm_profile: ResolvedProfile | None = None
    placeholders: frozenset[str] = frozenset()
    #: The item's idempotency key, if it has one.
    key: str | None = None
    #: Set when the key was already stored: the ids stored then (a replay).
    replayed: list[str] | None = None

    @property
    def duplicate(self) -> bool:
        return self.existing_ids is not None or self.replayed is not None


class RetainPipeline:
    """Turns retain requests into stored memories, applying the policies.

    ``policy`` is the instance's :class:`~astrocyte.policy.engine.PolicyEngine`; when
    omitted one is built from ``config`` and ``stores``. Pass the engine the facade
    uses for its other operations, so rate limits and audit are shared.

    ``llm`` serves profiles with ``entity_extraction: llm``; without one they fall
    back to rule-based entities (with a warning).
    """

    def __init__(
        self,
        config: AstrocyteConfig,
        stores: StoreSet,
        embedder: Embedder,
        policy: PolicyEngine | None = None,
        llm: LLMProvider | None = None,
    ) -> None:
        self._config = config
        self._stores = stores
        self._embedder = embedder
        self.policy = policy if policy is not None else PolicyEngine(config, stores)
        self.llm = llm
        self.profiles = ProfileRegistry(config.extraction_profiles, config.chunking)
        #: Stamps each memory's recall-authority tier; None while the section is off.
        self.authority = AuthorityTiers.from_config(config.recall_authority)

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
        profile = v.optional_str(raw.get("profile"), f"{prefix}profile")
        if profile is not None:
            self.profiles.get(profile, f"{prefix}profile")
        turns: tuple[Turn, ...] | None = None
        content = raw["content"]
        if isinstance(content, list | tuple):
            turns = _structured_turns(content, content_type, f"{prefix}content")
            # The rendered text is what the size limit, dedup and the thread heuristic see.
            content = "\n".join(t.render() for t in turns)
        return _CleanItem(
            content=v.content(content, limits.max_content_bytes, f"{prefix}content"),
            metadata=v.metadata(raw.get("metadata"), limits.max_metadata_keys, f"{prefix}metadata"),
            tags=v.tags(raw.get("tags"), limits.max_tags, f"{prefix}tags"),
            occurred_at=v.timestamp(raw.get("occurred_at"), f"{prefix}occurred_at"),
            source=v.optional_str(raw.get("source"), f"{prefix}source"),
            content_type=content_type,
            profile=profile,
            turns=turns,
            idempotency_key=_idempotency_key(raw.get("idempotency_key"), prefix),
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
        # Replays of stored idempotency keys drop out first: a redelivered batch costs
        # one primary-key lookup, no embedding and no write.
        everything = prepared
        if any(p.key is not None for p in prepared):
            await self._mark_replays(bank_id, prepared)
            prepared = [p for p in prepared if p.replayed is None]
        if any(p.llm_profile is not None for p in prepared):
            await self._extract_with_llm(bank_id, prepared)

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
        keyed = any(p.key is not None for p in prepared)
        async with policy.write_slot(bank_id, always=keyed):
            if policy.write_mark(bank_id) != mark:
                mark = policy.write_mark(bank_id)
                if keyed:
                    # Another retain of this engine wrote meanwhile, maybe the same keys.
                    await self._mark_replays(bank_id, prepared)
                    prepared = [p for p in prepared if p.replayed is None]
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
                memory_ids=p.replayed
                if p.replayed is not None
                else p.existing_ids
                if p.existing_ids is not None
                else [r.id for r in p.records],
                deduplicated=p.duplicate,
            )
            for p in everything
        ]
        if policy.audit_active:
            ids = [r.id for r in records]
            details: dict[str, Any] = {
                "items": len(everything),
                "memories": len(records),
                "deduplicated": sum(p.duplicate for p in everything),
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
        profile = self.profiles.for_item(item.profile, item.content_type)
        rules = profile.config
        # The event object is parsed only when the profile reads it, so items without
        # a profile cost exactly what they did before profiles existed.
        event: Any = None
        if item.content_type == "event" and profile.needs_payload:
            normalise(item.content, "event")  # validates: a JSON object, or a precise error
            event = json.loads(item.content)
        if item.turns is not None:
            text = item.content
        elif event is not None and rules.content_path is not None:
            text = _text_at(event, rules.content_path, profile.name, f"{prefix}content")
        else:
            text = normalise(item.content, item.content_type)
        metadata, tags, source = item.metadata, item.tags, item.source
        turns: list[Turn] | None = list(item.turns) if item.turns is not None else None
        placeholders: frozenset[str] = frozenset()
        if plan is not None:
            before = sum(redacted.values())
            if turns is not None:
                # Scanned turn by turn, so each keeps its id and the error names it.
                turns = [
                    Turn(
                        _scan(plan, t.speaker, f"{prefix}content[{i}].speaker", redacted)
                        if t.speaker
                        else t.speaker,
                        _scan(plan, t.text, f"{prefix}content[{i}].text", redacted),
                        t.turn_id,
                        t.timestamp,
                    )
                    for i, t in enumerate(turns)
                ]
                text = "\n".join(t.render() for t in turns)
            else:
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
        if turns is None and item.content_type in DIALOGUE_TYPES:
            parsed = parse_turns(text)
            # Without a single named speaker it is prose, chunked as such.
            turns = parsed if any(t.speaker for t in parsed) else None

        derived: dict[str, MetadataValue] = {}
        occurred_at = item.occurred_at
        if profile.needs_payload:
            payload = event if event is not None else _envelope(item, text, metadata, turns)
            derived = map_metadata(rules.metadata_mapping, payload)
            if plan is not None:
                # Mapped values come from the content, which is always scanned.
                derived = {
                    key: _scan(plan, value, f"{prefix}metadata.{key}", redacted)
                    if isinstance(value, str)
                    else value
                    for key, value in derived.items()
                }
            tags = tuple(dict.fromkeys((*tags, *apply_tag_rules(rules, payload))))
            if occurred_at is None and rules.occurred_at_path is not None:
                stamps = [x for x in json_path(payload, rules.occurred_at_path) if x is not None]
                if stamps:
                    occurred_at = v.timestamp(stamps[0], f"{prefix}content")
        elif rules.tags:
            tags = tuple(dict.fromkeys((*tags, *rules.tags)))
        if occurred_at is None and item.content_type == "email":
            occurred_at = email_date(item.content)
        if occurred_at is None and turns:
            occurred_at = next((t.timestamp for t in turns if t.timestamp is not None), None)

        # (text, index, metadata, occurred_at) of every chunk.
        pieces: list[tuple[str, int, dict[str, MetadataValue], datetime | None]] = []
        base = {**derived, **metadata} if derived else metadata
        if turns:
            for dchunk in chunk_dialogue(turns, max_chars=profile.chunking.max_chars):
                # Metadata values are JSON scalars, so lists are comma-joined strings.
                turn_meta: dict[str, MetadataValue] = {"turn_ids": ",".join(dchunk.turn_ids)}
                if dchunk.speakers:
                    turn_meta["speakers"] = ", ".join(dchunk.speakers)
                if len(dchunk.speakers) == 1:
                    turn_meta["speaker"] = dchunk.speakers[0]
                if dchunk.partial:
                    turn_meta["partial_turn"] = True
                # The caller's keys win: they know their data better than the parser.
                chunk_meta = {**derived, **turn_meta, **metadata}
                when = item.occurred_at or dchunk.first_timestamp or occurred_at
                pieces.append((dchunk.text, dchunk.index, chunk_meta, when))
        else:
            chunking = profile.chunking
            for chunk in chunk_text(
                text, chunking.strategy, max_chars=chunking.max_chars, overlap=chunking.overlap
            ):
                pieces.append((chunk.text, chunk.index, base, occurred_at))
        if not pieces:
            raise ValidationError(f"{prefix}content", "is empty after normalisation")
        if self.authority is not None:
            tier = self.authority.for_retain(
                bank_id,
                {**derived, **item.metadata},
                profile_tier=rules.authority_tier,
                field_name=f"{prefix}metadata",
            )
            if tier is not None:
                pieces = [(t, i, {**m, TIER_METADATA_KEY: tier}, w) for t, i, m, w in pieces]
        key = item.idempotency_key
        if key is None:
            source_id = source or new_id("src")
        else:
            # Ids derived from the key: a replay finds (and at worst overwrites) the
            # very same memories instead of adding copies, even across processes.
            source_id = source or keyed_id("src", bank_id, key)
        records: list[MemoryRecord] = []
        mentions: list[list[Entity]] = []
        for chunk_text_, chunk_index, chunk_meta, when in pieces:
            records.append(
                MemoryRecord(
                    id=new_id("mem") if key is None else keyed_id("mem", bank_id, key, chunk_index),
                    bank_id=bank_id,
                    text=chunk_text_,
                    source_id=source_id,
                    chunk_index=chunk_index,
                    content_type=item.content_type,
                    created_at=now,
                    # A memory with no stated time is taken to have happened when it
                    # was retained, so time filters and forget(before=) see every memory.
                    occurred_at=when or now,
                    tags=tags,
                    metadata=chunk_meta,
                    content_hash=hashlib.sha256(chunk_text_.encode()).hexdigest(),
                )
            )
            found: list[EntityMention] = []
            if rules.entity_extraction != "none":
                # llm items start with the rules' entities: the LLM step replaces them,
                # and they are the fallback when it cannot.
                found = extract_mentions(chunk_text_, gazetteers=profile.gazetteer)
                if profile.alias_groups:
                    found = expand_aliases(found, profile.alias_groups)
            mentions.append(_entities(bank_id, found, placeholders))
        return _Prepared(
            source_id,
            records,
            mentions,
            llm_profile=profile if rules.entity_extraction == "llm" else None,
            placeholders=placeholders,
            key=key,
        )

    async def _extract_with_llm(self, bank_id: str, prepared: list[_Prepared]) -> None:
        """Replace the rule-based entities of ``llm``-profile items with the LLM's."""
        if self.llm is None:
            log.warning(
                "entity_extraction: llm but no LLM is configured; using rule-based entities"
            )
            return
        for p in prepared:
            profile = p.llm_profile
            if profile is None:
                continue
            extractor = LLMEntityExtractor(self.llm, gazetteers=profile.gazetteer)
            results = await extractor.extract_many([r.text for r in p.records])
            p.mentions = [
                _entities(
                    bank_id,
                    expand_aliases(result.mentions, profile.alias_groups)
                    if profile.alias_groups
                    else result.mentions,
                    p.placeholders,
                )
                for result in results
            ]

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

    async def _mark_replays(self, bank_id: str, prepared: list[_Prepared]) -> None:
        """Mark keyed items whose key is already stored in the bank — or used by an
        earlier item of this batch — as replays of those memories.

        Keyed ids are derived from (bank, key, chunk), so one primary-key lookup of
        the batch's first-chunk ids says which keys are stored; writes are
        all-or-nothing, so a stored first chunk means the whole item is.
        """
        keyed = [p for p in prepared if p.key is not None and p.replayed is None]
        if not keyed:
            return
        stored = {
            r.id
            for r in await self._stores.documents.get(
                bank_id, [r.id for p in keyed for r in p.records]
            )
        }
        first_use: dict[str, _Prepared] = {}
        for p in keyed:
            assert p.key is not None
            if p.records[0].id in stored:
                p.replayed = [r.id for r in p.records if r.id in stored]
            elif p.key in first_use:
                p.replayed = [r.id for r in first_use[p.key].records]
            else:
                first_use[p.key] = p

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


def _idempotency_key(value: object, prefix: str) -> str | None:
    """A retain item's ``idempotency_key``: None, or a non-blank string of at most
    :data:`MAX_IDEMPOTENCY_KEY_CHARS` characters."""
    if value is None:
        return None
    field_name = f"{prefix}idempotency_key"
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(field_name, "must be a non-empty string", fix="e.g. 'orders/3/1042'")
    if len(value) > MAX_IDEMPOTENCY_KEY_CHARS:
        raise ValidationError(
            field_name,
            f"is {len(value)} characters, over the limit of {MAX_IDEMPOTENCY_KEY_CHARS}",
            fix="hash long keys (e.g. sha256 hex) before passing them",
        )
    return value


def _scan(plan: BankPIIPlan, text: str, field_name: str, redacted: dict[str, int]) -> str:
    result = plan.scan(text, field_name)
    for kind, n in result.redacted.items():
        redacted[kind] = redacted.get(kind, 0) + n
    return result.text


def _entities(
    bank_id: str, mentions: Sequence[EntityMention], placeholders: frozenset[str]
) -> list[Entity]:
    return [
        Entity(entity_id(bank_id, m.normalized), bank_id, m.name, m.normalized, m.kind)
        for m in mentions
        # "[EMAIL]" would otherwise become an entity linking every memory that had an
        # address redacted.
        if m.name not in placeholders
    ]


def _structured_turns(
    content: Sequence[Any], content_type: str, field_name: str
) -> tuple[Turn, ...]:
    """A list of ``{speaker, text, timestamp?, turn_id?}`` as validated turns; errors
    name the item's field (``items[2].content[0].text``), not ``turns[0]``."""
    if content_type not in DIALOGUE_TYPES:
        raise ValidationError(
            field_name,
            f"a list of turns needs content_type conversation or transcript, not {content_type!r}",
            fix="pass content_type='conversation', or send the content as a string",
        )
    try:
        turns = turns_from_records(content)
    except ValidationError as exc:
        inner = exc.message.removeprefix(f"{exc.field}: ")
        raise ValidationError(
            field_name + exc.field.removeprefix("turns"), inner, fix=exc.fix
        ) from None
    if not turns:
        raise ValidationError(field_name, "has no turn with text")
    return tuple(turns)


def _text_at(event: Any, path: str, profile: str, field_name: str) -> str:
    """The text a profile's ``content_path`` selects from an event."""
    values = [x for x in json_path(event, path) if x is not None]
    if not values:
        raise ValidationError(
            field_name,
            f"extraction profile {profile!r}: content_path {path} matches nothing",
            fix="send the field, or retain with another profile",
        )
    parts = [
        x
        if isinstance(x, str)
        else normalise_event(json.dumps(x))
        if isinstance(x, dict)
        else json.dumps(x)
        for x in values
    ]
    return normalise_text("\n\n".join(parts))


def _envelope(
    item: _CleanItem, text: str, metadata: Mapping[str, MetadataValue], turns: list[Turn] | None
) -> dict[str, Any]:
    """The payload profile paths read for content that is not an event."""
    payload: dict[str, Any] = {
        "content": text,
        "metadata": dict(metadata),
        "content_type": item.content_type,
        "source": item.source,
    }
    if turns:
        payload["turns"] = [
            {"speaker": t.speaker, "text": t.text, "turn_id": t.turn_id} for t in turns
        ]
    return payload


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
