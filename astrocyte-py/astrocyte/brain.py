"""The ``Astrocyte`` facade: retain, recall, reflect, forget.

Thin on purpose: each method validates the caller's context and hands off to the module
that owns the capability (:mod:`astrocyte.pipeline.retain`, :mod:`astrocyte.recall`,
:mod:`astrocyte.reflect`, :mod:`astrocyte.forget`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any

from astrocyte import validation as v
from astrocyte.config import AstrocyteConfig, load_config
from astrocyte.config.loader import ConfigSource
from astrocyte.errors import ValidationError
from astrocyte.factory import build_embedder, build_llm, build_stores
from astrocyte.forget import forget as _forget
from astrocyte.identity.context import LOCAL_CONTEXT, AstrocyteContext
from astrocyte.pipeline.retain import RetainPipeline
from astrocyte.recall.engine import RecallEngine
from astrocyte.recall.rerank import Reranker, create_reranker
from astrocyte.recall.service import RecallService
from astrocyte.reflect import reflect_extractive, reflect_with_llm
from astrocyte.spi import Embedder, HealthStatus, LLMProvider, MetadataValue
from astrocyte.stores.storeset import StoreSet
from astrocyte.types import (
    BankStats,
    ForgetResult,
    RecallResult,
    ReflectResult,
    RetainBatchResult,
    RetainItem,
    RetainResult,
    TimeRange,
)


class Astrocyte:
    """Memory for agents, in named banks.

    Build it with :meth:`from_config` (or ``Astrocyte()`` for the zero-config embedded
    default), use it as an async context manager or call :meth:`close` when done.
    Stores, embedder or LLM passed to the constructor stay the caller's to close.
    """

    def __init__(
        self,
        config: AstrocyteConfig | None = None,
        *,
        stores: StoreSet | None = None,
        embedder: Embedder | None = None,
        llm: LLMProvider | None = None,
        reranker: Reranker | None = None,
    ) -> None:
        self.config = config or AstrocyteConfig()
        # Components passed in belong to the caller (who may share them between
        # instances); close() only closes what this instance built itself.
        self._owned: list[StoreSet | Embedder | LLMProvider] = []
        self.stores = stores or self._own(build_stores(self.config))
        self.embedder: Embedder = embedder or self._own(build_embedder(self.config))
        self.llm = llm if llm is not None else build_llm(self.config)
        if llm is None and self.llm is not None:
            self._own(self.llm)
        engine = RecallEngine(
            self.stores,
            self.embedder,
            self.config.recall,
            reranker or create_reranker(self.config.recall.rerank.provider),
        )
        self._retainer = RetainPipeline(self.config, self.stores, self.embedder)
        self._recaller = RecallService(self.config, self.stores.documents, engine)

    @classmethod
    def from_config(cls, source: ConfigSource = None) -> Astrocyte:
        """Build from a config object, mapping, YAML path, or ``None`` (zero config)."""
        return cls(load_config(source))

    async def retain(
        self,
        content: str | bytes,
        bank_id: str,
        *,
        metadata: Mapping[str, MetadataValue] | None = None,
        tags: Sequence[str] | None = None,
        occurred_at: datetime | str | None = None,
        source: str | None = None,
        content_type: str = "text",
        context: AstrocyteContext | None = None,
    ) -> RetainResult:
        """Remember ``content`` in ``bank_id``.

        The content is normalised for its ``content_type``, chunked, embedded and
        stored; each chunk is one memory. ``source`` is your id for the content
        (document or message id) and becomes every chunk's ``source_id``; one is
        generated when omitted. ``occurred_at`` defaults to now. The bank is created
        on first retain unless ``banks.auto_create`` is off.
        """
        caller = _context(context)
        bank = v.bank_id(bank_id)
        item = self._retainer.clean(
            {
                "content": content,
                "metadata": metadata,
                "tags": tags,
                "occurred_at": occurred_at,
                "source": source,
                "content_type": content_type,
            }
        )
        batch = await self._retainer.retain(bank, [item], context=caller)
        return batch.results[0]

    async def retain_many(
        self,
        items: Sequence[RetainItem | Mapping[str, Any]],
        bank_id: str,
        *,
        context: AstrocyteContext | None = None,
    ) -> RetainBatchResult:
        """Retain a batch in one all-or-nothing write; much faster than a loop of
        :meth:`retain`. Every item is validated before anything is stored."""
        caller = _context(context)
        bank = v.bank_id(bank_id)
        if isinstance(items, str | bytes) or not isinstance(items, Sequence):
            raise ValidationError("items", "must be a list of RetainItem or mappings")
        if not items:
            raise ValidationError("items", "is empty", fix="pass at least one item")
        limit = self.config.limits.max_batch_items
        if len(items) > limit:
            raise ValidationError(
                "items",
                f"has {len(items)} items, over the limit of {limit}",
                fix="split the batch or raise limits.max_batch_items",
            )
        cleaned = [
            self._retainer.clean(v.mapping_item(item, f"items[{i}]"), f"items[{i}].")
            for i, item in enumerate(items)
        ]
        return await self._retainer.retain(bank, cleaned, context=caller)

    async def recall(
        self,
        query: str,
        bank_id: str | None = None,
        *,
        banks: Sequence[str] | None = None,
        max_results: int | None = None,
        max_tokens: int | None = None,
        tags: Sequence[str] | None = None,
        time_range: TimeRange | tuple[Any, Any] | Mapping[str, Any] | None = None,
        filters: Mapping[str, MetadataValue] | None = None,
        context: AstrocyteContext | None = None,
    ) -> RecallResult:
        """Find the memories most relevant to ``query`` in one bank or several.

        Semantic, keyword, graph and temporal strategies run concurrently and are fused
        with weighted RRF (see :mod:`astrocyte.recall.engine`). ``tags`` (all must
        match), ``time_range`` (on ``occurred_at``) and ``filters`` (metadata equality)
        are hard filters. The result is cut to ``max_results`` and ``max_tokens``.
        """
        _context(context)
        return await self._recaller.recall(
            query,
            bank_id,
            banks,
            max_results=max_results,
            max_tokens=max_tokens,
            tags=tags,
            time_range=time_range,
            filters=filters,
        )

    async def reflect(
        self,
        query: str,
        bank_id: str | None = None,
        *,
        banks: Sequence[str] | None = None,
        max_evidence: int = 8,
        max_tokens: int | None = None,
        tags: Sequence[str] | None = None,
        time_range: TimeRange | tuple[Any, Any] | Mapping[str, Any] | None = None,
        filters: Mapping[str, MetadataValue] | None = None,
        context: AstrocyteContext | None = None,
    ) -> ReflectResult:
        """Answer ``query`` from memory, citing the memories used.

        With an LLM configured the answer is synthesised by it; without one it is an
        extractive answer quoting the best evidence verbatim (``mode='extractive'``).
        ``max_tokens`` bounds the evidence given to the LLM.
        """
        evidence = await self.recall(
            query,
            bank_id,
            banks=banks,
            max_results=max_evidence,
            max_tokens=max_tokens,
            tags=tags,
            time_range=time_range,
            filters=filters,
            context=context,
        )
        if self.llm is None:
            return reflect_extractive(evidence.query, evidence)
        return await reflect_with_llm(evidence.query, evidence, self.llm)

    async def forget(
        self,
        bank_id: str,
        *,
        memory_ids: Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
        filters: Mapping[str, MetadataValue] | None = None,
        before: datetime | str | None = None,
        context: AstrocyteContext | None = None,
    ) -> ForgetResult:
        """Delete memories from every store (vector, keyword, graph).

        Selectors combine with AND: ``memory_ids``, ``tags`` (all must match),
        ``filters`` (metadata equality), ``before`` (``occurred_at`` earlier than).
        At least one is required.
        """
        _context(context)
        return await _forget(
            self.config,
            self.stores,
            bank_id,
            memory_ids=memory_ids,
            tags=tags,
            filters=filters,
            before=before,
        )

    async def create_bank(self, bank_id: str, *, context: AstrocyteContext | None = None) -> None:
        """Create an empty bank (idempotent)."""
        _context(context)
        await self.stores.documents.create_bank(v.bank_id(bank_id))

    async def list_banks(self, *, context: AstrocyteContext | None = None) -> list[BankStats]:
        """Every bank with its memory count."""
        _context(context)
        banks = await self.stores.documents.list_banks()
        return [
            BankStats(bank_id=b.bank_id, memory_count=b.memory_count, created_at=b.created_at)
            for b in banks
        ]

    async def health(self) -> dict[str, HealthStatus]:
        """Health of each store."""
        return await self.stores.health()

    def _own(self, component: Any) -> Any:
        self._owned.append(component)
        return component

    async def close(self) -> None:
        """Close the stores and providers this instance built (not ones passed in)."""
        owned, self._owned = self._owned, []
        for component in owned:
            await component.close()

    async def __aenter__(self) -> Astrocyte:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


def _context(context: object) -> AstrocyteContext:
    """The caller's context; enforcement of grants plugs in here (identity layer)."""
    if context is None:
        return LOCAL_CONTEXT
    if not isinstance(context, AstrocyteContext):
        raise ValidationError(
            "context",
            f"must be an AstrocyteContext, got {type(context).__name__}",
            fix='e.g. AstrocyteContext(principal="user:123")',
        )
    return context
