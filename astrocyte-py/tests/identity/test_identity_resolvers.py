"""Bank resolvers (convention, config, custom) and bank_id-less facade calls."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from astrocyte import (
    AccessDenied,
    ActorIdentity,
    Astrocyte,
    AstrocyteContext,
    BankResolver,
    ConfigError,
    ValidationError,
    load_config,
)
from astrocyte.identity import ConfigResolver, ConventionResolver, build_resolver

BrainFactory = Callable[..., Astrocyte]

ALICE = ActorIdentity(type="user", id="alice")
BOT = ActorIdentity(type="agent", id="bot")


@pytest.mark.parametrize(
    ("actor", "obo", "expected"),
    [
        (ALICE, None, "user-alice"),
        (BOT, None, "agent-bot"),
        (ActorIdentity(type="agent", id="helper"), None, "helper-home"),  # default_bank
        (BOT, ALICE, "user-alice"),  # an agent for a user works in the user's bank
        (ActorIdentity(type="agent", id="helper"), ALICE, "user-alice"),
        (ActorIdentity(type="service", id="etl"), None, "service-etl"),
        (None, None, None),
    ],
)
def test_convention(
    actor: ActorIdentity | None, obo: ActorIdentity | None, expected: str | None
) -> None:
    resolver = ConventionResolver({"helper": "helper-home"})
    assert resolver.resolve(actor, obo) == expected


TABLE = {
    "user:alice": "alice-notes",
    "user:vip-*": "vip-{id}",
    "user:*": "{type}-bank-{id}",
    "agent:bot": "bot-bank",
}


@pytest.mark.parametrize(
    ("actor", "obo", "expected"),
    [
        (ALICE, None, "alice-notes"),  # exact principal
        (ActorIdentity(type="user", id="vip-1"), None, "vip-vip-1"),  # first pattern in order
        (ActorIdentity(type="user", id="zed"), None, "user-bank-zed"),
        (BOT, None, "bot-bank"),
        (BOT, ALICE, "alice-notes"),  # delegated: the user's entry
        (BOT, ActorIdentity(type="team", id="x"), None),  # no entry: no silent fallback
        (ActorIdentity(type="agent", id="helper"), None, "helper-home"),  # agent default
        (ActorIdentity(type="service", id="etl"), None, None),
        (None, None, None),
    ],
)
def test_config_table(
    actor: ActorIdentity | None, obo: ActorIdentity | None, expected: str | None
) -> None:
    resolver = ConfigResolver(TABLE, {"helper": "helper-home"})
    assert resolver.resolve(actor, obo) == expected


def test_build_resolver_from_config() -> None:
    assert isinstance(build_resolver(load_config(None)), ConventionResolver)
    config = load_config({"identity": {"resolver": "config", "banks": TABLE}})
    assert build_resolver(config).resolve(ALICE, None) == "alice-notes"


class TeamResolver:
    """A custom resolver: every actor of a team shares the team's bank."""

    def __init__(self, teams: dict[str, str], prefix: str = "team") -> None:
        self.teams = teams
        self.prefix = prefix

    def resolve(self, actor: ActorIdentity | None, on_behalf_of: ActorIdentity | None) -> Any:
        subject = on_behalf_of or actor
        team = self.teams.get(subject.principal) if subject else None
        return f"{self.prefix}-{team}" if team else None


class AsyncResolver:
    """A custom resolver that has to await something (e.g. a directory service)."""

    async def resolve(
        self, actor: ActorIdentity | None, on_behalf_of: ActorIdentity | None
    ) -> str | None:
        return None if actor is None else f"async-{actor.id}"


class NotAResolver:
    pass


class BrokenResolver:
    def resolve(self, actor: ActorIdentity | None, on_behalf_of: ActorIdentity | None) -> Any:
        return 42


async def test_custom_resolver_by_import_path(make_brain: BrainFactory) -> None:
    brain = make_brain(
        identity={
            "resolver": f"{__name__}:TeamResolver",
            "options": {"teams": {"user:alice": "red"}, "prefix": "squad"},
        }
    )
    assert isinstance(brain.resolver, BankResolver)
    alice = AstrocyteContext(actor=ALICE)
    assert (await brain.retain("Red team standup at 9", context=alice)).bank_id == "squad-red"
    assert await brain.default_bank(alice) == "squad-red"
    with pytest.raises(ValidationError) as err:
        await brain.retain("x", context=AstrocyteContext(principal="user:nobody"))
    assert err.value.field == "bank_id"


