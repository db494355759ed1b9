"""Inbound ingestion: sources that turn outside events into memories.

* :mod:`~astrocyte.ingest.protocol` — the :class:`IngestSource` contract;
* :mod:`~astrocyte.ingest.webhook` — signed webhook deliveries (:class:`WebhookIngest`);
* :mod:`~astrocyte.ingest.registry` — running sources, health, backoff;
* :mod:`~astrocyte.ingest.payload` — the one JSON payload shape every path accepts;
* :mod:`~astrocyte.ingest.stream` — batches of stream/poll messages, retained
  exactly once (:class:`StreamIngestor`);
* :mod:`~astrocyte.ingest.supervisor` — stream/poll drivers under supervision
  (:class:`IngestSupervisor`, the :class:`IngestDriver` protocol);
* :mod:`~astrocyte.ingest.app` — an ASGI app for webhooks (needs ``starlette``).

Every source retains through the :class:`~astrocyte.Astrocyte` facade, so access
grants, policy (PII, rate limits, quotas) and audit apply to ingested content exactly
as to direct calls. See docs/ingest.md.
"""

from astrocyte.ingest.app import create_ingest_webhook_app
from astrocyte.ingest.payload import PayloadError
from astrocyte.ingest.protocol import IngestSource, IngestSourceType
from astrocyte.ingest.registry import SourceHealth, SourceRegistry, WebhookSource
from astrocyte.ingest.stream import (
    BatchOutcome,
    DeadLetter,
    IngestStats,
    IngestUnavailable,
    StreamIngestor,
    StreamRecord,
    StreamSettings,
    dead_letter_json,
)
from astrocyte.ingest.supervisor import (
    IngestDriver,
    IngestSupervisor,
    SupervisedSource,
    load_driver,
)
from astrocyte.ingest.webhook import (
    WebhookError,
    WebhookIngest,
    WebhookResult,
    WebhookSettings,
    handle_webhook_ingest,
    sign_webhook,
)

__all__ = [
    "BatchOutcome",
    "DeadLetter",
    "IngestDriver",
    "IngestSource",
    "IngestSourceType",
    "IngestStats",
    "IngestSupervisor",
    "IngestUnavailable",
    "PayloadError",
    "SourceHealth",
    "SourceRegistry",
    "StreamIngestor",
    "StreamRecord",
    "StreamSettings",
    "SupervisedSource",
    "WebhookError",
    "WebhookIngest",
    "WebhookResult",
    "WebhookSettings",
    "WebhookSource",
    "create_ingest_webhook_app",
    "dead_letter_json",
    "handle_webhook_ingest",
    "load_driver",
    "sign_webhook",
]
