"""``GET /v1/admin/sources`` and ``GET /v1/admin/banks``: operator views, for
principals listed in ``gateway.admin_principals`` only (403 for anyone else).

An admin whose credentials carry a tenant sees that tenant's banks only; an admin
without a tenant sees every bank, labelled with its tenant.
"""

from __future__ import annotations

from astrocyte.identity.access import TENANT_SEPARATOR, visible_bank_id
from astrocyte.spi import BankInfo
from fastapi import APIRouter

from astrocyte_gateway.models import (
    AdminBank,
    AdminBanksResponse,
    AdminSource,
    AdminSourcesResponse,
    ComponentHealth,
    IngestCounters,
)
from astrocyte_gateway.routes.deps import AUTH_RESPONSES, AdminDep, StateDep, library_call
from astrocyte_gateway.routes.health import source_health, store_health

__all__ = ["router"]

router = APIRouter(prefix="/v1/admin", tags=["admin"], responses=AUTH_RESPONSES)


@router.get("/sources", response_model=AdminSourcesResponse)
async def sources(state: StateDep, caller: AdminDep) -> AdminSourcesResponse:
    """Every registered ingestion source with its full health."""
    health = await source_health(state)
    out: dict[str, AdminSource] = {}
    for name, snapshot in health.items():
        config = state.config.sources.get(name)
        source = AdminSource(enabled=bool(config and config.enabled), **snapshot)
        supervised = state.supervisor.sources.get(name)
        if supervised is not None:
            source.counters = IngestCounters(**supervised.stats.to_json())
            source.restarts = max(0, supervised.runs - 1)
        out[name] = source
    return AdminSourcesResponse(sources=out)


@router.get("/banks", response_model=AdminBanksResponse)
async def banks(state: StateDep, caller: AdminDep) -> AdminBanksResponse:
    """Banks with memory counts, and the health of the stores holding them."""
    tenant = caller.context.tenant
    async with library_call(state, "list_banks", caller):
        infos = await state.brain.stores.documents.list_banks()
    out: list[AdminBank] = []
    for info in infos:
        if tenant is not None:
            visible = visible_bank_id(tenant, info.bank_id)
            if visible is None:
                continue
            out.append(_bank(info, visible, tenant))
            continue
        owner, sep, rest = info.bank_id.partition(TENANT_SEPARATOR)
        out.append(_bank(info, rest, owner) if sep else _bank(info, info.bank_id, None))
    statuses = await store_health(state)
    return AdminBanksResponse(
        banks=out,
        stores={n: ComponentHealth(ok=s.ok, detail=s.detail) for n, s in statuses.items()},
    )


def _bank(info: BankInfo, bank_id: str, tenant: str | None) -> AdminBank:
    return AdminBank(
        bank_id=bank_id,
        tenant=tenant,
        memory_count=info.memory_count,
        created_at=info.created_at,
    )
