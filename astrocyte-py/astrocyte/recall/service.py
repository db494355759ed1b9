"""Recall as the facade exposes it: validate, rank, cut to budget, build the result."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from astrocyte import validation as v
from astrocyte.config.schema import AstrocyteConfig
from astrocyte.errors import BankNotFound, ValidationError
from astrocyte.recall.budget import apply_budget
from astrocyte.recall.engine import RecallEngine
from astrocyte.recall.provenance import to_hit
from astrocyte.spi import DocumentStore, RecordFilter
from astrocyte.types import RecallHit, RecallResult, TimeRange


@dataclass(frozen=True, slots=True)
class BankTarget:
    """A bank to search: its id as the caller names it and as the stores know it
    (they differ when the caller has a tenant; see :mod:`astrocyte.identity.access`)."""

    bank_id: str
    storage_id: str


class RecallService:
    """Validates recall arguments and shapes the engine's ranking into a result."""

    def __init__(
        self, config: AstrocyteConfig, documents: DocumentStore, engine: RecallEngine
    ) -> None:
        self._config = config
        self._documents = documents
        self._engine = engine

    async def recall(
        self,
        query: object,
        targets: Sequence[BankTarget],
        *,
        max_results: object = None,
        max_tokens: object = None,
        tags: object = None,
        time_range: object = None,
        filters: object = None,
        skipped_banks: Sequence[str] = (),
    ) -> RecallResult:
        """See :meth:`astrocyte.Astrocyte.recall`. ``targets`` are the banks the caller
        was authorised to read (see :meth:`requested_banks`); ``skipped_banks`` the
        requested ones it was not, reported in the result."""
        started = time.perf_counter()
        limits = self._config.limits
        text = v.query(query, limits.max_query_chars)
        for target in targets:
            if not await self._documents.bank_exists(target.storage_id):
                raise BankNotFound(target.bank_id)
        limit = v.positive_int(
            self._config.recall.default_max_results if max_results is None else max_results,
            "max_results",
            maximum=limits.max_results,
        )
        token_cap = v.optional_positive_int(
            self._config.recall.default_max_tokens if max_tokens is None else max_tokens,
            "max_tokens",
            maximum=10_000_000,
        )
        where = build_filter(
            tags=v.tags(tags, limits.max_tags),
            time_range=v.time_range(time_range),
            filters=v.metadata(filters, limits.max_metadata_keys, "filters"),
        )
        # Ask strategies for at least as many candidates as the caller wants back.
        per_strategy = max(self._config.recall.candidates_per_strategy, limit)
        ranked = await self._engine.recall(
            text, [t.storage_id for t in targets], where, need=limit, candidates=per_strategy
        )
        kept, tokens, truncated = apply_budget(
            ranked.candidates,
            lambda c: c.record.text,
            max_results=limit,
            max_tokens=token_cap,
        )
        hits = [to_hit(c) for c in kept]
        traces = ranked.traces
        visible = {t.storage_id: t.bank_id for t in targets if t.storage_id != t.bank_id}
        if visible:
            # Callers only ever see their own bank ids, never the storage namespace.
            hits = [_relabel_hit(h, visible) for h in hits]
            traces = [
                s.model_copy(update={"bank_id": visible.get(s.bank_id, s.bank_id)}) for s in traces
            ]
        return RecallResult(
            query=text,
            bank_ids=[t.bank_id for t in targets],
            hits=hits,
            strategies=traces,
            total_candidates=ranked.total,
            token_count=tokens,
            truncated=truncated or not ranked.exhausted,
            elapsed_ms=round((time.perf_counter() - started) * 1000, 3),
            skipped_banks=list(skipped_banks),
        )

    @staticmethod
    def requested_banks(bank_id: object, banks: object) -> list[str]:
        """The validated bank ids of a request: exactly one of ``bank_id`` / ``banks``
        (duplicates dropped, order kept). Existence is checked by :meth:`recall`, after
        access control, so a denied caller never learns whether a bank exists."""
        if (bank_id is None) == (banks is None):
            raise ValidationError(
                "bank_id", "pass exactly one of bank_id or banks", fix="e.g. recall(q, 'alice')"
            )
        if bank_id is not None:
            return [v.bank_id(bank_id)]
        if isinstance(banks, str) or not isinstance(banks, Sequence) or not banks:
            raise ValidationError("banks", "must be a non-empty list of bank ids")
        return list(dict.fromkeys(v.bank_id(b, f"banks[{i}]") for i, b in enumerate(banks)))


def _relabel_hit(hit: RecallHit, visible: Mapping[str, str]) -> RecallHit:
    bank = hit.provenance.bank_id
    if bank not in visible:
        return hit
    provenance = hit.provenance.model_copy(update={"bank_id": visible[bank]})
    return hit.model_copy(update={"provenance": provenance})


def build_filter(
    *,
    tags: tuple[str, ...] = (),
    time_range: TimeRange | None = None,
    filters: Mapping[str, object] | None = None,
    before: object = None,
) -> RecordFilter | None:
    """The store-level filter for validated arguments, or None when nothing is set."""
    time_from = time_range.start if time_range else None
    time_to = time_range.end if time_range else None
    if before is not None:
        cutoff = v.timestamp(before, "before")
        time_to = cutoff if time_to is None or cutoff is None else min(time_to, cutoff)
    where = RecordFilter(
        tags=tags,
        time_from=time_from,
        time_to=time_to,
        metadata=dict(filters or {}),  # type: ignore[arg-type]
    )
    return None if where.is_empty() else where
