"""Profile registry, payload paths, tag rules, aliases and bank templates (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from astrocyte.config.common import ChunkingConfig
from astrocyte.config.ingest_schema import ExtractionProfileConfig
from astrocyte.errors import ValidationError
from astrocyte.pipeline.entities import extract_mentions
from astrocyte.pipeline.profiles import (
    BUILTIN_PROFILES,
    ProfileRegistry,
    apply_tag_rules,
    expand_aliases,
    json_path,
    map_metadata,
    render_bank_template,
)

TOP = ChunkingConfig(max_chars=400)


def test_builtins_and_config_profiles_merge() -> None:
    mine = ExtractionProfileConfig(chunking=ChunkingConfig(max_chars=90), tags=["a"])
    override = ExtractionProfileConfig(entity_extraction="none")
    registry = ProfileRegistry({"mine": mine, "builtin_text": override}, TOP)
    assert set(BUILTIN_PROFILES) | {"mine"} == set(registry.names())
    assert registry.get("mine").chunking.max_chars == 90
    # A profile without chunking uses the top-level section.
    assert registry.get("builtin_email").chunking is TOP
    # A config profile of a built-in's name replaces it.
    assert registry.for_item(None, "text").config.entity_extraction == "none"
    assert registry.for_item(None, "transcript").name == "builtin_conversation"
    assert registry.for_item("mine", "event").name == "mine"
    with pytest.raises(ValidationError) as info:
        registry.get("nope", "items[2].profile")
    assert info.value.field == "items[2].profile"


def test_json_path_steps() -> None:
    payload = {"a": {"b": [1, {"c": "x"}]}, "odd key": 5}
    assert json_path(payload, "$.a.b[0]") == [1]
    assert json_path(payload, "$.a.b[*]") == [1, {"c": "x"}]
    assert json_path(payload, "$['odd key']") == [5]
    assert json_path(payload, "$.a.missing.deeper") == []
    assert json_path(payload, "$.a.b[9]") == []
    with pytest.raises(ValueError):
        json_path(payload, "a.b")


def test_map_metadata_flattens_to_scalars() -> None:
    payload = {"u": {"id": 7, "tags": ["x", "y"], "obj": {"k": 1}}}
    out = map_metadata({"id": "$.u.id", "t": "$.u.tags[*]", "o": "$.u.obj", "m": "$.nope"}, payload)
    assert out == {"id": 7, "t": "x, y", "o": '{"k": 1}'}


def test_tag_rules_tests() -> None:
    profile = ExtractionProfileConfig.model_validate(
        {
            "tags": ["base"],
            "tag_rules": [
                {"tag": "one", "path": "$.n", "equals": 1},
                {"tag": "flag", "path": "$.flag", "equals": True},
                {"tag": "re", "path": "$.s", "matches": "^ab+c$"},
                {"tag": "sub", "path": "$.s", "contains": "bb"},
                {"tag": "exists", "path": "$.s"},
                {"tag": "empty", "path": "$.e"},
                {"tag": "base", "path": "$.s"},
            ],
        }
    )
    assert apply_tag_rules(profile, {"n": 1, "flag": 1, "s": "abbc", "e": ""}) == [
        "base",
        "one",
        "re",
        "sub",
        "exists",
    ]
    # True is not 1 (JSON semantics).
    assert apply_tag_rules(profile, {"n": True, "flag": True}) == ["base", "flag"]


def test_aliases_link_every_name_of_a_group() -> None:
    profile = ExtractionProfileConfig(aliases={"Tomas Varga": ["E-4417", "Cap"]})
    resolved = ProfileRegistry({"p": profile}, TOP).get("p")
    found = extract_mentions("cap said hi", gazetteers=resolved.gazetteer)
    names = [m.normalized for m in expand_aliases(found, resolved.alias_groups)]
    assert names == ["cap", "tomas varga", "e-4417"]


def test_render_bank_template() -> None:
    when = datetime(2024, 5, 1, tzinfo=UTC)
    assert (
        render_bank_template(
            "support-{metadata.customer_id}-{date}",
            metadata={"customer_id": 4417},
            date=when,
        )
        == "support-4417-2024-05-01"
    )
    assert render_bank_template("t-{payload.a.b}", payload={"a": {"b": "x y/z"}}) == "t-x-y-z"
    assert render_bank_template("user-{principal}", principal="user:ann") == "user-user:ann"
    with pytest.raises(ValidationError) as info:
        render_bank_template("support-{metadata.customer_id}", metadata={})
    assert "customer_id" in str(info.value)
