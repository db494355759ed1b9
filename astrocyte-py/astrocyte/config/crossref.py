"""Checks of the validated config as a whole: references between sections, settings
that only make sense together, and compliance locks.

Field types and ranges are pydantic's job; what lands here needs more than one field
to decide (a source naming an extraction profile, an auth setting that belongs to
another auth mode, a standalone gateway without auth). Every problem names the exact
key path and, where there is one, the fix. All problems are collected and raised
together as :class:`~astrocyte.config.problems.ConfigProblems`.
"""

from __future__ import annotations

import hashlib
import inspect
import re
import string
from collections.abc import Iterable, Mapping, Sequence
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from astrocyte.config.common import ChunkingConfig
from astrocyte.config.problems import ConfigProblems, key_path
from astrocyte.config.profiles import COMPLIANCE_PROFILES, MISSING, resolve_paths, yaml_repr
from astrocyte.config.suggest import hint
from astrocyte.errors import ConfigError

if TYPE_CHECKING:
    from astrocyte.config.ingest_schema import GatewayAuthConfig, SourceConfig
    from astrocyte.config.schema import AstrocyteConfig, ProviderSpec

_BANK_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$")  # as in validation.py
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# $ then .name, ['any name'], [0] or [*] steps.
_JSON_PATH = re.compile(r"^\$(?:\.[A-Za-z_][A-Za-z0-9_-]*|\['[^']+'\]|\[\d+\]|\[\*\])*$")
_TEMPLATE_ROOTS = ("source", "principal", "agent", "user", "tenant", "date", "metadata", "payload")
_NEEDS_SUBKEY = ("metadata", "payload")

# Which auth modes each gateway.auth setting belongs to.
_AUTH_FIELDS: dict[str, tuple[str, ...]] = {
    "api_keys": ("api_key",),
    "api_key_header": ("api_key",),
    "secret": ("jwt_hs256",),
    "issuer": ("jwt_hs256", "jwt_oidc"),
    "audience": ("jwt_hs256", "jwt_oidc"),
    "leeway_seconds": ("jwt_hs256", "jwt_oidc"),
    "principal_claim": ("jwt_hs256", "jwt_oidc"),
    "on_behalf_of_claim": ("jwt_hs256", "jwt_oidc"),
    "tenant_claim": ("jwt_hs256", "jwt_oidc"),
    "jwks_cache_seconds": ("jwt_oidc",),
    "jwks_url": ("jwt_oidc",),
    "algorithms": ("jwt_oidc",),
}
_SERVING_MODES = ("standalone", "plugin")

# Which source types each source setting belongs to (the rest apply to every type).
_SOURCE_FIELDS: dict[str, tuple[str, ...]] = {
    "driver": ("stream", "poll"),
    "options": ("stream", "poll"),
    "path": ("webhook",),
    "secret": ("webhook",),
    "signature_header": ("webhook",),
    "timestamp_header": ("webhook",),
    "tolerance_seconds": ("webhook",),
    "max_body_bytes": ("webhook",),
    "idempotency_header": ("webhook",),
    "allow_private_network": ("proxy",),
    "interval_seconds": ("poll",),
    "url": ("poll", "proxy"),
    "headers": ("poll", "proxy"),
    "timeout_seconds": ("poll", "proxy"),
}


class _Problems:
    def __init__(self) -> None:
        self.items: list[ConfigError] = []

    def add(self, key: str, message: str, fix: str | None = None) -> None:
        self.items.append(ConfigError(key, message, fix=fix))


def check_config(config: AstrocyteConfig) -> None:
    """Raise :class:`ConfigProblems` listing every cross-section problem, if any."""
    problems = _Problems()
    _check_chunking(config.chunking, "chunking", problems)
    _check_recall(config, problems)
    _check_storage_routes(config, problems)
    _check_provider(config.embedder, "embedder", "embedder", problems)
    if config.llm is not None:
        _check_provider(config.llm, "llm", "llm", problems)
    _check_deployment(config, problems)
    _check_sources(config, problems)
    _check_extraction_profiles(config, problems)
    _check_recall_authority(config, problems)
    _check_bank_references(config, problems)
    check_locks(config, problems)
    if problems.items:
        raise ConfigProblems(problems.items)


# --- core sections --------------------------------------------------------------------


def _check_chunking(chunking: ChunkingConfig, key: str, problems: _Problems) -> None:
    if chunking.overlap >= chunking.max_chars:
        problems.add(
            f"{key}.overlap",
            f"{chunking.overlap} must be smaller than max_chars ({chunking.max_chars})",
            fix="lower overlap or raise max_chars",
        )