async def test_async_custom_resolver(make_brain: BrainFactory) -> None:
    brain = make_brain(identity={"resolver": f"{__name__}:AsyncResolver"})
    ctx = AstrocyteContext(principal="user:zoe")
    await brain.retain("Zoe likes jazz", context=ctx)
    result = await brain.recall("jazz", context=ctx)
    assert result.bank_ids == ["async-zoe"] and result.hits


@pytest.mark.parametrize(
    ("identity", "key"),
    [
        ({"resolver": "no_such_module_xyz:Resolver"}, "identity.resolver"),
        ({"resolver": f"{__name__}:Missing"}, "identity.resolver"),
        ({"resolver": f"{__name__}:TeamResolver", "options": {"colour": 1}}, "identity.options"),
        ({"resolver": f"{__name__}:NotAResolver"}, "identity.resolver"),  # no resolve()
        ({"resolver": f"{__name__}:ALICE"}, "identity.resolver"),  # not a class
    ],
)
def test_bad_custom_resolvers_are_config_errors(
    make_brain: BrainFactory, identity: dict[str, Any], key: str
) -> None:
    with pytest.raises(ConfigError) as err:
        make_brain(identity=identity)
    assert err.value.key == key


async def test_a_resolver_returning_garbage_is_reported(make_brain: BrainFactory) -> None:
    brain = make_brain(identity={"resolver": f"{__name__}:BrokenResolver"})
    with pytest.raises(ConfigError, match="int"):
        await brain.retain("x", context=AstrocyteContext(principal="user:a"))


async def test_resolved_banks_are_validated_and_authorised(make_brain: BrainFactory) -> None:
    brain = make_brain(
        identity={"resolver": "config", "banks": {"user:*": "shared"}},
        access_grants=[{"principals": ["user:alice"], "banks": ["*"], "permissions": ["admin"]}],
    )
    await brain.retain("x", context=AstrocyteContext(principal="user:alice"))
    with pytest.raises(AccessDenied, match="'shared'"):
        await brain.recall("x", context=AstrocyteContext(principal="user:bob"))
    long_id = AstrocyteContext(actor=ActorIdentity(type="user", id="x" * 128))
    conventional = make_brain()
    with pytest.raises(ValidationError) as err:
        await conventional.retain("x", context=long_id)  # "user-" + 128 chars is too long
    assert err.value.field == "bank_id"


async def test_bank_id_is_optional_everywhere_a_resolver_can_derive_it(
    make_brain: BrainFactory,
) -> None:
    brain = make_brain()
    alice = AstrocyteContext(principal="user:alice")
    stored = await brain.retain("Alice moved to Lisbon", context=alice, tags=["move"])
    assert stored.bank_id == "user-alice"
    batch = await brain.retain_many([{"content": "Alice likes surfing"}], context=alice)
    assert batch.bank_id == "user-alice"
    assert (await brain.recall("Lisbon", context=alice)).hits[0].memory_id in stored.memory_ids
    assert (await brain.reflect("Lisbon", context=alice)).citations
    forgotten = await brain.forget(tags=["move"], context=alice)
    assert forgotten.bank_id == "user-alice" and forgotten.deleted_ids == stored.memory_ids
    await brain.create_bank(context=AstrocyteContext(principal="user:bob"))
    assert {b.bank_id for b in await brain.list_banks()} == {"user-alice", "user-bob"}
    # Positional bank ids keep working and win over the resolver.
    await brain.retain("explicit", "elsewhere", context=alice)
    assert (await brain.recall("explicit", "elsewhere", context=alice)).bank_ids == ["elsewhere"]


@pytest.mark.parametrize("call", ["retain", "retain_many", "recall", "forget", "create_bank"])
async def test_no_bank_and_no_default_is_a_validation_error(
    make_brain: BrainFactory, call: str
) -> None:
    brain = make_brain()
    calls: dict[str, Callable[[], Awaitable[Any]]] = {
        "retain": lambda: brain.retain("x"),
        "retain_many": lambda: brain.retain_many([{"content": "x"}]),
        "recall": lambda: brain.recall("x"),
        "forget": lambda: brain.forget(tags=["x"]),
        "create_bank": lambda: brain.create_bank(),
    }
    with pytest.raises(ValidationError) as err:
        await calls[call]()  # the local principal has no default bank
    assert err.value.field == "bank_id"
    assert await brain.default_bank() is None
