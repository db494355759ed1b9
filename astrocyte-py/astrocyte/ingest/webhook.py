"""Signed webhooks: an HTTP push from another system becomes memories.

One request is handled by :meth:`WebhookIngest.handle` in this order, and every step
that rejects does so *before anything is stored*:

1. the source must be a known, enabled ``webhook`` source (404), not backing off (503);
2. the body must be at most ``max_body_bytes`` (413);
3. ``HMAC-SHA256(secret, f"{timestamp}.{body}")`` must match the signature header
   (401), and the timestamp must be within ``tolerance_seconds`` of now (401: a stale
   timestamp is an authentication failure, as with Stripe/Slack signatures, because
   the timestamp is part of what was signed and is what stops replays);
4. the body must be a JSON object of a known shape (400) naming a valid bank (400);
5. the source's principal must be allowed to write the bank (403);
6. an event already stored under the same idempotency key is answered as a duplicate
   (200) without writing again; otherwise the memories are retained (200).

The mapping from outcome to HTTP status lives on the result and error types
(``http_status``), so the ASGI app in :mod:`astrocyte.ingest.app` and any other
gateway answer identically.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from astrocyte.errors import (
    AccessDenied,
    BankNotFound,
    QuotaExceeded,
    RateLimited,
    ValidationError,
)
from astrocyte.identity.context import AstrocyteContext
from astrocyte.identity.patterns import Permission
from astrocyte.ingest.payload import (
    IDEMPOTENCY_METADATA_KEY,
    SOURCE_METADATA_KEY,
    PayloadError,
    parse_payload,
    retain_items,
    target_bank,
)
from astrocyte.spi import RecordFilter

if TYPE_CHECKING:
    from astrocyte.brain import Astrocyte
    from astrocyte.config.ingest_schema import SourceConfig
    from astrocyte.ingest.registry import SourceRegistry

__all__ = [
    "IDEMPOTENCY_METADATA_KEY",
    "SOURCE_METADATA_KEY",
    "WebhookError",
    "WebhookIngest",
    "WebhookResult",
    "WebhookSettings",
    "handle_webhook_ingest",
    "sign_webhook",
]

DEFAULT_TIMESTAMP_HEADER = "X-Timestamp"
DEFAULT_IDEMPOTENCY_HEADER = "Idempotency-Key"
DEFAULT_TOLERANCE_SECONDS = 300.0
DEFAULT_MAX_BODY_BYTES = 1024 * 1024


_TIMESTAMP = re.compile(r"^\d{1,12}$")
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")  # printable ASCII, no spaces


# --- results and errors ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WebhookResult:
    """A delivery that was accepted: ``stored`` now, or a ``duplicate`` of an event
    stored before (nothing written). Both are HTTP 200 so senders stop retrying."""

    status: Literal["stored", "duplicate"]
    source_id: str
    bank_id: str
    idempotency_key: str | None
    memory_ids: tuple[str, ...]

    @property
    def http_status(self) -> int:
        """200 for both outcomes."""
        return 200

    def to_json(self) -> dict[str, Any]:
        """The response body."""
        return {
            "status": self.status,
            "source_id": self.source_id,
            "bank_id": self.bank_id,
            "idempotency_key": self.idempotency_key,
            "memory_ids": list(self.memory_ids),
        }


class WebhookError(Exception):
    """A rejected delivery; nothing was stored. ``http_status`` is what to answer,
    ``code`` a stable machine-readable reason, ``retry_after`` seconds (503/429)."""

    http_status = 500
    code = "internal_error"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after

    def to_json(self) -> dict[str, Any]:
        """The response body."""
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.retry_after is not None:
            body["retry_after"] = self.retry_after
        return body


class UnknownSource(WebhookError):
    """No enabled webhook source of that name (404)."""

    http_status, code = 404, "unknown_source"


class SourceUnavailable(WebhookError):
    """The source is backing off after repeated failures (503, with Retry-After)."""

    http_status, code = 503, "source_unavailable"


class BodyTooLarge(WebhookError):
    """The body is over the source's ``max_body_bytes`` (413)."""

    http_status, code = 413, "body_too_large"


class InvalidSignature(WebhookError):
    """Missing or wrong signature, or a missing/unparsable timestamp (401)."""

    http_status, code = 401, "invalid_signature"


class StaleTimestamp(WebhookError):
    """A correctly signed request whose timestamp is outside the tolerance (401)."""

    http_status, code = 401, "stale_timestamp"


