"""Recall as the facade exposes it: validate, rank, cut to budget, build the result.

It also decides what a recall adds to the local search: the proxy sources serving the
recalled banks, the caller's external context, and — when the call gives no
``time_range`` and ``recall.parse_dates`` is on — the time range a relative date in the
query denotes ("what did Maya do last week?"). That range is a *soft* signal: it makes
the temporal strategy run and is taken out of the keyword query, but it filters
nothing, because a rule-based reading of a query can be wrong ("May" the name).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from astrocyte import validation as v
from astrocyte.config.schema import AstrocyteConfig
from astrocyte.errors import BankNotFound, ValidationError
from astrocyte.pipeline.dates import parse_time_range
from astrocyte.recall.authority import AuthorityTiers
from astrocyte.recall.budget import apply_budget
from astrocyte.recall.engine import FederatedQuery, RankedCandidates, RecallEngine, RecallHints
from astrocyte.recall.multibank import check_min_score, check_strategy, recall_in_order
from astrocyte.recall.provenance import to_hit
from astrocyte.recall.proxy import external_context_hits, proxies_from_config, utc_now
from astrocyte.spi import DocumentStore, RecordFilter
from astrocyte.types import (
    MultiBankReport,
    QueryTimeRange,
    RecallHit,
    RecallResult,
    TimeRange,
)


@dataclass(frozen=True, slots=True)
class BankTarget:
    """A bank to search: its id as the caller names it and as the stores know it
    (they differ when the caller has a tenant; see :mod:`astrocyte.identity.access`)."""

    bank_id: str
    storage_id: str


class RecallService:
    """Validates recall arguments and shapes the engine's ranking into a result."""

    def __init__(
        self,
        config: AstrocyteConfig,
        documents: DocumentStore,
        engine: RecallEngine,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._config = config
        self._documents = documents
        self._engine = engine
        self._proxies = proxies_from_config(config)
        #: Recall authority (``recall_authority``), or None when the section is off.
        self.authority = AuthorityTiers.from_config(config.recall_authority)
        #: "Now" for relative dates when a call passes none (replaceable in tests).
        self.clock = clock

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
        external_context: object = None,
        now: object = None,
        strategy: object = None,
        min_score: object = None,
        skipped_banks: Sequence[str] = (),
    ) -> RecallResult:
        """See :meth:`astrocyte.Astrocyte.recall`. ``targets`` are the banks the caller
        was authorised to read (see :meth:`requested_banks`); ``skipped_banks`` the
        requested ones it was not, reported in the result."""
        started = time.perf_counter()
        limits = self._config.limits
        text = v.query(query, limits.max_query_chars)
        defaults = self._config.recall.multi_bank
        mode = check_strategy(defaults.strategy if strategy is None else strategy)
        threshold = check_min_score(defaults.min_score if min_score is None else min_score)
        if mode != "parallel" and external_context is not None and len(targets) > 1:
            raise ValidationError(
                "external_context",
                f"cannot be combined with strategy {mode!r}: it would have no bank to rank in",
                fix="use strategy 'parallel', or leave external_context out",
            )
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
        explicit_range = v.time_range(time_range)
        where = build_filter(
            tags=v.tags(tags, limits.max_tags),
            time_range=explicit_range,
            filters=v.metadata(filters, limits.max_metadata_keys, "filters"),
        )
        clock = _reference_time(now) or self.clock()
        external = external_context_hits(external_context, max_items=limits.max_results, now=clock)
        parsed = None if explicit_range is not None else self._query_time_range(text, clock)

        def hints_for(bank_ids: Sequence[str]) -> RecallHints:
            return RecallHints(
                time_hint=(parsed.start, parsed.end) if parsed else None,
                keyword_text=parsed.keyword_query if parsed else None,
                proxies=[
                    FederatedQuery(source, bank)
                    for bank in bank_ids
                    for source in self._proxies
                    if source.applies_to(bank)
                ],
                external=external,
                now=clock,
            )

        # Ask strategies for at least as many candidates as the caller wants back.
        per_strategy = max(self._config.recall.candidates_per_strategy, limit)
        storage_ids = [t.storage_id for t in targets]
        searched = storage_ids
        ranked: RankedCandidates
        if mode == "parallel" or len(targets) == 1:
            ranked = await self._engine.recall(
                text,
                storage_ids,
                where,
                need=limit,
                candidates=per_strategy,
                hints=hints_for(storage_ids),
            )
        else:
            ordered = await recall_in_order(
                self._engine,
                text,
                storage_ids,
                where,
                strategy=mode,
                min_score=threshold,
                need=limit,
                candidates=per_strategy,
                hints_for=lambda bank: hints_for([bank]),
            )
            ranked, searched = ordered.ranked, ordered.searched
        kept, tokens, truncated = apply_budget(
            ranked.candidates,
            lambda c: c.record.text,
            max_results=limit,
            max_tokens=token_cap,
        )
        hits = [to_hit(c) for c in kept]
        traces = ranked.traces
        proxies = ranked.proxies
        visible = {t.storage_id: t.bank_id for t in targets if t.storage_id != t.bank_id}
        if visible:
            # Callers only ever see their own bank ids, never the storage namespace.
            hits = [_relabel_hit(h, visible) for h in hits]
            traces = [
                s.model_copy(update={"bank_id": visible.get(s.bank_id, s.bank_id)}) for s in traces
            ]
            proxies = [
                p.model_copy(update={"bank_id": visible.get(p.bank_id, p.bank_id)}) for p in proxies
            ]
        multi_bank = None
        if len(targets) + len(skipped_banks) > 1:
            names = {t.storage_id: t.bank_id for t in targets}
            multi_bank = MultiBankReport(
                strategy=mode,
                min_score=threshold if mode != "parallel" else 0.0,
                searched=[names[b] for b in searched],
                not_searched=[t.bank_id for t in targets if t.storage_id not in searched],
            )
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
            proxies=proxies,
            query_time_range=parsed,
            multi_bank=multi_bank,
            authority_context=(
                self.authority.context(hits, token_cap) if self.authority is not None else None
            ),
        )

    def _query_time_range(self, text: str, now: datetime) -> QueryTimeRange | None:
        """The time range a relative date in ``text`` denotes, if parsing is on and the
        temporal strategy (its only user) is enabled."""
        recall = self._config.recall
        if not recall.parse_dates or "temporal" not in recall.strategies:
            return None
        found = parse_time_range(text, now)
        if found is None:
            return None
        start, end = found.span
        keyword = re.sub(r"\s+", " ", f"{text[:start]} {text[end:]}").strip()
        return QueryTimeRange(
            text=found.text, start=found.start, end=found.end, keyword_query=keyword
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


def _reference_time(value: object) -> datetime | None:
    """``now`` as given: a datetime keeps its time zone (relative dates count days in
    it, see :mod:`astrocyte.pipeline.dates`); a string is parsed as ISO-8601 (UTC)."""
    if value is None or isinstance(value, datetime):
        return value
    return v.timestamp(value, "now")


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
