"""The retain pipeline: validate → normalise → chunk → extract entities → embed → store.

A batch is validated whole before anything is embedded, embedded in one call (the
embedder batches internally), and written in one all-or-nothing store write, so a bad
item or a failed write leaves nothing of the batch behind.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from astrocyte import validation as v
from astrocyte.config.schema import AstrocyteConfig
from astrocyte.errors import BankNotFound, ValidationError
from astrocyte.identity.context import AstrocyteContext
from astrocyte.pipeline.chunking import chunk_text
from astrocyte.pipeline.entities import entity_id, extract_mentions
from astrocyte.pipeline.normalise import normalise, supported_content_types
from astrocyte.spi import Embedder, Entity, EntityLink, MemoryRecord, MetadataValue, VectorItem
from astrocyte.stores.storeset import StoreSet
from astrocyte.types import RetainBatchResult, RetainResult

_ITEM_KEYS = frozenset({"content", "metadata", "tags", "occurred_at", "source", "content_type"})


@dataclass(frozen=True, slots=True)
class _CleanItem:
    content: str
    metadata: dict[str, MetadataValue]
    tags: tuple[str, ...]
    occurred_at: datetime | None
    source: str | None
    content_type: str


class RetainPipeline:
    """Turns retain requests into stored memories."""

    def __init__(self, config: AstrocyteConfig, stores: StoreSet, embedder: Embedder) -> None:
        self._config = config
        self._stores = stores
        self._embedder = embedder

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

        ``context`` is the caller, for policies that depend on who retains (quotas per
        tenant, audit); access was already checked by the facade.
        """
        started = time.perf_counter()
        now = datetime.now(UTC)
        records: list[MemoryRecord] = []
        results: list[RetainResult] = []
        entities: dict[str, Entity] = {}
        links: list[EntityLink] = []
        for index, item in enumerate(items):
            field = f"items[{index}].content" if len(items) > 1 else "content"
            text = normalise(item.content, item.content_type)
            chunks = chunk_text(
                text,
                self._config.chunking.strategy,
                max_chars=self._config.chunking.max_chars,
                overlap=self._config.chunking.overlap,
            )
            if not chunks:
                raise ValidationError(field, "is empty after normalisation")
            source_id = item.source or f"src_{uuid.uuid4().hex}"
            ids: list[str] = []
            for chunk in chunks:
                record = MemoryRecord(
                    id=f"mem_{uuid.uuid4().hex}",
                    bank_id=bank_id,
                    text=chunk.text,
                    source_id=source_id,
                    chunk_index=chunk.index,
                    content_type=item.content_type,
                    created_at=now,
                    # A memory with no stated time is taken to have happened when it
                    # was retained, so time filters and forget(before=) see every memory.
                    occurred_at=item.occurred_at or now,
                    tags=item.tags,
                    metadata=item.metadata,
                    content_hash=hashlib.sha256(chunk.text.encode()).hexdigest(),
                )
                records.append(record)
                ids.append(record.id)
                for mention in extract_mentions(chunk.text):
                    eid = entity_id(bank_id, mention.normalized)
                    entities.setdefault(
                        eid, Entity(eid, bank_id, mention.name, mention.normalized, mention.kind)
                    )
                    links.append(EntityLink(bank_id, record.id, eid))
            results.append(RetainResult(bank_id=bank_id, source_id=source_id, memory_ids=ids))

        matrix = await self._embedder.embed([r.text for r in records], kind="document")
        vectors = [
            VectorItem(r.id, bank_id, matrix[i], r.tags, r.occurred_at, r.metadata)
            for i, r in enumerate(records)
        ]
        # The bank is created only once the batch is known to be good, so a rejected
        # first retain leaves no empty bank behind.
        await self._ensure_bank(bank_id)
        await self._stores.write(records, vectors, list(entities.values()), links)
        return RetainBatchResult(
            bank_id=bank_id,
            results=results,
            memory_count=len(records),
            elapsed_ms=round((time.perf_counter() - started) * 1000, 3),
        )

    async def _ensure_bank(self, bank_id: str) -> None:
        documents = self._stores.documents
        if await documents.bank_exists(bank_id):
            return
        if not self._config.banks.auto_create:
            raise BankNotFound(bank_id)
        await documents.create_bank(bank_id)
