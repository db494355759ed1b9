"""The caller context, permission patterns and the identity config sections."""

from __future__ import annotations

import re
from typing import Any

import pydantic
import pytest

from astrocyte import (
    AccessControl,
    ActorIdentity,
    Astrocyte,
    AstrocyteConfig,
    AstrocyteContext,
    ConfigError,
    Permission,
    ValidationError,
    load_config,
)
from astrocyte.identity.patterns import ALL_PERMISSIONS, fill, matches, split_principal


def test_principal_alone_keeps_working() -> None:
    ctx = AstrocyteContext(principal="user:123")
    assert ctx.principal == "user:123"
    assert ctx.actor is None and ctx.on_behalf_of is None and ctx.tenant is None
    assert ctx.acting == ActorIdentity(type="user", id="123")


def test_actor_derives_the_principal() -> None:
    actor = ActorIdentity(type="agent", id="support-bot", claims={"scope": "chat"})
    assert AstrocyteContext(actor=actor).principal == "agent:support-bot"
    assert AstrocyteContext(actor={"type": "user", "id": "a"}).principal == "user:a"
    both = AstrocyteContext(principal="agent:support-bot", actor=actor)
    assert both.acting is actor and both.acting.claims == {"scope": "chat"}


def test_inconsistent_principal_and_actor_is_an_error() -> None:
    with pytest.raises(pydantic.ValidationError, match="does not match actor"):
        AstrocyteContext(principal="user:x", actor=ActorIdentity(type="user", id="y"))


def test_a_bare_principal_has_no_structured_identity() -> None:
    assert AstrocyteContext(principal="local").acting is None
    assert split_principal("local") == ("", "local")
    assert split_principal("user:a:b") == ("user", "a:b")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"principal": ""},
        {"principal": "user 1"},
        {"principal": ":x"},
        {"principal": "user/1"},
        {"principal": "x" * 257},
        {"actor": {"type": "", "id": "a"}},
        {"actor": {"type": "User", "id": "a"}},
        {"actor": {"type": "user:x", "id": "a"}},
        {"actor": {"type": "user", "id": ""}},
        {"actor": {"type": "user", "id": "a b"}},
        {"actor": {"type": "user", "id": "a/b"}},
        {"actor": {"type": "user", "id": "-a"}},
        {"principal": "u", "on_behalf_of": {"type": "user", "id": ""}},
        {"principal": "u", "tenant": ""},
        {"principal": "u", "tenant": "a/b"},
        {"principal": "u", "tenant": "a:b"},
        {"principal": "u", "tenant": "../x"},
        {"principal": "u", "tenant": "t" * 65},
        {"principal": "u", "extra": 1},
    ],
)
def test_bad_identities_are_rejected(kwargs: dict[str, Any]) -> None:
    with pytest.raises(pydantic.ValidationError):
        AstrocyteContext(**kwargs)


def test_context_is_frozen_and_binding_does_not_change_equality() -> None:
    ctx = AstrocyteContext(principal="user:1", tenant="acme")
    with pytest.raises(pydantic.ValidationError):
        ctx.principal = "user:2"  # type: ignore[misc]
    bound = ctx.bound_to(AccessControl())
    assert bound == ctx and hash(bound) == hash(ctx)
    assert {ctx, bound} == {ctx}


def test_effective_permissions_needs_grants_from_somewhere() -> None:
    ctx = AstrocyteContext(principal="user:1")
    with pytest.raises(ValidationError) as err:
        ctx.effective_permissions("user-1")
    assert err.value.field == "access"
    access = AccessControl(
        load_config({"access_grants": [_grant(["user:*"], ["user-*"], ["read"])]}).access_grants
    )
    assert ctx.effective_permissions("user-1", access) == {Permission.READ}
    assert ctx.bound_to(access).effective_permissions("user-1") == {"read"}
    assert ctx.bound_to(access).effective_permissions("other") == frozenset()


