"""The contract every ingestion source implements.

A source is something that turns outside events into retains: a webhook the gateway
receives, a stream consumer, a poller. The :class:`~astrocyte.ingest.registry.SourceRegistry`
starts, stops and health-checks them through this protocol only, so a driver shipped
in another package needs nothing from Astrocyte but these four members.
"""

from __future__ import annotations

from typing import Literal, Protocol, runtime_checkable

from astrocyte.spi import HealthStatus

IngestSourceType = Literal["webhook", "stream", "poll"]
"""How a source receives content: pushed to us, consumed from a log, or fetched."""


@runtime_checkable
class IngestSource(Protocol):
    """One running ingestion source.

    ``start`` and ``stop`` must be idempotent (the registry may retry a start after a
    failure, and stops everything on shutdown). ``health_check`` must be cheap and must
    not raise: a probe that cannot tell returns ``HealthStatus(False, why)``.
    """

    @property
    def source_id(self) -> str:
        """The source's name in the ``sources`` config section."""
        ...

    @property
    def source_type(self) -> IngestSourceType:
        """``webhook`` | ``stream`` | ``poll``."""
        ...

    async def start(self) -> None:
        """Begin receiving (connect, subscribe, schedule the first poll)."""
        ...

    async def stop(self) -> None:
        """Stop receiving and release connections."""
        ...

    async def health_check(self) -> HealthStatus:
        """Whether the source can currently receive and retain."""
        ...
