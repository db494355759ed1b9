"""Config sections for deployment and ingestion: ``deployment``, ``gateway``,
``sources``, ``extraction_profiles``, ``recall_authority``.

The gateway, ingestion and authority layers that consume these arrive in later
releases; the sections are parsed and validated *now* so a config written today is
either accepted with its final meaning or rejected with a precise error, never
silently half-understood. Every default means "not used", so a config without these
sections is exactly the zero config.

Field-level rules live here (types, ranges, formats); rules that relate one field or
section to another (an auth setting that only applies to one mode, a source naming an
extraction profile) live in :mod:`astrocyte.config.crossref`, which can name the exact
key path in its errors.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from astrocyte.config.common import ChunkingConfig, Section

DeploymentMode = Literal["library", "standalone", "plugin"]
GatewayPlugin = Literal["kong", "apisix", "azure_apim"]
AuthMode = Literal["api_key", "jwt_hs256", "jwt_oidc", "none"]
JwtAlgorithm = Literal["RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384"]
SourceType = Literal["webhook", "stream", "poll", "proxy"]
EntityExtraction = Literal["none", "rules", "llm"]

_HTTP_URL = re.compile(r"^https?://[^\s/]+\S*$")
_TIER_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")


def _http_url(value: str | None) -> str | None:
    if value is not None and not _HTTP_URL.match(value):
        raise ValueError(f"must be an http(s) URL, got {value!r}")
    return value


def _default_algorithms() -> list[JwtAlgorithm]:
    return ["RS256"]


class DeploymentConfig(Section):
    """How Astrocyte runs.

    ``library`` (default): imported into your process, no network surface.
    ``standalone``: the HTTP gateway serves the API (``gateway`` section; auth required).
    ``plugin``: the gateway runs behind an API-gateway plugin named by ``plugin``.
    """

    mode: DeploymentMode = Field(default="library", description="library | standalone | plugin")
    plugin: GatewayPlugin | None = Field(
        default=None,
        description="Which API gateway hosts the plugin (kong | apisix | azure_apim); "
        "required with mode: plugin, not allowed otherwise.",
    )


class ApiKeyConfig(Section):
    """One API key the gateway accepts, and the principal it authenticates as."""

    key: str | None = Field(
        default=None,
        min_length=16,
        description="The key itself. Write it as ${ENV_VAR}, never literally in the file; "
        "or give key_sha256 instead.",
    )
    key_sha256: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{64}$",
        description="SHA-256 (hex) of the key, so the config never holds the key itself.",
    )
    principal: str = Field(
        min_length=1, description="Who the key authenticates, e.g. agent:support-bot."
    )
    tenant: str | None = Field(
        default=None, min_length=1, description="Tenant the key's caller is confined to."
    )

    @model_validator(mode="after")
    def _one_key(self) -> ApiKeyConfig:
        if (self.key is None) == (self.key_sha256 is None):
            raise ValueError("give exactly one of key or key_sha256")
        return self


class GatewayAuthConfig(Section):
    """How the gateway authenticates callers.

    Each setting belongs to one or two modes (``api_keys`` and ``api_key_header`` to
    ``api_key``; ``secret`` to ``jwt_hs256``; ``jwks_url`` and ``algorithms`` to
    ``jwt_oidc``; ``issuer``, ``audience``, ``leeway_seconds`` and ``principal_claim``
    to both JWT modes); setting one under another mode is an error, because it almost
    always means the mode is not the one intended.
    """

    mode: AuthMode = Field(
        default="api_key",
        description="api_key | jwt_hs256 | jwt_oidc | none (none: library mode only).",
    )
    api_keys: list[ApiKeyConfig] = Field(
        default_factory=list, description="api_key: accepted keys and their principals."
    )
    api_key_header: str = Field(
        default="X-Api-Key",
        min_length=1,
        description="api_key: request header carrying the key "
        "(Authorization: Bearer is always accepted too).",
    )
    secret: str | None = Field(
        default=None,
        min_length=32,
        description="jwt_hs256: shared HMAC secret (>= 32 characters); use ${ENV_VAR}.",
    )
    issuer: str | None = Field(
        default=None,
        min_length=1,
        description="JWT modes: required 'iss'; for jwt_oidc also the discovery base URL.",
    )
    audience: str | None = Field(
        default=None, min_length=1, description="JWT modes: required 'aud'."
    )
    jwks_url: str | None = Field(
        default=None,
        description="jwt_oidc: signing keys URL; default: discovered from the issuer's "
        "/.well-known/openid-configuration.",
    )
    algorithms: list[JwtAlgorithm] = Field(
        default_factory=_default_algorithms,
        min_length=1,
        description="jwt_oidc: accepted signature algorithms.",
    )
    leeway_seconds: int = Field(
        default=30, ge=0, le=300, description="JWT modes: clock skew tolerated on exp/nbf."
    )
    principal_claim: str = Field(
        default="sub",
        min_length=1,
        description="JWT modes: claim naming the principal (a dotted path for nested claims).",
    )
    on_behalf_of_claim: str | None = Field(
        default="obo",
        min_length=1,
        description="JWT modes: claim naming the principal the caller acts for (absent in "
        "a token: no delegation). For RFC 8693 tokens (sub = user, act.sub = agent) set "
        "principal_claim: act.sub and on_behalf_of_claim: sub; null: never delegate.",
    )
    tenant_claim: str | None = Field(
        default=None, min_length=1, description="JWT modes: claim naming the caller's tenant."
    )
    jwks_cache_seconds: int = Field(
        default=300,
        ge=0,
        le=86_400,
        description="jwt_oidc: how long fetched signing keys are trusted before a refetch "
        "(an unknown kid refetches at once, at most once a minute).",
    )

    @field_validator("jwks_url")
    @classmethod
    def _jwks_url(cls, value: str | None) -> str | None:
        return _http_url(value)


class GatewayConfig(Section):
    """The HTTP gateway (``deployment.mode: standalone`` or ``plugin``)."""

    host: str = Field(default="127.0.0.1", min_length=1, description="Interface to bind.")
    port: int = Field(default=8420, ge=1, le=65_535)
    auth: GatewayAuthConfig = Field(default_factory=GatewayAuthConfig)
    cors_origins: list[str] = Field(
        default_factory=list, description="Browser origins allowed to call the API."
    )
    max_request_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    request_timeout_seconds: float = Field(default=30.0, gt=0, le=3600)
    admin_principals: list[str] = Field(
        default_factory=list,
        description="Principals allowed on /v1/admin/* (source and bank listings).",
    )


class SourceConfig(Section):
    """One ingestion source: where content comes from and how it becomes memories.

    ``type`` decides which settings apply: ``webhook`` (HTTP push to the gateway:
    ``path``, ``secret``, ``signature_header``), ``stream`` (a consumer ``driver`` such
    as ``kafka`` or ``redis``, with ``options``), ``poll`` (a ``driver`` or ``url``
    fetched every ``interval_seconds``), ``proxy`` (an OpenAI-compatible upstream at
    ``url`` whose conversations are retained). Settings of another type are errors.
    """

    type: SourceType = Field(description="webhook | stream | poll | proxy")
    enabled: bool = True
    driver: str | None = Field(
        default=None,
        min_length=1,
        description="stream/poll: ingestion driver (entry-point name or module:Class).",
    )
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="stream/poll: driver options (topic, group, ...), checked by the driver.",
    )
    extraction_profile: str | None = Field(
        default=None, description="Name of an entry in extraction_profiles."
    )
    target_bank_template: str | None = Field(
        default=None,
        min_length=1,
        description="Bank to retain into, e.g. 'support-{metadata.customer_id}'; "
        "overrides the extraction profile's.",
    )
    principal: str | None = Field(
        default=None, min_length=1, description="Identity the source retains as."
    )
    path: str | None = Field(
        default=None, description="webhook: URL path on the gateway (default /ingest/<name>)."
    )
    secret: str | None = Field(
        default=None, min_length=16, description="webhook: HMAC secret for request signatures."
    )
    signature_header: str = Field(
        default="X-Signature-256", min_length=1, description="webhook: signature header."
    )
    timestamp_header: str = Field(
        default="X-Timestamp", min_length=1, description="webhook: signed timestamp header."
    )
    tolerance_seconds: float = Field(
        default=300.0, gt=0, le=86_400, description="webhook: accepted clock skew (replay window)."
    )
    max_body_bytes: int = Field(
        default=1024 * 1024, ge=1, description="webhook: largest accepted request body."
    )
    idempotency_header: str = Field(
        default="Idempotency-Key", min_length=1, description="webhook: redelivery key header."
    )
    interval_seconds: float = Field(default=300.0, ge=1, description="poll: seconds between polls.")
    url: str | None = Field(default=None, description="proxy (required) / poll: upstream URL.")
    headers: dict[str, str] = Field(
        default_factory=dict, description="proxy/poll: extra request headers."
    )
    timeout_seconds: float = Field(default=30.0, gt=0, le=3600, description="proxy/poll.")
    allow_private_network: bool = Field(
        default=False,
        description="proxy: allow link-local, cloud-metadata and unspecified addresses "
        "(blocked by default against SSRF; loopback and private ranges are always allowed).",
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return _http_url(value)

    @field_validator("path")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^/[A-Za-z0-9._~/{}-]*$", value):
            raise ValueError(f"must be a URL path starting with '/', got {value!r}")
        return value


class TagRuleConfig(Section):
    """Adds ``tag`` when the value at ``path`` satisfies the test.

    At most one of ``equals`` / ``matches`` (regular expression, searched) /
    ``contains`` (substring); with none, the rule fires when the path exists and is
    not empty.
    """

    tag: str = Field(min_length=1, max_length=128)
    path: str = Field(description="JSONPath-like path into the payload, e.g. $.ticket.priority.")
    equals: str | int | float | bool | None = None
    matches: str | None = None
    contains: str | None = None


class ExtractionProfileConfig(Section):
    """How a structured payload becomes memories: which text, which metadata,
    which tags, which entities, which bank.

    Paths are JSONPath-like: ``$`` is the payload, then ``.name``, ``['odd name']``,
    ``[0]`` or ``[*]`` steps, e.g. ``$.ticket.customer.id``.
    """

    description: str | None = None
    content_path: str | None = Field(
        default=None, description="Where the text is; default: the whole payload as text."
    )
    occurred_at_path: str | None = Field(
        default=None, description="Timestamp of the event; default: ingestion time."
    )
    chunking: ChunkingConfig | None = Field(
        default=None,
        description="Chunking for this profile; keys left out are taken from the "
        "top-level chunking section.",
    )
    metadata_mapping: dict[str, str] = Field(
        default_factory=dict, description="Metadata key -> path of its value in the payload."
    )
    tags: list[str] = Field(default_factory=list, description="Tags every memory gets.")
    tag_rules: list[TagRuleConfig] = Field(default_factory=list)
    entity_extraction: EntityExtraction = Field(
        default="rules", description="none | rules (capitalised names, @handles) | llm"
    )
    gazetteers: dict[str, list[str]] = Field(
        default_factory=dict,
        description="rules: known names by kind, e.g. {org: [Acme Corp]}; matched "
        "case-insensitively on whole words, even when not capitalised.",
    )
    aliases: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Canonical name -> other names of the same entity (an id, a nickname); "
        "a memory naming any of them is linked to all of them.",
    )
    target_bank_template: str | None = Field(
        default=None, min_length=1, description="Bank to retain into, e.g. 'user-{principal}'."
    )
    authority_tier: str | None = Field(
        default=None,
        description="recall_authority tier of every memory retained with this profile "
        "(overrides tier_by_bank; a source's tier_by_source overrides it).",
    )


class RecallAuthorityConfig(Section):
    """Which memories are more authoritative when recalled hits disagree.

    ``tiers`` lists tier names from most to least authoritative. A memory's tier comes
    from its source (``tier_by_source``), else the first ``tier_by_bank`` pattern that
    matches its bank (in file order), else ``default_tier``. ``rules_inline`` or
    ``rules_path`` (one of them) holds free-text precedence rules given to the LLM.
    An empty ``tiers`` list (the default) turns the feature off.
    """

    tiers: list[str] = Field(
        default_factory=list, description="Tier names, most authoritative first."
    )
    default_tier: str | None = None
    tier_by_bank: dict[str, str] = Field(
        default_factory=dict, description="Bank pattern (fnmatch) -> tier; first match wins."
    )
    tier_by_source: dict[str, str] = Field(
        default_factory=dict, description="Source name (from sources) -> tier."
    )
    rules_inline: str | None = Field(default=None, min_length=1)
    rules_path: str | None = Field(
        default=None,
        min_length=1,
        description="File with the rules; relative paths are relative to the config file.",
    )
    apply_to_reflect: bool = Field(
        default=False, description="Also tell reflect's LLM which evidence outranks which."
    )
    max_context_tokens: int | None = Field(
        default=2_000,
        ge=1,
        le=1_000_000,
        description="Upper bound of the authority context's size (rules, headings and "
        "hits), on top of the call's max_tokens; null: only the call's max_tokens.",
    )

    @field_validator("tiers")
    @classmethod
    def _tier_names(cls, tiers: list[str]) -> list[str]:
        seen: set[str] = set()
        for name in tiers:
            if not _TIER_NAME.match(name):
                raise ValueError(
                    f"tier name {name!r} must be 1-64 letters, digits, _ or -, "
                    "starting with a letter"
                )
            if name in seen:
                raise ValueError(f"tier {name!r} is listed twice")
            seen.add(name)
        return tiers