def _check_recall(config: AstrocyteConfig, problems: _Problems) -> None:
    recall = config.recall
    if not recall.strategies:
        problems.add(
            "recall.strategies",
            "must name at least one strategy",
            fix="e.g. [semantic, keyword, graph, temporal]",
        )
    seen: set[str] = set()
    for i, name in enumerate(recall.strategies):
        if name in seen:
            problems.add(f"recall.strategies[{i}]", f"{name!r} is listed twice")
        seen.add(name)
    if recall.strategies and all(recall.weights.get(s, 1.0) == 0 for s in recall.strategies):
        problems.add(
            "recall.weights",
            "every enabled strategy has weight 0, so fusion would rank nothing",
            fix="give at least one strategy in recall.strategies a positive weight",
        )
    rerank = recall.rerank.provider
    if rerank not in ("none", "passthrough") and not _is_import_path(rerank):
        problems.add(
            "recall.rerank.provider",
            f"unknown reranker {rerank!r}" + hint(rerank, ["none"], listing=False),
            fix="use 'none' or an import path like 'mypkg.rerank:MyReranker'",
        )
    if recall.default_max_results > config.limits.max_results:
        problems.add(
            "recall.default_max_results",
            f"{recall.default_max_results} exceeds limits.max_results "
            f"({config.limits.max_results}), so every recall without max_results would fail",
            fix="lower recall.default_max_results or raise limits.max_results",
        )


def _is_import_path(name: str) -> bool:
    module, sep, attr = name.partition(":")
    return bool(sep and module and attr)


def _builtin_providers(kind: str) -> Mapping[str, Any]:
    # Imported lazily: the provider packages pull in numpy/httpx, which a config
    # that is only being validated or exported should not need to load up front.
    if kind == "embedder":
        from astrocyte.embedders import EMBEDDER_PROVIDERS

        return EMBEDDER_PROVIDERS
    from astrocyte.llm import LLM_PROVIDERS

    return LLM_PROVIDERS


def _check_provider(spec: ProviderSpec, key: str, kind: str, problems: _Problems) -> None:
    builtins = _builtin_providers(kind)
    name = spec.provider
    if name not in builtins:
        if not _is_import_path(name):
            problems.add(
                f"{key}.provider",
                f"unknown provider {name!r}" + hint(name, builtins, listing=False),
                fix=f"use one of {', '.join(builtins)}, or 'package.module:ClassName'",
            )
        return  # a module:Class is imported (and its options checked) when built
    try:
        params = inspect.signature(builtins[name]).parameters
    except (TypeError, ValueError):
        return
    accepted = [
        p.name
        for p in params.values()
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    ]
    options = spec.options()
    for option in options:
        if option not in accepted:
            problems.add(
                f"{key}.{option}",
                f"unknown option for provider {name!r}" + hint(option, accepted, listing=False),
                fix=f"valid options: {', '.join(sorted(accepted))}",
            )
    for param in params.values():
        if (
            param.name in accepted
            and param.default is inspect.Parameter.empty
            and param.name not in options
        ):
            problems.add(f"{key}.{param.name}", f"is required for provider {name!r}")


# --- storage routes -------------------------------------------------------------------


def _check_storage_routes(config: AstrocyteConfig, problems: _Problems) -> None:
    """Each route: a file when it keeps any store embedded, patterns inside
    ``banks.declared``, and at least one pattern no earlier route already serves.

    Provider specs of routes get the checks top-level store providers get, when the
    stores are built (:func:`astrocyte.factory.build_stores`), under the route's key.
    """
    earlier: list[tuple[int, str]] = []
    for i, route in enumerate(config.storage.routes):
        key = f"storage.routes[{i}]"
        uses_backend = any(
            getattr(route, slot) is None
            for slot in ("document_store", "vector_store", "graph_store")
        )
        if route.backend == "embedded" and uses_backend and route.path is None:
            problems.add(
                f"{key}.path",
                "is required: the route keeps stores in the embedded backend (every store "
                "without a provider of its own)",
                fix="set path to the route's own SQLite file (it may be storage.path to share "
                "the top-level file), or backend: memory, or a provider for every store",
            )
        elif route.path is not None and not (route.backend == "embedded" and uses_backend):
            problems.add(
                f"{key}.path",
                "has no effect: the route keeps no store in an embedded file",
                fix="remove it",
            )
        for j, pattern in enumerate(route.banks):
            _check_declared(pattern, f"{key}.banks[{j}]", config, problems)
        shadowing = [
            next((k for k, before in earlier if _covers(before, pattern)), None)
            for pattern in route.banks
        ]
        if all(k is not None for k in shadowing):
            owners = sorted({k for k in shadowing if k is not None})
            names = ", ".join(f"routes[{k}]" for k in owners)
            problems.add(
                f"{key}.banks",
                f"every pattern is already served by an earlier route ({names}), so this "
                "route would never be used (the first matching route wins)",
                fix=f"move it before {names}, or narrow the earlier route's banks",
            )
        earlier += [(i, pattern) for pattern in route.banks]


