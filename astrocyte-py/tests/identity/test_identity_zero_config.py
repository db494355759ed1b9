"""Without access_grants the library is single-user: everything is allowed, as before."""

from __future__ import annotations

from typing import Any

from astrocyte import Astrocyte, AstrocyteContext, Permission
from astrocyte.identity import ALL_PERMISSIONS, ActorIdentity


async def test_zero_config_allows_everything_for_everyone(brain: Astrocyte) -> None:
    assert not brain.access.enforced
    assert brain.bind().effective_permissions("any") == ALL_PERMISSIONS
    callers = [
        None,
        AstrocyteContext(principal="user:1"),
        AstrocyteContext(principal="agent:x", on_behalf_of=ActorIdentity(type="user", id="2")),
    ]
    for n, ctx in enumerate(callers):
        stored = await brain.retain(f"fact number {n}", "shared", context=ctx)
        assert stored.bank_id == "shared"
        result = await brain.recall("fact", "shared", max_results=10, context=ctx)
        assert stored.memory_ids[0] in {h.memory_id for h in result.hits}
        assert result.skipped_banks == []
        assert "shared" in {b.bank_id for b in await brain.list_banks(context=ctx)}
        await brain.create_bank("other", context=ctx)
        assert (await brain.forget("other", tags=["x"], context=ctx)).deleted_ids == []
    assert Permission.ADMIN in brain.bind(callers[2]).effective_permissions("shared")


async def test_results_with_and_without_a_context_are_the_same(brain: Astrocyte) -> None:
    await brain.retain("Alice prefers green tea", "alice", tags=["prefs"])
    plain = await brain.recall("green tea", "alice")
    with_ctx = await brain.recall(
        "green tea", "alice", context=AstrocyteContext(principal="user:alice")
    )
    # Everything but timings is identical.
    strip: Any = {"elapsed_ms": True, "strategies": {"__all__": {"elapsed_ms"}}}
    assert plain.model_dump(exclude=strip) == with_ctx.model_dump(exclude=strip)
    assert {s.bank_id for s in plain.strategies} == {"alice"}
