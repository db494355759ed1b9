"""The app factory: :func:`create_app` builds the FastAPI app around one
:class:`astrocyte.Astrocyte`.

Layers, outermost first: CORS (when ``gateway.cors_origins`` is set), then
:class:`~astrocyte_gateway.middleware.GatewayMiddleware` (request id, body limit,
access log, request span, last-resort 500), then FastAPI's routing with the error
handlers of :mod:`astrocyte_gateway.errors`.

Lifespan: ingestion sources are started on startup. On shutdown (after the server
has let in-flight requests finish) the sources are stopped, the authenticator is
closed, and the brain is closed if the app built it (a brain passed in stays the
caller's, as components passed to the library do).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from astrocyte import Astrocyte
from astrocyte.config import AstrocyteConfig, load_config
from astrocyte.config.loader import ConfigSource
from astrocyte.ingest import IngestSupervisor, WebhookIngest
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse

from astrocyte_gateway import __version__
from astrocyte_gateway.auth import build_authenticator
from astrocyte_gateway.errors import install_error_handlers
from astrocyte_gateway.middleware import REQUEST_ID_HEADER, GatewayMiddleware
from astrocyte_gateway.routes import all_routers
from astrocyte_gateway.routes.deps import GatewayState
from astrocyte_gateway.routes.ingest import handle_webhook

__all__ = ["create_app"]

logger = logging.getLogger("astrocyte_gateway")

_DESCRIPTION = (
    "REST gateway over the Astrocyte memory library: retain, recall, reflect and forget "
    "in named banks. Authenticate with an API key (X-Api-Key or Authorization: Bearer) "
    "or a JWT, as the deployment configures. Errors are "
    '`{"error": {"code", "message", "request_id"}}`.'
)


def create_app(config: ConfigSource = None, *, brain: Astrocyte | None = None) -> FastAPI:
    """The gateway app.

    Args:
        config: an :class:`AstrocyteConfig`, a mapping, a YAML path or ``None``
            (:func:`astrocyte.config.load_config` semantics; with ``None`` and a
            ``brain``, the brain's config is used).
        brain: a ready :class:`Astrocyte` to serve (left open on shutdown); by
            default one is built from ``config`` (and closed on shutdown).

    Raises:
        astrocyte.errors.ConfigError: the config is invalid or its auth settings
            cannot be used.
    """
    cfg: AstrocyteConfig = (
        brain.config if config is None and brain is not None else load_config(config)
    )
    authenticator = build_authenticator(cfg)
    owns_brain = brain is None
    served = brain if brain is not None else Astrocyte(cfg)
    # Every source of the config: webhooks (served by the routes) and stream/poll
    # drivers, which consume in the background from startup to shutdown.
    supervisor = IngestSupervisor.from_config(served)
    registry = supervisor.registry
    state = GatewayState(
        config=cfg,
        brain=served,
        owns_brain=owns_brain,
        authenticator=authenticator,
        registry=registry,
        ingest=WebhookIngest(served, registry=registry),
        supervisor=supervisor,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        failed = {k: v for k, v in (await supervisor.start()).items() if v is not None}
        if failed:
            logger.warning("ingestion sources failed to start: %s", failed)
        try:
            yield
        finally:
            await _shutdown(state)

    app = FastAPI(
        title="Astrocyte gateway",
        version=__version__,
        description=_DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.gateway = state
    install_error_handlers(app)
    for router in all_routers():
        app.include_router(router)
    _add_custom_webhook_paths(app, cfg)
    app.add_middleware(GatewayMiddleware, max_request_bytes=cfg.gateway.max_request_bytes)
    if cfg.gateway.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=cfg.gateway.cors_origins,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=[
                "authorization",
                "content-type",
                REQUEST_ID_HEADER,
                cfg.gateway.auth.api_key_header.lower(),
            ],
            expose_headers=[REQUEST_ID_HEADER, "retry-after"],
            # Credentials are headers, never cookies: no reason to allow them.
            allow_credentials=False,
            max_age=600,
        )
    _install_openapi(app, cfg)
    return app


async def _shutdown(state: GatewayState) -> None:
    """Stop sources, close the authenticator and (if ours) the brain; one failing
    step does not skip the others."""
    steps: list[tuple[str, Any]] = [
        # In-flight batches finish and are acknowledged before the brain closes.
        ("stop ingestion sources", state.supervisor.stop),
        ("close the authenticator", state.authenticator.close),
    ]
    if state.owns_brain:
        steps.append(("close the brain", state.brain.close))
    for what, step in steps:
        try:
            await step()
        except Exception:
            logger.exception("shutdown: failed to %s", what)


def _add_custom_webhook_paths(app: FastAPI, config: AstrocyteConfig) -> None:
    for source_id, source in config.sources.items():
        if source.type != "webhook" or not source.enabled or source.path is None:
            continue

        async def endpoint(request: Request, _source: str = source_id) -> JSONResponse:
            state: GatewayState = request.app.state.gateway
            return await handle_webhook(request, state, _source)

        # Mounted after the built-in routes, so a path cannot shadow them.
        app.add_api_route(
            source.path, endpoint, methods=["POST"], include_in_schema=False, name=source_id
        )


def _install_openapi(app: FastAPI, config: AstrocyteConfig) -> None:
    """Add the security schemes to the generated document (they depend only on the
    configured API-key header name)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        components = schema.setdefault("components", {})
        components["securitySchemes"] = {
            "apiKey": {
                "type": "apiKey",
                "in": "header",
                "name": config.gateway.auth.api_key_header,
            },
            "bearer": {"type": "http", "scheme": "bearer"},
        }
        for path, operations in schema.get("paths", {}).items():
            if not path.startswith("/v1/") or path.startswith("/v1/ingest/"):
                continue
            for operation in operations.values():
                operation["security"] = [{"apiKey": []}, {"bearer": []}]
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