def _covers(wide: str, narrow: str) -> bool:
    """Whether fnmatch pattern ``wide`` matches every bank ``narrow`` matches. Exact for
    the usual shapes (ids, ``prefix-*``, ``*``); a ``wide`` with ``?`` or ``[...]`` only
    covers an identical pattern."""
    if wide == narrow:
        return True
    # A literal or * of wide can only match narrow's wildcard characters through a *
    # of its own, which then matches whatever they would have matched.
    return not any(c in wide for c in "?[") and fnmatchcase(narrow, wide)


# --- deployment and gateway -----------------------------------------------------------


def _check_deployment(config: AstrocyteConfig, problems: _Problems) -> None:
    deployment = config.deployment
    if deployment.mode == "plugin" and deployment.plugin is None:
        problems.add(
            "deployment.plugin",
            "is required with mode 'plugin'",
            fix="name the API gateway: kong, apisix or azure_apim",
        )
    if deployment.mode != "plugin" and deployment.plugin is not None:
        problems.add(
            "deployment.plugin",
            f"is only used with mode 'plugin' (mode is {deployment.mode!r})",
            fix="remove it, or set deployment.mode: plugin",
        )
    auth = config.gateway.auth
    _check_auth_fields(auth, problems)
    if deployment.mode in _SERVING_MODES:
        _check_serving_auth(auth, deployment.mode, problems)


def _customised(model: BaseModel) -> list[str]:
    """Fields of ``model`` whose value differs from the default.

    Compared by value, not by ``model_fields_set``, so a dumped config (which spells
    out every default) validates again, and ``astrocyte config show`` output can be
    used as a config file.
    """
    fields = type(model).model_fields
    return [
        name
        for name, info in fields.items()
        if getattr(model, name) != info.get_default(call_default_factory=True)
    ]


def _check_auth_fields(auth: GatewayAuthConfig, problems: _Problems) -> None:
    for field in _customised(auth):
        modes = _AUTH_FIELDS.get(field)
        if modes is not None and auth.mode not in modes:
            problems.add(
                f"gateway.auth.{field}",
                f"is only used with auth mode {' or '.join(modes)} (mode is {auth.mode!r})",
                fix=f"remove it, or set gateway.auth.mode: {modes[0]}",
            )
    seen: dict[str, int] = {}
    for i, entry in enumerate(auth.api_keys):
        digest = entry.key_sha256 or hashlib.sha256((entry.key or "").encode()).hexdigest()
        field = "key" if entry.key is not None else "key_sha256"
        if digest in seen:
            problems.add(
                f"gateway.auth.api_keys[{i}].{field}",
                f"is the same key as api_keys[{seen[digest]}]",
                fix="give every principal its own key",
            )
        seen.setdefault(digest, i)


def _check_serving_auth(auth: GatewayAuthConfig, mode: str, problems: _Problems) -> None:
    where = f"with deployment.mode {mode!r}"
    if auth.mode == "none":
        problems.add(
            "gateway.auth.mode",
            f"'none' is not allowed {where}: the gateway would serve every bank to anyone "
            "who can reach it",
            fix="set gateway.auth.mode to api_key, jwt_hs256 or jwt_oidc",
        )
    elif auth.mode == "api_key" and not auth.api_keys:
        problems.add(
            "gateway.auth.api_keys",
            f"auth mode 'api_key' {where} needs at least one key",
            fix="add '- {key: ${MY_KEY}, principal: agent:my-agent}', or choose a JWT mode",
        )
    elif auth.mode == "jwt_hs256" and auth.secret is None:
        problems.add(
            "gateway.auth.secret",
            f"is required for auth mode 'jwt_hs256' {where}",
            fix="secret: ${JWT_SECRET} (at least 32 characters)",
        )
    elif auth.mode == "jwt_oidc":
        if auth.issuer is None:
            problems.add(
                "gateway.auth.issuer",
                f"is required for auth mode 'jwt_oidc' {where}",
                fix="the identity provider's issuer URL, e.g. https://login.example.com/",
            )
        elif not _secure_url(auth.issuer):
            problems.add(
                "gateway.auth.issuer",
                f"{auth.issuer!r} must be an https URL (http only for localhost)",
                fix="use the https issuer URL your identity provider publishes",
            )
        if auth.audience is None:
            problems.add(
                "gateway.auth.audience",
                f"is required for auth mode 'jwt_oidc' {where}: without it a token "
                "issued for any other application would be accepted",
                fix="set it to the audience (client id) your tokens carry",
            )


