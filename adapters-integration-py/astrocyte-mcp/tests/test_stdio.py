"""stdio: the SDK's stdio client spawning the ``astrocyte-mcp`` command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import FAST, GRANTS, stdio_params, write_config
from mcp import Client
from mcp.shared.exceptions import MCPError

from astrocyte_mcp import FORGET_TOOL
from astrocyte_mcp.cli import ALLOW_FORGET_ENV

BASE_TOOLS = {"memory_retain", "memory_recall", "memory_reflect", "memory_banks"}


@pytest.fixture
def plain_config(tmp_path: Path) -> Path:
    return write_config(tmp_path, dict(FAST))


@pytest.fixture
def granted_config(tmp_path: Path) -> Path:
    return write_config(tmp_path, {**FAST, "access_grants": GRANTS})


async def test_memory_round_trip_as_local_caller(plain_config: Path) -> None:
    async with Client(stdio_params("--config", str(plain_config))) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert names == BASE_TOOLS

        stored = await client.call_tool(
            "memory_retain",
            {"content": "Miso the cat hates thunderstorms.", "bank_id": "pets", "tags": ["cat"]},
        )
        assert not stored.is_error, stored.content
        [memory_id] = stored.structured_content["memory_ids"]

        found = await client.call_tool(
            "memory_recall", {"query": "what does the cat hate", "bank_id": "pets"}
        )
        assert not found.is_error, found.content
        [hit] = found.structured_content["hits"]
        assert hit["memory_id"] == memory_id
        assert hit["text"] == "Miso the cat hates thunderstorms."
        assert hit["provenance"]["bank_id"] == "pets"
        assert hit["provenance"]["source_id"] == stored.structured_content["source_id"]
        assert hit["provenance"]["tags"] == ["cat"]

        answer = await client.call_tool(
            "memory_reflect", {"query": "What does Miso hate?", "bank_id": "pets"}
        )
        assert answer.structured_content["mode"] == "extractive"
        assert "thunderstorms" in answer.structured_content["answer"]
        assert [c["memory_id"] for c in answer.structured_content["citations"]] == [memory_id]

        banks = await client.call_tool("memory_banks", {})
        assert [(b["bank_id"], b["memory_count"]) for b in banks.structured_content["banks"]] == [
            ("pets", 1)
        ]

        bad = await client.call_tool(
            "memory_recall", {"query": "cat", "bank_id": "pets", "max_results": 0}
        )
        assert bad.is_error
        assert bad.structured_content["field"] == "max_results"
        assert bad.content[0].text.startswith("max_results:")

        with pytest.raises(MCPError, match="unknown tool"):
            await client.call_tool(FORGET_TOOL, {"bank_id": "pets", "tags": ["cat"]})


@pytest.mark.parametrize("switch", ["flag", "env"])
async def test_forget_enabled_by_flag_or_env(plain_config: Path, switch: str) -> None:
    args = ["--config", str(plain_config)]
    env = None
    if switch == "flag":
        args.append("--allow-forget")
    else:
        env = {ALLOW_FORGET_ENV: "1"}
    async with Client(stdio_params(*args, env=env)) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert names == {*BASE_TOOLS, FORGET_TOOL}
        stored = await client.call_tool("memory_retain", {"content": "drop me", "bank_id": "b"})
        ids = stored.structured_content["memory_ids"]
        gone = await client.call_tool(FORGET_TOOL, {"bank_id": "b", "memory_ids": ids})
        assert gone.structured_content["deleted_ids"] == ids
        found = await client.call_tool("memory_recall", {"query": "drop me", "bank_id": "b"})
        assert found.structured_content["hits"] == []


async def test_principal_from_the_command_line_is_checked(granted_config: Path) -> None:
    args = ["--config", str(granted_config), "--principal", "user:carol"]
    async with Client(stdio_params(*args)) as client:
        stored = await client.call_tool("memory_retain", {"content": "hello", "bank_id": "shared"})
        assert not stored.is_error, stored.content
        denied = await client.call_tool("memory_recall", {"query": "hello", "bank_id": "shared"})
        assert denied.is_error
        assert denied.structured_content["code"] == "access_denied"
        assert "'user:carol'" in denied.content[0].text
        elsewhere = await client.call_tool("memory_retain", {"content": "x", "bank_id": "other"})
        assert elsewhere.is_error and elsewhere.structured_content["code"] == "access_denied"


async def test_tenant_and_delegation_from_the_command_line(tmp_path: Path) -> None:
    grants = [
        {"principals": ["agent:*"], "banks": ["*"], "permissions": ["read", "write"]},
        {
            "principals": ["user:bob"],
            "banks": ["bob-*", "user-bob"],
            "permissions": ["read", "write"],
        },
    ]
    config = write_config(tmp_path, {**FAST, "access_grants": grants})
    args = [
        "--config",
        str(config),
        "--principal",
        "agent:helper",
        "--on-behalf-of",
        "user:bob",
        "--tenant",
        "acme",
    ]
    async with Client(stdio_params(*args)) as client:
        # Delegation: only what both the agent and bob may do.
        ok = await client.call_tool("memory_retain", {"content": "bob's note", "bank_id": "bob-1"})
        assert not ok.is_error, ok.content
        denied = await client.call_tool("memory_retain", {"content": "x", "bank_id": "team"})
        assert denied.is_error and "on behalf of" in denied.content[0].text
        # The default bank of an agent acting for user:bob is bob's (convention resolver).
        default = await client.call_tool("memory_retain", {"content": "no bank named"})
        assert not default.is_error, default.content
        assert default.structured_content["bank_id"] == "user-bob"
        banks = await client.call_tool("memory_banks", {})
        assert sorted(b["bank_id"] for b in banks.structured_content["banks"]) == [
            "bob-1",
            "user-bob",
        ]
        text = json.dumps(banks.structured_content)
        assert "acme/" not in text  # the tenant namespace never leaks into bank ids
