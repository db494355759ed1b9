"""Stream and poll ingest: batches of consumed messages become memories, exactly once.

A driver (Kafka, Redis Streams, a poller; see :mod:`astrocyte.ingest.supervisor`)
fetches a batch, hands it to :meth:`StreamIngestor.ingest`, sends the dead letters it
gets back to its dead-letter topic/stream, and only then acknowledges the batch (commit
offsets, XACK, advance the poll cursor). That gives **at-least-once** delivery; the
**no duplicates stored** half comes from the idempotency key every message carries
(``topic/partition/offset``, a stream entry id, ``issue@updated_at``): it becomes the
retain's ``idempotency_key``, so a message redelivered after a crash between retain
and acknowledge is a no-op (see ``Astrocyte.retain``).

Failures are split in two:

* **the message's fault** — not JSON, unknown shape, no valid bank, rejected by
  validation, PII policy or access control: the message is dead-lettered with the
  error and the batch goes on (other messages of the batch are retained);
* **ours** — the store or embedder is down, a rate limit or quota pushes back: the
  whole batch raises :class:`IngestUnavailable` and is *not* acknowledged, so it is
  redelivered once the supervisor restarts the driver after a back-off.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from astrocyte.errors import (
    AccessDenied,
    AstrocyteError,
    BankNotFound,
    PayloadTooLarge,
    PIIRejected,
    QuotaExceeded,
    RateLimited,
    ValidationError,
)
from astrocyte.identity.context import AstrocyteContext
from astrocyte.ingest.payload import PayloadError, parse_payload, retain_items, target_bank

if TYPE_CHECKING:
    from astrocyte.brain import Astrocyte
    from astrocyte.config.ingest_schema import SourceConfig
    from astrocyte.ingest.registry import SourceRegistry

__all__ = [
    "BatchOutcome",
    "DeadLetter",
    "IngestStats",
    "IngestUnavailable",
    "StreamIngestor",
    "StreamRecord",
    "StreamSettings",
    "dead_letter_json",
]

#: Errors that are the message's fault: dead-letter it, move on.
_POISON: tuple[type[Exception], ...] = (
    PayloadError,
    ValidationError,
    PayloadTooLarge,
    PIIRejected,
    AccessDenied,
    BankNotFound,
)
#: Errors that push back: retry the batch later, never dead-letter for them.
_BACKPRESSURE: tuple[type[Exception], ...] = (RateLimited, QuotaExceeded)


@dataclass(frozen=True, slots=True)
class StreamRecord:
    """One consumed message.

    ``key`` identifies the message within its source forever (it must be the same on
    every redelivery): Kafka ``topic/partition/offset``, a Redis stream and entry id,
    ``owner/repo#number@updated_at``. ``value`` is the payload (see
    :mod:`astrocyte.ingest.payload`), or plain text when the source's ``format`` is
    ``text``. ``position`` is the driver's own handle (offset, entry id) for acking.
    """

    key: str
    value: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    timestamp: datetime | None = None
    position: Any = None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message that can never be retained as sent, with why."""

    record: StreamRecord
    error: str
    """Stable reason code, e.g. ``malformed_payload``, ``validation_error``."""
    message: str

    def to_json(self) -> dict[str, Any]:
        """The dead-letter payload drivers publish: the original message and the error."""
        return {
            "key": self.record.key,
            "error": self.error,
            "message": self.message,
            "value": self.record.value.decode("utf-8", errors="replace"),
            "headers": dict(self.record.headers),
            "timestamp": self.record.timestamp.isoformat() if self.record.timestamp else None,
        }


@dataclass(slots=True)
class BatchOutcome:
    """What became of a batch: each record was stored, a replay, or dead-lettered."""

    stored: int = 0
    duplicates: int = 0
    memories: int = 0
    dead: list[DeadLetter] = field(default_factory=list)
    elapsed_ms: float = 0.0

    @property
    def processed(self) -> int:
        """Records handled (all of them, when ``ingest`` returns)."""
        return self.stored + self.duplicates + len(self.dead)


