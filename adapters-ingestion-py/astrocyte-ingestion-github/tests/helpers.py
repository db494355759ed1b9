"""Small helpers shared by the test modules."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from astrocyte import Astrocyte
from astrocyte.spi import MemoryRecord, RecordFilter


async def memories(brain: Astrocyte, bank: str) -> list[MemoryRecord]:
    """Every memory of ``bank`` (empty if the bank does not exist)."""
    docs = brain.stores.documents
    if not await docs.bank_exists(bank):
        return []
    ids = await docs.find(bank, RecordFilter())
    return await docs.get(bank, ids)


async def keys(brain: Astrocyte, bank: str) -> list[str]:
    """The idempotency keys of ``bank``'s memories (one per stored version)."""
    return sorted(str(m.metadata["idempotency_key"]) for m in await memories(brain, bank))


async def wait_until(
    condition: Callable[[], bool], within: float = 20.0, what: str = "condition"
) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)