class MalformedPayload(WebhookError):
    """The body is not JSON, not a known payload shape, or names no valid bank (400)."""

    http_status, code = 400, "malformed_payload"


class Forbidden(WebhookError):
    """The source's principal may not write the target bank (403)."""

    http_status, code = 403, "forbidden"


class TargetBankNotFound(WebhookError):
    """The target bank does not exist and ``banks.auto_create`` is off (404)."""

    http_status, code = 404, "bank_not_found"


class Throttled(WebhookError):
    """A rate limit or quota of the policy layer refused the write (429)."""

    http_status, code = 429, "throttled"


class RetainFailed(WebhookError):
    """The retain itself failed (store or embedder error) (500). Counts against the
    source's health in the registry; the sender should retry."""

    http_status, code = 500, "retain_failed"


# --- settings -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    """Everything the handler needs to know about one webhook source.

    ``SourceConfig`` carries ``secret`` and ``signature_header``; the other fields are
    read from it when present (``getattr``) and otherwise come from the
    :class:`WebhookIngest` defaults, so a config schema that grows them needs no change
    here.
    """

    source_id: str
    secret: str | None
    signature_header: str = "X-Signature-256"
    timestamp_header: str = DEFAULT_TIMESTAMP_HEADER
    tolerance_seconds: float = DEFAULT_TOLERANCE_SECONDS
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    idempotency_header: str = DEFAULT_IDEMPOTENCY_HEADER
    allow_unsigned: bool = False
    target_bank_template: str | None = None
    principal: str | None = None
    max_chunk_chars: int = 1000
    tags: tuple[str, ...] = field(default_factory=tuple)
    extraction_profile: str | None = None


def sign_webhook(secret: str, timestamp: int | str, body: bytes) -> str:
    """The signature header value for ``body`` sent at ``timestamp`` (Unix seconds):
    ``"sha256=" + hex(HMAC-SHA256(secret, f"{timestamp}.".encode() + body))``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


# --- the handler ----------------------------------------------------------------------