@dataclass(slots=True)
class IngestStats:
    """Running counters of one source (reported by ``/health/ingest``)."""

    processed: int = 0
    stored: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    failed_batches: int = 0
    last_batch_at: float | None = None
    last_error: str | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "processed": self.processed,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "dead_lettered": self.dead_lettered,
            "failed_batches": self.failed_batches,
            "last_batch_age_seconds": None
            if self.last_batch_at is None
            else round(time.monotonic() - self.last_batch_at, 3),
            "last_error": self.last_error,
        }


class IngestUnavailable(AstrocyteError):
    """The batch could not be retained for a reason that is not the messages' fault
    (store/embedder down, rate limit, quota): do not acknowledge it; retry later."""

    code = "ingest_unavailable"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class StreamSettings:
    """How a stream/poll source's messages map to memories (from ``sources.<name>``)."""

    source_id: str
    target_bank_template: str | None
    max_chunk_chars: int
    tags: tuple[str, ...] = ()
    extraction_profile: str | None = None
    principal: str | None = None
    format: Literal["json", "text"] = "json"

    @classmethod
    def from_config(cls, brain: Astrocyte, source_id: str, source: SourceConfig) -> StreamSettings:
        """Settings of ``sources.<source_id>``; the driver-independent option
        ``options.format`` (``json`` default, or ``text``) is read here."""
        config = brain.config
        profile = (
            config.extraction_profiles.get(source.extraction_profile)
            if source.extraction_profile
            else None
        )
        chunking = (profile.chunking if profile and profile.chunking else None) or config.chunking
        fmt = source.options.get("format", "json")
        if fmt not in ("json", "text"):
            raise ValidationError(
                f"sources.{source_id}.options.format", f"unknown format {fmt!r}", fix="json | text"
            )
        return cls(
            source_id=source_id,
            target_bank_template=source.target_bank_template
            or (profile.target_bank_template if profile else None),
            max_chunk_chars=chunking.max_chars,
            tags=tuple(profile.tags) if profile else (),
            extraction_profile=source.extraction_profile,
            principal=source.principal,
            format=fmt,
        )


