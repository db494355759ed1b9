"""Every config error names the key path to fix and says what is wrong: a table of
input -> (key path, message fragment)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import API_KEY, SECRET, problems_of

from astrocyte.config import ConfigProblems, load_config
from astrocyte.errors import ConfigError

STANDALONE_KEYS = {
    "deployment": {"mode": "standalone"},
    "gateway": {"auth": {"api_keys": [{"key": API_KEY, "principal": "agent:a"}]}},
}


def _src(**source: Any) -> dict[str, Any]:
    return {"sources": {"s": source}}


def _xp(**profile: Any) -> dict[str, Any]:
    return {"extraction_profiles": {"p": profile}}


def _oidc(**auth: Any) -> dict[str, Any]:
    return {"deployment": {"mode": "standalone"}, "gateway": {"auth": {"mode": "jwt_oidc", **auth}}}


def _authority(**section: Any) -> dict[str, Any]:
    return {"recall_authority": section}


DECLARED = {"banks": {"declared": ["user-*", "team-*"]}}

CASES: list[tuple[str, dict[str, Any], str, str]] = [
    # --- unknown keys and did-you-mean ---------------------------------------------
    ("typo key", {"recall": {"rrf_kk": 3}}, "recall.rrf_kk", "unknown key (did you mean 'rrf_k'?)"),
    ("typo section", {"recal": {}}, "recal", "did you mean 'recall'?"),
    ("nested typo", {"gateway": {"auth": {"mdoe": "none"}}}, "gateway.auth.mdoe", "'mode'"),
    (
        "typo in dict entry",
        {"agents": {"bot": {"allowed_bank": ["x"]}}},
        "agents.bot.allowed_bank",
        "did you mean 'allowed_banks'?",
    ),
    (
        "typo in source",
        _src(type="webhook", extraction_profil="x"),
        "sources.s.extraction_profil",
        "did you mean 'extraction_profile'?",
    ),
    ("no close key", {"recall": {"zzzzzz": 1}}, "recall.zzzzzz", "unknown key (valid: "),
    # --- values: enums, types, ranges ------------------------------------------------
    (
        "typo strategy",
        {"recall": {"strategies": ["semantc"]}},
        "recall.strategies[0]",
        "'semantc' is not one of 'semantic', 'keyword', 'graph', 'temporal' "
        "(did you mean 'semantic'?)",
    ),
    (
        "typo weight key",
        {"recall": {"weights": {"semantc": 1}}},
        "recall.weights.semantc",
        "did you mean 'semantic'?",
    ),
    (
        "chunking strategy",
        {"chunking": {"strategy": "sentense"}},
        "chunking.strategy",
        "did you mean 'sentence'?",
    ),
    ("storage backend", {"storage": {"backend": "sqlite"}}, "storage.backend", "'sqlite'"),
    ("deployment mode", {"deployment": {"mode": "cluster"}}, "deployment.mode", "'cluster'"),
    ("source type", _src(type="webhok"), "sources.s.type", "did you mean 'webhook'?"),
    (
        "entity extraction",
        _xp(entity_extraction="llms"),
        "extraction_profiles.p.entity_extraction",
        "did you mean 'llm'?",
    ),
    ("negative weight", {"recall": {"weights": {"graph": -1}}}, "recall.weights", "must be >= 0"),
    ("too small", {"chunking": {"max_chars": 10}}, "chunking.max_chars", "greater than or equal"),
    ("not an int", {"chunking": {"max_chars": "abc"}}, "chunking.max_chars", "(got 'abc')"),
    ("port range", {"gateway": {"port": 70000}}, "gateway.port", "less than or equal to 65535"),
    ("section not a mapping", {"storage": "x"}, "storage", "must be a mapping of settings"),
    ("not a list", {"recall": {"strategies": "semantic"}}, "recall.strategies", "must be a list"),
    ("missing field", _src(), "sources.s.type", "is required"),
    ("version", {"version": 2}, "version", "2 is not one of 1"),
    (
        "bad bank pattern",
        {"banks": {"declared": ["user *"]}},
        "banks.declared",
        "is not a bank pattern",
    ),
    ("tier names", _authority(tiers=["a", "a"]), "recall_authority.tiers", "listed twice"),
    # --- core cross-checks ---------------------------------------------------------
    (
        "overlap",
        {"chunking": {"strategy": "fixed", "max_chars": 100, "overlap": 100}},
        "chunking.overlap",
        "must be smaller than max_chars (100)",
    ),
    ("no strategies", {"recall": {"strategies": []}}, "recall.strategies", "at least one"),
    (
        "strategy twice",
        {"recall": {"strategies": ["semantic", "semantic"]}},
        "recall.strategies[1]",
        "listed twice",
    ),
    (
        "all weights zero",
        {"recall": {"strategies": ["semantic"], "weights": {"semantic": 0}}},
        "recall.weights",
        "weight 0",
    ),
    (
        "rerank typo",
        {"recall": {"rerank": {"provider": "nonee"}}},
        "recall.rerank.provider",
        "did you mean 'none'?",
    ),
    (
        "default above limit",
        {"recall": {"default_max_results": 500}, "limits": {"max_results": 100}},
        "recall.default_max_results",
        "exceeds limits.max_results (100)",
    ),
    ("embedder typo", {"embedder": {"provider": "locall"}}, "embedder.provider", "'local'"),
    (
        "embedder option typo",
        {"embedder": {"provider": "local", "batch_sise": 3}},
        "embedder.batch_sise",
        "did you mean 'batch_size'?",
    ),
    (
        "embedder option required",
        {"embedder": {"provider": "openai"}},
        "embedder.model",
        "is required for provider 'openai'",
    ),
    (
        "llm option typo",
        {"llm": {"provider": "openai", "model": "m", "temprature": 1}},
        "llm.temprature",
        "unknown option for provider 'openai'",
    ),
    ("llm without provider", {"llm": {"model": "m"}}, "llm.provider", "is required"),
    # --- deployment and gateway ------------------------------------------------------
    (
        "standalone without keys",
        {"deployment": {"mode": "standalone"}},
        "gateway.auth.api_keys",
        "auth mode 'api_key' with deployment.mode 'standalone' needs at least one key",
    ),
    (
        "standalone without auth",
        {"deployment": {"mode": "standalone"}, "gateway": {"auth": {"mode": "none"}}},
        "gateway.auth.mode",
        "'none' is not allowed with deployment.mode 'standalone'",
    ),
    (
        "plugin without auth",
        {"deployment": {"mode": "plugin", "plugin": "kong"}, "gateway": {"auth": {"mode": "none"}}},
        "gateway.auth.mode",
        "'none' is not allowed with deployment.mode 'plugin'",
    ),
    (
        "hs256 without secret",
        {"deployment": {"mode": "standalone"}, "gateway": {"auth": {"mode": "jwt_hs256"}}},
        "gateway.auth.secret",
        "is required for auth mode 'jwt_hs256'",
    ),
    ("oidc without issuer", _oidc(audience="a"), "gateway.auth.issuer", "is required"),
    (
        "oidc insecure issuer",
        _oidc(issuer="http://login.example.com", audience="a"),
        "gateway.auth.issuer",
        "must be an https URL",
    ),
    (
        "oidc without audience",
        _oidc(issuer="https://login.example.com"),
        "gateway.auth.audience",
        "is required",
    ),
    (
        "jwks url",
        {"gateway": {"auth": {"jwks_url": "ftp://x"}}},
        "gateway.auth.jwks_url",
        "http(s)",
    ),
    (
        "setting of another mode",
        {"gateway": {"auth": {"mode": "api_key", "secret": SECRET}}},
        "gateway.auth.secret",
        "is only used with auth mode jwt_hs256 (mode is 'api_key')",
    ),
    ("short secret", {"gateway": {"auth": {"secret": "short"}}}, "gateway.auth.secret", "32"),
    (
        "duplicate api keys",
        {
            "gateway": {
                "auth": {
                    "api_keys": [
                        {"key": API_KEY, "principal": "agent:a"},
                        {"key": API_KEY, "principal": "agent:b"},
                    ]
                }
            }
        },
        "gateway.auth.api_keys[1].key",
        "same key as api_keys[0]",
    ),
    (
        "plugin mode needs plugin",
        {**STANDALONE_KEYS, "deployment": {"mode": "plugin"}},
        "deployment.plugin",
        "is required with mode 'plugin'",
    ),
    (
        "plugin outside plugin mode",
        {"deployment": {"plugin": "kong"}},
        "deployment.plugin",
        "only used with mode 'plugin'",
    ),
    # --- sources and extraction profiles --------------------------------------------
    (
        "unknown extraction profile",
        {**_src(type="webhook", extraction_profile="tikets"), **_xp()}
        | {"extraction_profiles": {"tickets": {}}},
        "sources.s.extraction_profile",
        "unknown extraction profile 'tikets' (did you mean 'tickets'?)",
    ),
    (
        "extraction profile, none defined",
        _src(type="webhook", extraction_profile="x"),
        "sources.s.extraction_profile",
        "(none are defined)",
    ),
    ("stream driver", _src(type="stream"), "sources.s.driver", "required for a stream source"),
    ("proxy url", _src(type="proxy"), "sources.s.url", "required for a proxy source"),
    ("proxy bad url", _src(type="proxy", url="ftp://x"), "sources.s.url", "http(s) URL"),
    ("poll target", _src(type="poll"), "sources.s.url", "needs a url or a driver"),
    (
        "field of another type",
        _src(type="webhook", url="https://x.example"),
        "sources.s.url",
        "only used by source type poll or proxy (type is 'webhook')",
    ),
    (
        "webhook path clash",
        {
            "sources": {
                "a": {"type": "webhook", "path": "/in"},
                "b": {"type": "webhook", "path": "/in"},
            }
        },
        "sources.b.path",
        "already the path of source 'a'",
    ),
    ("webhook path", _src(type="webhook", path="in"), "sources.s.path", "starting with '/'"),
    ("source name", {"sources": {"a b": {"type": "webhook"}}}, "sources.a b", "source name"),
    (
        "template placeholder",
        _src(type="webhook", target_bank_template="support-{customer}"),
        "sources.s.target_bank_template",
        "unknown placeholder {customer}",
    ),
    (
        "template subkey",
        _xp(target_bank_template="t-{metadata}"),
        "extraction_profiles.p.target_bank_template",
        "{metadata} needs a key",
    ),
    (
        "template braces",
        _src(type="webhook", target_bank_template="t-{principal"),
        "sources.s.target_bank_template",
        "not a valid template",
    ),
    (
        "template bank id",
        _src(type="webhook", target_bank_template="-{principal}"),
        "sources.s.target_bank_template",
        "cannot produce a valid bank id",
    ),
    (
        "path without $",
        _xp(content_path="ticket.body"),
        "extraction_profiles.p.content_path",
        "$.ticket.body",
    ),
    (
        "bad metadata path",
        _xp(metadata_mapping={"customer": "$.a..b"}),
        "extraction_profiles.p.metadata_mapping.customer",
        "is not a payload path",
    ),
    (
        "two tag tests",
        _xp(tag_rules=[{"tag": "t", "path": "$.a", "equals": "x", "matches": "y"}]),
        "extraction_profiles.p.tag_rules[0].matches",
        "a tag rule takes one test",
    ),
    (
        "bad regex",
        _xp(tag_rules=[{"tag": "t", "path": "$.a", "matches": "("}]),
        "extraction_profiles.p.tag_rules[0].matches",
        "invalid regular expression",
    ),
    (
        "llm extraction without llm",
        _xp(entity_extraction="llm"),
        "extraction_profiles.p.entity_extraction",
        "'llm' needs an llm section",
    ),
    (
        "profile chunking inherits max_chars",
        {"chunking": {"max_chars": 100}} | _xp(chunking={"strategy": "fixed", "overlap": 150}),
        "extraction_profiles.p.chunking.overlap",
        "smaller than max_chars (100)",
    ),
    # --- recall authority ------------------------------------------------------------
    (
        "unknown tier by bank",
        _authority(tiers=["policy", "chat"], tier_by_bank={"team-*": "polcy"}),
        "recall_authority.tier_by_bank.team-*",
        "unknown tier 'polcy' (did you mean 'policy'?)",
    ),
    (
        "unknown default tier",
        _authority(tiers=["policy"], default_tier="chat"),
        "recall_authority.default_tier",
        "unknown tier 'chat'",
    ),
    (
        "tier of unknown source",
        _authority(tiers=["policy"], tier_by_source={"wiki": "policy"}),
        "recall_authority.tier_by_source.wiki",
        "unknown source 'wiki' (no sources are defined)",
    ),
    (
        "mapping without tiers",
        _authority(tier_by_bank={"x": "y"}),
        "recall_authority.tier_by_bank",
        "has no effect without tiers",
    ),
    (
        "both rules",
        _authority(tiers=["a"], rules_inline="a wins", rules_path="/nonexistent/rules.md"),
        "recall_authority.rules_path",
        "rules_inline and rules_path are both set",
    ),
    (
        "rules file",
        _authority(tiers=["a"], rules_path="/nonexistent/rules.md"),
        "recall_authority.rules_path",
        "does not exist",
    ),
    (
        "tier by bank outside declared",
        DECLARED | _authority(tiers=["a"], tier_by_bank={"org-*": "a"}),
        "recall_authority.tier_by_bank.org-*",
        "matches no declared bank pattern",
    ),
    # --- banks named elsewhere -------------------------------------------------------
    (
        "agent bank not declared",
        DECLARED | {"agents": {"bot": {"allowed_banks": ["org-*"]}}},
        "agents.bot.allowed_banks[0]",
        "'org-*' matches no declared bank pattern (banks.declared: user-*, team-*)",
    ),
    (
        "grant bank not declared",
        DECLARED
        | {
            "access_grants": [
                {"principals": ["agent:*"], "banks": ["org-1"], "permissions": ["read"]}
            ]
        },
        "access_grants[0].banks[0]",
        "matches no declared bank pattern",
    ),
    (
        "default bank not declared",
        DECLARED | {"agents": {"bot": {"default_bank": "org-1"}}},
        "agents.bot.default_bank",
        "matches no declared bank pattern",
    ),
    (
        "default bank not allowed",
        {"agents": {"bot": {"default_bank": "team-1", "allowed_banks": ["user-*"]}}},
        "agents.bot.default_bank",
        "not in the agent's allowed_banks",
    ),
    (
        "source template not declared",
        DECLARED | _src(type="webhook", target_bank_template="org-{principal}"),
        "sources.s.target_bank_template",
        "matches no declared bank pattern",
    ),
    (
        "policy bank rule not declared",
        DECLARED | {"policy": {"pii": {"banks": [{"banks": ["org-*"], "action": "redact"}]}}},
        "policy.pii.banks[0].banks[0]",
        "matches no declared bank pattern",
    ),
    # --- layers ----------------------------------------------------------------------
    ("profile typo", {"profile": "reserch"}, "profile", "did you mean 'research'?"),
    ("profile type", {"profile": 3}, "profile", "must be a profile name"),
    ("compliance typo", {"compliance": "hipa"}, "compliance", "did you mean 'hipaa'?"),
    (
        "compliance lock",
        {"compliance": "hipaa", "policy": {"pii": {"action": "allow"}}},
        "policy.pii.action",
        "'allow' is not allowed by compliance 'hipaa': must be one of 'redact', 'reject'",
    ),
    # --- environment -----------------------------------------------------------------
    ("missing env", {"llm": {"api_key": "${NOPE}"}}, "llm.api_key", "NOPE is not set"),
]


@pytest.mark.parametrize(
    ("data", "key", "fragment"),
    [pytest.param(data, key, fragment, id=name) for name, data, key, fragment in CASES],
)
def test_error_names_key_and_problem(data: dict[str, Any], key: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(data, env={})
    error = caught.value
    assert error.key == key, str(error)
    assert fragment in str(error), str(error)
    assert str(error).startswith(f"config {key}: ")


def test_every_problem_is_reported_first_plus_count() -> None:
    problems = problems_of({"recall": {"rrf_kk": 1, "graph_dept": 2}, "chunking": {"x": 1}})
    # In schema order: chunking comes before recall.
    assert [p.key for p in problems.problems] == [
        "chunking.x",
        "recall.rrf_kk",
        "recall.graph_dept",
    ]
    assert problems.key == "chunking.x"
    assert str(problems).startswith("config chunking.x: unknown key (valid: max_chars, ")
    assert "(and 2 more problems)" in str(problems)
    assert "did you mean 'graph_depth'?" in str(problems.problems[2])


def test_one_extra_problem_is_singular() -> None:
    problems = problems_of({"recall": {"rrf_kk": 1, "graph_dept": 2}})
    assert "(and 1 more problem)" in str(problems)
    assert "problems)" not in str(problems)


def test_cross_reference_problems_are_all_collected() -> None:
    problems = problems_of(
        {
            "sources": {"a": {"type": "stream"}, "b": {"type": "proxy"}},
            "recall_authority": {"tiers": ["x"], "default_tier": "y"},
        }
    )
    assert {p.key for p in problems.problems} == {
        "sources.a.driver",
        "sources.b.url",
        "recall_authority.default_tier",
    }


def test_problems_are_config_errors_with_fix() -> None:
    problems = problems_of({"deployment": {"mode": "standalone"}})
    assert isinstance(problems, ConfigError)
    assert isinstance(problems, ConfigProblems)
    assert problems.fix is not None and "key" in problems.fix


def test_non_mapping_sources_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(42)  # type: ignore[arg-type]
    listed = tmp_path / "list.yaml"
    listed.write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="must hold a mapping at the top level"):
        load_config(listed)