class WebhookIngest:
    """Validates, maps and retains webhook deliveries for the sources of ``brain``.

    Args:
        brain: the instance to retain into; its ``config.sources`` defines the sources.
        registry: when given, it decides which sources exist (runtime registration),
            is told of every success and failure, and a source it has marked
            unhealthy is answered 503 until its backoff ends.
        clock: Unix time in seconds (injectable for tests of the replay window).
        tolerance_seconds, max_body_bytes, timestamp_header, idempotency_header:
            defaults for sources whose config does not set them.

    Idempotency: the key (``idempotency_header``, else the payload's ``event_id`` or
    ``id``) is stored in every memory's metadata as ``<source>:<key>``; a delivery
    first looks it up with an indexed metadata filter (never a scan in Python) and
    holds an in-process lock per key, so concurrent redeliveries store one set of
    memories. Several gateway *processes* share no lock: run one ingest worker per
    source, or accept that two processes racing on one event may both store it.
    """

    def __init__(
        self,
        brain: Astrocyte,
        *,
        registry: SourceRegistry | None = None,
        clock: Callable[[], float] = time.time,
        tolerance_seconds: float = DEFAULT_TOLERANCE_SECONDS,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        timestamp_header: str = DEFAULT_TIMESTAMP_HEADER,
        idempotency_header: str = DEFAULT_IDEMPOTENCY_HEADER,
    ) -> None:
        self.brain = brain
        self.registry = registry
        self._clock = clock
        self._tolerance_seconds = tolerance_seconds
        self._max_body_bytes = max_body_bytes
        self._timestamp_header = timestamp_header
        self._idempotency_header = idempotency_header
        # key -> (lock, number of deliveries holding or waiting for it); entries are
        # dropped when the count reaches zero so the dict does not grow forever.
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    # -- configuration -------------------------------------------------------------

    def _source_config(self, source_id: str) -> SourceConfig:
        if self.registry is not None and not self.registry.is_registered(source_id):
            raise UnknownSource(f"no webhook source named {source_id!r}")
        source = self.brain.config.sources.get(source_id)
        if source is None or source.type != "webhook" or not source.enabled:
            raise UnknownSource(f"no webhook source named {source_id!r}")
        return source

    def settings(self, source_id: str) -> WebhookSettings:
        """The effective settings of a source; :class:`UnknownSource` if there is no
        enabled webhook source of that name."""
        source = self._source_config(source_id)
        config = self.brain.config
        profile = (
            config.extraction_profiles.get(source.extraction_profile)
            if source.extraction_profile
            else None
        )
        chunking = (profile.chunking if profile and profile.chunking else None) or config.chunking
        return WebhookSettings(
            source_id=source_id,
            secret=source.secret,
            signature_header=source.signature_header,
            timestamp_header=str(_configured(source, "timestamp_header", self._timestamp_header)),
            tolerance_seconds=float(
                _configured(source, "tolerance_seconds", self._tolerance_seconds)
            ),
            max_body_bytes=int(_configured(source, "max_body_bytes", self._max_body_bytes)),
            idempotency_header=str(
                _configured(source, "idempotency_header", self._idempotency_header)
            ),
            allow_unsigned=bool(getattr(source, "allow_unsigned", False)),
            target_bank_template=source.target_bank_template
            or (profile.target_bank_template if profile else None),
            principal=source.principal,
            max_chunk_chars=chunking.max_chars,
            tags=tuple(profile.tags) if profile else (),
            extraction_profile=source.extraction_profile,
        )

    def max_body_bytes(self, source_id: str) -> int:
        """The body limit of a source (lets a server stop reading early)."""
        return self.settings(source_id).max_body_bytes

    # -- handling ------------------------------------------------------------------

    async def handle(
        self, source_id: str, raw_body: bytes, headers: Mapping[str, str]
    ) -> WebhookResult:
        """Handle one delivery: a :class:`WebhookResult`, or a :class:`WebhookError`
        raised with nothing stored. Header names are matched case-insensitively."""
        settings = self.settings(source_id)
        if self.registry is not None:
            wait = self.registry.backoff_remaining(source_id)
            if wait > 0:
                raise SourceUnavailable(
                    f"source {source_id!r} is backing off after repeated failures",
                    retry_after=round(wait, 3),
                )
        try:
            result = await self._handle(settings, raw_body, _lower(headers))
        except RetainFailed as exc:
            if self.registry is not None:
                self.registry.record_failure(source_id, exc.message)
            raise
        except WebhookError:
            # The sender's fault, not the source's: never let rejected (possibly
            # forged) requests mark a source unhealthy.
            if self.registry is not None:
                self.registry.record_rejection(source_id)
            raise
        if self.registry is not None:
            self.registry.record_success(source_id)
        return result

    async def _handle(
        self, settings: WebhookSettings, body: bytes, headers: Mapping[str, str]
    ) -> WebhookResult:
        if len(body) > settings.max_body_bytes:
            raise BodyTooLarge(
                f"body is {len(body)} bytes, over the limit of {settings.max_body_bytes}"
            )
        self._verify(settings, body, headers)
        try:
            payload = parse_payload(body)
            bank = target_bank(settings, payload)
            key = _idempotency_key(settings, payload, headers)
            items = retain_items(settings, payload, key)
        except PayloadError as exc:
            raise MalformedPayload(str(exc)) from None
        if settings.extraction_profile:
            # The retain pipeline applies the rest of the profile (metadata_mapping,
            # tag_rules, entity extraction) exactly as for an interactive retain.
            for item in items:
                item["profile"] = settings.extraction_profile
        caller = AstrocyteContext(principal=settings.principal or f"source:{settings.source_id}")
        try:
            # The facade's own authorisation step (grants + tenant namespace); the
            # duplicate lookup below must hit the same storage bank retain will.
            storage = self.brain._authorize(caller, bank, Permission.WRITE)
        except AccessDenied as exc:
            raise Forbidden(str(exc)) from None
        if key is None:
            return await self._store(settings, bank, caller, items, None)
        async with self._lock(f"{storage}\x00{key}"):
            existing = await self.brain.stores.documents.find(
                storage,
                RecordFilter(metadata={IDEMPOTENCY_METADATA_KEY: key}),
                limit=self.brain.config.limits.max_batch_items,
            )
            if existing:
                return WebhookResult("duplicate", settings.source_id, bank, key, tuple(existing))
            return await self._store(settings, bank, caller, items, key)

    async def _store(
        self,
        settings: WebhookSettings,
        bank: str,
        caller: AstrocyteContext,
        items: list[dict[str, Any]],
        key: str | None,
    ) -> WebhookResult:
        try:
            batch = await self.brain.retain_many(items, bank, context=caller)
        except AccessDenied as exc:
            raise Forbidden(str(exc)) from None
        except BankNotFound as exc:
            raise TargetBankNotFound(str(exc)) from None
        except ValidationError as exc:
            # Content too long, bad metadata, PII rejected...: the payload's fault.
            raise MalformedPayload(str(exc)) from None
        except (RateLimited, QuotaExceeded) as exc:
            retry = getattr(exc, "retry_after_s", None)
            raise Throttled(str(exc), retry_after=retry) from None
        except Exception as exc:
            raise RetainFailed(f"retain failed: {type(exc).__name__}: {exc}") from exc
        ids = tuple(i for r in batch.results for i in r.memory_ids)
        return WebhookResult("stored", settings.source_id, bank, key, ids)

    def _verify(self, settings: WebhookSettings, body: bytes, headers: Mapping[str, str]) -> None:
        """Signature over ``f"{timestamp}.{body}"``, then the replay window."""
        if settings.secret is None:
            if settings.allow_unsigned:
                return
            # A webhook without a secret would let anyone write memories: refuse
            # rather than silently accept unsigned pushes.
            raise InvalidSignature(
                f"source {settings.source_id!r} has no secret; unsigned deliveries are refused"
            )
        timestamp = headers.get(settings.timestamp_header.lower(), "").strip()
        if not _TIMESTAMP.match(timestamp):
            raise InvalidSignature(
                f"missing or invalid {settings.timestamp_header} header (Unix seconds)"
            )
        given = headers.get(settings.signature_header.lower(), "").strip()
        if not given:
            raise InvalidSignature(f"missing {settings.signature_header} header")
        expected = sign_webhook(settings.secret, timestamp, body)
        # Several comma-separated signatures are accepted so a sender can sign with
        # an old and a new secret while the secret is rotated.
        candidates = [c.strip() for c in given.split(",")]
        matched = False
        for candidate in candidates:
            value = candidate if candidate.startswith("sha256=") else f"sha256={candidate}"
            # Constant-time: a byte-by-byte early exit would leak the signature.
            matched |= hmac.compare_digest(value.lower().encode(), expected.encode())
        if not matched:
            raise InvalidSignature("signature does not match")
        skew = abs(self._clock() - int(timestamp))
        if skew > settings.tolerance_seconds:
            raise StaleTimestamp(
                f"timestamp is {skew:.0f} s from now, over the tolerance of "
                f"{settings.tolerance_seconds:.0f} s"
            )

    def _lock(self, key: str) -> _KeyLock:
        return _KeyLock(self._locks, key)


