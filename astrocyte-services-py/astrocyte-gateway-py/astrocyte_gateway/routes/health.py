"""Public health routes: ``/health`` (stores), ``/health/live``, ``/health/ingest``.

Public because load balancers and orchestrators call them without credentials, so
they say *whether* something is unhealthy but not *why* (store and source details
can name hosts and errors); the details are on the admin routes and in the log.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from astrocyte.spi import HealthStatus
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from astrocyte_gateway import __version__
from astrocyte_gateway.models import (
    ComponentHealth,
    HealthResponse,
    IngestHealthResponse,
    LiveResponse,
    SourceHealthView,
)
from astrocyte_gateway.routes.deps import GatewayState, StateDep

__all__ = ["router", "source_health", "store_health"]

logger = logging.getLogger("astrocyte_gateway.health")

router = APIRouter(tags=["health"])

#: A health probe must answer quickly even when a store hangs.
HEALTH_TIMEOUT_SECONDS = 5.0


async def store_health(state: GatewayState) -> dict[str, HealthStatus]:
    """Each store's health; a probe that raises or hangs counts as unhealthy."""
    timeout = min(HEALTH_TIMEOUT_SECONDS, state.config.gateway.request_timeout_seconds)
    try:
        async with asyncio.timeout(timeout):
            return await state.brain.health()
    except TimeoutError:
        return {"stores": HealthStatus(False, f"health check took over {timeout:.0f} s")}
    except Exception as exc:
        return {"stores": HealthStatus(False, f"health check raised {type(exc).__name__}")}


async def source_health(state: GatewayState) -> dict[str, dict[str, Any]]:
    """Tracked state plus a fresh probe of every registered ingestion source."""
    probes = await state.registry.check_health()
    out: dict[str, dict[str, Any]] = {}
    for source_id, snapshot in state.registry.health().items():
        probe = probes.get(source_id)
        out[source_id] = {
            **snapshot.to_json(),
            "ok": bool(probe and probe.ok),
            "detail": probe.detail if probe else "",
        }
    return out


_UNHEALTHY: dict[int | str, dict[str, Any]] = {
    503: {"model": HealthResponse, "description": "A store is unhealthy"}
}


@router.get("/health", response_model=HealthResponse, responses=_UNHEALTHY)
async def health(state: StateDep) -> JSONResponse:
    """200 when every configured store reports ok, else 503."""
    statuses = await store_health(state)
    ok = all(s.ok for s in statuses.values())
    if not ok:
        logger.warning(
            "unhealthy stores: %s",
            {name: s.detail for name, s in statuses.items() if not s.ok},
        )
    body = HealthResponse(
        status="ok" if ok else "unhealthy",
        version=__version__,
        stores={name: ComponentHealth(ok=s.ok) for name, s in statuses.items()},
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if ok else 503)


@router.get("/health/live", response_model=LiveResponse)
async def live() -> LiveResponse:
    """200 while the process serves requests (no dependency is checked)."""
    return LiveResponse(status="ok")


_INGEST_UNHEALTHY: dict[int | str, dict[str, Any]] = {
    503: {"model": IngestHealthResponse, "description": "A source is unhealthy"}
}


@router.get("/health/ingest", response_model=IngestHealthResponse, responses=_INGEST_UNHEALTHY)
async def ingest_health(state: StateDep) -> JSONResponse:
    """200 when every ingestion source is healthy (or there are none), else 503."""
    sources = await source_health(state)
    ok = all(s["ok"] for s in sources.values())
    body = IngestHealthResponse(
        ok=ok,
        sources={
            name: SourceHealthView(source_type=s["source_type"], state=s["state"], ok=s["ok"])
            for name, s in sources.items()
        },
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if ok else 503)
