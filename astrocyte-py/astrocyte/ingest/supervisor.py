"""Running stream and poll sources: start, stop, restart on crash, report health.

A **driver** is the transport-specific half of a source — a Kafka consumer, a Redis
Streams consumer group, a GitHub poller — shipped in its own package
(``astrocyte-ingestion-kafka``, ...) and found by the ``driver`` name of its
``sources.<name>`` entry: an entry point of the ``astrocyte.ingest_drivers`` group or
an import path ``module:Class``. It implements :class:`IngestDriver`: ``run`` consumes
until asked to stop, handing each batch to the :class:`StreamIngestor` and
acknowledging it only after ``ingest`` returned (and dead letters were published).

:class:`IngestSupervisor` owns the sources of one :class:`~astrocyte.Astrocyte`: it
registers every enabled source in a :class:`SourceRegistry` (webhooks included, so
``/health/ingest`` sees them all), starts each stream/poll driver as a supervised task,
restarts a driver whose ``run`` raised after an exponential back-off (reset by a
successful batch), and stops them all on shutdown, letting an in-flight batch finish.

    async with IngestSupervisor.from_config(brain) as supervisor:
        ...                                   # consuming in the background
        print(supervisor.health())
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import random
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from astrocyte.errors import ConfigError
from astrocyte.ingest.protocol import IngestSourceType
from astrocyte.ingest.registry import SourceRegistry
from astrocyte.ingest.stream import (
    IngestStats,
    IngestUnavailable,
    StreamIngestor,
    StreamSettings,
)
from astrocyte.spi import HealthStatus

if TYPE_CHECKING:
    from types import TracebackType

    from astrocyte.brain import Astrocyte
    from astrocyte.config.ingest_schema import SourceConfig

__all__ = [
    "DRIVER_ENTRY_POINT_GROUP",
    "IngestDriver",
    "IngestSupervisor",
    "SupervisedSource",
    "load_driver",
]

log = logging.getLogger(__name__)

#: Entry-point group drivers register under (``kafka = "astrocyte_ingestion_kafka:KafkaDriver"``).
DRIVER_ENTRY_POINT_GROUP = "astrocyte.ingest_drivers"


@runtime_checkable
class IngestDriver(Protocol):
    """The transport half of a stream/poll source.

    Built as ``Driver(source_id, source_config)`` (options in ``source_config.options``;
    the constructor must do no I/O and should reject bad options with
    :class:`~astrocyte.errors.ConfigError` naming ``sources.<name>.options.<key>``).
    """

    async def run(self, ingestor: StreamIngestor, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set, then return (after finishing and acking the
        batch in hand). Raise on a failure the supervisor should restart it for."""
        ...

    async def health_check(self) -> HealthStatus:
        """Cheap probe of the transport (connected, lag...); must not raise."""
        ...

    async def close(self) -> None:
        """Release connections; called after ``run`` returned or raised."""
        ...


DriverFactory = Callable[[str, "SourceConfig"], IngestDriver]


def load_driver(name: str, key: str = "driver") -> DriverFactory:
    """The driver class ``name`` denotes: an installed entry point of
    :data:`DRIVER_ENTRY_POINT_GROUP`, or ``module:Class``."""
    if ":" in name:
        module_name, _, attr = name.partition(":")
        try:
            factory: Any = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(key, f"cannot import {name!r}: {exc}") from None
        return factory  # type: ignore[no-any-return]
    found = [ep for ep in entry_points(group=DRIVER_ENTRY_POINT_GROUP) if ep.name == name]
    if not found:
        known = sorted(ep.name for ep in entry_points(group=DRIVER_ENTRY_POINT_GROUP))
        raise ConfigError(
            key,
            f"no ingest driver named {name!r} (installed: {', '.join(known) or 'none'})",
            fix=f"pip install astrocyte-ingestion-{name}, or give module:Class",
        )
    loaded: Any = found[0].load()
    return loaded  # type: ignore[no-any-return]


