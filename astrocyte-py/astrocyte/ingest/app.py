"""An ASGI app receiving webhooks: ``POST /ingest/webhook/{source_id}`` and
``GET /health/ingest``.

Needs ``starlette`` (not a core dependency): it is imported when the app is built, so
importing :mod:`astrocyte.ingest` never requires it. Serve it with any ASGI server::

    app = create_ingest_webhook_app(brain)
    uvicorn.run(app, host="127.0.0.1", port=8421)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from astrocyte.ingest.registry import SourceRegistry
from astrocyte.ingest.webhook import BodyTooLarge, WebhookError, WebhookIngest

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse

    from astrocyte.brain import Astrocyte

__all__ = ["create_ingest_webhook_app", "read_limited_body"]


def create_ingest_webhook_app(
    brain: Astrocyte,
    registry: SourceRegistry | None = None,
    *,
    ingest: WebhookIngest | None = None,
) -> Starlette:
    """A Starlette app serving the webhook sources of ``brain.config.sources``.

    ``registry`` defaults to one loaded from the config; it is started and stopped
    with the app's lifespan. ``ingest`` lets a caller pass a :class:`WebhookIngest`
    with non-default settings (it must share ``registry``).
    """
    from contextlib import asynccontextmanager

    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    reg = registry if registry is not None else SourceRegistry.from_config(brain.config)
    handler = ingest if ingest is not None else WebhookIngest(brain, registry=reg)

    def error_response(exc: WebhookError) -> JSONResponse:
        headers = {}
        if exc.retry_after is not None:
            headers["Retry-After"] = str(max(1, round(exc.retry_after)))
        return JSONResponse(exc.to_json(), status_code=exc.http_status, headers=headers)

    async def webhook(request: Request) -> JSONResponse:
        source_id = request.path_params["source_id"]
        try:
            limit = handler.max_body_bytes(source_id)
            body = await read_limited_body(request, limit)
            result = await handler.handle(source_id, body, dict(request.headers))
        except WebhookError as exc:
            return error_response(exc)
        return JSONResponse(result.to_json(), status_code=result.http_status)

    async def health(request: Request) -> JSONResponse:
        probes = await reg.check_health()
        tracked = reg.health()
        sources: dict[str, Any] = {}
        for source_id, snapshot in tracked.items():
            probe = probes.get(source_id)
            sources[source_id] = {
                **snapshot.to_json(),
                "ok": bool(probe and probe.ok),
                "detail": probe.detail if probe else "",
            }
        ok = all(s["ok"] for s in sources.values())
        return JSONResponse({"ok": ok, "sources": sources}, status_code=200 if ok else 503)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        await reg.start_all()
        try:
            yield
        finally:
            await reg.stop_all()

    return Starlette(
        routes=[
            Route("/ingest/webhook/{source_id}", webhook, methods=["POST"]),
            Route("/health/ingest", health, methods=["GET"]),
        ],
        lifespan=lifespan,
    )


async def read_limited_body(request: Request, limit: int) -> bytes:
    """The body, refusing as soon as it is known to exceed ``limit`` bytes: by the
    declared Content-Length, or while streaming (a sender may lie or stream
    chunked), so an oversized body is never held in memory whole."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"body is {declared} bytes, over the limit of {limit}")
    parts: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"body is over the limit of {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)