def _secure_url(url: str) -> bool:
    if url.startswith("https://"):
        return True
    return bool(re.match(r"^http://(localhost|127\.0\.0\.1|\[::1\])(:\d+)?(/|$)", url))


# --- ingestion ------------------------------------------------------------------------


def _check_sources(config: AstrocyteConfig, problems: _Problems) -> None:
    webhook_paths: dict[str, str] = {}
    for name, source in config.sources.items():
        key = f"sources.{name}"
        if not _NAME.match(name):
            problems.add(
                key,
                f"source name {name!r} must be 1-64 letters, digits, _ . -, starting with a "
                "letter or digit",
            )
        profile = source.extraction_profile
        if profile is not None and profile not in config.extraction_profiles:
            defined = list(config.extraction_profiles)
            problems.add(
                f"{key}.extraction_profile",
                f"unknown extraction profile {profile!r}"
                + (hint(profile, defined) if defined else " (none are defined)"),
                fix=f"define extraction_profiles.{profile}, or fix the name",
            )
        _check_source_fields(source, key, problems)
        if source.type == "webhook":
            path = source.path or f"/ingest/{name}"
            if path in webhook_paths:
                problems.add(
                    f"{key}.path",
                    f"{path!r} is already the path of source {webhook_paths[path]!r}",
                    fix="give each webhook source its own path",
                )
            webhook_paths.setdefault(path, name)
        if (
            source.driver is not None
            and ":" in source.driver
            and not _is_import_path(source.driver)
        ):
            problems.add(
                f"{key}.driver",
                f"{source.driver!r} is neither a driver name nor 'package.module:ClassName'",
            )
        if source.target_bank_template is not None:
            _check_template(
                source.target_bank_template, f"{key}.target_bank_template", config, problems
            )


def _check_source_fields(source: SourceConfig, key: str, problems: _Problems) -> None:
    for field in _customised(source):
        types = _SOURCE_FIELDS.get(field)
        if types is not None and source.type not in types:
            problems.add(
                f"{key}.{field}",
                f"is only used by source type {' or '.join(types)} (type is {source.type!r})",
                fix="remove it, or change the source's type",
            )
    if source.type == "stream" and source.driver is None:
        problems.add(
            f"{key}.driver",
            "is required for a stream source",
            fix="name the consumer, e.g. driver: kafka (or redis)",
        )
    if source.type == "poll" and source.driver is None and source.url is None:
        problems.add(
            f"{key}.url",
            "a poll source needs a url or a driver",
            fix="set url: https://... or driver: <name>",
        )
    if source.type == "proxy" and source.url is None:
        problems.add(
            f"{key}.url",
            "is required for a proxy source",
            fix="the upstream OpenAI-compatible base URL, e.g. https://api.openai.com/v1",
        )


