"""Recall as the facade exposes it: validate, rank, cut to budget, build the result."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from astrocyte import validation as v
from astrocyte.config.schema import AstrocyteConfig
from astrocyte.errors import BankNotFound, ValidationError
from astrocyte.recall.budget import apply_budget
from astrocyte.recall.engine import RecallEngine
from astrocyte.recall.provenance import to_hit
from astrocyte.spi import DocumentStore, RecordFilter
from astrocyte.types import RecallResult, TimeRange


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
        bank_id: object = None,
        banks: object = None,
        *,
        max_results: object = None,
        max_tokens: object = None,
        tags: object = None,
        time_range: object = None,
        filters: object = None,
    ) -> RecallResult:
        """See :meth:`astrocyte.Astrocyte.recall`."""
        started = time.perf_counter()
        limits = self._config.limits
        text = v.query(query, limits.max_query_chars)
        bank_ids = await self.resolve_banks(bank_id, banks)
        limit = v.positive_int(
            self._config.recall.default_max_results if max_results is None else max_results,
            "max_results",
            maximum=limits.max_results,
        )
        token_cap = v.optional_positive_int(max_tokens, "max_tokens", maximum=10_000_000)
        where = build_filter(
            tags=v.tags(tags, limits.max_tags),
            time_range=v.time_range(time_range),
            filters=v.metadata(filters, limits.max_metadata_keys, "filters"),
        )
        # Ask strategies for at least as many candidates as the caller wants back.
        per_strategy = max(self._config.recall.candidates_per_strategy, limit)
        ranked = await self._engine.recall(
            text, bank_ids, where, need=limit, candidates=per_strategy
        )
        kept, tokens, truncated = apply_budget(
            ranked.candidates,
            lambda c: c.record.text,
            max_results=limit,
            max_tokens=token_cap,
        )
        return RecallResult(
            query=text,
            bank_ids=bank_ids,
            hits=[to_hit(c) for c in kept],
            strategies=ranked.traces,
            total_candidates=ranked.total,
            token_count=tokens,
            truncated=truncated or not ranked.exhausted,
            elapsed_ms=round((time.perf_counter() - started) * 1000, 3),
        )

    async def resolve_banks(self, bank_id: object, banks: object) -> list[str]:
        """Exactly one of ``bank_id`` / ``banks``; every bank must exist."""
        if (bank_id is None) == (banks is None):
            raise ValidationError(
                "bank_id", "pass exactly one of bank_id or banks", fix="e.g. recall(q, 'alice')"
            )
        if bank_id is not None:
            ids = [v.bank_id(bank_id)]
        else:
            if isinstance(banks, str) or not isinstance(banks, Sequence) or not banks:
                raise ValidationError("banks", "must be a non-empty list of bank ids")
            ids = list(dict.fromkeys(v.bank_id(b, f"banks[{i}]") for i, b in enumerate(banks)))
        for b in ids:
            if not await self._documents.bank_exists(b):
                raise BankNotFound(b)
        return ids


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
