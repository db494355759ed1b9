"""The gateway's routes, one module per area; :func:`all_routers` lists them."""

from __future__ import annotations

from fastapi import APIRouter

from astrocyte_gateway.routes import admin, health, ingest, memory

__all__ = ["all_routers"]


def all_routers() -> list[APIRouter]:
    """Every router, in the order they are mounted."""
    return [health.router, memory.router, ingest.router, admin.router]
