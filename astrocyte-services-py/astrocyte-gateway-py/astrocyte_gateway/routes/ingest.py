"""``POST /v1/ingest/webhook/{source_id}``: signed webhook deliveries.

Not authenticated by the gateway's API keys or tokens: the sender proves itself with
the source's HMAC signature, which the library's :class:`~astrocyte.ingest.WebhookIngest`
checks (as well as the replay window, payload shape, grants and idempotency). The
gateway only streams the body in under the source's ``max_body_bytes`` and maps the
library's outcome to HTTP.

A source whose config sets ``path`` is also served at that path (not listed in the
OpenAPI document, which must not depend on the deployment's sources).
"""

from __future__ import annotations

import logging
import math
from typing import Any

from astrocyte.ingest.app import read_limited_body
from astrocyte.ingest.webhook import WebhookError
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from astrocyte_gateway.errors import GENERIC_MESSAGES, error_response, request_id_of
from astrocyte_gateway.models import ErrorResponse, WebhookAccepted
from astrocyte_gateway.routes.deps import GatewayState, StateDep, library_call

__all__ = ["handle_webhook", "router"]

logger = logging.getLogger("astrocyte_gateway.ingest")

router = APIRouter(prefix="/v1/ingest", tags=["ingest"])

_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": why}
    for status, why in {
        400: "Malformed payload",
        401: "Missing or invalid signature, or a stale timestamp",
        403: "The source may not write the target bank",
        404: "Unknown source or target bank",
        413: "Body over the source's limit",
        429: "Throttled by the policy layer",
        503: "Source backing off (see Retry-After)",
    }.items()
}


async def handle_webhook(request: Request, state: GatewayState, source_id: str) -> JSONResponse:
    """Receive one delivery for ``source_id`` and answer with the library's outcome."""
    handler = state.ingest
    try:
        limit = handler.max_body_bytes(source_id)
        body = await read_limited_body(request, limit)
        async with library_call(
            state, "ingest_webhook", attributes={"astrocyte.source_id": source_id}
        ):
            result = await handler.handle(source_id, body, dict(request.headers))
    except WebhookError as exc:
        headers: dict[str, str] = {}
        if exc.retry_after is not None:
            headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
        message = exc.message
        if exc.http_status >= 500 and exc.http_status != 503:
            # RetainFailed carries the underlying exception's text: log it, don't send it.
            logger.error(
                "webhook %s failed (request %s): %s", source_id, request_id_of(request), message
            )
            message = GENERIC_MESSAGES[500]
        return error_response(request, exc.http_status, exc.code, message, headers=headers)
    return JSONResponse(result.to_json(), status_code=result.http_status)


@router.post(
    "/webhook/{source_id}",
    response_model=WebhookAccepted,
    responses=_RESPONSES,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "description": "{content | turns, bank_id?, metadata?, tags?, "
                        "occurred_at?, event_id?} signed with the source's secret",
                    }
                }
            },
        }
    },
)
async def webhook(source_id: str, request: Request, state: StateDep) -> JSONResponse:
    """A signed delivery from an ingestion source (HMAC over ``{timestamp}.{body}``)."""
    return await handle_webhook(request, state, source_id)
