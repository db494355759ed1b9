"""The MCP tools: their schemas, how arguments reach the library and how results return.

Each tool is a thin call of one :class:`~astrocyte.Astrocyte` method. Arguments are
passed through as given (after a check for unknown and missing ones) so that the
library's own validation decides what is acceptable and its typed errors, which name
the field and the fix, are what the client sees. Results are compact: the fields an
agent needs (text, score, provenance, citations), not the recall's strategy traces.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import mcp.types as types
from astrocyte import Astrocyte
from astrocyte.errors import AstrocyteError, ValidationError
from astrocyte.identity.context import AstrocyteContext
from astrocyte.types import BankStats, Citation, Provenance
from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "FORGET_TOOL",
    "TOOL_NAMES",
    "ToolSpec",
    "call_tool",
    "error_result",
    "tool_specs",
]

logger = logging.getLogger("astrocyte_mcp")

FORGET_TOOL = "memory_forget"

# --------------------------------------------------------------------------- outputs


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RetainOutput(_Out):
    """What memory_retain stored."""

    bank_id: str
    source_id: str = Field(description="Id of the retained content; every chunk shares it.")
    memory_ids: list[str] = Field(description="One id per stored chunk.")
    deduplicated: bool = Field(description="True when the bank already held this content.")


class RecallHitOutput(_Out):
    """One recalled memory."""

    memory_id: str
    text: str
    score: float = Field(description="Fused relevance score; higher is more relevant.")
    origin: str = Field(description="'local', 'proxy:<source>' or 'external'.")
    provenance: Provenance


class RecallOutput(_Out):
    """What memory_recall found."""

    query: str
    bank_ids: list[str] = Field(description="Banks searched.")
    hits: list[RecallHitOutput]
    truncated: bool = Field(description="True when max_results or max_tokens dropped hits.")
    token_count: int = Field(description="Estimated tokens of the hits' text.")
    skipped_banks: list[str] = Field(
        description="Requested banks not searched because the caller may not read them."
    )


class ReflectOutput(_Out):
    """The answer of memory_reflect and the memories it cites."""

    query: str
    answer: str
    mode: Literal["llm", "extractive"] = Field(
        description="'extractive' (no LLM configured: verbatim evidence) or 'llm'."
    )
    citations: list[Citation]
    model: str | None = None


class ForgetOutput(_Out):
    """What memory_forget deleted."""

    bank_id: str
    deleted_ids: list[str]
    deleted_count: int


class BanksOutput(_Out):
    """The banks the caller may read."""

    banks: list[BankStats]


class ToolErrorOutput(_Out):
    """Structured content of a failed call (isError: true)."""

    code: str = Field(description="The library's error code, e.g. 'validation_error'.")
    message: str
    field: str | None = None
    fix: str | None = None


# --------------------------------------------------------------------------- inputs

_BANK_ID = {
    "type": "string",
    "description": "Memory bank id (1-128 letters, digits or . _ : @ -). Omit to use the "
    "caller's default bank.",
}
_TAGS = {
    "type": "array",
    "items": {"type": "string"},
    "description": "Tags; on recall all must match.",
}


def _schema(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


Handler = Callable[[Astrocyte, AstrocyteContext, dict[str, Any]], Awaitable[BaseModel]]


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """One tool: what ``tools/list`` shows and the handler ``tools/call`` runs."""

    tool: types.Tool
    handler: Handler

    @property
    def name(self) -> str:
        return self.tool.name

    @property
    def arguments(self) -> frozenset[str]:
        return frozenset(self.tool.input_schema["properties"])

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(self.tool.input_schema["required"])


async def _retain(brain: Astrocyte, ctx: AstrocyteContext, args: dict[str, Any]) -> BaseModel:
    result = await brain.retain(
        args["content"],
        args.get("bank_id"),
        metadata=args.get("metadata"),
        tags=args.get("tags"),
        occurred_at=args.get("occurred_at"),
        context=ctx,
    )
    return RetainOutput(
        bank_id=result.bank_id,
        source_id=result.source_id,
        memory_ids=result.memory_ids,
        deduplicated=result.deduplicated,
    )


async def _recall(brain: Astrocyte, ctx: AstrocyteContext, args: dict[str, Any]) -> BaseModel:
    result = await brain.recall(
        args["query"],
        args.get("bank_id"),
        banks=args.get("banks"),
        max_results=args.get("max_results"),
        max_tokens=args.get("max_tokens"),
        tags=args.get("tags"),
        context=ctx,
    )
    return RecallOutput(
        query=result.query,
        bank_ids=result.bank_ids,
        hits=[
            RecallHitOutput(
                memory_id=h.memory_id,
                text=h.text,
                score=h.score,
                origin=h.origin,
                provenance=h.provenance,
            )
            for h in result.hits
        ],
        truncated=result.truncated,
        token_count=result.token_count,
        skipped_banks=result.skipped_banks,
    )


async def _reflect(brain: Astrocyte, ctx: AstrocyteContext, args: dict[str, Any]) -> BaseModel:
    result = await brain.reflect(args["query"], args.get("bank_id"), context=ctx)
    return ReflectOutput(
        query=result.query,
        answer=result.answer,
        mode=result.mode,
        citations=result.citations,
        model=result.model,
    )


async def _forget(brain: Astrocyte, ctx: AstrocyteContext, args: dict[str, Any]) -> BaseModel:
    memory_ids, tags = args.get("memory_ids"), args.get("tags")
    if memory_ids is None and tags is None:
        # Checked here as well as in the library: a forget without a selector must never
        # be mistaken for "everything", whatever a future library version does.
        raise ValidationError(
            "memory_ids", "pass memory_ids or tags", fix="name the memories to delete"
        )
    result = await brain.forget(args["bank_id"], memory_ids=memory_ids, tags=tags, context=ctx)
    return ForgetOutput(
        bank_id=result.bank_id,
        deleted_ids=result.deleted_ids,
        deleted_count=result.deleted_count,
    )


async def _banks(brain: Astrocyte, ctx: AstrocyteContext, args: dict[str, Any]) -> BaseModel:
    return BanksOutput(banks=await brain.list_banks(context=ctx))


def _output_schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema(mode="serialization")


def tool_specs(*, allow_forget: bool = False) -> dict[str, ToolSpec]:
    """The tools this server offers, by name; memory_forget only with
    ``allow_forget`` (otherwise it is neither listed nor callable)."""
    specs = [
        ToolSpec(
            types.Tool(
                name="memory_retain",
                title="Remember",
                description="Store content in a memory bank so it can be recalled later. "
                "Returns the ids of the stored memories.",
                input_schema=_schema(
                    {
                        "content": {"type": "string", "description": "The text to remember."},
                        "bank_id": _BANK_ID,
                        "metadata": {
                            "type": "object",
                            "additionalProperties": {
                                "type": ["string", "number", "boolean", "null"]
                            },
                            "description": "Flat key/value metadata (e.g. session_id, speaker).",
                        },
                        "tags": _TAGS,
                        "occurred_at": {
                            "type": "string",
                            "description": "When it happened, ISO-8601 (default: now), "
                            "e.g. 2024-05-01T14:30:00Z.",
                        },
                    },
                    ["content"],
                ),
                output_schema=_output_schema(RetainOutput),
                annotations=types.ToolAnnotations(
                    read_only_hint=False, destructive_hint=False, idempotent_hint=False
                ),
            ),
            _retain,
        ),
        ToolSpec(
            types.Tool(
                name="memory_recall",
                title="Recall",
                description="Find the memories most relevant to a query, in one bank "
                "(bank_id) or several (banks). Each hit has its text, score and "
                "provenance (bank, source, time, tags, metadata).",
                input_schema=_schema(
                    {
                        "query": {"type": "string", "description": "What to look for."},
                        "bank_id": _BANK_ID,
                        "banks": {
                            "type": "array",
                            "items": {"type": "string"},
                            "description": "Several banks to search instead of bank_id; "
                            "those the caller may not read are skipped.",
                        },
                        "max_results": {"type": "integer", "minimum": 1},
                        "max_tokens": {"type": "integer", "minimum": 1},
                        "tags": _TAGS,
                    },
                    ["query"],
                ),
                output_schema=_output_schema(RecallOutput),
                annotations=types.ToolAnnotations(read_only_hint=True),
            ),
            _recall,
        ),
        ToolSpec(
            types.Tool(
                name="memory_reflect",
                title="Reflect",
                description="Answer a question from memory, citing the memories used. "
                "Without an LLM configured the answer quotes the best evidence verbatim.",
                input_schema=_schema(
                    {
                        "query": {"type": "string", "description": "The question."},
                        "bank_id": _BANK_ID,
                    },
                    ["query"],
                ),
                output_schema=_output_schema(ReflectOutput),
                annotations=types.ToolAnnotations(read_only_hint=True),
            ),
            _reflect,
        ),
        ToolSpec(
            types.Tool(
                name="memory_banks",
                title="List banks",
                description="The memory banks the caller may read, with their memory counts.",
                input_schema=_schema({}, []),
                output_schema=_output_schema(BanksOutput),
                annotations=types.ToolAnnotations(read_only_hint=True),
            ),
            _banks,
        ),
    ]
    if allow_forget:
        specs.append(
            ToolSpec(
                types.Tool(
                    name=FORGET_TOOL,
                    title="Forget",
                    description="Permanently delete memories from a bank, selected by "
                    "memory_ids and/or tags (both must match when both are given).",
                    input_schema=_schema(
                        {
                            "bank_id": {"type": "string", "description": "The bank."},
                            "memory_ids": {
                                "type": "array",
                                "items": {"type": "string"},
                                "description": "Ids of the memories to delete.",
                            },
                            "tags": {
                                "type": "array",
                                "items": {"type": "string"},
                                "description": "Delete the memories carrying all these tags.",
                            },
                        },
                        ["bank_id"],
                    ),
                    output_schema=_output_schema(ForgetOutput),
                    annotations=types.ToolAnnotations(
                        read_only_hint=False, destructive_hint=True, idempotent_hint=True
                    ),
                ),
                _forget,
            )
        )
    return {s.name: s for s in specs}


#: Every tool name this server can offer.
TOOL_NAMES = frozenset(tool_specs(allow_forget=True))


def _compact(data: Mapping[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def _success(output: BaseModel) -> types.CallToolResult:
    data = output.model_dump(mode="json")
    return types.CallToolResult(
        content=[types.TextContent(text=_compact(data))], structured_content=data
    )


def error_result(error: ToolErrorOutput) -> types.CallToolResult:
    """A tool error (``isError``) whose text is the library's message with its fix."""
    text = error.message if error.fix is None else f"{error.message} (fix: {error.fix})"
    return types.CallToolResult(
        content=[types.TextContent(text=text)],
        structured_content=error.model_dump(mode="json", exclude_none=True),
        is_error=True,
    )