class _KeyLock:
    """Async context manager holding the per-key lock, reference-counted."""

    def __init__(self, locks: dict[str, tuple[asyncio.Lock, int]], key: str) -> None:
        self._locks, self._key = locks, key

    async def __aenter__(self) -> None:
        lock, users = self._locks.get(self._key) or (asyncio.Lock(), 0)
        self._locks[self._key] = (lock, users + 1)
        await lock.acquire()

    async def __aexit__(self, *exc: object) -> None:
        lock, users = self._locks[self._key]
        lock.release()
        if users <= 1:
            del self._locks[self._key]
        else:
            self._locks[self._key] = (lock, users - 1)


async def handle_webhook_ingest(
    brain: Astrocyte,
    source_id: str,
    raw_body: bytes,
    headers: Mapping[str, str],
) -> WebhookResult:
    """One-shot form of :meth:`WebhookIngest.handle` (no registry, default settings).

    Idempotency locks live in a :class:`WebhookIngest`; keep one per process and call
    its ``handle`` when deliveries can be concurrent.
    """
    return await WebhookIngest(brain).handle(source_id, raw_body, headers)


# --- payload mapping ------------------------------------------------------------------


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def _idempotency_key(
    settings: WebhookSettings, payload: Mapping[str, Any], headers: Mapping[str, str]
) -> str | None:
    """``<source>:<key>`` from the header, else the payload's ``event_id``/``id``.
    Namespaced by source so two sources' event ids never collide."""
    raw: object = headers.get(settings.idempotency_header.lower())
    if raw is None:
        raw = payload.get("event_id", payload.get("id"))
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise MalformedPayload("event_id/id must be a string or an integer")
    key = str(raw).strip()
    if not _IDEMPOTENCY_KEY.match(key):
        raise MalformedPayload("idempotency key must be 1-200 printable ASCII characters")
    return f"{settings.source_id}:{key}"


def _configured(source: object, name: str, default: object) -> Any:
    """The source's setting when its config sets it, else the handler's default: a
    schema default must not override what the deployment passed to ``WebhookIngest``."""
    fields_set: set[str] = getattr(source, "model_fields_set", set())
    return getattr(source, name) if name in fields_set else default
