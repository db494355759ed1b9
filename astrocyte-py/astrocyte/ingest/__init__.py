"""Inbound ingestion: sources that turn outside events into memories.

* :mod:`~astrocyte.ingest.protocol` — the :class:`IngestSource` contract;
* :mod:`~astrocyte.ingest.webhook` — signed webhook deliveries (:class:`WebhookIngest`);
* :mod:`~astrocyte.ingest.registry` — running sources, health, backoff;
* :mod:`~astrocyte.ingest.app` — an ASGI app for webhooks (needs ``starlette``).

Every source retains through the :class:`~astrocyte.Astrocyte` facade, so access
grants, policy (PII, rate limits, quotas) and audit apply to ingested content exactly
as to direct calls. See docs/ingest.md.
"""

from astrocyte.ingest.app import create_ingest_webhook_app
from astrocyte.ingest.protocol import IngestSource, IngestSourceType
from astrocyte.ingest.registry import SourceHealth, SourceRegistry, WebhookSource
from astrocyte.ingest.webhook import (
    WebhookError,
    WebhookIngest,
    WebhookResult,
    WebhookSettings,
    handle_webhook_ingest,
    sign_webhook,
)

__all__ = [
    "IngestSource",
    "IngestSourceType",
    "SourceHealth",
    "SourceRegistry",
    "WebhookError",
    "WebhookIngest",
    "WebhookResult",
    "WebhookSettings",
    "WebhookSource",
    "create_ingest_webhook_app",
    "handle_webhook_ingest",
    "sign_webhook",
]