def _check_extraction_profiles(config: AstrocyteConfig, problems: _Problems) -> None:
    for name, profile in config.extraction_profiles.items():
        key = f"extraction_profiles.{name}"
        if not _NAME.match(name):
            problems.add(key, f"profile name {name!r} must be 1-64 letters, digits, _ . -")
        for field in ("content_path", "occurred_at_path"):
            value = getattr(profile, field)
            if value is not None:
                _check_json_path(value, f"{key}.{field}", problems)
        for meta_key, path in profile.metadata_mapping.items():
            if not 1 <= len(meta_key) <= 128:
                problems.add(f"{key}.metadata_mapping", "metadata keys must be 1-128 characters")
            _check_json_path(path, f"{key}.metadata_mapping.{meta_key}", problems)
        for i, tag in enumerate(profile.tags):
            if not 1 <= len(tag) <= 128:
                problems.add(f"{key}.tags[{i}]", "tags must be 1-128 characters")
        for i, rule in enumerate(profile.tag_rules):
            rule_key = f"{key}.tag_rules[{i}]"
            _check_json_path(rule.path, f"{rule_key}.path", problems)
            tests = [t for t in ("equals", "matches", "contains") if getattr(rule, t) is not None]
            if len(tests) > 1:
                problems.add(
                    f"{rule_key}.{tests[1]}",
                    f"a tag rule takes one test, got {' and '.join(tests)}",
                    fix="split it into two rules",
                )
            if rule.matches is not None:
                try:
                    re.compile(rule.matches)
                except re.error as exc:
                    problems.add(f"{rule_key}.matches", f"invalid regular expression: {exc}")
        if profile.entity_extraction == "llm" and config.llm is None:
            problems.add(
                f"{key}.entity_extraction",
                "'llm' needs an llm section, and none is configured",
                fix="configure llm: (provider, model, ...) or use entity_extraction: rules",
            )
        if profile.chunking is not None:
            _check_chunking(profile.chunking, f"{key}.chunking", problems)
        if profile.target_bank_template is not None:
            _check_template(
                profile.target_bank_template, f"{key}.target_bank_template", config, problems
            )


def _check_json_path(path: str, key: str, problems: _Problems) -> None:
    if _JSON_PATH.match(path):
        return
    fix = "start at the payload root '$' and step with .name, ['odd name'], [0] or [*]"
    if not path.startswith("$") and _JSON_PATH.match(f"$.{path}"):
        fix = f"write it as $.{path}"
    problems.add(key, f"{path!r} is not a payload path", fix=fix)