class StreamIngestor:
    """Retains batches of one source's messages idempotently (see the module docstring).

    Not safe for two concurrent ``ingest`` calls with the same records; a driver runs
    one batch at a time per partition/stream, which is also its backpressure.
    """

    def __init__(
        self,
        brain: Astrocyte,
        settings: StreamSettings,
        *,
        registry: SourceRegistry | None = None,
    ) -> None:
        self.brain = brain
        self.settings = settings
        #: Told of every retained batch (success) and dead letter (rejection), as for
        #: webhooks; the supervisor records the failures.
        self.registry = registry
        self.stats = IngestStats()
        self._caller = AstrocyteContext(
            principal=settings.principal or f"source:{settings.source_id}"
        )

    @classmethod
    def from_config(
        cls, brain: Astrocyte, source_id: str, *, registry: SourceRegistry | None = None
    ) -> StreamIngestor:
        """The ingestor of ``sources.<source_id>`` of ``brain``'s config."""
        source = brain.config.sources.get(source_id)
        if source is None:
            raise ValidationError("source_id", f"no source named {source_id!r} in the config")
        return cls(brain, StreamSettings.from_config(brain, source_id, source), registry=registry)

    async def ingest(self, records: Sequence[StreamRecord]) -> BatchOutcome:
        """Retain ``records``; returns the outcome, or raises :class:`IngestUnavailable`
        with nothing acknowledged-worthy (some records may be stored: their redelivery
        is a no-op)."""
        started = time.perf_counter()
        outcome = BatchOutcome()
        by_bank: dict[str, list[tuple[StreamRecord, list[dict[str, Any]]]]] = defaultdict(list)
        for record in records:
            try:
                bank, items = self._items(record)
            except _POISON as exc:
                outcome.dead.append(_dead(record, exc))
                continue
            by_bank[bank].append((record, items))
        try:
            for bank, group in by_bank.items():
                await self._retain_group(bank, group, outcome)
        except _BACKPRESSURE as exc:
            self._failed(exc)
            raise IngestUnavailable(
                f"{type(exc).__name__}: {exc}", retry_after=getattr(exc, "retry_after_s", None)
            ) from exc
        except IngestUnavailable as exc:
            self._failed(exc)
            raise
        except Exception as exc:
            self._failed(exc)
            raise IngestUnavailable(f"{type(exc).__name__}: {exc}") from exc
        outcome.elapsed_ms = round((time.perf_counter() - started) * 1000, 3)
        stats = self.stats
        stats.processed += outcome.processed
        stats.stored += outcome.stored
        stats.duplicates += outcome.duplicates
        stats.dead_lettered += len(outcome.dead)
        stats.last_batch_at = time.monotonic()
        if self.registry is not None:
            self.registry.record_success(self.settings.source_id)
            for _ in outcome.dead:
                self.registry.record_rejection(self.settings.source_id)
        return outcome

    def _failed(self, exc: BaseException) -> None:
        self.stats.failed_batches += 1
        self.stats.last_error = f"{type(exc).__name__}: {exc}"

    def _items(self, record: StreamRecord) -> tuple[str, list[dict[str, Any]]]:
        """The target bank and retain items of one record (PayloadError if poison)."""
        settings = self.settings
        if settings.format == "text":
            try:
                text = record.value.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise PayloadError(f"message is not UTF-8 text: {exc}") from None
            payload: dict[str, Any] = {"content": text}
            if record.timestamp is not None:
                payload["occurred_at"] = record.timestamp.isoformat()
        else:
            payload = parse_payload(record.value)
            if record.timestamp is not None and not (
                "occurred_at" in payload or "timestamp" in payload
            ):
                payload = {**payload, "occurred_at": record.timestamp.isoformat()}
        bank = target_bank(settings, payload)
        key = f"{settings.source_id}:{record.key}"
        items = retain_items(settings, payload, key)
        for index, item in enumerate(items):
            # One key per item: a transcript chunked into several items keeps them all.
            item["idempotency_key"] = key if len(items) == 1 else f"{key}#{index}"
            if settings.extraction_profile:
                item["profile"] = settings.extraction_profile
        return bank, items

    async def _retain_group(
        self,
        bank: str,
        group: list[tuple[StreamRecord, list[dict[str, Any]]]],
        outcome: BatchOutcome,
    ) -> None:
        """One ``retain_many`` for the bank's records; if the batch is rejected as
        bad input, retry record by record so only the poison ones are dead-lettered."""
        items = [item for _, record_items in group for item in record_items]
        try:
            batch = await self.brain.retain_many(items, bank, context=self._caller)
        except _POISON as exc:
            if len(group) == 1:
                outcome.dead.append(_dead(group[0][0], exc))
                return
            for single in group:
                await self._retain_group(bank, [single], outcome)
            return
        position = 0
        for _, record_items in group:
            results = batch.results[position : position + len(record_items)]
            position += len(record_items)
            if all(r.deduplicated for r in results):
                outcome.duplicates += 1
            else:
                outcome.stored += 1
                outcome.memories += sum(len(r.memory_ids) for r in results if not r.deduplicated)


def _dead(record: StreamRecord, exc: Exception) -> DeadLetter:
    code = getattr(exc, "code", None)
    if isinstance(exc, PayloadError):
        code = "malformed_payload"
    return DeadLetter(record, str(code or type(exc).__name__), str(exc))


def dead_letter_json(letter: DeadLetter) -> bytes:
    """``letter`` as the UTF-8 JSON bytes a driver publishes to its dead-letter queue."""
    return json.dumps(letter.to_json(), ensure_ascii=False).encode("utf-8")
