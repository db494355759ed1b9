"""``POST /v1/retain``, ``/v1/recall``, ``/v1/reflect``, ``/v1/forget``: one library
call each, as the authenticated caller."""

from __future__ import annotations

from typing import Any

from astrocyte.types import ForgetResult, RecallResult, ReflectResult, RetainResult
from fastapi import APIRouter, Response
from pydantic import BaseModel

from astrocyte_gateway.models import (
    ErrorResponse,
    ForgetRequest,
    RecallRequest,
    ReflectRequest,
    RetainRequest,
)
from astrocyte_gateway.routes.deps import AUTH_RESPONSES, CallerDep, StateDep, library_call
from astrocyte_gateway.routes.json_route import JsonBodyRoute

__all__ = ["router"]

# Every route here takes a JSON body, so every one can answer 400 for a body that is
# not JSON (before the request model sees it). JsonBodyRoute: the recall hot path
# skips FastAPI's generic body parsing and dependency solving (same answers).
router = APIRouter(
    prefix="/v1",
    tags=["memory"],
    route_class=JsonBodyRoute,
    responses={
        **AUTH_RESPONSES,
        400: {"model": ErrorResponse, "description": "Request body is not valid JSON"},
    },
)

_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "Bank not found"}
}


@router.post("/retain", response_model=RetainResult, responses=_NOT_FOUND)
async def retain(body: RetainRequest, state: StateDep, caller: CallerDep) -> Response:
    """Remember ``content`` in a bank (``Astrocyte.retain``)."""
    async with library_call(
        state, "retain", caller, attributes={"astrocyte.bank_id": body.bank_id}
    ):
        result = await state.brain.retain(
            body.content,
            body.bank_id,
            metadata=body.metadata,
            tags=body.tags,
            occurred_at=body.occurred_at,
            source=body.source,
            content_type=body.content_type,
            profile=body.profile,
            idempotency_key=body.idempotency_key,
            context=caller.context,
        )
    return _json(result)


@router.post("/recall", response_model=RecallResult, responses=_NOT_FOUND)
async def recall(body: RecallRequest, state: StateDep, caller: CallerDep) -> Response:
    """The memories most relevant to ``query`` (``Astrocyte.recall``)."""
    async with library_call(
        state, "recall", caller, attributes={"astrocyte.bank_id": body.bank_id}
    ):
        result = await state.brain.recall(
            body.query,
            body.bank_id,
            banks=body.banks,
            max_results=body.max_results,
            max_tokens=body.max_tokens,
            tags=body.tags,
            time_range=body.time_range,
            filters=body.filters,
            external_context=body.external_context,
            now=body.now,
            strategy=body.strategy,
            min_score=body.min_score,
            context=caller.context,
        )
    return _json(result)


@router.post("/reflect", response_model=ReflectResult, responses=_NOT_FOUND)
async def reflect(body: ReflectRequest, state: StateDep, caller: CallerDep) -> Response:
    """An answer to ``query`` from memory, citing it (``Astrocyte.reflect``)."""
    async with library_call(
        state, "reflect", caller, attributes={"astrocyte.bank_id": body.bank_id}
    ):
        result = await state.brain.reflect(
            body.query,
            body.bank_id,
            banks=body.banks,
            max_evidence=body.max_evidence,
            max_tokens=body.max_tokens,
            tags=body.tags,
            time_range=body.time_range,
            filters=body.filters,
            external_context=body.external_context,
            now=body.now,
            strategy=body.strategy,
            min_score=body.min_score,
            context=caller.context,
        )
    return _json(result)


@router.post("/forget", response_model=ForgetResult, responses=_NOT_FOUND)
async def forget(body: ForgetRequest, state: StateDep, caller: CallerDep) -> Response:
    """Delete the memories the selectors match (``Astrocyte.forget``)."""
    async with library_call(
        state, "forget", caller, attributes={"astrocyte.bank_id": body.bank_id}
    ):
        result = await state.brain.forget(
            body.bank_id,
            memory_ids=body.memory_ids,
            tags=body.tags,
            filters=body.filters,
            before=body.before,
            context=caller.context,
        )
    return _json(result)


def _json(result: BaseModel) -> Response:
    """The library's result as JSON, serialised once by pydantic's Rust core.

    Returning the model would make FastAPI dump it to Python objects, validate those
    against ``response_model`` again and encode them: for a recall with many hits that
    doubles the gateway's own cost. The model is the library's, already valid, and
    ``response_model`` still documents it in the OpenAPI spec."""
    return Response(content=result.model_dump_json(), media_type="application/json")