class SupervisedSource:
    """One stream/poll source under supervision; an :class:`IngestSource` for the
    registry. ``start`` launches the driver task, ``stop`` asks it to finish."""

    def __init__(
        self,
        source_id: str,
        source_type: IngestSourceType,
        driver: IngestDriver,
        ingestor: StreamIngestor,
        registry: SourceRegistry,
        *,
        min_backoff: float = 0.5,
        max_backoff: float = 30.0,
        stop_timeout: float = 30.0,
    ) -> None:
        self._source_id = source_id
        self._source_type = source_type
        self.driver = driver
        self.ingestor = ingestor
        self._registry = registry
        self._min_backoff = min_backoff
        self._max_backoff = max_backoff
        self._stop_timeout = stop_timeout
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        #: How many times the driver was (re)started.
        self.runs = 0

    @property
    def source_id(self) -> str:
        """The source's name."""
        return self._source_id

    @property
    def source_type(self) -> IngestSourceType:
        """``stream`` or ``poll``."""
        return self._source_type

    @property
    def stats(self) -> IngestStats:
        """The ingestor's counters."""
        return self.ingestor.stats

    async def start(self) -> None:
        """Launch the supervised driver task (idempotent)."""
        if self._task is not None and not self._task.done():
            return
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self._supervise(), name=f"ingest:{self._source_id}")

    async def stop(self) -> None:
        """Ask the driver to stop after its current batch; cancel it if it does not
        within ``stop_timeout``; then close it (idempotent)."""
        task = self._task
        if task is None:
            return
        self._stop.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), self._stop_timeout)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        except Exception:
            # The supervisor loop logs and records its own failures.
            pass
        self._task = None

    async def health_check(self) -> HealthStatus:
        """The driver's probe, unless the supervisor is not running it."""
        if self._task is None or self._task.done():
            return HealthStatus(False, "not running")
        try:
            return await self.driver.health_check()
        except Exception as exc:
            return HealthStatus(False, f"health check raised {type(exc).__name__}: {exc}")

    async def _supervise(self) -> None:
        failures = 0
        while not self._stop.is_set():
            self.runs += 1
            processed_before = self.ingestor.stats.processed
            try:
                await self.driver.run(self.ingestor, self._stop)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                log.warning("ingest source %s failed (%s); restarting", self._source_id, error)
                self._registry.record_failure(self._source_id, error)
                # A run that made progress resets the back-off: a broker blip after
                # hours of work should not wait as long as a crash loop.
                failures = 1 if self.ingestor.stats.processed > processed_before else failures + 1
                delay = min(self._max_backoff, self._min_backoff * 2 ** (failures - 1))
                retry_after = _retry_after(exc)
                if retry_after is not None:
                    # A rate limit says when it will admit again: sooner is pointless.
                    delay = max(delay, min(retry_after, self._max_backoff))
                with contextlib.suppress(Exception):
                    await self.driver.close()
                with contextlib.suppress(TimeoutError):
                    # Jitter so several sources do not reconnect in lockstep.
                    await asyncio.wait_for(self._stop.wait(), delay * random.uniform(0.8, 1.2))
                continue
            else:
                if not self._stop.is_set():
                    # run() must only return when asked to: treat it as a crash.
                    self._registry.record_failure(self._source_id, "driver returned early")
                    failures += 1
                    continue
        with contextlib.suppress(Exception):
            await self.driver.close()


def _retry_after(exc: BaseException) -> float | None:
    """The back-pressure delay an :class:`IngestUnavailable` carries, also when the
    driver wrapped it in its own exception."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, IngestUnavailable):
            return seen.retry_after
        seen = seen.__cause__
    return None


class IngestSupervisor:
    """The ingestion sources of one :class:`~astrocyte.Astrocyte` (see module docs)."""

    def __init__(
        self,
        brain: Astrocyte,
        registry: SourceRegistry,
        sources: Mapping[str, SupervisedSource],
    ) -> None:
        self.brain = brain
        self.registry = registry
        self.sources = dict(sources)

    @classmethod
    def from_config(
        cls,
        brain: Astrocyte,
        *,
        drivers: Mapping[str, DriverFactory] | None = None,
        registry: SourceRegistry | None = None,
        min_backoff: float = 0.5,
        max_backoff: float = 30.0,
    ) -> IngestSupervisor:
        """Every enabled source of ``brain.config.sources``: webhooks registered as
        passive sources, stream/poll sources built from their ``driver`` (``drivers``
        overrides the lookup by name, e.g. for tests). Unknown drivers fail here with a
        :class:`ConfigError`, before anything starts."""
        registry = registry or SourceRegistry()
        supervised: dict[str, SupervisedSource] = {}

        def build(name: str, source: SourceConfig) -> SupervisedSource:
            key = f"sources.{name}.driver"
            if not source.driver:
                raise ConfigError(key, f"a {source.type} source needs a driver", fix="e.g. kafka")
            factory = (drivers or {}).get(source.driver) or load_driver(source.driver, key)
            driver = factory(name, source)
            settings = StreamSettings.from_config(brain, name, source)
            kind: IngestSourceType = "poll" if source.type == "poll" else "stream"
            made = SupervisedSource(
                name,
                kind,
                driver,
                StreamIngestor(brain, settings, registry=registry),
                registry,
                min_backoff=min_backoff,
                max_backoff=max_backoff,
            )
            supervised[name] = made
            return made

        registry.load(brain.config.sources, factories={"stream": build, "poll": build})
        return cls(brain, registry, supervised)

    async def start(self) -> dict[str, str | None]:
        """Start every source; ``{name: error or None}`` (see ``SourceRegistry.start_all``)."""
        return await self.registry.start_all()

    async def stop(self) -> None:
        """Stop every source (in-flight batches finish first)."""
        await self.registry.stop_all()

    def health(self) -> dict[str, dict[str, Any]]:
        """Each source's tracked health, plus its counters for stream/poll sources."""
        out: dict[str, dict[str, Any]] = {}
        for name, health in self.registry.health().items():
            entry = health.to_json()
            supervised = self.sources.get(name)
            if supervised is not None:
                entry["counters"] = supervised.stats.to_json()
                entry["restarts"] = max(0, supervised.runs - 1)
            out[name] = entry
        return out

    async def __aenter__(self) -> IngestSupervisor:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
