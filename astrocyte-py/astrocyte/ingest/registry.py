"""The registry of running ingestion sources, with health tracking and backoff.

Each source has a small circuit breaker: failures are counted in a sliding window;
``failure_threshold`` failures within ``window_seconds`` mark the source unhealthy and
start a backoff of ``base_backoff_seconds * 2**(trips-1)`` (capped at
``max_backoff_seconds``). While backing off, :meth:`SourceRegistry.backoff_remaining`
is positive: a webhook answers 503 with ``Retry-After`` so the sender retries later,
a stream/poll driver should pause. After the backoff, the next attempt is a probe:
success makes the source healthy again (and resets the backoff), another failure
trips it again with twice the backoff.

Only *internal* failures count (store down, driver crashed). Rejected deliveries
(bad signature, malformed body) are counted separately and never affect health,
otherwise anyone could disable a source by posting garbage to it.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from astrocyte.ingest.protocol import IngestSource, IngestSourceType
from astrocyte.spi import HealthStatus

if TYPE_CHECKING:
    from astrocyte.config.ingest_schema import SourceConfig
    from astrocyte.config.schema import AstrocyteConfig

__all__ = ["SourceFactory", "SourceHealth", "SourceRegistry", "WebhookSource"]

SourceFactory = Callable[[str, "SourceConfig"], IngestSource]
"""Builds the running source for a ``sources.<name>`` entry (a stream/poll driver)."""

SourceState = Literal["healthy", "degraded", "unhealthy", "stopped"]


class WebhookSource:
    """A webhook source: passive (the gateway receives its pushes), so start/stop
    only flip a flag; healthy when it has a secret to verify signatures with."""

    source_type: IngestSourceType = "webhook"

    def __init__(self, source_id: str, config: SourceConfig) -> None:
        self._source_id = source_id
        self.config = config
        self.running = False

    @property
    def source_id(self) -> str:
        """The source's name."""
        return self._source_id

    async def start(self) -> None:
        """Accept deliveries."""
        self.running = True

    async def stop(self) -> None:
        """Stop accepting deliveries."""
        self.running = False

    async def health_check(self) -> HealthStatus:
        """Unhealthy without a secret: every delivery would then be refused."""
        if self.config.secret is None and not getattr(self.config, "allow_unsigned", False):
            return HealthStatus(False, "no secret configured; deliveries are refused")
        return HealthStatus(True, "running" if self.running else "stopped")


@dataclass(slots=True)
class _Tracker:
    failures: deque[float] = field(default_factory=deque)
    total_failures: int = 0
    total_rejections: int = 0
    total_successes: int = 0
    trips: int = 0
    backoff_until: float = 0.0
    unhealthy: bool = False
    last_error: str | None = None
    started: bool = False


@dataclass(frozen=True, slots=True)
class SourceHealth:
    """A snapshot of one source's health, as reported by :meth:`SourceRegistry.health`."""

    source_id: str
    source_type: str
    state: SourceState
    failures_in_window: int
    total_failures: int
    total_rejections: int
    total_successes: int
    backoff_remaining_seconds: float
    last_error: str | None

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "source_type": self.source_type,
            "state": self.state,
            "failures_in_window": self.failures_in_window,
            "total_failures": self.total_failures,
            "total_rejections": self.total_rejections,
            "total_successes": self.total_successes,
            "backoff_remaining_seconds": round(self.backoff_remaining_seconds, 3),
            "last_error": self.last_error,
        }


