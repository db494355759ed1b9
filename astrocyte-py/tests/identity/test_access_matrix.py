"""Grants, delegation (on-behalf-of) and agent limits, enforced by the facade."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from astrocyte import (
    AccessControl,
    AccessDenied,
    ActorIdentity,
    Astrocyte,
    AstrocyteContext,
    BankNotFound,
    Permission,
    load_config,
)

READ, WRITE, FORGET, ADMIN = "read", "write", "forget", "admin"

BOT = ActorIdentity(type="agent", id="bot")
ALICE = ActorIdentity(type="user", id="alice")
SETUP = AstrocyteContext(principal="service:setup")
SETUP_GRANT = {"principals": ["service:setup"], "banks": ["*"], "permissions": [ADMIN]}

BrainFactory = Callable[..., Astrocyte]
Op = Callable[[Astrocyte, AstrocyteContext], Awaitable[Any]]

# Each operation and the permission it needs (create_bank: write, like retain's
# auto-create; list_banks never fails, it leaves out banks the caller cannot read).
OPERATIONS: dict[str, tuple[str, Op]] = {
    "retain": (WRITE, lambda b, c: b.retain("new fact", "shared", context=c)),
    "retain_many": (WRITE, lambda b, c: b.retain_many([{"content": "x"}], "shared", context=c)),
    "recall": (READ, lambda b, c: b.recall("tea", "shared", context=c)),
    "recall_banks": (READ, lambda b, c: b.recall("tea", banks=["shared"], context=c)),
    "reflect": (READ, lambda b, c: b.reflect("tea", "shared", context=c)),
    "forget": (FORGET, lambda b, c: b.forget("shared", tags=["t"], context=c)),
    "create_bank": (WRITE, lambda b, c: b.create_bank("shared", context=c)),
    "list_banks": (READ, lambda b, c: b.list_banks(context=c)),
}

# Grant sets for the actor (agent:bot) and for the principal it acts for (user:alice);
# None for alice means the call is not delegated.
ACTOR_GRANTS: list[list[str]] = [[], [READ], [WRITE], [FORGET], [READ, WRITE], [ADMIN]]
OBO_GRANTS: list[list[str] | None] = [None, [], [READ], [WRITE, FORGET], [ADMIN]]


def _expected(actor: list[str], obo: list[str] | None, needed: str) -> bool:
    """The oracle, written independently of the implementation: admin means all, and a
    delegated call needs the permission on both sides."""

    def has(grants: list[str]) -> bool:
        return ADMIN in grants or needed in grants

    return has(actor) and (obo is None or has(obo))


# A few rows written out by hand, so the oracle itself is checked too.
HAND_ROWS = [
    ([READ], None, "recall", True),
    ([READ], None, "retain", False),
    ([ADMIN], None, "forget", True),
    ([ADMIN], [READ], "recall", True),
    ([ADMIN], [READ], "retain", False),
    ([READ, WRITE], [WRITE, FORGET], "retain", True),
    ([READ, WRITE], [WRITE, FORGET], "recall", False),
    ([READ, WRITE], [WRITE, FORGET], "forget", False),
    ([], [ADMIN], "recall", False),
    ([FORGET], [ADMIN], "forget", True),
    ([READ], [], "list_banks", False),
]


def test_hand_rows_agree_with_the_oracle() -> None:
    for actor, obo, op, allowed in HAND_ROWS:
        assert _expected(actor, obo, OPERATIONS[op][0]) is allowed, (actor, obo, op)


def _config(actor: list[str], obo: list[str] | None) -> dict[str, Any]:
    grants: list[dict[str, Any]] = [SETUP_GRANT]
    if actor:
        grants.append({"principals": ["agent:*"], "banks": ["shared"], "permissions": actor})
    if obo:
        grants.append({"principals": ["user:alice"], "banks": ["shared"], "permissions": obo})
    return {"access_grants": grants}


@pytest.mark.parametrize(
    ("actor", "obo", "op"),
    list(itertools.product(ACTOR_GRANTS, OBO_GRANTS, OPERATIONS)),
    ids=lambda x: "-".join(x) if isinstance(x, list) else ("solo" if x is None else str(x)),
)
async def test_permission_matrix(
    make_brain: BrainFactory, actor: list[str], obo: list[str] | None, op: str
) -> None:
    brain = make_brain(**_config(actor, obo))
    stored = await brain.retain("Alice drinks green tea", "shared", tags=["t"], context=SETUP)
    caller = AstrocyteContext(actor=BOT, on_behalf_of=None if obo is None else ALICE)
    needed, run = OPERATIONS[op]
    allowed = _expected(actor, obo, needed)

    # effective_permissions agrees with what the facade enforces.
    assert (needed in brain.bind(caller).effective_permissions("shared")) is allowed

    if op == "list_banks":
        listed = [b.bank_id for b in await brain.list_banks(context=caller)]
        assert listed == (["shared"] if allowed else [])
        return
    if allowed:
        await run(brain, caller)
        return
    with pytest.raises(AccessDenied) as err:
        await run(brain, caller)
    assert (err.value.principal, err.value.bank_id, err.value.permission) == (
        "agent:bot",
        "shared",
        needed,
    )
    message = str(err.value)
    assert "agent:bot" in message and "'shared'" in message and f"'{needed}'" in message
    if obo is not None:
        assert "user:alice" in message
    # A denied call changed nothing.
    after = await brain.recall("tea", "shared", context=SETUP)
    assert [h.memory_id for h in after.hits] == stored.memory_ids


async def test_denial_does_not_reveal_whether_the_bank_exists(make_brain: BrainFactory) -> None:
    brain = make_brain(
        access_grants=[
            SETUP_GRANT,
            {"principals": ["user:*"], "banks": ["user-{id}"], "permissions": [ADMIN]},
        ]
    )
    await brain.retain("Bob's secret", "user-bob", context=SETUP)
    mallory = AstrocyteContext(principal="user:mallory")
    messages = []
    for bank in ("user-bob", "user-nobody"):
        for op in (
            brain.recall("secret", bank, context=mallory),
            brain.forget(bank, tags=["x"], context=mallory),
            brain.retain("x", bank, context=mallory),
        ):
            with pytest.raises(AccessDenied) as err:
                await op
            messages.append(str(err.value).replace(bank, "<bank>"))
    assert messages[:3] == messages[3:]
    # Their own bank that does not exist yet is an honest BankNotFound.
    with pytest.raises(BankNotFound):
        await brain.recall("x", "user-mallory", context=mallory)


async def test_denied_before_bad_arguments_are_looked_at(make_brain: BrainFactory) -> None:
    brain = make_brain(access_grants=[SETUP_GRANT])
    stranger = AstrocyteContext(principal="user:x")
    with pytest.raises(AccessDenied):
        await brain.forget("b", context=stranger)  # no selector: would be a ValidationError
    with pytest.raises(AccessDenied):
        await brain.retain_many([], "b", context=stranger)


async def test_no_context_is_the_local_principal(make_brain: BrainFactory) -> None:
    closed = make_brain(access_grants=[SETUP_GRANT])
    with pytest.raises(AccessDenied, match="'local'"):
        await closed.retain("x", "b")
    assert await closed.list_banks() == []
    opened = make_brain(
        access_grants=[{"principals": ["local"], "banks": ["*"], "permissions": [ADMIN]}]
    )
    await opened.retain("x", "b")
    assert [b.bank_id for b in await opened.list_banks()] == ["b"]


# --- wildcard and pattern grants --------------------------------------------------------

PATTERN_CASES = [
    # (grant principals, grant banks, principal, bank, expected)
    (["*"], ["*"], "user:anyone", "any-bank", True),
    (["agent:*"], ["*"], "agent:bot", "b", True),
    (["agent:*"], ["*"], "user:bot", "b", False),
    (["user:alice"], ["*"], "user:alice2", "b", False),
    (["*"], ["user-*"], "user:alice", "user-alice", True),
    (["*"], ["user-*"], "user:alice", "team-x", False),
    (["*"], ["user-*"], "user:alice", "user", False),
    (["user:*"], ["user-{id}"], "user:alice", "user-alice", True),
    (["user:*"], ["user-{id}"], "user:alice", "user-bob", False),
    (["user:*"], ["user-{id}-*"], "user:alice", "user-alice-notes", True),
    (["*"], ["{type}-{id}"], "agent:bot", "agent-bot", True),
    (["*"], ["{type}-{id}"], "local", "-local", False),  # bare principal has no type
    (["*"], ["{id}"], "local", "local", True),
    (["*"], ["a.b"], "user:x", "axb", False),
    (["*"], ["team-*-shared"], "user:x", "team-red-shared", True),
    (["user:a", "user:b"], ["x", "y"], "user:b", "y", True),
]


@pytest.mark.parametrize(("principals", "banks", "principal", "bank", "expected"), PATTERN_CASES)
def test_pattern_grants(
    principals: list[str], banks: list[str], principal: str, bank: str, expected: bool
) -> None:
    config = load_config(
        {"access_grants": [{"principals": principals, "banks": banks, "permissions": [READ]}]}
    )
    access = AccessControl.from_config(config)
    ctx = AstrocyteContext(principal=principal)
    assert access.allows(ctx, bank, Permission.READ) is expected


def test_grants_add_up_and_admin_implies_everything() -> None:
    config = load_config(
        {
            "access_grants": [
                {"principals": ["user:*"], "banks": ["*"], "permissions": [READ]},
                {"principals": ["user:alice"], "banks": ["user-alice"], "permissions": [WRITE]},
                {"principals": ["user:root"], "banks": ["*"], "permissions": [ADMIN]},
            ]
        }
    )
    access = AccessControl.from_config(config)
    alice = AstrocyteContext(principal="user:alice")
    assert access.effective_permissions(alice, "user-alice") == {"read", "write"}
    assert access.effective_permissions(alice, "other") == {"read"}
    root = AstrocyteContext(principal="user:root")
    assert access.effective_permissions(root, "x") == set(Permission)


# --- agents ------------------------------------------------------------------------------

AGENTS = {
    "bot": {"allowed_banks": ["user-*", "bot-scratch"], "default_bank": "bot-scratch"},
    "locked": {"allowed_banks": []},
}


async def test_an_agent_only_touches_its_allowed_banks(make_brain: BrainFactory) -> None:
    brain = make_brain(
        access_grants=[{"principals": ["*"], "banks": ["*"], "permissions": [ADMIN]}],
        agents=AGENTS,
    )
    bot = AstrocyteContext(actor=BOT)
    await brain.retain("scratch note", "bot-scratch", context=bot)
    await brain.retain("alice note", "user-alice", context=bot)
    with pytest.raises(AccessDenied, match="'team-x'"):
        await brain.retain("x", "team-x", context=bot)
    await brain.retain("team note", "team-x", context=SETUP)
    listed = {b.bank_id for b in await brain.list_banks(context=bot)}
    assert listed == {"bot-scratch", "user-alice"}
    result = await brain.recall("note", banks=["team-x", "user-alice"], context=bot)
    assert result.skipped_banks == ["team-x"]
    # The agent's default bank is where it works when it names none.
    assert (await brain.retain("default", context=bot)).bank_id == "bot-scratch"
    locked = AstrocyteContext(principal="agent:locked")
    assert brain.bind(locked).effective_permissions("user-alice") == frozenset()
    # Undeclared agents are limited by their grants only.
    other = AstrocyteContext(principal="agent:other")
    assert brain.bind(other).effective_permissions("team-x") == set(Permission)


async def test_agent_limits_apply_without_grants_too(make_brain: BrainFactory) -> None:
    brain = make_brain(agents=AGENTS)  # no access_grants: otherwise everything is allowed
    assert not brain.access.enforced
    with pytest.raises(AccessDenied):
        await brain.retain("x", "team-x", context=AstrocyteContext(principal="agent:bot"))
    await brain.retain("x", "team-x", context=AstrocyteContext(principal="user:anyone"))


async def test_an_agent_for_a_user_needs_both_the_agent_limit_and_the_user_grant(
    make_brain: BrainFactory,
) -> None:
    brain = make_brain(
        access_grants=[
            {"principals": ["agent:*"], "banks": ["*"], "permissions": [READ, WRITE]},
            {"principals": ["user:*"], "banks": ["user-{id}"], "permissions": [ADMIN]},
        ],
        agents=AGENTS,
    )
    for_alice = AstrocyteContext(actor=BOT, on_behalf_of=ALICE)
    stored = await brain.retain("Alice likes tea", context=for_alice)
    assert stored.bank_id == "user-alice"  # the user's bank, by convention
    assert (await brain.recall("tea", context=for_alice)).hits
    with pytest.raises(AccessDenied, match="acting on behalf of 'user:alice'"):
        await brain.recall("tea", "user-bob", context=for_alice)  # alice has no grant there
    with pytest.raises(AccessDenied):
        await brain.forget(tags=["x"], context=for_alice)  # the agent may not forget
    # Inside the agent's limits but outside alice's grants: denied.
    with pytest.raises(AccessDenied):
        await brain.retain("x", "bot-scratch", context=for_alice)


# --- multi-bank recall ---------------------------------------------------------------------


async def test_multi_bank_recall_skips_unreadable_banks(make_brain: BrainFactory) -> None:
    brain = make_brain(
        access_grants=[
            SETUP_GRANT,
            {
                "principals": ["user:alice"],
                "banks": ["team-*", "user-alice"],
                "permissions": [READ],
            },
        ]
    )
    for bank in ("team-a", "team-b", "user-alice", "user-bob"):
        await brain.retain(f"Tea notes kept in {bank}", bank, context=SETUP)
    alice = AstrocyteContext(principal="user:alice")
    result = await brain.recall(
        "tea notes",
        banks=["team-a", "user-bob", "user-alice", "ghost-private", "team-b"],
        max_results=20,
        context=alice,
    )
    assert result.bank_ids == ["team-a", "user-alice", "team-b"]
    assert result.skipped_banks == ["user-bob", "ghost-private"]  # existing or not: same
    assert {h.provenance.bank_id for h in result.hits} == {"team-a", "user-alice", "team-b"}
    assert {s.bank_id for s in result.strategies} == {"team-a", "user-alice", "team-b"}
    reflected = await brain.reflect("tea notes", banks=["team-a", "user-bob"], context=alice)
    assert {c.bank_id for c in reflected.citations} <= {"team-a"}
    # A readable bank that does not exist is still an error, as without access control.
    with pytest.raises(BankNotFound):
        await brain.recall("tea", banks=["team-a", "team-ghost"], context=alice)
    # Naming one unreadable bank, or only unreadable ones, is denied.
    with pytest.raises(AccessDenied, match="'user-bob'"):
        await brain.recall("tea", "user-bob", context=alice)
    with pytest.raises(AccessDenied, match="any of the banks") as err:
        await brain.recall("tea", banks=["user-bob", "ghost-private"], context=alice)
    assert err.value.principal == "user:alice" and err.value.permission == READ
    # Unrestricted callers see every bank and skip none.
    everything = await brain.recall("tea", banks=["team-a", "user-bob"], context=SETUP)
    assert everything.skipped_banks == []
