"""Request and response bodies of the HTTP API.

Requests mirror the facade's arguments one to one (same names, same meaning; see
:class:`astrocyte.Astrocyte`). Only the shape is checked here; values (bank ids,
sizes, dates, limits) are validated by the library, so HTTP and in-process callers
get exactly the same rules and messages. Responses of the memory routes are the
library's own result models.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from astrocyte.spi import MetadataValue
from astrocyte.types import MultiBankStrategy, TimeRange
from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AdminBank",
    "AdminBanksResponse",
    "AdminSource",
    "AdminSourcesResponse",
    "ComponentHealth",
    "ErrorBody",
    "ErrorResponse",
    "ForgetRequest",
    "HealthResponse",
    "IngestHealthResponse",
    "LiveResponse",
    "RecallRequest",
    "ReflectRequest",
    "RetainRequest",
    "SourceHealthView",
    "WebhookAccepted",
]


class _Request(BaseModel):
    # Unknown fields are errors: a misspelt option must not be silently ignored.
    model_config = ConfigDict(extra="forbid")


class RetainRequest(_Request):
    """``Astrocyte.retain``: remember ``content`` in ``bank_id``."""

    content: str = Field(description="Text to remember.")
    bank_id: str | None = Field(
        default=None, description="Target bank; default: the caller's default bank."
    )
    metadata: dict[str, MetadataValue] | None = None
    tags: list[str] | None = None
    occurred_at: str | None = Field(
        default=None, description="When it happened (ISO 8601); default: now."
    )
    source: str | None = Field(
        default=None, description="Your id for the content (document or message id)."
    )
    content_type: str = Field(default="text", description="text | conversation | ...")
    profile: str | None = Field(default=None, description="Extraction profile to apply.")
    idempotency_key: str | None = Field(
        default=None,
        description="Makes the call safe to retry: a key the bank already holds stores "
        "nothing and returns the stored memory ids (deduplicated=true).",
    )


class _RecallFields(_Request):
    query: str = Field(description="What to look for.")
    bank_id: str | None = Field(default=None, description="One bank to search.")
    banks: list[str] | None = Field(
        default=None, description="Several banks (those the caller may not read are skipped)."
    )
    max_tokens: int | None = None
    tags: list[str] | None = Field(default=None, description="Hits must carry all of them.")
    time_range: TimeRange | None = Field(default=None, description="Filter on occurred_at.")
    filters: dict[str, MetadataValue] | None = Field(
        default=None, description="Metadata equality filters."
    )
    external_context: list[dict[str, Any] | str] | None = Field(
        default=None, description="Extra passages ({text, source?, score?}) fused in."
    )
    now: str | None = Field(
        default=None, description="Reference time (ISO 8601) for relative dates in the query."
    )
    strategy: MultiBankStrategy | None = Field(
        default=None,
        description="How several banks are combined: parallel (fuse all) | cascade (in "
        "order until enough hits) | first_match (first bank with a hit); default from "
        "recall.multi_bank.",
    )
    min_score: float | None = Field(
        default=None, ge=0, description="cascade/first_match: score a hit needs to count."
    )


class RecallRequest(_RecallFields):
    """``Astrocyte.recall``: the memories most relevant to ``query``."""

    max_results: int | None = None


class ReflectRequest(_RecallFields):
    """``Astrocyte.reflect``: an answer to ``query`` from memory, with citations."""

    max_evidence: int = Field(default=8, description="Evidence hits considered.")


class ForgetRequest(_Request):
    """``Astrocyte.forget``: delete the memories every given selector matches."""

    bank_id: str | None = None
    memory_ids: list[str] | None = None
    tags: list[str] | None = None
    filters: dict[str, MetadataValue] | None = None
    before: str | None = Field(
        default=None, description="Memories whose occurred_at is earlier (ISO 8601)."
    )


class ErrorBody(BaseModel):
    """What went wrong."""

    code: str = Field(description="Stable machine-readable reason, e.g. bank_not_found.")
    message: str = Field(description="Human-readable explanation; safe to show.")
    request_id: str | None = Field(description="Echo of X-Request-ID; quote it in reports.")
    details: list[dict[str, Any]] | None = Field(
        default=None, description="Validation errors: loc, msg, type."
    )


class ErrorResponse(BaseModel):
    """Every error response."""

    error: ErrorBody


class ComponentHealth(BaseModel):
    """Health of one component."""

    ok: bool
    detail: str | None = None


class HealthResponse(BaseModel):
    """Gateway and store health (``GET /health``)."""

    status: Literal["ok", "unhealthy"]
    version: str
    stores: dict[str, ComponentHealth]


class LiveResponse(BaseModel):
    """Liveness (``GET /health/live``)."""

    status: Literal["ok"]


class SourceHealthView(BaseModel):
    """Public health of one ingestion source."""

    source_type: str
    state: str
    ok: bool


class IngestHealthResponse(BaseModel):
    """Ingestion sources' health (``GET /health/ingest``)."""

    ok: bool
    sources: dict[str, SourceHealthView]


class WebhookAccepted(BaseModel):
    """An accepted webhook delivery: ``stored`` now or a ``duplicate`` of an earlier one."""

    status: Literal["stored", "duplicate"]
    source_id: str
    bank_id: str
    idempotency_key: str | None
    memory_ids: list[str]


class IngestCounters(BaseModel):
    """Running counters of a stream/poll source."""

    processed: int = Field(description="Messages handled (stored + duplicates + dead-lettered).")
    stored: int
    duplicates: int = Field(description="Redeliveries of messages already stored (no-ops).")
    dead_lettered: int
    failed_batches: int = Field(description="Batches not acknowledged (retried later).")
    last_batch_age_seconds: float | None
    last_error: str | None


class AdminSource(BaseModel):
    """One ingestion source, its configuration summary and full health."""

    source_type: str
    enabled: bool
    state: str
    ok: bool
    detail: str
    failures_in_window: int
    total_failures: int
    total_rejections: int
    total_successes: int
    backoff_remaining_seconds: float
    last_error: str | None
    counters: IngestCounters | None = Field(
        default=None, description="Stream/poll sources: what their consumer has done."
    )
    restarts: int | None = Field(
        default=None, description="Stream/poll sources: driver restarts after a failure."
    )


class AdminSourcesResponse(BaseModel):
    """``GET /v1/admin/sources``."""

    sources: dict[str, AdminSource]


class AdminBank(BaseModel):
    """One bank with its size."""

    bank_id: str = Field(description="The bank id as its tenant's callers name it.")
    tenant: str | None = Field(description="Tenant namespace of the bank; null: none.")
    memory_count: int
    created_at: datetime


class AdminBanksResponse(BaseModel):
    """``GET /v1/admin/banks``: the banks and the health of the stores holding them."""

    banks: list[AdminBank]
    stores: dict[str, ComponentHealth]
