"""``${ENV}`` substitution: present, default, missing, escaped, nested in lists."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import API_KEY, problems_of

from astrocyte.config import AstrocyteConfig, load_config
from astrocyte.config.env import substitute
from astrocyte.errors import ConfigError

LLM = {"provider": "openai", "model": "m"}


def test_present_variable_replaces_the_whole_value() -> None:
    config = load_config({"llm": {**LLM, "api_key": "${KEY}"}}, env={"KEY": "sk-123"})
    assert config.llm is not None
    assert config.llm.options()["api_key"] == "sk-123"


def test_variables_inside_a_longer_string() -> None:
    config = load_config(
        {"llm": {**LLM, "base_url": "http://${HOST}:${PORT:-8000}/v1"}}, env={"HOST": "gpu1"}
    )
    assert config.llm is not None
    assert config.llm.options()["base_url"] == "http://gpu1:8000/v1"


def test_default_used_when_unset_or_empty_not_when_set() -> None:
    data = {"storage": {"path": "${DB:-/tmp/a.db}"}}
    assert load_config(data, env={}).storage.path == "/tmp/a.db"
    assert load_config(data, env={"DB": ""}).storage.path == "/tmp/a.db"
    assert load_config(data, env={"DB": "/srv/b.db"}).storage.path == "/srv/b.db"


def test_empty_default_is_allowed() -> None:
    assert substitute("a${X:-}b", {}) == "ab"


def test_missing_variable_names_the_key_path() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config({"llm": {**LLM, "api_key": "${OPENAI_KEY}"}}, env={})
    assert caught.value.key == "llm.api_key"
    assert "environment variable OPENAI_KEY is not set" in str(caught.value)
    assert "${OPENAI_KEY:-value}" in str(caught.value)


def test_every_missing_variable_is_reported() -> None:
    problems = problems_of({"llm": {"api_key": "${A}", "base_url": "${B}"}})
    assert [p.key for p in problems.problems] == ["llm.api_key", "llm.base_url"]
    assert "(and 1 more problem)" in str(problems)


def test_lists_and_nested_mappings() -> None:
    env = {"TEAM": "team", "KEY": API_KEY}
    data = {
        "banks": {"declared": ["${TEAM}-*", "user-*"]},
        "deployment": {"mode": "standalone"},
        "gateway": {"auth": {"api_keys": [{"key": "${KEY}", "principal": "agent:${TEAM}"}]}},
    }
    config = load_config(data, env=env)
    assert config.banks.declared == ["team-*", "user-*"]
    assert config.gateway.auth.api_keys[0].key == API_KEY
    assert config.gateway.auth.api_keys[0].principal == "agent:team"


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"banks": {"declared": ["user-*", "${TEAM}-*"]}}, "banks.declared[1]"),
        (
            {"gateway": {"auth": {"api_keys": [{"key": "${K}", "principal": "a"}]}}},
            "gateway.auth.api_keys[0].key",
        ),
        ({"agents": {"bot": {"allowed_banks": ["${B}"]}}}, "agents.bot.allowed_banks[0]"),
    ],
)
def test_missing_variable_in_a_list_names_the_index(data: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(data, env={})
    assert caught.value.key == key


def test_escape_keeps_a_literal_reference() -> None:
    data = {"recall_authority": {"tiers": ["a"], "rules_inline": "cost is $${PRICE} and $$5"}}
    config = load_config(data, env={"PRICE": "nope"})
    assert config.recall_authority.rules_inline == "cost is ${PRICE} and $$5"


def test_escaped_reference_is_not_substituted_again_on_revalidation() -> None:
    data = {"recall_authority": {"tiers": ["a"], "rules_inline": "$${X}"}}
    config = load_config(data, env={"X": "bad"})
    again = AstrocyteConfig.model_validate(config.model_dump())
    assert again.recall_authority.rules_inline == "${X}"
    assert again == config


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("${UNCLOSED", "unterminated or nested"),
        ("${A:-${B}}", "unterminated or nested"),
        ("${1ABC}", "is not a valid environment reference"),
        ("${}", "is not a valid environment reference"),
        ("${A-default}", "is not a valid environment reference"),
    ],
)
def test_malformed_references(text: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config({"storage": {"path": text}}, env={"A": "1", "B": "2"})
    assert caught.value.key == "storage.path"
    assert fragment in str(caught.value)


def test_substituted_strings_are_converted_to_the_schema_type() -> None:
    data = {"gateway": {"port": "${PORT}"}, "banks": {"auto_create": "${AUTO:-false}"}}
    config = load_config(data, env={"PORT": "9000"})
    assert config.gateway.port == 9000
    assert config.banks.auto_create is False


def test_keys_and_non_strings_are_untouched() -> None:
    assert substitute({"${K}": 3, "n": None, "b": True}, {"K": "x"}) == {
        "${K}": 3,
        "n": None,
        "b": True,
    }


def test_callers_mapping_is_not_modified() -> None:
    data = {"storage": {"path": "${P}"}}
    load_config(data, env={"P": "/tmp/x.db"})
    assert data == {"storage": {"path": "${P}"}}


def test_process_environment_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASTRO_TEST_DB", "/tmp/env.db")
    assert load_config({"storage": {"path": "${ASTRO_TEST_DB}"}}).storage.path == "/tmp/env.db"


def test_substitution_in_a_file(tmp_path: Path) -> None:
    path = tmp_path / "astrocyte.yaml"
    path.write_text("profile: ${PROFILE:-research}\nstorage:\n  path: ${DB}\n", encoding="utf-8")
    config = load_config(path, env={"DB": "/tmp/f.db"})
    assert config.profile == "research"
    assert config.storage.path == "/tmp/f.db"
    assert config.chunking.strategy == "fixed"  # the profile chosen through the variable
