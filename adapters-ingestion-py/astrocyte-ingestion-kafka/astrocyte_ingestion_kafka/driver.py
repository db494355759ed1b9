"""The Kafka stream driver: consume, retain, dead-letter, then commit.

One loop per source: ``getmany`` fetches up to ``batch_size`` records from the
assigned partitions; they become one :class:`StreamRecord` batch for
:meth:`StreamIngestor.ingest` (key ``topic/partition/offset``, so a redelivered
record is a retain no-op); the dead letters it returns are published to the
dead-letter topic (``acks=all``, each awaited); only then are the batch's offsets
committed, ``last offset + 1`` per partition, for the partitions still assigned.
Anything failing before the commit leaves the offsets where they were and raises, so
the supervisor restarts the driver and the new consumer re-fetches from the last
commit. One batch is in flight at a time: that is the backpressure (``aiokafka``
prefetches at most ``max_partition_fetch_bytes`` per partition meanwhile).

Rebalances: the in-flight batch and its commit run under a lock that the
``on_partitions_revoked`` callback also takes, so a revocation waits for the batch in
hand to be retained and committed before the partitions move to another member. A
commit the group coordinator still refuses (``CommitFailedError``: the group
rebalanced first) is logged and counted, not fatal: the records are stored, and the
new owner's redelivery of them is a no-op thanks to the idempotency key.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, IllegalStateError
from aiokafka.helpers import create_ssl_context
from astrocyte.ingest.stream import DeadLetter, StreamRecord, dead_letter_json
from astrocyte.spi import HealthStatus

from astrocyte_ingestion_kafka.options import KafkaOptions, parse_options

if TYPE_CHECKING:
    from astrocyte.config.ingest_schema import SourceConfig
    from astrocyte.ingest.stream import StreamIngestor

__all__ = ["DEAD_LETTER_HEADERS", "KafkaDriver", "KafkaDriverStats", "to_stream_record"]

log = logging.getLogger(__name__)

#: Headers a dead letter carries besides the original message's own headers.
DEAD_LETTER_HEADERS = (
    "astrocyte.error",
    "astrocyte.error_message",
    "astrocyte.source",
    "astrocyte.origin",
)
#: Dead letters larger than this have their ``value`` cut (the producer's default
#: ``max_request_size`` is 1 MiB; the JSON envelope and headers need room too).
_MAX_DEAD_LETTER_BYTES = 900_000
_HEALTH_TIMEOUT_S = 5.0


@dataclass(slots=True)
class KafkaDriverStats:
    """Transport counters of one driver (the ingest counters live in ``IngestStats``)."""

    batches: int = 0
    """Batches retained and committed."""
    records_committed: int = 0
    dead_letters_published: int = 0
    commits_refused: int = 0
    """Commits refused after a rebalance (the records are redelivered, as no-ops)."""
    records_not_committed: int = 0
    """Records of partitions revoked before their batch could be committed."""
    rewinds: int = 0
    """Batches given back (not committed) because ingest or dead-lettering failed."""
    rebalances: int = 0
    last_error: str | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "batches": self.batches,
            "records_committed": self.records_committed,
            "dead_letters_published": self.dead_letters_published,
            "commits_refused": self.commits_refused,
            "records_not_committed": self.records_not_committed,
            "rewinds": self.rewinds,
            "rebalances": self.rebalances,
            "last_error": self.last_error,
        }


def _decode_headers(headers: Sequence[tuple[str, bytes | None]] | None) -> dict[str, str]:
    return {
        name: "" if value is None else value.decode("utf-8", errors="replace")
        for name, value in headers or ()
    }


def to_stream_record(record: ConsumerRecord) -> StreamRecord:
    """One consumed Kafka record as a :class:`StreamRecord`: key
    ``topic/partition/offset`` (stable across redeliveries), the raw value (an
    empty value for a tombstone), UTF-8 decoded headers, the record's timestamp."""
    timestamp = None
    if record.timestamp is not None and record.timestamp >= 0:
        timestamp = datetime.fromtimestamp(record.timestamp / 1000, tz=UTC)
    return StreamRecord(
        key=f"{record.topic}/{record.partition}/{record.offset}",
        value=record.value if record.value is not None else b"",
        headers=_decode_headers(record.headers),
        timestamp=timestamp,
        position=(TopicPartition(record.topic, record.partition), record.offset),
    )


def _dead_letter_value(letter: DeadLetter) -> bytes:
    """:func:`dead_letter_json`, with the original value cut if it would not fit."""
    body = dead_letter_json(letter)
    if len(body) <= _MAX_DEAD_LETTER_BYTES:
        return body
    doc = letter.to_json()
    keep = _MAX_DEAD_LETTER_BYTES // 2
    doc["value"] = doc["value"][:keep]
    doc["value_truncated"] = True
    doc["value_bytes"] = len(letter.record.value)
    return json.dumps(doc, ensure_ascii=False).encode("utf-8")


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """Lets a revocation wait for the batch in flight (retained + committed)."""

    def __init__(self, driver: KafkaDriver) -> None:
        self._driver = driver

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        async with self._driver._batch_lock:
            # Nothing in flight now: the batch in hand (if any) was committed.
            pass
        if revoked:
            self._driver.stats.rebalances += 1
            log.info("kafka source %s: partitions revoked %s", self._driver.source_id, revoked)
        for tp in revoked:
            self._driver._next_offsets.pop(tp, None)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        log.info("kafka source %s: partitions assigned %s", self._driver.source_id, assigned)


