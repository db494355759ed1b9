"""Streamable HTTP: the SDK's client against a real server, authenticated per request."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from helpers import KEYS, RunningServer, bearer, http_client
from mcp.shared.exceptions import MCPError

from astrocyte_mcp import FORGET_TOOL

Start = Callable[..., RunningServer]

_INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "raw", "version": "0"},
    },
}
_ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


async def _raw_post(url: str, headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as http:
        return await http.post(url, content=json.dumps(_INIT), headers={**_ACCEPT, **headers})


async def test_no_credentials_is_401(http_server: Start) -> None:
    server = http_server()
    response = await _raw_post(server.url, {})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["error"]["code"] == "unauthenticated"


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer not-a-key-of-anyone-at-all"},
        {"Authorization": "Basic YWxpY2U6c2VjcmV0"},
        {"X-Api-Key": "wrong-key-0123456789abcdef"},
    ],
)
async def test_bad_credentials_are_401(http_server: Start, headers: dict[str, str]) -> None:
    server = http_server()
    response = await _raw_post(server.url, headers)
    assert response.status_code == 401
    # The key itself is never echoed.
    assert "not-a-key" not in response.text and "wrong-key" not in response.text


async def test_valid_key_passes_authentication(http_server: Start) -> None:
    server = http_server()
    for headers in (bearer("alice"), {"X-Api-Key": KEYS["alice"][0]}):
        response = await _raw_post(server.url, headers)
        assert response.status_code == 200, response.text


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


async def test_sdk_client_without_token_cannot_connect(http_server: Start) -> None:
    server = http_server()
    connected = False
    with pytest.raises(BaseException) as info:  # a group of the SDK's errors
        async with http_client(server.url) as client:
            connected = True
            await client.list_tools()
    assert not connected
    # The SDK reports the 401 of the opening request as an error response.
    assert any(isinstance(leaf, MCPError) for leaf in _leaves(info.value))


async def test_tools_listed_without_forget_by_default(http_server: Start) -> None:
    server = http_server()
    async with http_client(server.url, bearer("alice")) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert names == {"memory_retain", "memory_recall", "memory_reflect", "memory_banks"}
        with pytest.raises(MCPError, match="unknown tool"):
            await client.call_tool(FORGET_TOOL, {"bank_id": "alice-notes", "tags": ["x"]})


async def test_retain_recall_reflect_with_provenance(http_server: Start) -> None:
    server = http_server()
    async with http_client(server.url, bearer("alice")) as client:
        stored = await client.call_tool(
            "memory_retain",
            {
                "content": "The staging database moved to eu-west-2 in March.",
                "bank_id": "alice-notes",
                "tags": ["infra"],
                "metadata": {"ticket": "OPS-12"},
                "occurred_at": "2024-03-05T10:00:00Z",
            },
        )
        assert not stored.is_error, stored.content
        memory_id = stored.structured_content["memory_ids"][0]

        found = await client.call_tool(
            "memory_recall", {"query": "where is the staging database", "bank_id": "alice-notes"}
        )
        assert not found.is_error, found.content
        hits = found.structured_content["hits"]
        assert hits[0]["memory_id"] == memory_id
        assert "eu-west-2" in hits[0]["text"]
        assert hits[0]["score"] > 0
        provenance = hits[0]["provenance"]
        assert provenance["bank_id"] == "alice-notes"
        assert provenance["tags"] == ["infra"]
        assert provenance["metadata"] == {"ticket": "OPS-12"}
        assert provenance["occurred_at"].startswith("2024-03-05T10:00:00")
        # The text content is the same result as compact JSON.
        assert json.loads(found.content[0].text) == found.structured_content

        answer = await client.call_tool(
            "memory_reflect", {"query": "Where did the staging database move?"}
        )
        # No bank_id: alice has no default bank (user-alice) she may read.
        assert answer.is_error
        answer = await client.call_tool(
            "memory_reflect",
            {"query": "Where did the staging database move?", "bank_id": "alice-notes"},
        )
        assert not answer.is_error, answer.content
        assert answer.structured_content["mode"] == "extractive"
        assert "eu-west-2" in answer.structured_content["answer"]
        assert answer.structured_content["citations"][0]["memory_id"] == memory_id


async def test_bad_input_is_a_tool_error_naming_the_field(http_server: Start) -> None:
    server = http_server()
    async with http_client(server.url, bearer("alice")) as client:
        result = await client.call_tool(
            "memory_retain", {"content": "x", "bank_id": "alice-notes", "occurred_at": "soon"}
        )
        assert result.is_error
        error = result.structured_content
        assert error["code"] == "validation_error"
        assert error["field"] == "occurred_at"
        assert "ISO-8601" in result.content[0].text and "fix:" in result.content[0].text
        assert "Traceback" not in result.content[0].text


@pytest.mark.parametrize(
    ("mode", "json_response"), [("auto", False), ("legacy", False), ("legacy", True)]
)
async def test_caller_without_read_grant_gets_an_error(
    http_server: Start, mode: str, json_response: bool
) -> None:
    server = http_server(json_response=json_response)
    async with http_client(server.url, bearer("carol"), mode=mode) as client:
        stored = await client.call_tool(
            "memory_retain", {"content": "carol was here", "bank_id": "shared"}
        )
        assert not stored.is_error, stored.content
        denied = await client.call_tool("memory_recall", {"query": "who", "bank_id": "shared"})
        assert denied.is_error
        assert denied.structured_content["code"] == "access_denied"
        assert "user:carol" in denied.content[0].text
        assert "read" in denied.content[0].text
        banks = await client.call_tool("memory_banks", {})
        assert banks.structured_content == {"banks": []}
    # alice may read what carol wrote.
    async with http_client(server.url, bearer("alice"), mode=mode) as client:
        found = await client.call_tool("memory_recall", {"query": "who", "bank_id": "shared"})
        assert [h["text"] for h in found.structured_content["hits"]] == ["carol was here"]


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_other_tenants_banks_are_invisible(http_server: Start, mode: str) -> None:
    server = http_server()
    secret = "acme's launch date is the 14th"
    async with http_client(server.url, bearer("dave"), mode=mode) as client:
        stored = await client.call_tool("memory_retain", {"content": secret, "bank_id": "notes"})
        assert not stored.is_error, stored.content
        banks = await client.call_tool("memory_banks", {})
        assert banks.structured_content["banks"][0]["bank_id"] == "notes"
        assert banks.structured_content["banks"][0]["memory_count"] == 1

    async with http_client(server.url, bearer("erin"), mode=mode) as client:
        banks = await client.call_tool("memory_banks", {})
        assert banks.structured_content == {"banks": []}
        result = await client.call_tool(
            "memory_recall", {"query": "launch date", "bank_id": "notes"}
        )
        assert secret not in json.dumps(result.structured_content)

    async with http_client(server.url, bearer("alice"), mode=mode) as client:
        banks = await client.call_tool("memory_banks", {})
        assert all(b["bank_id"] != "notes" for b in banks.structured_content["banks"])


async def test_forget_offered_with_the_switch_and_needs_the_grant(http_server: Start) -> None:
    server = http_server(allow_forget=True)
    async with http_client(server.url, bearer("alice")) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert FORGET_TOOL in tools
        assert tools[FORGET_TOOL].annotations is not None
        assert tools[FORGET_TOOL].annotations.destructive_hint is True
        await client.call_tool(
            "memory_retain", {"content": "temp note", "bank_id": "alice-notes", "tags": ["tmp"]}
        )
        keep = await client.call_tool(
            "memory_retain", {"content": "keep note", "bank_id": "alice-notes"}
        )
        no_selector = await client.call_tool(FORGET_TOOL, {"bank_id": "alice-notes"})
        assert no_selector.is_error and no_selector.structured_content["field"] == "memory_ids"
        gone = await client.call_tool(FORGET_TOOL, {"bank_id": "alice-notes", "tags": ["tmp"]})
        assert not gone.is_error, gone.content
        assert gone.structured_content["deleted_count"] == 1
        found = await client.call_tool("memory_recall", {"query": "note", "bank_id": "alice-notes"})
        assert [h["memory_id"] for h in found.structured_content["hits"]] == (
            keep.structured_content["memory_ids"]
        )
    async with http_client(server.url, bearer("carol")) as client:
        denied = await client.call_tool(FORGET_TOOL, {"bank_id": "shared", "tags": ["x"]})
        assert denied.is_error and denied.structured_content["code"] == "access_denied"


async def test_session_is_bound_to_its_caller(http_server: Start) -> None:
    server = http_server()
    async with httpx.AsyncClient(timeout=30) as http:
        opened = await http.post(
            server.url, content=json.dumps(_INIT), headers={**_ACCEPT, **bearer("alice")}
        )
        assert opened.status_code == 200
        session = opened.headers["mcp-session-id"]
        call: dict[str, Any] = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
        other = await http.post(
            server.url,
            content=json.dumps(call),
            headers={
                **_ACCEPT,
                **bearer("carol"),
                "mcp-session-id": session,
                "mcp-protocol-version": "2025-06-18",
            },
        )
        assert other.status_code == 404