def _from_library(exc: AstrocyteError) -> ToolErrorOutput:
    field = getattr(exc, "field", None)
    return ToolErrorOutput(
        code=exc.code,
        message=exc.message,
        field=field if isinstance(field, str) else None,
        fix=exc.fix,
    )


def check_arguments(spec: ToolSpec, arguments: Mapping[str, Any] | None) -> dict[str, Any]:
    """The arguments as a dict, or :class:`ValidationError` for an unknown or missing one.

    Everything else (types, ranges, formats) is left to the library, whose errors
    name the field and the fix.
    """
    args = dict(arguments or {})
    unknown = sorted(set(args) - spec.arguments)
    if unknown:
        allowed = ", ".join(sorted(spec.arguments)) or "none"
        raise ValidationError(unknown[0], "unknown argument", fix=f"use only: {allowed}")
    for name in spec.required:
        if args.get(name) is None:
            raise ValidationError(name, "is required")
    return args


async def call_tool(
    spec: ToolSpec,
    brain: Astrocyte,
    context: AstrocyteContext,
    arguments: Mapping[str, Any] | None,
) -> types.CallToolResult:
    """Run ``spec`` as ``context``: a success with structured content, or a tool error
    carrying the library's message. Unexpected failures are logged with their stack
    trace and reported without it."""
    try:
        args = check_arguments(spec, arguments)
        output = await spec.handler(brain, context, args)
    except AstrocyteError as exc:
        return error_result(_from_library(exc))
    except Exception:
        logger.exception("tool %s failed", spec.name)
        return error_result(
            ToolErrorOutput(
                code="internal_error",
                message=f"{spec.name} failed unexpectedly; the server log has the details",
            )
        )
    return _success(output)
