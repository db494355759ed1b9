"""Tool behaviour through the SDK's client connected in-process (fast enough for
property tests): argument checks, error shape, schemas."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from astrocyte import Astrocyte
from astrocyte.identity.context import LOCAL_CONTEXT
from helpers import FAST
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from mcp import Client

from astrocyte_mcp import TOOL_NAMES, create_server, fixed_identity
from astrocyte_mcp.tools import tool_specs

JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
JSON = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=5,
)

_PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def run_with_client(body: Callable[[Client], Awaitable[None]], *, forget: bool = False) -> None:
    async def go() -> None:
        async with Astrocyte.from_config(dict(FAST)) as brain:
            server = create_server(brain, fixed_identity(LOCAL_CONTEXT), allow_forget=forget)
            async with Client(server) as client:
                await body(client)

    anyio.run(go)


def test_schemas_are_valid_json_schema() -> None:
    specs = tool_specs(allow_forget=True)
    assert set(specs) == TOOL_NAMES
    for spec in specs.values():
        Draft202012Validator.check_schema(spec.tool.input_schema)
        assert spec.tool.output_schema is not None
        Draft202012Validator.check_schema(spec.tool.output_schema)
        assert spec.tool.input_schema["additionalProperties"] is False


@_PROPERTY
@given(
    name=st.text(min_size=1, max_size=20).filter(
        lambda n: n not in {"query", "bank_id", "banks", "max_results", "max_tokens", "tags"}
    ),
    value=JSON,
)
def test_unknown_argument_is_named(name: str, value: Any) -> None:
    async def body(client: Client) -> None:
        result = await client.call_tool("memory_recall", {"query": "q", name: value})
        assert result.is_error
        assert result.structured_content["field"] == name
        assert result.structured_content["code"] == "validation_error"

    run_with_client(body)


@_PROPERTY
@given(
    value=JSON.filter(
        lambda v: not (isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 1000)
    )
)
def test_bad_max_results_is_a_tool_error_naming_the_field(value: Any) -> None:
    async def body(client: Client) -> None:
        # The bank must exist: an unknown bank is reported before the limits.
        await client.call_tool("memory_retain", {"content": "something", "bank_id": "b"})
        args = {"query": "q", "bank_id": "b", "max_results": value}
        result = await client.call_tool("memory_recall", args)
        if value is None:  # null means "not given"
            assert not result.is_error, result.content
            return
        assert result.is_error, (value, result.content)
        assert result.structured_content["field"] == "max_results"
        text = result.content[0].text
        assert text.startswith("max_results:") and "Traceback" not in text

    run_with_client(body)


@_PROPERTY
@given(
    content=st.text(
        st.characters(categories=["L", "N", "P", "Zs"]), min_size=1, max_size=200
    ).filter(lambda t: any(c.isalnum() for c in t)),
    tags=st.lists(st.text(alphabet="abcdefghij-", min_size=1, max_size=8), max_size=3, unique=True),
)
def test_retained_text_is_recalled_verbatim_with_provenance(content: str, tags: list[str]) -> None:
    async def body(client: Client) -> None:
        stored = await client.call_tool(
            "memory_retain", {"content": content, "bank_id": "b", "tags": tags}
        )
        assert not stored.is_error, stored.content
        found = await client.call_tool("memory_recall", {"query": content, "bank_id": "b"})
        assert not found.is_error, found.content
        ids = stored.structured_content["memory_ids"]
        hits = [h for h in found.structured_content["hits"] if h["memory_id"] in ids]
        assert hits, found.structured_content
        assert all(h["provenance"]["tags"] == tags for h in hits)
        assert all(h["provenance"]["bank_id"] == "b" for h in hits)
        assert json.loads(found.content[0].text) == found.structured_content

    run_with_client(body)


def test_missing_required_argument() -> None:
    async def body(client: Client) -> None:
        for tool, field in [
            ("memory_retain", "content"),
            ("memory_recall", "query"),
            ("memory_reflect", "query"),
            ("memory_forget", "bank_id"),
        ]:
            result = await client.call_tool(tool, {})
            assert result.is_error
            assert result.structured_content == {
                "code": "validation_error",
                "message": f"{field}: is required",
                "field": field,
            }

    run_with_client(body, forget=True)


def test_unexpected_failure_is_reported_without_internals() -> None:
    class Broken(Astrocyte):
        async def list_banks(self, **kwargs: Any) -> Any:
            raise RuntimeError("secret internals /etc/passwd")

    async def go() -> None:
        async with Broken.from_config(dict(FAST)) as brain:
            server = create_server(brain, fixed_identity(LOCAL_CONTEXT))
            async with Client(server) as client:
                result = await client.call_tool("memory_banks", {})
        assert result.is_error
        assert result.structured_content["code"] == "internal_error"
        assert "secret" not in result.content[0].text

    anyio.run(go)