class SourceRegistry:
    """The running ingestion sources and their health.

    Args:
        failure_threshold: failures within ``window_seconds`` that mark a source
            unhealthy.
        window_seconds: the sliding window failures are counted in.
        base_backoff_seconds, max_backoff_seconds: first backoff and its cap; each
            consecutive trip doubles it.
        clock: monotonic seconds (injectable for tests).
    """

    def __init__(
        self,
        *,
        failure_threshold: int = 5,
        window_seconds: float = 60.0,
        base_backoff_seconds: float = 1.0,
        max_backoff_seconds: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be >= 1")
        if window_seconds <= 0 or base_backoff_seconds <= 0:
            raise ValueError("window_seconds and base_backoff_seconds must be > 0")
        self.failure_threshold = failure_threshold
        self.window_seconds = window_seconds
        self.base_backoff_seconds = base_backoff_seconds
        self.max_backoff_seconds = max(max_backoff_seconds, base_backoff_seconds)
        self._clock = clock
        self._sources: dict[str, IngestSource] = {}
        self._trackers: dict[str, _Tracker] = {}

    @classmethod
    def from_config(
        cls,
        config: AstrocyteConfig,
        *,
        factories: Mapping[str, SourceFactory] | None = None,
        **options: Any,
    ) -> SourceRegistry:
        """A registry with every enabled source of ``config.sources``.

        Webhook sources are built in; ``factories`` maps a source type or driver name
        (``"stream"``, ``"kafka"``, ...) to a builder for the others. ``proxy``
        sources belong to the OpenAI proxy and are skipped, as are stream/poll
        sources without a factory (no driver ships in the core package).
        """
        registry = cls(**options)
        registry.load(config.sources, factories=factories)
        return registry

    def load(
        self,
        sources: Mapping[str, SourceConfig],
        *,
        factories: Mapping[str, SourceFactory] | None = None,
    ) -> list[str]:
        """Register the enabled sources of a ``sources`` mapping; returns the names
        registered (see :meth:`from_config` for which are)."""
        factories = factories or {}
        added: list[str] = []
        for name, source in sources.items():
            if not source.enabled or source.type == "proxy":
                continue
            if source.type == "webhook":
                self.register(WebhookSource(name, source))
            else:
                factory = (source.driver and factories.get(source.driver)) or factories.get(
                    source.type
                )
                if factory is None:
                    continue
                self.register(factory(name, source))
            added.append(name)
        return added

    # -- membership ----------------------------------------------------------------

    def register(self, source: IngestSource) -> None:
        """Add a source (replacing none: a name can be registered once)."""
        if source.source_id in self._sources:
            raise ValueError(f"source {source.source_id!r} is already registered")
        self._sources[source.source_id] = source
        self._trackers[source.source_id] = _Tracker()

    async def deregister(self, source_id: str) -> None:
        """Stop (if started) and remove a source; unknown names are ignored."""
        source = self._sources.pop(source_id, None)
        tracker = self._trackers.pop(source_id, None)
        if source is not None and tracker is not None and tracker.started:
            await source.stop()

    def is_registered(self, source_id: str) -> bool:
        """Whether a source of that name is registered."""
        return source_id in self._sources

    def get(self, source_id: str) -> IngestSource | None:
        """The registered source of that name, if any."""
        return self._sources.get(source_id)

    def names(self) -> list[str]:
        """The registered source names, in registration order."""
        return list(self._sources)

    def __len__(self) -> int:
        return len(self._sources)

    # -- lifecycle -----------------------------------------------------------------

    async def start_all(self) -> dict[str, str | None]:
        """Start every registered source. A source that fails to start is recorded
        as a failure (it may be retried after its backoff) and does not stop the
        others. Returns ``{source_id: error or None}``."""
        out: dict[str, str | None] = {}
        for source_id, source in list(self._sources.items()):
            tracker = self._trackers[source_id]
            try:
                await source.start()
            except Exception as exc:
                self.record_failure(source_id, f"start failed: {type(exc).__name__}: {exc}")
                out[source_id] = str(exc) or type(exc).__name__
            else:
                tracker.started = True
                out[source_id] = None
        return out

    async def stop_all(self) -> None:
        """Stop every started source; a failing stop does not prevent the others."""
        for source_id, source in list(self._sources.items()):
            tracker = self._trackers[source_id]
            if not tracker.started:
                continue
            try:
                await source.stop()
            except Exception as exc:
                tracker.last_error = f"stop failed: {type(exc).__name__}: {exc}"
            tracker.started = False

    # -- health tracking -----------------------------------------------------------

    def _prune(self, tracker: _Tracker, now: float) -> None:
        while tracker.failures and tracker.failures[0] <= now - self.window_seconds:
            tracker.failures.popleft()

    def record_success(self, source_id: str) -> None:
        """A delivery/poll/batch of this source was retained: healthy again."""
        tracker = self._trackers.get(source_id)
        if tracker is None:
            return
        tracker.total_successes += 1
        if tracker.unhealthy:
            # The probe after a backoff succeeded: close the breaker.
            tracker.unhealthy = False
            tracker.trips = 0
            tracker.failures.clear()

    def record_failure(self, source_id: str, error: str) -> None:
        """An internal failure of this source; may trip it into backoff."""
        tracker = self._trackers.get(source_id)
        if tracker is None:
            return
        now = self._clock()
        tracker.total_failures += 1
        tracker.last_error = error
        tracker.failures.append(now)
        self._prune(tracker, now)
        # A failed probe (unhealthy, backoff over) trips again at once; otherwise the
        # threshold within the window decides.
        if tracker.unhealthy or len(tracker.failures) >= self.failure_threshold:
            tracker.trips += 1
            tracker.unhealthy = True
            backoff = self.base_backoff_seconds * 2 ** (tracker.trips - 1)
            tracker.backoff_until = now + min(backoff, self.max_backoff_seconds)
            tracker.failures.clear()

    def record_rejection(self, source_id: str) -> None:
        """A delivery was rejected as the sender's fault; counted, health unchanged."""
        tracker = self._trackers.get(source_id)
        if tracker is not None:
            tracker.total_rejections += 1

    def backoff_remaining(self, source_id: str) -> float:
        """Seconds until the source may be tried again (0: go ahead)."""
        tracker = self._trackers.get(source_id)
        if tracker is None:
            return 0.0
        return max(0.0, tracker.backoff_until - self._clock())

    def state(self, source_id: str) -> SourceState:
        """``unhealthy`` (tripped), ``degraded`` (failures in the window, not yet
        tripped), ``healthy``, or ``stopped`` (not started, or unknown)."""
        tracker = self._trackers.get(source_id)
        if tracker is None:
            return "stopped"
        self._prune(tracker, self._clock())
        if tracker.unhealthy:
            return "unhealthy"
        if not tracker.started:
            return "stopped"
        return "degraded" if tracker.failures else "healthy"

    def health(self) -> dict[str, SourceHealth]:
        """A snapshot of every source's tracked health (no probes run)."""
        out: dict[str, SourceHealth] = {}
        for source_id, source in self._sources.items():
            tracker = self._trackers[source_id]
            state = self.state(source_id)
            out[source_id] = SourceHealth(
                source_id=source_id,
                source_type=source.source_type,
                state=state,
                failures_in_window=len(tracker.failures),
                total_failures=tracker.total_failures,
                total_rejections=tracker.total_rejections,
                total_successes=tracker.total_successes,
                backoff_remaining_seconds=self.backoff_remaining(source_id),
                last_error=tracker.last_error,
            )
        return out

    async def check_health(self) -> dict[str, HealthStatus]:
        """Run every source's own ``health_check``; a tripped source is reported
        unhealthy whatever its probe says, and a probe that raises is a failure."""
        out: dict[str, HealthStatus] = {}
        for source_id, source in list(self._sources.items()):
            try:
                status = await source.health_check()
            except Exception as exc:
                status = HealthStatus(False, f"health check raised {type(exc).__name__}: {exc}")
            if status.ok and self.state(source_id) == "unhealthy":
                status = HealthStatus(
                    False,
                    f"backing off after repeated failures "
                    f"({self.backoff_remaining(source_id):.1f} s left)",
                )
            out[source_id] = status
        return out
