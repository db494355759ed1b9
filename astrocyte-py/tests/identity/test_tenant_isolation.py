"""Tenant isolation: a tenant never reads, lists, counts or deletes another tenant's
memories, whatever bank name it guesses; results only ever carry its own bank ids."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from astrocyte import (
    AccessDenied,
    Astrocyte,
    AstrocyteContext,
    BankNotFound,
    ValidationError,
    load_config,
)
from astrocyte.embedders import HashingEmbedder
from astrocyte.identity import storage_bank_id, visible_bank_id

BrainFactory = Callable[..., Astrocyte]

ACME = AstrocyteContext(principal="user:alice", tenant="acme")
GLOBEX = AstrocyteContext(principal="user:alice", tenant="globex")
NO_TENANT = AstrocyteContext(principal="user:alice")


@pytest.mark.parametrize("backend", ["memory", "embedded"])
async def test_every_result_uses_the_callers_bank_id(
    make_brain: BrainFactory, backend: str
) -> None:
    brain = make_brain(backend)
    one = await brain.retain("Acme ships rockets on Fridays.", "notes", tags=["t"], context=ACME)
    assert one.bank_id == "notes"
    many = await brain.retain_many([{"content": "Acme HQ is in Toledo."}], "notes", context=ACME)
    assert many.bank_id == "notes" and many.results[0].bank_id == "notes"
    await brain.create_bank("empty", context=ACME)

    recalled = await brain.recall("Acme rockets", banks=["notes", "empty"], context=ACME)
    assert recalled.bank_ids == ["notes", "empty"]
    assert recalled.hits and {h.provenance.bank_id for h in recalled.hits} == {"notes"}
    assert {s.bank_id for s in recalled.strategies} == {"notes", "empty"}
    reflected = await brain.reflect("Acme rockets", "notes", context=ACME)
    assert reflected.citations and {c.bank_id for c in reflected.citations} == {"notes"}
    assert {h.provenance.bank_id for h in reflected.evidence} == {"notes"}
    listed = {b.bank_id: b.memory_count for b in await brain.list_banks(context=ACME)}
    assert listed == {"notes": 2, "empty": 0}
    forgotten = await brain.forget("notes", tags=["t"], context=ACME)
    assert forgotten.bank_id == "notes" and forgotten.deleted_ids == one.memory_ids

    # The stores hold the banks under the tenant's namespace, which no bank id can name.
    stored = {b.bank_id for b in await brain.stores.documents.list_banks()}
    assert stored == {"acme/notes", "acme/empty"}
    assert await brain.list_banks() == []  # a tenant-less caller sees no tenant's banks
    with pytest.raises(ValidationError):
        await brain.recall("rockets", "acme/notes")


async def test_same_bank_name_in_two_tenants_is_two_banks(make_brain: BrainFactory) -> None:
    brain = make_brain()
    await brain.retain("Acme secret: the launch code is 1234", "notes", context=ACME)
    await brain.retain("Globex memo about lunch", "notes", context=GLOBEX)
    await brain.retain("Library note", "notes", context=NO_TENANT)
    for ctx, word in ((ACME, "Acme"), (GLOBEX, "Globex"), (NO_TENANT, "Library")):
        hits = (await brain.recall("launch code secret memo lunch note", "notes", context=ctx)).hits
        assert [h.text.split()[0].rstrip(":") for h in hits] == [word]
        assert [b.memory_count for b in await brain.list_banks(context=ctx)] == [1]
    # Forgetting by the other tenant's memory ids deletes nothing.
    acme_ids = [h.memory_id for h in (await brain.recall("launch", "notes", context=ACME)).hits]
    assert (await brain.forget("notes", memory_ids=acme_ids, context=GLOBEX)).deleted_ids == []
    assert (await brain.recall("launch", "notes", context=ACME)).hits


async def test_another_tenants_bank_does_not_exist_for_you(make_brain: BrainFactory) -> None:
    brain = make_brain()
    await brain.retain("Acme only", "acme-only", context=ACME)
    with pytest.raises(BankNotFound) as err:
        await brain.recall("Acme", "acme-only", context=GLOBEX)
    assert err.value.bank_id == "acme-only"
    with pytest.raises(BankNotFound):
        await brain.forget("acme-only", tags=["x"], context=GLOBEX)


async def test_errors_name_the_callers_bank_id(make_brain: BrainFactory) -> None:
    strict = make_brain(banks={"auto_create": False})
    with pytest.raises(BankNotFound) as missing:
        await strict.retain("x", "notes", context=ACME)
    assert missing.value.bank_id == "notes" and "acme/" not in str(missing.value)
    closed = make_brain(
        access_grants=[{"principals": ["user:*"], "banks": ["user-{id}"], "permissions": ["admin"]}]
    )
    with pytest.raises(AccessDenied) as denied:
        await closed.retain("x", "notes", context=ACME)
    assert denied.value.bank_id == "notes" and "acme/" not in str(denied.value)


async def test_grants_apply_within_each_tenant(make_brain: BrainFactory) -> None:
    brain = make_brain(
        access_grants=[{"principals": ["user:*"], "banks": ["user-{id}"], "permissions": ["admin"]}]
    )
    for tenant in ("acme", "globex"):
        ctx = AstrocyteContext(principal="user:alice", tenant=tenant)
        await brain.retain(f"{tenant} data", context=ctx)  # user-alice, by convention
        assert [b.bank_id for b in await brain.list_banks(context=ctx)] == ["user-alice"]
    stored = {b.bank_id for b in await brain.stores.documents.list_banks()}
    assert stored == {"acme/user-alice", "globex/user-alice"}


def test_storage_ids_round_trip_and_never_collide() -> None:
    assert storage_bank_id(None, "notes") == "notes"
    assert storage_bank_id("acme", "notes") == "acme/notes"
    assert visible_bank_id("acme", "acme/notes") == "notes"
    assert visible_bank_id("acme", "globex/notes") is None
    assert visible_bank_id("acme", "acme-x/notes") is None
    assert visible_bank_id("acme", "notes") is None
    assert visible_bank_id(None, "acme/notes") is None
    assert visible_bank_id(None, "notes") == "notes"


# --- property: random tenants, bank names and operations ---------------------------------

_BANK_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}")
_TENANT_NAMES = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,6}\Z")
_WORDS = ("apple", "banana", "cherry")  # each namespace retains text with its own word


def _bank_names(tenants: list[str | None]) -> st.SearchStrategy[str]:
    """Plain names, names shared by every tenant, and guesses at other tenants' storage:
    "{tenant}/{bank}", "{tenant}:{bank}", "{tenant}-{bank}", "../x", ..."""
    plain = st.one_of(
        st.sampled_from(["notes", "shared", "user-alice", "a", "x.y", "t:1"]),
        st.from_regex(r"\A[a-z0-9][a-z0-9._:@-]{0,6}\Z"),
    )
    named = [t for t in tenants if t is not None]
    guess = st.builds(
        lambda t, sep, b: f"{t}{sep}{b}",
        st.sampled_from(named),
        st.sampled_from(["/", ":", "-", "%2F", "//", "\\"]),
        plain,
    )
    odd = st.sampled_from(["", "/", "../notes", "/notes", "notes/", "*", "acme/", " notes"])
    return st.one_of(plain, plain, guess, odd)


class _Model:
    """What each namespace should see: bank -> memory ids."""

    def __init__(self, tenants: list[str | None]) -> None:
        self.banks: dict[str | None, dict[str, set[str]]] = {t: {} for t in tenants}

    def all_ids(self) -> list[str]:
        return sorted(i for banks in self.banks.values() for ids in banks.values() for i in ids)


async def _apply(
    brain: Astrocyte, model: _Model, ctx: AstrocyteContext, word: str, op: dict[str, Any]
) -> None:
    own = model.banks[ctx.tenant]
    names: list[str] = op["banks"]
    kind = op["kind"]
    if not all(_BANK_RE.fullmatch(n) for n in names):
        with pytest.raises(ValidationError):
            await _run(brain, ctx, word, op)
        return
    if kind in ("recall", "recall_many", "reflect", "forget_ids", "forget_all") and not all(
        n in own for n in names
    ):
        # A bank of another namespace is indistinguishable from one that does not exist.
        with pytest.raises(BankNotFound):
            await _run(brain, ctx, word, op)
        return
    result = await _run(brain, ctx, word, op)
    if kind in ("retain", "create"):
        ids = set(result.memory_ids) if kind == "retain" else set()
        own.setdefault(names[0], set()).update(ids)
        if kind == "retain":
            assert result.bank_id == names[0]
    elif kind in ("recall", "recall_many", "reflect"):
        hits = result.hits if kind != "reflect" else result.evidence
        visible = set().union(*(own[n] for n in names))
        assert {h.memory_id for h in hits} <= visible
        assert {h.provenance.bank_id for h in hits} <= set(names)
        assert all(h.text.startswith(word) for h in hits)
        if kind == "reflect":
            assert {c.bank_id for c in result.citations} <= set(names)
        else:
            assert result.bank_ids == list(dict.fromkeys(names))
    elif kind in ("forget_ids", "forget_all"):
        bank = names[0]
        expected = own[bank] & set(op["ids"]) if kind == "forget_ids" else set(own[bank])
        assert set(result.deleted_ids) == expected and result.bank_id == bank
        own[bank] -= expected
    elif kind == "list":
        assert {b.bank_id: b.memory_count for b in result} == {b: len(i) for b, i in own.items()}


async def _run(brain: Astrocyte, ctx: AstrocyteContext, word: str, op: dict[str, Any]) -> Any:
    kind, names, query = op["kind"], op["banks"], op["query"]
    if kind == "retain":
        return await brain.retain(f"{word} memo {op['n']}", names[0], tags=["t"], context=ctx)
    if kind == "create":
        return await brain.create_bank(names[0], context=ctx)
    if kind == "recall":
        return await brain.recall(query, names[0], max_results=50, context=ctx)
    if kind == "recall_many":
        return await brain.recall(query, banks=names, max_results=50, context=ctx)
    if kind == "reflect":
        return await brain.reflect(query, names[0], context=ctx)
    if kind == "forget_ids":
        return await brain.forget(names[0], memory_ids=op["ids"], context=ctx)
    if kind == "forget_all":
        return await brain.forget(names[0], tags=["t"], context=ctx)
    return await brain.list_banks(context=ctx)


async def _check_isolation(data: st.DataObject, backend: str, grants: list[dict[str, Any]]) -> None:
    first = data.draw(_TENANT_NAMES, "tenant A")
    second = data.draw(_TENANT_NAMES, "tenant B")
    second = second if second != first else f"{second}2"
    tenants: list[str | None] = [first, second, None]
    contexts = [AstrocyteContext(principal="user:alice", tenant=t) for t in tenants]
    names = _bank_names(tenants)
    with tempfile.TemporaryDirectory() as tmp:
        config = load_config(
            {
                "storage": {"backend": backend, "path": str(Path(tmp) / "a.db")},
                "access_grants": grants,
            }
        )
        async with Astrocyte(config, embedder=HashingEmbedder()) as brain:
            model = _Model(tenants)
            for step in range(data.draw(st.integers(3, 14), "steps")):
                who = data.draw(st.integers(0, 2), "who")
                kind = data.draw(
                    st.sampled_from(
                        [
                            *("retain", "retain", "create", "recall", "recall_many"),
                            *("reflect", "forget_ids", "forget_all", "list"),
                        ]
                    )
                )
                count = {"recall_many": 3, "list": 0}.get(kind, 1)
                op = {
                    "kind": kind,
                    "n": step,
                    "banks": data.draw(st.lists(names, min_size=count, max_size=count)),
                    # Guess the other namespaces' content and memory ids.
                    "query": f"{data.draw(st.sampled_from(_WORDS))} memo",
                    "ids": data.draw(
                        st.lists(st.sampled_from(model.all_ids() or ["mem_x"]), max_size=4)
                    ),
                }
                await _apply(brain, model, contexts[who], _WORDS[who], op)
            # Nothing of any namespace was lost or leaked, seen from each of them...
            for ctx, tenant in zip(contexts, tenants, strict=True):
                listed = {b.bank_id: b.memory_count for b in await brain.list_banks(context=ctx)}
                assert listed == {b: len(i) for b, i in model.banks[tenant].items()}
            # ... and from the stores: every storage bank belongs to exactly one namespace.
            for info in await brain.stores.documents.list_banks():
                owners = [t for t in tenants if visible_bank_id(t, info.bank_id) is not None]
                assert len(owners) == 1, info.bank_id


_PROPERTY = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
_OPEN: list[dict[str, Any]] = []  # no grants: everything allowed, isolation must still hold
_ADMIN_ALL = [{"principals": ["*"], "banks": ["*"], "permissions": ["admin"]}]


@settings(_PROPERTY, max_examples=150)
@given(data=st.data())
async def test_tenants_are_isolated_in_memory(data: st.DataObject) -> None:
    await _check_isolation(data, "memory", _OPEN)


@settings(_PROPERTY, max_examples=60)
@given(data=st.data())
async def test_tenants_are_isolated_with_wildcard_admin_grants(data: st.DataObject) -> None:
    await _check_isolation(data, "memory", _ADMIN_ALL)


@settings(_PROPERTY, max_examples=40)
@given(data=st.data())
async def test_tenants_are_isolated_in_the_embedded_store(data: st.DataObject) -> None:
    await _check_isolation(data, "embedded", _OPEN)
