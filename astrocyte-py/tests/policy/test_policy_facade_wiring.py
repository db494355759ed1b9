"""The facade applies the policy engine on every path, not only retain."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from astrocyte import Astrocyte, AstrocyteContext, RateLimited, load_config
from astrocyte.embedders import HashingEmbedder


def _brain(tmp_path: Path, policy: dict[str, Any]) -> Astrocyte:
    config = load_config(
        {"storage": {"backend": "memory", "path": str(tmp_path / "x.db")}, "policy": policy}
    )
    return Astrocyte(config, embedder=HashingEmbedder())


SLOW = {"rate": 0.001, "burst": 2}  # two calls, then nothing for a long time


@pytest.mark.parametrize("operation", ["recall", "reflect", "forget"])
async def test_each_operation_is_rate_limited_per_principal(tmp_path: Path, operation: str) -> None:
    brain = _brain(tmp_path, {"rate_limits": {operation: {"per_principal": SLOW}}})
    async with brain:
        await brain.retain("alpha beta gamma", "b")
        alice = AstrocyteContext(principal="user:alice")
        bob = AstrocyteContext(principal="user:bob")

        async def call(ctx: AstrocyteContext) -> object:
            if operation == "forget":
                return await brain.forget("b", tags=["none"], context=ctx)
            method = getattr(brain, operation)
            return await method("alpha", "b", context=ctx)

        await call(alice)
        await call(alice)
        with pytest.raises(RateLimited) as denied:
            await call(alice)
        assert denied.value.retry_after_s > 0
        await call(bob)  # buckets are per principal


async def test_reflect_costs_one_reflect_token_not_a_recall_token(tmp_path: Path) -> None:
    brain = _brain(
        tmp_path, {"rate_limits": {"recall": {"per_principal": {"rate": 0.001, "burst": 1}}}}
    )
    async with brain:
        await brain.retain("alpha", "b")
        for _ in range(3):  # reflect is not charged to the recall bucket
            await brain.reflect("alpha", "b")
        await brain.recall("alpha", "b")
        with pytest.raises(RateLimited):
            await brain.recall("alpha", "b")


async def test_forget_and_create_bank_are_audited(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    brain = _brain(tmp_path, {"audit": {"enabled": True, "path": str(log)}})
    async with brain:
        ctx = AstrocyteContext(principal="user:alice", tenant="acme")
        await brain.create_bank("notes", context=ctx)
        kept = await brain.retain("to be forgotten", "notes", tags=["tmp"], context=ctx)
        await brain.forget("notes", tags=["tmp"], context=ctx)
    events = [json.loads(line) for line in log.read_text().splitlines()]
    actions = [e["action"] for e in events]
    assert actions == ["create_bank", "retain", "forget"]
    assert {e["bank"] for e in events} == {"notes"}  # the caller's id, never the storage id
    forget = events[-1]
    assert forget["principal"] == "user:alice" and forget["tenant"] == "acme"
    assert forget["details"]["deleted"] == len(kept.memory_ids)
    assert forget["details"]["tags"] == ["tmp"]


async def test_quota_error_names_the_bank_as_the_tenant_knows_it(tmp_path: Path) -> None:
    from astrocyte import QuotaExceeded

    brain = _brain(tmp_path, {"quotas": {"max_memories_per_bank": 1}})
    async with brain:
        ctx = AstrocyteContext(principal="user:alice", tenant="acme")
        await brain.retain("first", "notes", context=ctx)
        with pytest.raises(QuotaExceeded) as denied:
            await brain.retain("second", "notes", context=ctx)
    assert "'notes'" in str(denied.value) and "acme/" not in str(denied.value)