class KafkaDriver:
    """``driver: kafka``: consumes ``options.topics`` in consumer group
    ``options.group_id`` and retains every message exactly once (see the module
    docs and the README for the delivery semantics)."""

    def __init__(self, source_id: str, source: SourceConfig) -> None:
        self.source_id = source_id
        self.options: KafkaOptions = parse_options(source_id, source.options)
        self.stats = KafkaDriverStats()
        self._consumer: Any = None
        self._producer: Any = None
        self._batch_lock = asyncio.Lock()
        #: Next offset to read per partition, as of our last commit (for lag).
        self._next_offsets: dict[TopicPartition, int] = {}

    # -- lifecycle -------------------------------------------------------------------

    async def run(self, ingestor: StreamIngestor, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set (the batch in hand is finished and committed
        first). Raises when a batch cannot be retained, dead-lettered or committed,
        without committing it."""
        await self.close()  # a previous run's clients, if close() was not called
        consumer, producer = await self._connect()
        while not stop.is_set():
            fetched = await self._fetch(consumer, stop)
            if fetched:
                await self._process(consumer, producer, ingestor, fetched)

    async def close(self) -> None:
        """Leave the consumer group and close both clients (idempotent)."""
        consumer, producer = self._consumer, self._producer
        self._consumer = self._producer = None
        self._next_offsets.clear()
        if consumer is not None:
            with contextlib.suppress(Exception):
                await consumer.stop()
        if producer is not None:
            with contextlib.suppress(Exception):
                await producer.stop()

    async def _connect(self) -> tuple[Any, Any]:
        opts = self.options
        common = opts.client_kwargs()
        if opts.security_protocol.endswith("SSL"):
            common["ssl_context"] = create_ssl_context(
                cafile=opts.ssl_cafile, certfile=opts.ssl_certfile, keyfile=opts.ssl_keyfile
            )
        consumer = AIOKafkaConsumer(
            **common,
            group_id=opts.group_id,
            enable_auto_commit=False,
            auto_offset_reset=opts.auto_offset_reset,
            session_timeout_ms=opts.session_timeout_ms,
            max_poll_interval_ms=opts.max_poll_interval_ms,
            # Records of aborted transactions are never retained.
            isolation_level="read_committed",
        )
        producer = AIOKafkaProducer(**common, acks="all")
        consumer.subscribe(list(opts.topics), listener=_Rebalance(self))
        try:
            await consumer.start()
            await producer.start()
        except BaseException:
            with contextlib.suppress(Exception):
                await consumer.stop()
            with contextlib.suppress(Exception):
                await producer.stop()
            raise
        self._consumer, self._producer = consumer, producer
        return consumer, producer

    # -- the loop --------------------------------------------------------------------

    async def _fetch(
        self, consumer: Any, stop: asyncio.Event
    ) -> dict[TopicPartition, list[ConsumerRecord]]:
        """One ``getmany``, cut short when ``stop`` is set (nothing is lost: records
        fetched but not returned were never committed)."""
        opts = self.options
        poll = asyncio.ensure_future(
            consumer.getmany(timeout_ms=opts.poll_timeout_ms, max_records=opts.batch_size)
        )
        stopped = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({poll, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            if not poll.done():
                poll.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await poll
        if poll.cancelled():
            return {}
        result: dict[TopicPartition, list[ConsumerRecord]] = poll.result()
        return {tp: records for tp, records in result.items() if records}

    async def _process(
        self,
        consumer: Any,
        producer: Any,
        ingestor: StreamIngestor,
        fetched: Mapping[TopicPartition, list[ConsumerRecord]],
    ) -> None:
        originals = {
            f"{r.topic}/{r.partition}/{r.offset}": r for recs in fetched.values() for r in recs
        }
        batch = [to_stream_record(r) for recs in fetched.values() for r in recs]
        async with self._batch_lock:
            ingested = False
            try:
                outcome = await ingestor.ingest(batch)
                ingested = True
                if outcome.dead:
                    await self._publish_dead_letters(producer, outcome.dead, originals)
            except BaseException as exc:
                # Not committed: give the records back (a restarted consumer re-fetches
                # from the committed offsets anyway) and let the supervisor restart us.
                self._rewind(consumer, fetched)
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
                if ingested and isinstance(exc, Exception):
                    # ingest counts its own failures; one after it (the dead-letter
                    # topic) fails the batch too.
                    ingestor.stats.failed_batches += 1
                    ingestor.stats.last_error = f"dead-lettering failed: {self.stats.last_error}"
                raise
            await self._commit(consumer, fetched)

    async def _publish_dead_letters(
        self,
        producer: Any,
        letters: Sequence[DeadLetter],
        originals: Mapping[str, ConsumerRecord],
    ) -> None:
        """Send every dead letter (original key and headers, plus the error headers)
        and wait until the broker acknowledged all of them."""
        pending = []
        for letter in letters:
            original = originals[letter.record.key]
            headers = [
                (name, value if value is not None else b"")
                for name, value in (original.headers or ())
                if name not in DEAD_LETTER_HEADERS
            ]
            headers += [
                ("astrocyte.error", letter.error.encode()),
                ("astrocyte.error_message", letter.message[:1000].encode()),
                ("astrocyte.source", self.source_id.encode()),
                ("astrocyte.origin", letter.record.key.encode()),
            ]
            pending.append(
                await producer.send(
                    self.options.dead_letter_topic_for(original.topic),
                    value=_dead_letter_value(letter),
                    key=original.key,
                    headers=headers,
                )
            )
        await asyncio.gather(*pending)
        self.stats.dead_letters_published += len(pending)

    async def _commit(
        self,
        consumer: Any,
        fetched: Mapping[TopicPartition, list[ConsumerRecord]],
    ) -> None:
        """Commit ``last offset + 1`` of each partition of the batch still assigned."""
        assigned = consumer.assignment()
        offsets = {tp: recs[-1].offset + 1 for tp, recs in fetched.items() if tp in assigned}
        lost = sum(len(recs) for tp, recs in fetched.items() if tp not in assigned)
        if lost:
            self.stats.records_not_committed += lost
            log.info(
                "kafka source %s: %d record(s) of revoked partitions stay uncommitted "
                "(their new owner redelivers them as no-ops)",
                self.source_id,
                lost,
            )
        if offsets:
            timeout = self.options.request_timeout_ms / 1000
            try:
                await asyncio.wait_for(consumer.commit(offsets), timeout)
            except (CommitFailedError, IllegalStateError) as exc:
                self.stats.commits_refused += 1
                self.stats.records_not_committed += sum(len(fetched[tp]) for tp in offsets)
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
                log.warning(
                    "kafka source %s: commit refused after a rebalance (%s); the records "
                    "are stored and their redelivery will be a no-op",
                    self.source_id,
                    exc,
                )
                return
            except TimeoutError:
                self.stats.last_error = f"offset commit timed out after {timeout:g}s"
                raise TimeoutError(
                    f"kafka source {self.source_id}: offset commit timed out after {timeout:g}s"
                ) from None
            self._next_offsets.update(offsets)
            self.stats.records_committed += sum(len(fetched[tp]) for tp in offsets)
        self.stats.batches += 1

    def _rewind(
        self,
        consumer: Any,
        fetched: Mapping[TopicPartition, list[ConsumerRecord]],
    ) -> None:
        self.stats.rewinds += 1
        for tp, recs in fetched.items():
            with contextlib.suppress(Exception):
                consumer.seek(tp, recs[0].offset)

    # -- health ----------------------------------------------------------------------

    def lag(self) -> int | None:
        """Records after our last commit on the assigned partitions (``highwater -
        committed``), summed over the partitions where both are known; ``None`` when
        not consuming."""
        consumer = self._consumer
        if consumer is None:
            return None
        total = 0
        for tp in consumer.assignment():
            try:
                high = consumer.highwater(tp)
            except (AssertionError, IllegalStateError):
                continue
            committed = self._next_offsets.get(tp)
            if high is not None and committed is not None:
                total += max(0, high - committed)
        return total

    def metrics(self) -> dict[str, Any]:
        """Transport counters, the assignment and the lag (JSON-ready)."""
        consumer = self._consumer
        assigned = sorted(consumer.assignment()) if consumer is not None else []
        return {
            **self.stats.to_json(),
            "running": consumer is not None,
            "assignment": [f"{tp.topic}/{tp.partition}" for tp in assigned],
            "lag": self.lag(),
        }

    async def health_check(self) -> HealthStatus:
        """Healthy when the consumer runs and a metadata round trip to the cluster
        succeeds; the detail names the group, the assignment and the lag."""
        consumer = self._consumer
        if consumer is None:
            detail = "not consuming"
            if self.stats.last_error:
                detail += f" (last error: {self.stats.last_error})"
            return HealthStatus(False, detail)
        try:
            await asyncio.wait_for(consumer.topics(), _HEALTH_TIMEOUT_S)
        except Exception as exc:
            reason = type(exc).__name__ if isinstance(exc, TimeoutError) else f"{exc}"
            return HealthStatus(
                False,
                f"kafka {','.join(self.options.bootstrap_servers)} unreachable: {reason}",
            )
        try:
            assigned = consumer.assignment()
            lag = self.lag()
        except Exception as exc:
            return HealthStatus(False, f"consumer state unavailable: {exc}")
        return HealthStatus(
            True,
            f"connected; group {self.options.group_id}; {len(assigned)} partition(s) "
            f"assigned; lag {lag}",
        )
