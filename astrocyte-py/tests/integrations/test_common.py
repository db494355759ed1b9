"""The framework-neutral pieces every integration shares (astrocyte.integrations.common)."""

from __future__ import annotations

import asyncio
import json

import pytest

from astrocyte import AccessDenied, Astrocyte, AstrocyteContext
from astrocyte.integrations.common import (
    MemoryTools,
    format_hits,
    hit_metadata,
    recall_hits,
    run_sync,
)

ALICE = AstrocyteContext(principal="user:alice")
EVE = AstrocyteContext(principal="user:eve")
CONFIG = {
    "storage": {"backend": "memory"},
    "embedder": {"provider": "hashing"},
    "access_grants": [{"principals": ["user:alice"], "banks": ["alice"], "permissions": ["admin"]}],
}


@pytest.fixture
def brain() -> Astrocyte:
    return Astrocyte.from_config(CONFIG)


async def test_tools_store_and_recall_as_the_caller(brain: Astrocyte) -> None:
    tools = MemoryTools(brain, "alice", ALICE, max_results=2, tags=["chat"], metadata={"k": 1})
    answer = await tools.remember("Alice drinks green tea every morning.")
    assert answer.startswith("Remembered (1 memory, id ")
    result = await brain.recall("what does alice drink?", "alice", context=ALICE)
    assert result.hits[0].text == "Alice drinks green tea every morning."
    assert result.hits[0].provenance.tags == ["chat"]
    assert result.hits[0].provenance.metadata["k"] == 1
    assert (await tools.recall("green tea")) == "1. Alice drinks green tea every morning."


async def test_tools_refuse_a_caller_without_grants(brain: Astrocyte) -> None:
    tools = MemoryTools(brain, "alice", EVE)
    with pytest.raises(AccessDenied):
        await tools.remember("Eve was here.")
    with pytest.raises(AccessDenied):
        await tools.recall("anything")


async def test_format_and_metadata(brain: Astrocyte) -> None:
    await brain.create_bank("alice", context=ALICE)
    empty = await brain.recall("nothing here", "alice", context=ALICE)
    assert format_hits(empty) == "No memories found."
    await brain.retain("Bob likes jazz.", "alice", source="msg-1", context=ALICE)
    hit = (await brain.recall("jazz", "alice", context=ALICE)).hits[0]
    meta = hit_metadata(hit)
    assert meta["memory_id"] == hit.memory_id and meta["bank_id"] == "alice"
    assert meta["source_id"] == "msg-1" and meta["origin"] == "local"
    json.dumps(meta)  # JSON-ready: frameworks serialise metadata


def test_sync_bridge_works_inside_a_running_loop(brain: Astrocyte) -> None:
    tools = MemoryTools(brain, "alice", ALICE)

    async def caller() -> str:
        # A sync tool called from async framework code must not deadlock or raise
        # "event loop is already running".
        tools.remember_sync("Carol plays chess.")
        return tools.recall_sync("chess")

    assert asyncio.run(caller()) == "1. Carol plays chess."
    assert run_sync(asyncio.sleep(0, result=5)) == 5


async def test_unwritten_bank_recalls_empty_but_grants_still_apply(brain: Astrocyte) -> None:
    assert await recall_hits(brain, "anything", "alice", context=ALICE) == []
    assert await MemoryTools(brain, "alice", ALICE).recall("anything") == "No memories found."
    with pytest.raises(AccessDenied):
        await recall_hits(brain, "anything", "alice", context=EVE)
