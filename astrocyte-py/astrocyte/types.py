"""Public request and result models (pydantic v2), exported from :mod:`astrocyte`."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from astrocyte.spi import MetadataValue


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _unset(value: object) -> bool:
    """``exclude_if`` of fields added after a model's first release: they are left out
    of the serialised form while unset (None), so the payload of a feature that is off
    stays byte-identical to what earlier versions produced (e.g. ``authority_context``).
    The JSON schema is unchanged."""
    return value is None


class TimeRange(_Model):
    """A half-open interval ``[start, end)`` on ``occurred_at``; either side may be open."""

    start: datetime | None = None
    end: datetime | None = None

    @model_validator(mode="after")
    def _ordered(self) -> TimeRange:
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class RetainItem(_Model):
    """One item of a :meth:`Astrocyte.retain_many` batch (same fields as ``retain``)."""

    content: str
    metadata: dict[str, MetadataValue] | None = None
    tags: list[str] | None = None
    occurred_at: datetime | None = None
    source: str | None = None
    content_type: str = "text"
    profile: str | None = Field(
        default=None,
        description="Extraction profile to apply (built-in or from extraction_profiles); "
        "default: the built-in for content_type.",
    )
    idempotency_key: str | None = Field(
        default=None,
        description="Your unique key for this content (e.g. topic/partition/offset): "
        "retaining a key the bank already holds stores nothing and returns the stored "
        "memory ids with deduplicated=true.",
    )


class RetainResult(_Model):
    """What one retained piece of content became."""

    bank_id: str
    source_id: str = Field(description="Id of the retained content; every chunk shares it.")
    memory_ids: list[str] = Field(description="One id per stored chunk, in chunk order.")
    deduplicated: bool = Field(
        default=False,
        description="True when the content was already in the bank (policy.dedup): nothing "
        "was written and memory_ids are the existing memories.",
    )

    @property
    def chunk_count(self) -> int:
        """Number of memories (chunks) stored."""
        return len(self.memory_ids)


class RetainBatchResult(_Model):
    """Result of ``retain_many``: one :class:`RetainResult` per input item, in order."""

    bank_id: str
    results: list[RetainResult]
    memory_count: int
    elapsed_ms: float


class Provenance(_Model):
    """Where a recall hit came from — enough to cite it or point back to the source."""

    memory_id: str
    bank_id: str
    source_id: str
    chunk_index: int
    content_type: str
    occurred_at: datetime | None
    created_at: datetime
    tags: list[str]
    metadata: dict[str, MetadataValue] = Field(
        description="Caller metadata as retained, e.g. session_id, turn_id, speaker."
    )


class RecallHit(_Model):
    """One recalled memory with its fused score and why it ranked."""

    memory_id: str
    text: str
    score: float = Field(description="Fused (weighted RRF) score, or the reranker's score.")
    ranks: dict[str, int] = Field(
        description="1-based rank of this memory in each strategy that returned it."
    )
    provenance: Provenance
    origin: str = Field(
        default="local",
        description="Where the hit came from: 'local' (a memory of a recalled bank), "
        "'proxy:<source>' (a federated proxy source; not stored locally) or 'external' "
        "(passed in the request's external_context).",
    )


class StrategyTrace(_Model):
    """How one recall strategy ran."""

    name: str
    bank_id: str
    candidates: int
    elapsed_ms: float
    skipped: str | None = Field(default=None, description="Why the strategy did not run.")
    error: str | None = Field(default=None, description="Failure, if the strategy failed.")


class ProxyReport(_Model):
    """How one federated proxy source answered a recall (see docs/federated-recall.md)."""

    source_id: str = Field(description="Name of the source in the sources section.")
    bank_id: str = Field(description="The recalled bank the proxy was queried for.")
    status: Literal["ok", "timeout", "error", "blocked"] = Field(
        description="ok | timeout | error | blocked (refused by the network guard; no "
        "request was sent)."
    )
    elapsed_ms: float
    hits: int = Field(description="Hits the proxy returned (before fusion and the budget).")
    error: str | None = Field(default=None, description="Why it failed, if it did.")


class QueryTimeRange(_Model):
    """A time expression found in the query and the range it was read as.

    Used only by the temporal strategy (a soft signal), never as a hard filter.
    """

    text: str = Field(description="The expression as written, e.g. 'last week'.")
    start: datetime | None
    end: datetime | None
    keyword_query: str = Field(description="The query keyword search ran on (expression removed).")


MultiBankStrategy = Literal["parallel", "cascade", "first_match"]


class MultiBankReport(_Model):
    """How a recall over several banks went: which banks were searched, in order."""

    strategy: MultiBankStrategy = Field(description="parallel | cascade | first_match")
    min_score: float = Field(description="cascade/first_match: the score a hit needed to count.")
    searched: list[str] = Field(description="Banks searched, in the order they were searched.")
    not_searched: list[str] = Field(
        default_factory=list,
        description="Readable banks not searched because an earlier bank already gave "
        "enough (cascade) or any (first_match) hits.",
    )


class AuthorityEntry(_Model):
    """One hit in the authority context, with the number it has in ``text``."""

    number: int = Field(description="The hit's [n] in the rendered text (tier order).")
    hit_index: int = Field(description="Index of the hit in RecallResult.hits (fused order).")
    memory_id: str
    bank_id: str
    origin: str
    tier: str | None = Field(description="Its authority tier; null: untiered.")
    text: str


class AuthorityTierGroup(_Model):
    """The hits of one tier (or the untiered ones), in fused order."""

    tier: str | None = Field(description="Tier name; null for hits with no tier.")
    rank: int = Field(
        description="1 = most authoritative (position in recall_authority.tiers); "
        "untiered hits come last."
    )
    entries: list[AuthorityEntry]


class AuthorityContext(_Model):
    """The recalled hits grouped by authority tier, highest first, with the precedence
    rules: ready to paste into a prompt (``text``). Present only when
    ``recall_authority`` is configured; it never reorders ``RecallResult.hits``."""

    tiers: list[AuthorityTierGroup] = Field(description="Non-empty groups, highest tier first.")
    rules: str | None = Field(description="The configured precedence rules, if any.")
    text: str = Field(description="Rules, tier headings and numbered hits as prompt text.")
    token_count: int = Field(description="Estimated tokens of text.")
    omitted: int = Field(description="Hits left out of text to respect the token budget.")


class RecallResult(_Model):
    """Ranked hits plus a trace of how they were found."""

    query: str
    bank_ids: list[str]
    hits: list[RecallHit]
    strategies: list[StrategyTrace]
    total_candidates: int = Field(description="Distinct memories before the budget cut.")
    token_count: int = Field(description="Estimated tokens of the returned hits' text.")
    truncated: bool = Field(description="True when max_results or max_tokens dropped hits.")
    elapsed_ms: float
    skipped_banks: list[str] = Field(
        default_factory=list,
        description="Requested banks not searched because the caller may not read them "
        "(multi-bank recall skips them instead of failing).",
    )
    proxies: list[ProxyReport] = Field(
        default_factory=list, description="Federated proxy sources queried, and how each did."
    )
    query_time_range: QueryTimeRange | None = Field(
        default=None,
        description="Time range parsed from the query (recall.parse_dates), if any.",
    )
    multi_bank: MultiBankReport | None = Field(
        default=None,
        exclude_if=_unset,
        description="How the banks were combined; present when several banks were asked.",
    )
    authority_context: AuthorityContext | None = Field(
        default=None,
        exclude_if=_unset,
        description="Hits grouped by authority tier with the precedence rules; present "
        "only when recall_authority is configured.",
    )


class Citation(_Model):
    """A memory a reflect answer relies on."""

    memory_id: str
    bank_id: str
    excerpt: str
    authority_tier: str | None = Field(
        default=None,
        exclude_if=_unset,
        description="Authority tier of the cited memory (recall_authority with "
        "apply_to_reflect); absent otherwise.",
    )


class ReflectResult(_Model):
    """A synthesised answer and the memories it cites."""

    query: str
    answer: str
    mode: Literal["llm", "extractive"] = Field(
        description="'llm' when an LLM wrote the answer; 'extractive' when no LLM is "
        "configured and the answer is verbatim evidence (no invented text)."
    )
    citations: list[Citation]
    evidence: list[RecallHit]
    model: str | None = None


class ForgetResult(_Model):
    """What forget removed."""

    bank_id: str
    deleted_ids: list[str]

    @property
    def deleted_count(self) -> int:
        """Number of memories removed."""
        return len(self.deleted_ids)


class BankStats(_Model):
    """A bank and its size."""

    bank_id: str
    memory_count: int
    created_at: datetime