def _check_template(template: str, key: str, config: AstrocyteConfig, problems: _Problems) -> None:
    """A bank-name template: known placeholders, yields valid bank ids, and (when
    banks are declared) lands inside a declared pattern."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        problems.add(key, f"{template!r} is not a valid template: {exc}", fix="balance { and }")
        return
    sample, glob = "", ""
    for literal, field, spec, conversion in parts:
        sample += literal
        glob += literal
        if field is None:
            continue
        root = re.split(r"[.\[]", field, maxsplit=1)[0]
        if spec or conversion:
            problems.add(key, f"placeholder {{{field}}} cannot have a format spec or conversion")
        elif root not in _TEMPLATE_ROOTS:
            problems.add(
                key,
                f"unknown placeholder {{{field}}} in {template!r}"
                + hint(root, _TEMPLATE_ROOTS, listing=False),
                fix=f"use {{{'}, {'.join(_TEMPLATE_ROOTS[:6])}}}, {{metadata.<key>}} or "
                "{payload.<key>}",
            )
        elif root in _NEEDS_SUBKEY and field == root:
            problems.add(key, f"{{{root}}} needs a key: {{{root}.<key>}}")
        sample += "x"
        glob += "*"
    if not _BANK_ID.match(sample):
        problems.add(
            key,
            f"{template!r} cannot produce a valid bank id",
            fix="use letters, digits and . _ : @ - around the placeholders, starting with a "
            "letter or digit",
        )
        return
    _check_declared(glob, key, config, problems)


# --- recall authority -----------------------------------------------------------------


def _check_recall_authority(config: AstrocyteConfig, problems: _Problems) -> None:
    authority = config.recall_authority
    key = "recall_authority"
    tiers = authority.tiers
    if not tiers:
        used = [
            field
            for field in (
                "default_tier",
                "tier_by_bank",
                "tier_by_source",
                "rules_inline",
                "rules_path",
            )
            if getattr(authority, field)
        ]
        if authority.apply_to_reflect:
            used.append("apply_to_reflect")
        used += [
            f"extraction_profiles.{name}.authority_tier"
            for name, profile in config.extraction_profiles.items()
            if profile.authority_tier is not None
        ]
        for field in used:
            problems.add(
                field if field.startswith("extraction_profiles.") else f"{key}.{field}",
                "has no effect without tiers",
                fix="list the tiers, most authoritative first, under recall_authority.tiers",
            )
        return

    def check_tier(tier: str, where: str) -> None:
        if tier not in tiers:
            problems.add(
                where,
                f"unknown tier {tier!r}" + hint(tier, tiers),
                fix="use a name from recall_authority.tiers, or add it there",
            )

    if authority.default_tier is not None:
        check_tier(authority.default_tier, f"{key}.default_tier")
    for name, profile in config.extraction_profiles.items():
        if profile.authority_tier is not None:
            check_tier(profile.authority_tier, f"extraction_profiles.{name}.authority_tier")
    for pattern, tier in authority.tier_by_bank.items():
        where = f"{key}.tier_by_bank.{pattern}"
        check_tier(tier, where)
        _check_declared(pattern, where, config, problems)
    for source, tier in authority.tier_by_source.items():
        where = f"{key}.tier_by_source.{source}"
        if source not in config.sources:
            defined = list(config.sources)
            problems.add(
                where,
                f"unknown source {source!r}"
                + (hint(source, defined) if defined else " (no sources are defined)"),
                fix="use a name from the sources section",
            )
        check_tier(tier, where)
    if authority.rules_inline is not None and authority.rules_path is not None:
        problems.add(
            f"{key}.rules_path",
            "rules_inline and rules_path are both set",
            fix="keep one of them",
        )
    if authority.rules_path is not None and not Path(authority.rules_path).expanduser().is_file():
        problems.add(
            f"{key}.rules_path",
            f"{authority.rules_path} does not exist or is not a file",
            fix="fix the path (relative paths are relative to the config file)",
        )


# --- banks named by other sections ----------------------------------------------------


def _overlaps(pattern: str, declared: str) -> bool:
    """Whether two fnmatch patterns (or ids) can name a common bank. A heuristic that is
    exact for the usual shapes: ids, ``prefix-*`` and ``*``."""
    return pattern == declared or fnmatchcase(pattern, declared) or fnmatchcase(declared, pattern)


def _check_declared(bank: str, key: str, config: AstrocyteConfig, problems: _Problems) -> None:
    declared = config.banks.declared
    # Identity patterns may say {id} / {type} (filled per caller): any text can go there.
    glob = re.sub(r"\{[^{}]*\}", "*", bank)
    if declared and not any(_overlaps(glob, d) for d in declared):
        problems.add(
            key,
            f"{bank!r} matches no declared bank pattern (banks.declared: {', '.join(declared)})",
            fix="add a matching pattern to banks.declared, or fix the bank name",
        )


def _bank_lists(config: AstrocyteConfig) -> Iterable[tuple[str, Sequence[str]]]:
    for name, agent in config.agents.items():
        yield f"agents.{name}.allowed_banks", agent.allowed_banks
    for i, grant in enumerate(config.access_grants):
        yield f"access_grants[{i}].banks", grant.banks
    for j, pii_rule in enumerate(config.policy.pii.banks):
        yield f"policy.pii.banks[{j}].banks", pii_rule.banks
    for k, quota_rule in enumerate(config.policy.quotas.banks):
        yield f"policy.quotas.banks[{k}].banks", quota_rule.banks


def _check_bank_references(config: AstrocyteConfig, problems: _Problems) -> None:
    for key, banks in _bank_lists(config):
        for i, bank in enumerate(banks):
            _check_declared(bank, f"{key}[{i}]", config, problems)
    for principal, bank in config.identity.banks.items():
        _check_declared(bank, f"identity.banks.{principal}", config, problems)
    for name, agent in config.agents.items():
        default = agent.default_bank
        if default is None:
            continue
        _check_declared(default, f"agents.{name}.default_bank", config, problems)
        allowed = agent.allowed_banks
        if allowed and not any(fnmatchcase(default, pattern) for pattern in allowed):
            problems.add(
                f"agents.{name}.default_bank",
                f"{default!r} is not in the agent's allowed_banks ({', '.join(allowed)})",
                fix="add it to allowed_banks, or pick an allowed bank",
            )


# --- compliance -----------------------------------------------------------------------


def check_locks(config: AstrocyteConfig, problems: _Problems) -> None:
    """Every lock of the config's compliance profile holds on the final values.

    Runs on the merged, validated config, so it does not matter which layer tried to
    loosen a setting: a profile or the user file.
    """
    if config.compliance is None:
        return
    profile = COMPLIANCE_PROFILES[config.compliance]
    for lock in profile.locks:
        for where, value in resolve_paths(config, lock.path):
            if not lock.violated_by(value):
                continue
            if value is MISSING:
                message = f"is required by compliance {profile.name!r}"
            else:
                shown = value.model_dump() if isinstance(value, BaseModel) else value
                message = f"{yaml_repr(shown)} is not allowed by compliance {profile.name!r}"
            problems.add(
                key_path(where),
                f"{message}: {lock.requirement()} ({lock.reason})",
                fix="remove the override (the compliance profile sets a compliant value) or "
                "make it stricter",
            )