async def test_bind_uses_the_brains_grants() -> None:
    config = load_config(
        {
            "storage": {"backend": "memory"},
            "access_grants": [_grant(["user:*"], ["user-{id}"], ["admin"])],
        }
    )
    async with Astrocyte(config, embedder=_embedder()) as brain:
        ctx = brain.bind(AstrocyteContext(principal="user:alice"))
        assert ctx.effective_permissions("user-alice") == ALL_PERMISSIONS
        assert ctx.effective_permissions("user-bob") == frozenset()
        assert brain.bind().effective_permissions("user-alice") == frozenset()  # "local"


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("*", "anything", True),
        ("*", "", True),
        ("agent:*", "agent:bot", True),
        ("agent:*", "agent:", True),
        ("agent:*", "user:bot", False),
        ("agent:*", "xagent:bot", False),
        ("user-*", "user-alice", True),
        ("user-*", "user", False),
        ("*-notes", "alice-notes", True),
        ("team-*-shared", "team-a-shared", True),
        ("team-*-shared", "team-a-private", False),
        ("a.b", "a.b", True),
        ("a.b", "axb", False),  # "." is literal, not a regex wildcard
        ("user:alice", "user:alice", True),
        ("user:alice", "user:alicex", False),
        ("User:*", "user:alice", False),  # case-sensitive
        ("**", "x", True),
    ],
)
def test_wildcard_matching(pattern: str, value: str, expected: bool) -> None:
    assert matches(pattern, value) is expected


def test_placeholders_fill_with_the_principal() -> None:
    assert fill("user-{id}", actor_type="user", actor_id="alice") == "user-alice"
    assert fill("{type}-{id}", actor_type="agent", actor_id="bot") == "agent-bot"
    assert fill("{type}-x", actor_type="", actor_id="local") is None
    assert fill("plain", actor_type="", actor_id="") == "plain"


def test_zero_config_means_no_access_control() -> None:
    config = AstrocyteConfig()
    assert config.access_grants == [] and config.agents == {}
    assert config.identity.resolver == "convention"
    access = AccessControl.from_config(config)
    assert not access.enforced
    anyone = AstrocyteContext(principal="user:x", tenant="t")
    assert access.effective_permissions(anyone, "whatever") == ALL_PERMISSIONS


def _grant(principals: list[str], banks: list[str], permissions: list[str]) -> dict[str, Any]:
    return {"principals": principals, "banks": banks, "permissions": permissions}


@pytest.mark.parametrize(
    ("section", "key"),
    [
        (
            {
                "access_grants": [
                    _grant(["*"], ["*"], ["read"]),
                    _grant(["*"], ["*"], ["write"]),
                    _grant(["*"], ["*"], ["reed", "write"]),
                ]
            },
            r"access_grants\.2\.permissions\.0|access_grants\[2\]\.permissions\[0\]",
        ),
        (
            {"access_grants": [_grant(["*"], ["*"], ["read", "delete"])]},
            r"access_grants.0.permissions.1|access_grants\[0\]\.permissions\[1\]",
        ),
        ({"access_grants": [_grant(["user 1"], ["*"], ["read"])]}, r"principals.0|principals\[0\]"),
        ({"access_grants": [_grant(["*"], ["a/b"], ["read"])]}, r"banks.0|banks\[0\]"),
        ({"access_grants": [_grant(["*"], ["{name}"], ["read"])]}, r"banks.0|banks\[0\]"),
        ({"access_grants": [_grant([], ["*"], ["read"])]}, "principals"),
        ({"access_grants": [{"principals": ["*"], "banks": ["*"]}]}, "permissions"),
        ({"access_grants": [{**_grant(["*"], ["*"], ["read"]), "tenants": ["x"]}]}, "tenants"),
        ({"identity": {"resolver": "magic"}}, "identity.resolver"),
        ({"identity": {"resolver": "config", "banks": {"user:*": "bad bank"}}}, "identity.banks"),
        ({"agents": {"bot": {"allowed_banks": ["a b"]}}}, r"agents.bot.allowed_banks.0"),
        ({"agents": {"bot": {"default_bank": "a/b"}}}, "agents.bot.default_bank"),
        ({"agents": {"bot": {"colour": "red"}}}, "agents.bot.colour"),
    ],
)
def test_bad_identity_config_names_the_key(section: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(section)
    assert re.search(key, err.value.key), err.value.key


def test_a_bad_agent_name_is_a_config_error_when_the_brain_is_built() -> None:
    config = load_config({"storage": {"backend": "memory"}, "agents": {"bad name": {}}})
    with pytest.raises(ConfigError) as err:
        Astrocyte(config, embedder=_embedder())
    assert err.value.key == "agents.bad name"


def test_permission_names_are_strings() -> None:
    assert [str(p) for p in Permission] == ["read", "write", "forget", "admin"]
    assert "read" in ALL_PERMISSIONS


def _embedder() -> Any:
    from astrocyte.embedders import HashingEmbedder

    return HashingEmbedder()
