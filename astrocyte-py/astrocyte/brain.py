"""The ``Astrocyte`` facade: retain, recall, reflect, forget.

Thin on purpose: each method validates the caller's context, resolves and authorises
the bank (:meth:`Astrocyte._authorize`, the one place per operation where the caller and
the storage bank are both known) and hands off to the module that owns the capability
(:mod:`astrocyte.pipeline.retain`, :mod:`astrocyte.recall`, :mod:`astrocyte.reflect`,
:mod:`astrocyte.forget`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any

from astrocyte import validation as v
from astrocyte.config import AstrocyteConfig, load_config
from astrocyte.config.loader import ConfigSource
from astrocyte.errors import AccessDenied, BankNotFound, ValidationError
from astrocyte.factory import build_embedder, build_llm, build_stores
from astrocyte.forget import forget as _forget
from astrocyte.identity.access import AccessControl, storage_bank_id, visible_bank_id
from astrocyte.identity.context import LOCAL_CONTEXT, AstrocyteContext
from astrocyte.identity.patterns import Permission
from astrocyte.identity.resolver import BankResolver, build_resolver, resolve_bank
from astrocyte.pipeline.retain import RetainPipeline
from astrocyte.policy.engine import PolicyEngine
from astrocyte.policy.ratelimit import Operation
from astrocyte.recall.engine import RecallEngine
from astrocyte.recall.rerank import Reranker, create_reranker
from astrocyte.recall.service import BankTarget, RecallService
from astrocyte.reflect import reflect_extractive, reflect_with_llm
from astrocyte.spi import Embedder, HealthStatus, LLMProvider, MetadataValue
from astrocyte.stores.storeset import StoreSet
from astrocyte.types import (
    BankStats,
    ForgetResult,
    MultiBankStrategy,
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

    Every operation runs as a caller (``context=``, default: the local single user) and
    is checked against ``access_grants``; with none configured everything is allowed.
    ``bank_id`` may be omitted when the ``identity`` resolver can derive it from the
    context. A context with a ``tenant`` only ever sees that tenant's banks.
    """

    def __init__(
        self,
        config: AstrocyteConfig | None = None,
        *,
        stores: StoreSet | None = None,
        embedder: Embedder | None = None,
        llm: LLMProvider | None = None,
        reranker: Reranker | None = None,
        resolver: BankResolver | None = None,
    ) -> None:
        self.config = config or AstrocyteConfig()
        # Identity first: a bad grant, agent or resolver fails before stores are opened.
        self.access = AccessControl.from_config(self.config)
        self.resolver = resolver or build_resolver(self.config)
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
        # One engine per instance: rate-limit buckets, quota locks and the audit sink
        # must be shared by every path (retain, recall, reflect, forget).
        self.policy = PolicyEngine(self.config, self.stores)
        self._retainer = RetainPipeline(
            self.config, self.stores, self.embedder, policy=self.policy, llm=self.llm
        )
        self._recaller = RecallService(self.config, self.stores.documents, engine)

    @classmethod
    def from_config(cls, source: ConfigSource = None) -> Astrocyte:
        """Build from a config object, mapping, YAML path, or ``None`` (zero config)."""
        return cls(load_config(source))

    def bind(self, context: AstrocyteContext | None = None) -> AstrocyteContext:
        """``context`` bound to this instance's grants, so that
        ``brain.bind(ctx).effective_permissions("alice")`` answers what the caller may
        do there. A bound context is used like any other; binding changes nothing else."""
        return _context(context).bound_to(self.access)

    async def default_bank(self, context: AstrocyteContext | None = None) -> str | None:
        """The bank calls under ``context`` use when they name none (from the
        ``identity`` resolver), or ``None`` when there is no default."""
        caller = _context(context)
        return await resolve_bank(self.resolver, caller.acting, caller.on_behalf_of)

    async def retain(
        self,
        content: str | bytes,
        bank_id: str | None = None,
        *,
        metadata: Mapping[str, MetadataValue] | None = None,
        tags: Sequence[str] | None = None,
        occurred_at: datetime | str | None = None,
        source: str | None = None,
        content_type: str = "text",
        profile: str | None = None,
        idempotency_key: str | None = None,
        context: AstrocyteContext | None = None,
    ) -> RetainResult:
        """Remember ``content`` in ``bank_id``.

        The content is normalised for its ``content_type``, chunked, embedded and
        stored; each chunk is one memory. ``source`` is your id for the content
        (document or message id) and becomes every chunk's ``source_id``; one is
        generated when omitted. ``occurred_at`` defaults to now. The bank is created
        on first retain unless ``banks.auto_create`` is off. Needs ``write``.

        ``idempotency_key`` makes the call safe to repeat (a redelivered message, a
        retried request): when the bank already holds that key, nothing is stored and
        the result lists the stored memories with ``deduplicated=True``. Memory ids are
        then derived from (bank, key, chunk), so even concurrent repeats in different
        processes write one set of memories.
        """
        caller = _context(context)
        bank = await self._bank(caller, bank_id)
        storage = self._authorize(caller, bank, Permission.WRITE)
        item = self._retainer.clean(
            {
                "content": content,
                "metadata": metadata,
                "tags": tags,
                "occurred_at": occurred_at,
                "source": source,
                "content_type": content_type,
                "profile": profile,
                "idempotency_key": idempotency_key,
            }
        )
        batch = await self._retain(caller, bank, storage, [item])
        return batch.results[0]

    async def retain_many(
        self,
        items: Sequence[RetainItem | Mapping[str, Any]],
        bank_id: str | None = None,
        *,
        context: AstrocyteContext | None = None,
    ) -> RetainBatchResult:
        """Retain a batch in one all-or-nothing write; much faster than a loop of
        :meth:`retain`. Every item is validated before anything is stored. Needs
        ``write``."""
        caller = _context(context)
        bank = await self._bank(caller, bank_id)
        storage = self._authorize(caller, bank, Permission.WRITE)
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
        return await self._retain(caller, bank, storage, cleaned)

    async def _retain(
        self, caller: AstrocyteContext, bank: str, storage: str, items: Sequence[Any]
    ) -> RetainBatchResult:
        try:
            batch = await self._retainer.retain(storage, items, context=caller)
        except BankNotFound as exc:
            if exc.bank_id != storage or storage == bank:
                raise
            raise BankNotFound(bank) from None
        if storage == bank:
            return batch
        # The pipeline labels results with the storage id; the caller knows the bank by
        # its own id only.
        return batch.model_copy(
            update={
                "bank_id": bank,
                "results": [r.model_copy(update={"bank_id": bank}) for r in batch.results],
            }
        )

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
        external_context: Sequence[Mapping[str, Any] | str] | None = None,
        now: datetime | str | None = None,
        strategy: MultiBankStrategy | None = None,
        min_score: float | None = None,
        context: AstrocyteContext | None = None,
    ) -> RecallResult:
        """Find the memories most relevant to ``query`` in one bank or several.

        Semantic, keyword, graph and temporal strategies run concurrently and are fused
        with weighted RRF (see :mod:`astrocyte.recall.engine`). ``tags`` (all must
        match), ``time_range`` (on ``occurred_at``) and ``filters`` (metadata equality)
        are hard filters. The result is cut to ``max_results`` and ``max_tokens``.

        Needs ``read``. Of several ``banks``, those the caller may not read are skipped
        and listed in ``RecallResult.skipped_banks``; if it may read none, the recall
        is denied. With neither ``bank_id`` nor ``banks``, the context's default bank
        (see :meth:`default_bank`) is searched. ``strategy`` says how several banks are
        combined (default ``recall.multi_bank.strategy``): ``parallel`` fuses them all
        with RRF; ``cascade`` searches them in order until ``max_results`` hits score at
        least ``min_score``; ``first_match`` keeps the first bank with such a hit (see
        :mod:`astrocyte.recall.multibank`). Every hit names its bank in
        ``provenance.bank_id`` and ``RecallResult.multi_bank`` says what was searched.

        With ``recall_authority`` configured, ``RecallResult.authority_context`` also
        presents the hits grouped by authority tier with the precedence rules, within
        ``max_tokens`` (the hits themselves keep their fused order; see
        :mod:`astrocyte.recall.authority`).

        Without ``time_range``, a relative date in the query ("last week") is read as
        of ``now`` (default: the current time) and ranks in-range memories higher
        through the temporal strategy, without filtering (``recall.parse_dates``).
        Proxy sources attached to the banks (``sources``, ``type: proxy``) are queried
        alongside, and ``external_context`` (``[{text, source?, score?}]``) is fused in
        too; such hits are labelled by ``RecallHit.origin`` and a failing proxy is only
        reported in ``RecallResult.proxies`` (see docs/federated-recall.md).
        """
        return await self._recall(
            "recall",
            query,
            bank_id,
            banks=banks,
            max_results=max_results,
            max_tokens=max_tokens,
            tags=tags,
            time_range=time_range,
            filters=filters,
            external_context=external_context,
            now=now,
            strategy=strategy,
            min_score=min_score,
            context=context,
        )

    async def _recall(
        self,
        operation: Operation,
        query: str,
        bank_id: str | None,
        *,
        banks: Sequence[str] | None,
        max_results: int | None,
        max_tokens: int | None,
        tags: Sequence[str] | None,
        time_range: TimeRange | tuple[Any, Any] | Mapping[str, Any] | None,
        filters: Mapping[str, MetadataValue] | None,
        context: AstrocyteContext | None,
        external_context: Sequence[Mapping[str, Any] | str] | None = None,
        now: datetime | str | None = None,
        strategy: MultiBankStrategy | None = None,
        min_score: float | None = None,
    ) -> RecallResult:
        """Recall on behalf of ``operation`` (a reflect is rate-limited as one reflect,
        not as a reflect plus a recall)."""
        caller = _context(context)
        # The query is checked before the banks, as it always was.
        v.query(query, self.config.limits.max_query_chars)
        if bank_id is None and banks is None:
            bank_id = await resolve_bank(self.resolver, caller.acting, caller.on_behalf_of)
        requested = RecallService.requested_banks(bank_id, banks)
        targets: list[BankTarget] = []
        denials: list[AccessDenied] = []
        for bank in requested:
            try:
                targets.append(BankTarget(bank, self._authorize(caller, bank, Permission.READ)))
            except AccessDenied as denial:
                # One named bank: the caller asked for exactly that, so say no. Several:
                # search what the caller may read and report the rest.
                if bank_id is not None:
                    raise
                denials.append(denial)
        skipped = [d.bank_id or "" for d in denials]
        if not targets:
            if len(denials) == 1:
                raise denials[0]
            raise AccessDenied(
                f"principal {caller.principal!r} may not read any of the banks {skipped}",
                fix="ask an administrator for a read grant in access_grants",
                principal=caller.principal,
                permission=str(Permission.READ),
            )
        for target in targets:
            self.policy.admit(caller.principal, target.storage_id, operation)
        return await self._recaller.recall(
            query,
            targets,
            skipped_banks=skipped,
            max_results=max_results,
            max_tokens=max_tokens,
            tags=tags,
            time_range=time_range,
            filters=filters,
            external_context=external_context,
            now=now,
            strategy=strategy,
            min_score=min_score,
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
        external_context: Sequence[Mapping[str, Any] | str] | None = None,
        now: datetime | str | None = None,
        strategy: MultiBankStrategy | None = None,
        min_score: float | None = None,
        context: AstrocyteContext | None = None,
    ) -> ReflectResult:
        """Answer ``query`` from memory, citing the memories used.

        With an LLM configured the answer is synthesised by it; without one it is an
        extractive answer quoting the best evidence verbatim (``mode='extractive'``).
        ``max_tokens`` bounds the evidence given to the LLM. Needs ``read`` (it is a
        recall, with the same bank rules; ``external_context``, ``now``, ``strategy``
        and ``min_score`` are as for :meth:`recall`).

        With ``recall_authority.apply_to_reflect`` on, the evidence is the recall's
        authority context (grouped by tier, highest first, with the precedence rules)
        and each citation names its memory's ``authority_tier``.
        """
        evidence = await self._recall(
            "reflect",
            query,
            bank_id,
            banks=banks,
            max_results=max_evidence,
            max_tokens=max_tokens,
            tags=tags,
            time_range=time_range,
            filters=filters,
            context=context,
            external_context=external_context,
            now=now,
            strategy=strategy,
            min_score=min_score,
        )
        authority = (
            evidence.authority_context if self.config.recall_authority.apply_to_reflect else None
        )
        if self.llm is None:
            return reflect_extractive(evidence.query, evidence, authority=authority)
        return await reflect_with_llm(evidence.query, evidence, self.llm, authority=authority)

    async def forget(
        self,
        bank_id: str | None = None,
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
        At least one is required. Needs ``forget``.
        """
        caller = _context(context)
        bank = await self._bank(caller, bank_id)
        storage = self._authorize(caller, bank, Permission.FORGET)
        self.policy.admit(caller.principal, storage, "forget")
        result = await _forget(
            self.config,
            self.stores,
            bank,
            memory_ids=memory_ids,
            tags=tags,
            filters=filters,
            before=before,
            storage_bank_id=storage,
        )
        # Cached bank counts and duplicate lookups of the retain path are now stale.
        self.policy.note_write(storage)
        await self.policy.record(
            caller,
            "forget",
            bank,
            deleted=result.deleted_count,
            memory_ids=list(memory_ids) if memory_ids is not None else None,
            tags=list(tags) if tags is not None else None,
            filters=dict(filters) if filters is not None else None,
            before=str(before) if before is not None else None,
        )
        return result

    async def create_bank(
        self, bank_id: str | None = None, *, context: AstrocyteContext | None = None
    ) -> None:
        """Create an empty bank (idempotent). Needs ``write``: the same permission that
        lets a caller create a bank by retaining into it."""
        caller = _context(context)
        bank = await self._bank(caller, bank_id)
        await self.stores.documents.create_bank(self._authorize(caller, bank, Permission.WRITE))
        await self.policy.record(caller, "create_bank", bank)

    async def list_banks(self, *, context: AstrocyteContext | None = None) -> list[BankStats]:
        """The banks the caller may read, with their memory counts.

        Banks of other tenants (or, for a caller without a tenant, of any tenant) and
        banks the caller may not read are left out, not marked: the list never reveals
        a bank the caller cannot see.
        """
        caller = _context(context)
        out: list[BankStats] = []
        for b in await self.stores.documents.list_banks():
            bank = visible_bank_id(caller.tenant, b.bank_id)
            if bank is None or not self.access.allows(caller, bank, Permission.READ):
                continue
            out.append(
                BankStats(bank_id=bank, memory_count=b.memory_count, created_at=b.created_at)
            )
        return out

    async def health(self) -> dict[str, HealthStatus]:
        """Health of each store."""
        return await self.stores.health()

    async def _bank(self, caller: AstrocyteContext, bank_id: object) -> str:
        """The validated bank a call names, or the caller's default bank."""
        if bank_id is None:
            bank_id = await resolve_bank(self.resolver, caller.acting, caller.on_behalf_of)
            if bank_id is None:
                raise ValidationError(
                    "bank_id",
                    "is required: no default bank for this caller",
                    fix="pass bank_id, or a context whose principal is 'type:id' "
                    "(see identity.resolver in docs/identity.md)",
                )
        return v.bank_id(bank_id)

    def _authorize(self, caller: AstrocyteContext, bank_id: str, permission: Permission) -> str:
        """Check ``caller`` may ``permission`` on ``bank_id`` (as the caller names it)
        and return the storage id of that bank.

        Every operation passes through here once per bank, before any store is touched
        and before anything about the bank (even whether it exists) is looked up, so
        denials reveal nothing. It is the one place that knows both the caller and the
        storage bank: per-caller policies (rate limits, quotas, audit) belong here.
        """
        self.access.check(caller, bank_id, permission)
        # Tenants are a namespace, not a grant: the storage id of a tenant's bank
        # contains "/", which no caller-supplied bank id can, so no guess reaches it.
        return storage_bank_id(caller.tenant, bank_id)

    def _own(self, component: Any) -> Any:
        self._owned.append(component)
        return component

    async def close(self) -> None:
        """Close the stores and providers this instance built (not ones passed in)."""
        owned, self._owned = self._owned, []
        await self.policy.close()
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
    """The caller's context (the local single user when none is given)."""
    if context is None:
        return LOCAL_CONTEXT
    if not isinstance(context, AstrocyteContext):
        raise ValidationError(
            "context",
            f"must be an AstrocyteContext, got {type(context).__name__}",
            fix='e.g. AstrocyteContext(principal="user:123")',
        )
    return context
