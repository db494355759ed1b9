"""Quotas: checked before anything is written, a batch fails whole, and concurrent
retains never overshoot."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from astrocyte import ConfigError
from astrocyte.config.policy_schema import QuotaConfig
from astrocyte.errors import QuotaExceeded, StoreError
from astrocyte.identity.context import AstrocyteContext
from astrocyte.policy.quota import QuotaGuard
from astrocyte.spi import RecordFilter
from tests.policy.conftest import HarnessFactory

ACME = AstrocyteContext(principal="user:1", tenant="acme")
GLOBEX = AstrocyteContext(principal="user:2", tenant="globex")


async def test_a_batch_over_the_bank_limit_fails_whole(harness: HarnessFactory) -> None:
    h = harness({"quotas": {"max_memories_per_bank": 5}})
    await h.retain("b", *(f"memory {i}" for i in range(3)))
    with pytest.raises(QuotaExceeded) as err:
        await h.retain("b", *(f"more {i}" for i in range(3)))
    e = err.value
    assert (e.code, e.quota, e.limit, e.used, e.requested) == (
        "quota_exceeded",
        "max_memories_per_bank",
        5,
        3,
        3,
    )
    assert e.fix and "max_memories_per_bank" in e.fix
    assert await h.stores.documents.count("b") == 3
    await h.retain("b", "fits 1", "fits 2")
    assert await h.stores.documents.count("b") == 5
    with pytest.raises(QuotaExceeded):
        await h.retain("b", "one too many")
    await h.retain("other", "other banks have their own count")


async def test_concurrent_retains_never_overshoot_the_bank_limit(harness: HarnessFactory) -> None:
    h = harness({"quotas": {"max_memories_per_bank": 25}})
    outcomes = await asyncio.gather(
        *(h.retain("busy", f"concurrent memory {i}") for i in range(60)),
        return_exceptions=True,
    )
    stored = [o for o in outcomes if not isinstance(o, BaseException)]
    refused = [o for o in outcomes if isinstance(o, QuotaExceeded)]
    assert len(stored) == 25 and len(refused) == 35
    assert await h.stores.documents.count("busy") == 25


async def test_bank_rules_override_the_global_limit(harness: HarnessFactory) -> None:
    h = harness(
        {
            "quotas": {
                "max_memories_per_bank": 2,
                "banks": [
                    {"banks": ["user-*"], "max_memories": 3},
                    {"banks": ["user-admin"], "max_memories": None},
                ],
            }
        }
    )
    with pytest.raises(QuotaExceeded):
        await h.retain("team", "a", "b", "c")
    await h.retain("user-1", "a", "b", "c")
    with pytest.raises(QuotaExceeded):
        await h.retain("user-1", "d")
    await h.retain("user-admin", *(f"m{i}" for i in range(10)))


async def test_tenant_bytes_are_counted_and_limited(harness: HarnessFactory) -> None:
    h = harness({"quotas": {"max_bytes_per_tenant": 100, "tenants": {"globex": 20}}})
    await h.retain("a", "x" * 60, context=ACME)
    await h.retain("b", "é" * 15, context=ACME)  # 30 bytes in UTF-8, another bank
    assert h.engine.quotas.used_bytes("acme") == 90
    with pytest.raises(QuotaExceeded) as err:
        await h.retain("a", "y" * 11, context=ACME)
    assert (err.value.quota, err.value.used, err.value.requested) == (
        "max_bytes_per_tenant",
        90,
        11,
    )
    assert "tenant 'acme'" in str(err.value)
    await h.retain("a", "z" * 10, context=ACME)
    with pytest.raises(QuotaExceeded):
        await h.retain("a", "g" * 21, context=GLOBEX)  # the per-tenant override
    # Callers without a tenant share the "default" tenant.
    await h.retain("a", "n" * 100)
    with pytest.raises(QuotaExceeded):
        await h.retain("a", "n")


async def test_concurrent_tenant_retains_never_overshoot(harness: HarnessFactory) -> None:
    h = harness({"quotas": {"max_bytes_per_tenant": 1000}})
    outcomes = await asyncio.gather(
        *(h.retain(f"bank-{i % 3}", f"{i:03d}" + "x" * 97, context=ACME) for i in range(40)),
        return_exceptions=True,
    )
    stored = [o for o in outcomes if not isinstance(o, BaseException)]
    assert len(stored) == 10
    assert all(isinstance(o, QuotaExceeded) for o in outcomes if isinstance(o, BaseException))
    assert h.engine.quotas.used_bytes("acme") == 1000


async def test_bytes_are_counted_after_redaction(harness: HarnessFactory) -> None:
    h = harness({"pii": {"action": "redact"}, "quotas": {"max_bytes_per_tenant": 10_000}})
    await h.retain("b", "mail maya.okafor@brightlane.io", context=ACME)
    assert h.engine.quotas.used_bytes("acme") == len("mail [EMAIL]")


async def test_a_failed_write_gives_its_bytes_back(harness: HarnessFactory) -> None:
    h = harness({"quotas": {"max_bytes_per_tenant": 100}})
    await h.retain("b", "first")
    original = h.stores.write

    async def failing(*args: object, **kwargs: object) -> None:
        raise StoreError("disk on fire")

    object.__setattr__(h.stores, "write", failing)
    with pytest.raises(StoreError):
        await h.retain("b", "x" * 50)
    object.__setattr__(h.stores, "write", original)
    assert h.engine.quotas.used_bytes(None) == len("first")
    await h.retain("b", "x" * 95)


async def test_the_ledger_keeps_usage_across_restarts(
    harness: HarnessFactory, tmp_path: Path
) -> None:
    ledger = tmp_path / "usage" / "ledger.json"
    policy = {"quotas": {"max_bytes_per_tenant": 50, "ledger_path": str(ledger)}}
    first = harness(policy)
    await first.retain("b", "x" * 30, context=ACME)
    assert json.loads(ledger.read_text())["tenant_bytes"] == {"acme": 30}
    second = harness(policy)  # a new process, as far as the engine can tell
    assert second.engine.quotas.used_bytes("acme") == 30
    with pytest.raises(QuotaExceeded):
        await second.retain("b", "y" * 21, context=ACME)


def test_a_corrupt_ledger_is_a_config_error(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.json"
    ledger.write_text("{not json")
    with pytest.raises(ConfigError) as err:
        QuotaGuard(QuotaConfig(max_bytes_per_tenant=1, ledger_path=str(ledger)), None)
    assert err.value.key == "policy.quotas.ledger_path"


def test_default_quotas_are_inactive() -> None:
    guard = QuotaGuard(QuotaConfig(), None)
    assert not guard.memories_active and not guard.bytes_active
    reservation = guard.reserve_bytes(None, 10**12)  # no limit: always fits
    guard.settle(reservation, written=True)
    guard.settle(reservation, written=True)  # idempotent
    assert guard.used_bytes(None) == 10**12


async def test_the_count_is_remembered_between_retains(harness: HarnessFactory) -> None:
    """In steady state the bank is not counted again: the count after this engine's
    last write is still right while nothing else changed the bank."""
    h = harness({"quotas": {"max_memories_per_bank": 100}})
    documents: Any = h.stores.documents
    counted: list[str] = []
    original = documents.count

    async def spy(bank_id: str) -> int:
        counted.append(bank_id)
        return int(await original(bank_id))

    object.__setattr__(documents, "count", spy)
    for i in range(10):
        await h.retain("b", f"memory {i}")
    assert counted == ["b"]  # only the first retain asked the store
    # A forget through the facade changes the write mark: the next retain counts again.
    await h.stores.delete("b", await documents.find("b", RecordFilter(), limit=3))
    h.engine.note_write("b")
    await h.retain("b", "after forget")
    assert counted == ["b", "b"]
    object.__delattr__(documents, "count")


async def test_a_stale_count_never_refuses_wrongly(harness: HarnessFactory) -> None:
    """Memories deleted without telling the engine leave its remembered count too high;
    the store is asked again before refusing."""
    h = harness({"quotas": {"max_memories_per_bank": 3}})
    await h.retain("b", "one", "two", "three")
    ids = await h.stores.documents.find("b", RecordFilter())
    await h.stores.delete("b", ids[:2])  # no note_write: the engine's count is stale
    await h.retain("b", "four", "five")
    assert await h.stores.documents.count("b") == 3
    with pytest.raises(QuotaExceeded):
        await h.retain("b", "six")
