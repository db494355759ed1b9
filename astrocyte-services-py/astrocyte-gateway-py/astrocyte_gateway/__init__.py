"""Astrocyte HTTP gateway: a thin REST adapter over the :class:`astrocyte.Astrocyte` facade.

Build the ASGI app with :func:`create_app` and serve it with any ASGI server, or run
the ``astrocyte-gateway`` console script. All memory logic (validation, access control,
policy, ingestion) stays in the library; the gateway authenticates callers, maps HTTP
to library calls and library errors to HTTP statuses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["__version__", "create_app"]

if TYPE_CHECKING:
    from fastapi import FastAPI


def create_app(*args: Any, **kwargs: Any) -> FastAPI:
    """Shortcut for :func:`astrocyte_gateway.app.create_app` (imported lazily so that
    ``import astrocyte_gateway.auth`` does not pull in FastAPI)."""
    from astrocyte_gateway.app import create_app as _create_app

    return _create_app(*args, **kwargs)
