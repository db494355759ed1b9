"""Audit events and sinks, and the engine's zero-config and locking behaviour."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from astrocyte import AstrocyteConfig
from astrocyte.errors import PIIRejected, QuotaExceeded, RateLimited
from astrocyte.identity.context import AstrocyteContext
from astrocyte.policy import (
    AuditEvent,
    AuditSink,
    JsonlAuditSink,
    MemoryAuditSink,
    NullAuditSink,
    PolicyEngine,
)
from tests.policy.conftest import HarnessFactory

CALLER = AstrocyteContext(principal="user:7", tenant="acme")


async def test_jsonl_sink_appends_one_object_per_line(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "audit.jsonl"
    sink = JsonlAuditSink(path)
    assert isinstance(sink, AuditSink)
    await asyncio.gather(
        *(sink.write(AuditEvent.of(CALLER, "forget", f"b{i}", deleted=i)) for i in range(100))
    )
    await sink.flush()
    lines = path.read_text().splitlines()
    assert len(lines) == 100
    first = json.loads(lines[0])
    assert first["principal"] == "user:7" and first["tenant"] == "acme"
    assert first["action"] == "forget" and first["bank"] == "b0"
    assert first["details"] == {"deleted": 0} and first["time"].endswith("Z")
    await sink.write(AuditEvent.of(None, "bank.create", "x"))
    await sink.close()
    await sink.close()
    assert json.loads(path.read_text().splitlines()[-1])["principal"] == "local"
    await sink.write(AuditEvent.of(None, "after.close"))  # dropped, not an error
    assert len(path.read_text().splitlines()) == 101


async def test_engine_picks_the_sink_from_config(tmp_path: Path) -> None:
    off = PolicyEngine(AstrocyteConfig())
    assert isinstance(off.audit_sink, NullAuditSink) and not off.audit_active
    await off.audit(AuditEvent.of(None, "forget", "b"))
    path = tmp_path / "a.jsonl"
    on = PolicyEngine(
        AstrocyteConfig.model_validate({"policy": {"audit": {"enabled": True, "path": str(path)}}})
    )
    assert isinstance(on.audit_sink, JsonlAuditSink)
    await on.audit(AuditEvent.of(CALLER, "forget", "b", memory_ids=["m1"]))
    await on.record(CALLER, "bank.delete", "b")
    await on.close()
    actions = [json.loads(line)["action"] for line in path.read_text().splitlines()]
    assert actions == ["forget", "bank.delete"]


async def test_retains_and_refusals_are_audited_without_content(
    harness: HarnessFactory,
) -> None:
    sink = MemoryAuditSink()
    h = harness(
        {
            "pii": {"action": "redact", "detectors": {"iban": "reject"}},
            "quotas": {"max_memories_per_bank": 2},
            "rate_limits": {"retain": {"per_principal": {"rate": 0.001, "burst": 3}}},
        },
        audit_sink=sink,
    )
    await h.retain("b", "mail maya@example.com today", context=CALLER)
    with pytest.raises(PIIRejected):
        await h.retain("b", "iban DE89370400440532013000", context=CALLER)
    with pytest.raises(QuotaExceeded):
        await h.retain("b", "one", "two", context=CALLER)
    await h.retain("b", "fits")
    with pytest.raises(RateLimited):
        await h.retain("b", "too fast", context=CALLER)
    kinds = [(e.action, e.details.get("reason")) for e in sink.events]
    assert kinds == [
        ("retain", None),
        ("retain.rejected", "pii_rejected"),
        ("retain.rejected", "quota_exceeded"),
        ("retain", None),
        ("retain.rejected", "rate_limited"),
    ]
    first = sink.events[0]
    assert (first.principal, first.tenant, first.bank) == ("user:7", "acme", "b")
    assert first.details["redacted"] == {"email": 1} and first.details["memories"] == 1
    assert len(first.details["memory_ids"]) == 1
    assert sink.events[1].details["kinds"] == ["iban"]
    assert sink.events[3].principal == "local"
    dumped = json.dumps([e.model_dump(mode="json") for e in sink.events])
    assert "maya@example.com" not in dumped and "DE89370400440532013000" not in dumped


async def test_zero_config_engine_is_inert(harness: HarnessFactory) -> None:
    h = harness()
    engine = h.engine
    assert not engine.pii.active and not engine.rate_limiter.active
    assert not engine.quotas.memories_active and not engine.quotas.bytes_active
    assert not engine.dedup.active and not engine.audit_active
    assert not engine.serialises_writes
    for _ in range(1000):
        engine.admit("p", "b", "recall")
    # No lock is taken: two slots of one bank can be held at once.
    async with engine.write_slot("b"), engine.write_slot("b"):
        pass


async def test_write_slots_serialise_a_bank_and_are_dropped_when_idle(
    harness: HarnessFactory,
) -> None:
    engine = harness({"dedup": {"exact": True}}).engine
    order: list[str] = []

    async def hold(name: str, bank: str) -> None:
        async with engine.write_slot(bank):
            order.append(f"{name}+")
            await asyncio.sleep(0.005)
            order.append(f"{name}-")

    await asyncio.gather(hold("a", "b1"), hold("b", "b1"), hold("c", "b2"))
    # a and b (same bank) never overlap; c (another bank) runs alongside a.
    assert order.index("a-") < order.index("b+") or order.index("b-") < order.index("a+")
    assert order.index("c+") < order.index("a-")
    assert engine._bank_locks == {}


def test_retain_pipeline_builds_an_engine_when_given_none() -> None:
    from astrocyte.embedders import HashingEmbedder
    from astrocyte.factory import build_stores
    from astrocyte.pipeline.retain import RetainPipeline

    config = AstrocyteConfig.model_validate({"storage": {"backend": "memory"}})
    pipeline = RetainPipeline(config, build_stores(config), HashingEmbedder())
    assert isinstance(pipeline.policy, PolicyEngine)
