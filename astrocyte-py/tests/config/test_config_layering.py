"""Layering: defaults -> named profile -> compliance profile -> user config, by deep
merge; compliance locks that nothing above them can loosen."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
from conftest import API_KEY, problems_of

from astrocyte.config import AstrocyteConfig, load_config
from astrocyte.config.layering import deep_merge
from astrocyte.config.profiles import (
    COMPLIANCE_PROFILES,
    MISSING,
    NAMED_PROFILES,
    Lock,
    Profile,
    resolve_paths,
)
from astrocyte.config.schema import RecallConfig
from astrocyte.errors import ConfigError

# --- zero config ----------------------------------------------------------------------


def test_empty_config_is_zero_config() -> None:
    assert load_config({}) == load_config(None) == AstrocyteConfig()


def test_config_without_new_sections_is_zero_config_elsewhere(tmp_path: Path) -> None:
    config = load_config({"storage": {"path": str(tmp_path / "a.db")}})
    zero = AstrocyteConfig()
    for section in (
        "profile",
        "compliance",
        "chunking",
        "recall",
        "deployment",
        "gateway",
        "sources",
        "extraction_profiles",
        "recall_authority",
        "policy",
        "agents",
        "access_grants",
        "identity",
        "banks",
    ):
        assert getattr(config, section) == getattr(zero, section), section


# --- merge order ----------------------------------------------------------------------


def test_user_file_wins_over_named_profile() -> None:
    config = load_config({"profile": "research", "chunking": {"max_chars": 3000}})
    # From the user: max_chars. From the profile: strategy and overlap. Defaults: the rest.
    assert config.chunking.max_chars == 3000
    assert config.chunking.strategy == "fixed"
    assert config.chunking.overlap == 200
    assert config.recall.rrf_k == 60


def test_profile_wins_over_defaults_and_keeps_default_map_entries() -> None:
    config = load_config({"profile": "support"})
    assert config.chunking.strategy == "paragraph"
    # The profile sets one weight; the other strategies keep their default weights.
    assert config.recall.weights == {
        "semantic": 1.0,
        "keyword": 1.5,
        "graph": 0.5,
        "temporal": 0.5,
    }


def test_user_map_entry_merges_with_default_map() -> None:
    config = load_config({"recall": {"weights": {"graph": 0.0}}})
    assert config.recall.weights["graph"] == 0.0
    assert config.recall.weights["temporal"] == 0.5


def test_lists_replace_instead_of_appending() -> None:
    config = load_config({"profile": "edge", "recall": {"strategies": ["graph", "keyword"]}})
    assert config.recall.strategies == ["graph", "keyword"]


@pytest.fixture
def strict_audit_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    """A named profile that sets what the gdpr compliance profile locks."""
    monkeypatch.setitem(
        NAMED_PROFILES,
        "lax",
        Profile(
            "lax", "test", {"policy": {"audit": {"enabled": False}}, "limits": {"max_tags": 3}}
        ),
    )


@pytest.mark.usefixtures("strict_audit_profile")
def test_compliance_wins_over_named_profile() -> None:
    config = load_config({"profile": "lax", "compliance": "gdpr"})
    assert config.policy.audit.enabled is True  # compliance over profile
    assert config.limits.max_tags == 3  # the profile's other values stay


@pytest.mark.usefixtures("strict_audit_profile")
def test_user_cannot_loosen_compliance_even_with_a_profile() -> None:
    problems = problems_of(
        {"profile": "lax", "compliance": "gdpr", "policy": {"audit": {"enabled": False}}}
    )
    assert problems.key == "policy.audit.enabled"
    assert "false is not allowed by compliance 'gdpr': must be true" in str(problems)


def test_user_may_tighten_a_locked_value() -> None:
    config = load_config({"compliance": "hipaa", "policy": {"pii": {"action": "reject"}}})
    assert config.policy.pii.action == "reject"


def test_user_null_resets_a_profile_section(tmp_path: Path) -> None:
    profile = tmp_path / "team.yaml"
    profile.write_text("llm: {provider: openai, model: m}\n", encoding="utf-8")
    assert load_config({"profile": str(profile)}).llm is not None
    assert load_config({"profile": str(profile), "llm": None}).llm is None


def test_changing_provider_replaces_the_whole_block(tmp_path: Path) -> None:
    profile = tmp_path / "team.yaml"
    profile.write_text("embedder: {provider: local, intra_op_num_threads: 1}\n", encoding="utf-8")
    config = load_config({"profile": str(profile), "embedder": {"provider": "hashing"}})
    assert config.embedder.provider == "hashing"
    assert config.embedder.options() == {}
    same = load_config({"profile": str(profile), "embedder": {"batch_size": 8}})
    assert same.embedder.options() == {"intra_op_num_threads": 1, "batch_size": 8}


def test_deep_merge_rules() -> None:
    base = {"a": {"b": 1, "c": [1, 2]}, "p": {"provider": "x", "o": 1}, "k": 1}
    over = {"a": {"c": [3]}, "p": {"provider": "y"}, "k": None}
    assert deep_merge(base, over) == {"a": {"b": 1, "c": [3]}, "p": {"provider": "y"}, "k": None}
    assert base["a"] == {"b": 1, "c": [1, 2]}  # inputs untouched


def test_layers_apply_when_building_the_model_directly() -> None:
    config = AstrocyteConfig(profile="research", recall=RecallConfig(rrf_k=5))
    assert config.recall.rrf_k == 5
    assert config.recall.candidates_per_strategy == 100  # from the profile


# --- profile files --------------------------------------------------------------------


def test_profile_file_relative_to_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "team.yaml").write_text(
        "recall: {default_max_results: 7}\nstorage:\n  path: ${TEAM_DB}\n", encoding="utf-8"
    )
    main = tmp_path / "astrocyte.yaml"
    main.write_text("profile: profiles/team.yaml\n", encoding="utf-8")
    config = load_config(main, env={"TEAM_DB": "/tmp/team.db"})
    assert config.recall.default_max_results == 7
    assert config.storage.path == "/tmp/team.db"


def test_profile_file_errors(tmp_path: Path) -> None:
    nested = tmp_path / "nested.yaml"
    nested.write_text("profile: research\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="profiles cannot choose other profiles") as caught:
        load_config({"profile": str(nested)})
    assert caught.value.key == "profile"
    with pytest.raises(ConfigError, match="does not exist") as caught:
        load_config({"profile": str(tmp_path / "missing.yaml")})
    assert caught.value.key == "profile"


def test_profile_file_keys_are_checked(tmp_path: Path) -> None:
    profile = tmp_path / "p.yaml"
    profile.write_text("recall: {rrf_kk: 1}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="did you mean 'rrf_k'"):
        load_config({"profile": str(profile)})


# --- built-in profiles ----------------------------------------------------------------

SERVING = {
    "deployment": {"mode": "standalone"},
    "gateway": {"auth": {"api_keys": [{"key": API_KEY, "principal": "agent:a"}]}},
}


@pytest.mark.parametrize(
    ("profile", "compliance"),
    list(itertools.product([None, *NAMED_PROFILES], [None, *COMPLIANCE_PROFILES])),
)
def test_every_profile_combination_loads_and_round_trips(
    profile: str | None, compliance: str | None
) -> None:
    config = load_config({"profile": profile, "compliance": compliance, **SERVING})
    # A dump (as `astrocyte config show` prints it) is itself a valid config meaning
    # the same thing.
    assert AstrocyteConfig.model_validate(config.model_dump()) == config
    assert AstrocyteConfig.model_validate(config.model_dump(mode="json")) == config


@pytest.mark.parametrize("name", list(NAMED_PROFILES))
def test_named_profiles_differ_from_zero_config(name: str) -> None:
    assert load_config({"profile": name}) != AstrocyteConfig()


def test_profiles_ship_different_budgets_and_pii_defaults() -> None:
    budgets = {n: load_config({"profile": n}).recall.default_max_tokens for n in NAMED_PROFILES}
    assert len(set(budgets.values())) == len(budgets)
    assert load_config({"profile": "support"}).policy.pii.action == "redact"
    assert load_config({"profile": "personal"}).policy.pii.action == "allow"


@pytest.mark.parametrize("name", list(COMPLIANCE_PROFILES))
def test_every_lock_path_exists_and_holds(name: str) -> None:
    config = load_config({"compliance": name})
    for lock in COMPLIANCE_PROFILES[name].locks:
        for _, value in resolve_paths(config, lock.path):
            assert value is not MISSING, lock.path
            assert not lock.violated_by(value), lock.path
        if "*" not in lock.path:
            assert resolve_paths(config, lock.path), lock.path


@pytest.mark.parametrize(
    ("name", "data", "key"),
    [
        ("hipaa", {"policy": {"pii": {"action": "allow"}}}, "policy.pii.action"),
        (
            "gdpr",
            {"policy": {"pii": {"detectors": {"email": "allow"}}}},
            "policy.pii.detectors.email",
        ),
        (
            "hipaa",
            {"policy": {"pii": {"detectors": {"us_ssn": "allow"}}}},
            "policy.pii.detectors.us_ssn",
        ),
        (
            "hipaa",
            {"policy": {"pii": {"banks": [{"banks": ["x-*"], "action": "allow"}]}}},
            "policy.pii.banks[0].action",
        ),
        (
            "gdpr",
            {"policy": {"pii": {"banks": [{"banks": ["x-*"], "detectors": {"phone": "allow"}}]}}},
            "policy.pii.banks[0].detectors.phone",
        ),
        ("gdpr", {"policy": {"pii": {"scan_metadata": False}}}, "policy.pii.scan_metadata"),
        ("hipaa", {"policy": {"audit": {"enabled": False}}}, "policy.audit.enabled"),
        ("gdpr", {"gateway": {"auth": {"mode": "none"}}}, "gateway.auth.mode"),
    ],
)
def test_compliance_locks(name: str, data: dict[str, Any], key: str) -> None:
    problems = problems_of({"compliance": name, **data})
    assert problems.key == key
    assert f"is not allowed by compliance {name!r}" in str(problems)
    assert "remove the override" in (problems.fix or "")


def test_bank_rule_that_inherits_is_compliant() -> None:
    config = load_config(
        {"compliance": "hipaa", "policy": {"pii": {"banks": [{"banks": ["x-*"], "action": None}]}}}
    )
    assert config.policy.pii.banks[0].action is None


# --- locks as a generic mechanism -----------------------------------------------------


@pytest.fixture
def bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """gdpr with numeric-bound locks on fields that exist regardless of the policy layer."""
    monkeypatch.setitem(
        COMPLIANCE_PROFILES,
        "gdpr",
        Profile(
            "gdpr",
            "test",
            {"limits": {"max_content_bytes": 1000}, "recall": {"default_max_tokens": 500}},
            locks=(
                Lock("limits.max_content_bytes", "small inputs", at_most=1000),
                Lock("recall.default_max_tokens", "bounded answers", at_least=100, at_most=500),
                Lock("limits.no_such_field", "missing paths fail", allowed=(1,)),
            ),
        ),
    )


@pytest.mark.usefixtures("bounded")
def test_numeric_bound_locks() -> None:
    problems = problems_of(
        {
            "compliance": "gdpr",
            "limits": {"max_content_bytes": 2000},
            "recall": {"default_max_tokens": None},
        }
    )
    messages = {p.key: str(p) for p in problems.problems}
    assert (
        "2000 is not allowed by compliance 'gdpr': must be <= 1000 (small inputs)"
        in (messages["limits.max_content_bytes"])
    )
    assert "null is not allowed" in messages["recall.default_max_tokens"]
    assert "must be >= 100 and <= 500" in messages["recall.default_max_tokens"]
    assert "is required by compliance 'gdpr'" in messages["limits.no_such_field"]


def test_lock_rules() -> None:
    lock = Lock("x", "r", at_least=1, at_most=3)
    assert [lock.violated_by(v) for v in (0, 1, 3, 4, None, True, "2")] == [
        True,
        False,
        False,
        True,
        True,
        True,
        True,
    ]
    assert Lock("x", "r", allowed=("a", None)).requirement() == "must be one of 'a', null"
