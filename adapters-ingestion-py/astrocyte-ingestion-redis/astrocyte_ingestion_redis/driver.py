"""Redis Streams consumer-group driver: at-least-once, acked only after retain.

The loop of :meth:`RedisStreamsDriver.run`:

1. create the consumer group on every stream (``XGROUP CREATE ... MKSTREAM``; an
   existing group is kept);
2. re-read **this consumer's own pending entries** (``XREADGROUP`` from id ``0``):
   the batch a crashed run retained but never acknowledged comes back first;
3. claim entries other consumers left pending longer than ``claim_idle_ms``
   (``XAUTOCLAIM``), so a dead consumer's batch is finished by the survivors;
4. read new entries (``XREADGROUP ... >``, ``COUNT batch_size``, ``BLOCK block_ms``)
   until ``stop`` is set; steps 2-3 are repeated every ``claim_idle_ms / 2``.

Each batch goes to :meth:`StreamIngestor.ingest` (one ``retain_many`` per bank); then,
in one ``MULTI``/``EXEC``, its dead letters are ``XADD``-ed to the dead-letter stream
and exactly the batch's entry ids are ``XACK``-ed. A crash anywhere before ``EXEC``
leaves the entries pending, so they are delivered again, and the idempotency key
``<source>:<stream>/<entry id>`` makes their second retain a no-op.
:class:`~astrocyte.ingest.stream.IngestUnavailable` (store down, rate limit) acks
nothing and is raised, so the supervisor restarts the driver after a back-off.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from astrocyte.ingest.stream import BatchOutcome, DeadLetter, StreamIngestor, StreamRecord
from astrocyte.spi import HealthStatus
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ResponseError

from astrocyte_ingestion_redis.options import RedisStreamsOptions

if TYPE_CHECKING:
    from astrocyte.config.ingest_schema import SourceConfig

__all__ = ["DriverCounters", "RedisStreamsDriver", "entry_record"]

log = logging.getLogger(__name__)

_HEALTH_TIMEOUT_S = 5.0


@dataclass(slots=True)
class DriverCounters:
    """What the driver did on the Redis side (the ingestor counts the retains)."""

    batches: int = 0
    acked: int = 0
    dead_letters_published: int = 0
    claimed: int = 0
    redelivered: int = 0
    """Entries re-read from this consumer's own pending list (an earlier run's batch)."""
    deleted_pending: int = 0
    """Pending entries whose data was trimmed or deleted from the stream (acked only)."""

    def to_json(self) -> dict[str, int]:
        """JSON-ready form."""
        return {
            "batches": self.batches,
            "acked": self.acked,
            "dead_letters_published": self.dead_letters_published,
            "claimed": self.claimed,
            "redelivered": self.redelivered,
            "deleted_pending": self.deleted_pending,
        }


@dataclass(frozen=True, slots=True)
class _Entry:
    stream: str
    entry_id: str
    fields: dict[bytes, bytes]


def entry_record(
    stream: str, entry_id: str, fields: dict[bytes, bytes], field: str
) -> StreamRecord:
    """The :class:`StreamRecord` of one stream entry.

    The payload is the value of ``field``; an entry without that field is taken whole,
    as a JSON object of its fields (so ``XADD s * content "..." bank_id b`` works).
    The other fields of an entry become the record's headers.
    """
    name = field.encode()
    decoded = {
        k.decode("utf-8", errors="replace"): v.decode("utf-8", errors="replace")
        for k, v in fields.items()
    }
    if name in fields:
        value = fields[name]
        headers = {k: v for k, v in decoded.items() if k != field}
    else:
        value = json.dumps(decoded, ensure_ascii=False).encode("utf-8")
        headers = {}
    return StreamRecord(
        key=f"{stream}/{entry_id}",
        value=value,
        headers=headers,
        timestamp=_entry_time(entry_id),
        position=(stream, entry_id),
    )


def _entry_time(entry_id: str) -> datetime | None:
    """The time in an entry id (``<ms>-<seq>``); None for a producer-chosen id
    that is no datetime (e.g. ``99999999999999-0``, past year 9999)."""
    try:
        return datetime.fromtimestamp(int(entry_id.split("-", 1)[0]) / 1000, UTC)
    except (ValueError, OverflowError, OSError):
        return None


class RedisStreamsDriver:
    """Consumes Redis Streams with a consumer group (see the module docstring).

    ``RedisStreamsDriver(source_id, source_config)`` only validates the options;
    connections are opened by :meth:`run` and :meth:`health_check`.
    """

    def __init__(self, source_id: str, source: SourceConfig) -> None:
        self.source_id = source_id
        self.options = RedisStreamsOptions.parse(source_id, source.options)
        self.counters = DriverCounters()
        self._redis: Redis | None = None

    # ------------------------------------------------------------------ lifecycle

    def _client(self) -> Redis:
        if self._redis is None:
            opts = self.options
            self._redis = Redis.from_url(
                opts.url,
                decode_responses=False,
                socket_timeout=opts.socket_timeout,
                socket_connect_timeout=min(10.0, opts.socket_timeout),
                # No silent retries: a lost reply to XREADGROUP would leave entries
                # pending that this run never sees. Errors end run(); the supervisor
                # restarts it and the restart re-reads the pending entries first.
                retry=Retry(NoBackoff(), 0),
                client_name=f"astrocyte-ingest:{self.source_id}",
            )
        return self._redis

    async def close(self) -> None:
        """Close the connection pool (a later ``run`` opens a new one)."""
        client, self._redis = self._redis, None
        if client is not None:
            # aclose() is redis-py >= 5.0.1; close() before (deprecated after).
            closer: Any = getattr(client, "aclose", None) or client.close
            await closer()

    # ------------------------------------------------------------------ consuming

    async def run(self, ingestor: StreamIngestor, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set; raises on Redis or store failures (nothing
        of the failed batch is acknowledged)."""
        opts = self.options
        client = self._client()
        await self._ensure_groups(client)
        await self._recover(client, ingestor, stop)
        claim_every = opts.claim_idle_ms / 2000 if opts.claim_idle_ms else None
        next_recovery = time.monotonic() + claim_every if claim_every else None
        while not stop.is_set():
            if next_recovery is not None and time.monotonic() >= next_recovery:
                await self._recover(client, ingestor, stop)
                next_recovery = time.monotonic() + (claim_every or 0)
                continue
            response = await client.xreadgroup(
                opts.group,
                opts.consumer,
                dict.fromkeys(opts.streams, ">"),
                count=opts.batch_size,
                block=opts.block_ms,
            )
            entries = list(_entries(response))
            if entries:
                await self._process(client, ingestor, entries)

    async def _ensure_groups(self, client: Redis) -> None:
        opts = self.options
        for stream in opts.streams:
            try:
                await client.xgroup_create(stream, opts.group, id=opts.start_id, mkstream=True)
                log.info("created consumer group %s on stream %s", opts.group, stream)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def _recover(self, client: Redis, ingestor: StreamIngestor, stop: asyncio.Event) -> None:
        """This consumer's own pending entries, then other consumers' idle ones."""
        for stream in self.options.streams:
            await self._own_pending(client, ingestor, stream, stop)
        if self.options.claim_idle_ms:
            for stream in self.options.streams:
                await self._claim_idle(client, ingestor, stream, stop)

    async def _own_pending(
        self, client: Redis, ingestor: StreamIngestor, stream: str, stop: asyncio.Event
    ) -> None:
        opts = self.options
        after = "0"
        while not stop.is_set():
            response = await client.xreadgroup(
                opts.group, opts.consumer, {stream: after}, count=opts.batch_size
            )
            entries = list(_entries(response))
            if not entries:
                return
            self.counters.redelivered += len(entries)
            log.info(
                "%s: %d pending entries of %s redelivered", self.source_id, len(entries), stream
            )
            await self._process(client, ingestor, entries)
            after = entries[-1].entry_id

    async def _claim_idle(
        self, client: Redis, ingestor: StreamIngestor, stream: str, stop: asyncio.Event
    ) -> None:
        opts = self.options
        cursor: str = "0-0"
        while not stop.is_set():
            response = await client.xautoclaim(
                stream,
                opts.group,
                opts.consumer,
                min_idle_time=opts.claim_idle_ms,
                start_id=cursor,
                count=opts.batch_size,
            )
            cursor = _text(response[0])
            entries = list(_stream_entries(stream, response[1]))
            if entries:
                self.counters.claimed += len(entries)
                log.info("%s: claimed %d idle entries of %s", self.source_id, len(entries), stream)
                await self._process(client, ingestor, entries)
            if cursor == "0-0":
                return

    async def _process(
        self, client: Redis, ingestor: StreamIngestor, entries: Sequence[_Entry]
    ) -> BatchOutcome:
        """Retain one batch, then dead-letter and ack it atomically."""
        opts = self.options
        records = [
            entry_record(e.stream, e.entry_id, e.fields, opts.field) for e in entries if e.fields
        ]
        # An entry with no fields was deleted or trimmed while pending: nothing to
        # retain, only its pending-list slot to release.
        self.counters.deleted_pending += len(entries) - len(records)
        outcome = await ingestor.ingest(records) if records else BatchOutcome()
        ids: dict[str, list[str]] = defaultdict(list)
        for entry in entries:
            ids[entry.stream].append(entry.entry_id)
        async with client.pipeline(transaction=True) as pipe:
            for letter in outcome.dead:
                stream = letter.record.position[0]
                pipe.xadd(
                    opts.dead_letter_stream_of(stream),
                    _dead_letter_fields(self.source_id, letter),
                    maxlen=opts.maxlen,
                    approximate=True,
                )
            for stream, stream_ids in ids.items():
                pipe.xack(stream, opts.group, *stream_ids)
            await pipe.execute()
        counters = self.counters
        counters.batches += 1
        counters.acked += len(entries)
        counters.dead_letters_published += len(outcome.dead)
        return outcome

    # ------------------------------------------------------------------ health

    async def health_check(self) -> HealthStatus:
        """PING, then per stream the group's pending count (XPENDING) and lag (XINFO
        GROUPS, Redis >= 7). Never raises."""
        try:
            async with asyncio.timeout(_HEALTH_TIMEOUT_S):
                return await self._health(self._client())
        except Exception as exc:
            return HealthStatus(False, f"redis unreachable: {type(exc).__name__}: {exc}")

    async def _health(self, client: Redis) -> HealthStatus:
        opts = self.options
        await client.ping()
        parts: list[str] = []
        ok = True
        for stream in opts.streams:
            try:
                summary = await client.xpending(stream, opts.group)
                groups = await client.xinfo_groups(stream)
            except ResponseError as exc:
                ok = False
                parts.append(f"{stream}: no consumer group {opts.group!r} ({exc})")
                continue
            mine = next((g for g in groups if _text(g.get("name")) == opts.group), None)
            lag = None if mine is None else mine.get("lag")
            parts.append(
                f"{stream}: pending={int(summary['pending'])} "
                f"lag={'unknown' if lag is None else int(lag)}"
            )
        counters = self.counters
        parts.append(
            f"acked={counters.acked} dead_letters={counters.dead_letters_published} "
            f"claimed={counters.claimed}"
        )
        return HealthStatus(ok, "; ".join(parts))


# ---------------------------------------------------------------------- helpers


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _stream_entries(stream: str, raw: Iterable[Any] | None) -> Iterable[_Entry]:
    for entry_id, fields in raw or ():
        if entry_id is None:
            continue
        yield _Entry(stream, _text(entry_id), dict(fields or {}))


def _entries(response: Any) -> Iterable[_Entry]:
    """Entries of an XREADGROUP reply (RESP2 list or RESP3 map form)."""
    if not response:
        return
    if isinstance(response, dict):  # RESP3: {stream: [entries]}
        for stream, wrapped in response.items():
            for raw in wrapped:
                yield from _stream_entries(_text(stream), raw)
        return
    for stream, raw in response:
        yield from _stream_entries(_text(stream), raw)


def _dead_letter_fields(source_id: str, letter: DeadLetter) -> dict[Any, Any]:
    record = letter.record
    return {
        "key": record.key,
        "error": letter.error,
        "message": letter.message,
        "payload": record.value,
        "source": source_id,
        "timestamp": record.timestamp.isoformat() if record.timestamp else "",
    }
