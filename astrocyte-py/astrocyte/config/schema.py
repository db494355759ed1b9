"""The configuration schema (``astrocyte.yaml``), as pydantic models.

Every section has defaults, so ``AstrocyteConfig()`` is the zero-config setup: the
embedded SQLite store under ``~/.astrocyte``, the local ONNX embedder, no LLM, no
access control, library mode. Unknown keys are errors, never silently ignored.

Validating an :class:`AstrocyteConfig` (from a mapping, a file via
:func:`astrocyte.config.load_config`, or keyword arguments) also

1. lays the ``profile`` and ``compliance`` profiles beneath the given values
   (:mod:`astrocyte.config.layering`), and
2. checks the result as a whole: references between sections and compliance locks
   (:mod:`astrocyte.config.crossref`), raising :class:`~astrocyte.errors.ConfigError`.

Section models owned by other layers live in ``identity_schema.py``,
``policy_schema.py`` and ``ingest_schema.py``; this module assembles them.
"""

from __future__ import annotations

import copy
import functools
import re
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import (
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from astrocyte.config.common import ChunkingConfig, ChunkingStrategy, Section
from astrocyte.config.identity_schema import AccessGrant, AgentConfig, IdentityConfig
from astrocyte.config.ingest_schema import (
    DeploymentConfig,
    ExtractionProfileConfig,
    GatewayConfig,
    RecallAuthorityConfig,
    SourceConfig,
)
from astrocyte.config.layering import apply_layers, mapping_defaults
from astrocyte.config.policy_schema import PolicyConfig
from astrocyte.config.profiles import COMPLIANCE_PROFILES, NAMED_PROFILES
from astrocyte.types import MultiBankStrategy

__all__ = [
    "AstrocyteConfig",
    "BanksConfig",
    "ChunkingConfig",
    "ChunkingStrategy",
    "ComplianceName",
    "LimitsConfig",
    "MultiBankConfig",
    "MultiBankStrategy",
    "ProviderSpec",
    "RecallConfig",
    "RerankConfig",
    "StorageConfig",
    "StorageRoute",
    "StrategyName",
]

StrategyName = Literal["semantic", "keyword", "graph", "temporal"]
ComplianceName = Literal["gdpr", "hipaa"]

# Bank patterns: the bank-id alphabet plus fnmatch wildcards.
_BANK_PATTERN = re.compile(r"^[A-Za-z0-9*?\[][A-Za-z0-9._:@*?\[\]!-]{0,127}$")


class ProviderSpec(Section):
    """A pluggable component: a built-in name, an entry-point name, or ``module:Class``,
    plus keyword options passed to its constructor.

    The options are the one place extra keys are allowed, because they belong to the
    provider, not to this schema; for built-in providers they are still checked at
    load time against the constructor (:mod:`astrocyte.config.crossref`).
    """

    model_config = ConfigDict(extra="allow")

    provider: str = Field(min_length=1)

    def options(self) -> dict[str, Any]:
        """Constructor keyword arguments (everything except ``provider``)."""
        return dict(self.model_extra or {})


class StorageConfig(Section):
    """Where memories live.

    ``backend: embedded`` (default) keeps records, keyword index, vectors and graph in
    one SQLite file at ``path``; ``memory`` keeps everything in process (tests).
    Setting ``vector_store`` / ``document_store`` / ``graph_store`` overrides that
    store with an adapter (entry-point name or ``module:Class``).
    """

    backend: Literal["embedded", "memory"] = Field(
        default="embedded", description="embedded (SQLite file) | memory (tests)"
    )
    path: str = Field(
        default="~/.astrocyte/astrocyte.db",
        min_length=1,
        description="Embedded store file; relative paths are relative to the working directory.",
    )
    vector_store: ProviderSpec | None = None
    document_store: ProviderSpec | None = None
    graph_store: ProviderSpec | None = None
    routes: list[StorageRoute] = Field(
        default_factory=list,
        description="Banks kept in other stores than the ones above: the first route whose "
        "banks pattern matches a bank serves it; unmatched banks use the stores above.",
    )


class StorageRoute(Section):
    """Stores for the banks matching ``banks`` (fnmatch patterns on the bank id as
    callers name it, tenant prefix excluded), e.g. a ``canonical-*`` bank in PostgreSQL
    while conversational banks stay in the embedded file.

    The fields mean what they mean in ``storage``; a slot the route leaves out comes
    from the route's own ``backend`` (default ``embedded`` at the route's ``path``). A
    route naming exactly the same store as another route or as the top level (same
    provider and options, or the same embedded path) shares that instance.
    """

    banks: list[str] = Field(
        min_length=1, description="Bank id patterns (fnmatch) this route serves."
    )
    backend: Literal["embedded", "memory"] = Field(
        default="embedded", description="embedded (SQLite file) | memory (tests)"
    )
    path: str | None = Field(
        default=None,
        min_length=1,
        description="Embedded store file of this route; required when the route uses the "
        "embedded backend for any slot.",
    )
    vector_store: ProviderSpec | None = None
    document_store: ProviderSpec | None = None
    graph_store: ProviderSpec | None = None

    @field_validator("banks")
    @classmethod
    def _patterns(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            if not _BANK_PATTERN.match(pattern):
                raise ValueError(
                    f"{pattern!r} is not a bank pattern: use bank-id characters "
                    "(letters, digits, . _ : @ -) and the wildcards * ? [...]"
                )
        return patterns


class RerankConfig(Section):
    """Optional stage after fusion. ``none`` keeps the fused order."""

    provider: str = Field(default="none", description="none | module:Class (a Reranker)")
    top_n: int = Field(default=50, ge=1, le=1000)


def _default_weights() -> dict[StrategyName, float]:
    return {"semantic": 1.0, "keyword": 1.0, "graph": 0.5, "temporal": 0.5}


def _default_strategies() -> list[StrategyName]:
    return ["semantic", "keyword", "graph", "temporal"]


class MultiBankConfig(Section):
    """How a recall over several banks combines them (the call's ``strategy`` and
    ``min_score`` override these).

    ``parallel`` searches every bank at once and fuses them with RRF; ``cascade``
    searches the banks in the order given and stops once ``max_results`` hits scoring at
    least ``min_score`` are found; ``first_match`` returns the hits of the first bank
    (in order) with any hit scoring at least ``min_score``.
    """

    strategy: MultiBankStrategy = Field(
        default="parallel", description="parallel | cascade | first_match"
    )
    min_score: float = Field(
        default=0.0,
        ge=0,
        description="cascade/first_match: a hit counts only at this fused score or above "
        "(RRF scale: rank 1 of one strategy of weight 1 scores 1/(rrf_k+1)).",
    )


class RecallConfig(Section):
    """How recall finds and ranks memories."""

    rrf_k: int = Field(default=60, ge=1, le=10_000, description="RRF damping constant.")
    weights: dict[StrategyName, float] = Field(
        default_factory=_default_weights, description="Per-strategy weight in fusion (>= 0)."
    )
    strategies: list[StrategyName] = Field(
        default_factory=_default_strategies, description="Strategies run on every recall."
    )
    candidates_per_strategy: int = Field(default=50, ge=1, le=2_000)
    graph_depth: int = Field(
        default=1, ge=0, le=4, description="Relation hops the graph strategy follows."
    )
    rerank: RerankConfig = Field(default_factory=RerankConfig)
    default_max_results: int = Field(
        default=10, ge=1, le=1000, description="Hits returned when a call gives no max_results."
    )
    default_max_tokens: int | None = Field(
        default=None,
        ge=1,
        le=10_000_000,
        description="Token budget of the returned text when a call gives no max_tokens; "
        "null: no budget.",
    )
    parse_dates: bool = Field(
        default=True,
        description="Read relative dates in the query ('last week', 'in March') as a time "
        "range for the temporal strategy when the call gives no time_range. A soft signal: "
        "it ranks, never filters.",
    )
    proxy_weight: float = Field(
        default=1.0, ge=0, description="Fusion weight of each federated proxy source's hits."
    )
    external_weight: float = Field(
        default=1.0, ge=0, description="Fusion weight of hits passed as external_context."
    )
    multi_bank: MultiBankConfig = Field(default_factory=lambda: MultiBankConfig())

    @field_validator("weights")
    @classmethod
    def _non_negative(cls, weights: dict[str, float]) -> dict[str, float]:
        for name, weight in weights.items():
            if weight < 0:
                raise ValueError(f"weight of {name!r} must be >= 0")
        return weights


class LimitsConfig(Section):
    """Input limits that protect the store from absurd requests."""

    max_content_bytes: int = Field(
        default=5 * 1024 * 1024, ge=1, description="Per retained item (UTF-8 bytes)."
    )
    max_query_chars: int = Field(default=8_000, ge=1)
    max_batch_items: int = Field(default=10_000, ge=1, description="Per retain_many call.")
    max_results: int = Field(default=1_000, ge=1, description="Upper bound of max_results.")
    max_tags: int = Field(default=64, ge=0)
    max_metadata_keys: int = Field(default=64, ge=0)


class BanksConfig(Section):
    """Bank lifecycle and the banks this deployment expects."""

    auto_create: bool = Field(
        default=True, description="Create a bank on its first retain instead of failing."
    )
    declared: list[str] = Field(
        default_factory=list,
        description="Bank id patterns (fnmatch: user-*, team-?) this deployment uses. "
        "When set, every bank named elsewhere in the config (agents, access grants, "
        "sources, recall authority) must fall inside one of them.",
    )

    @field_validator("declared")
    @classmethod
    def _patterns(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            if not _BANK_PATTERN.match(pattern):
                raise ValueError(
                    f"{pattern!r} is not a bank pattern: use bank-id characters "
                    "(letters, digits, . _ : @ -) and the wildcards * ? [...]"
                )
        return patterns


@functools.cache
def _mapping_defaults() -> dict[str, Any]:
    return mapping_defaults(AstrocyteConfig)


class AstrocyteConfig(Section):
    """The whole configuration. Every section is optional.

    Precedence, lowest first: built-in defaults, the ``profile``, the ``compliance``
    profile, then the values given here. Compliance locks then hold against all of
    them (see docs/configuration.md, "Layering").
    """

    model_config = ConfigDict(
        extra="forbid",
        title="Astrocyte configuration (astrocyte.yaml)",
        json_schema_extra={"$schema": "https://json-schema.org/draft/2020-12/schema"},
    )

    version: Literal[1] = Field(default=1, description="Schema version of this file.")
    profile: str | None = Field(
        default=None,
        description=f"Named profile beneath this file: {', '.join(NAMED_PROFILES)}, or a "
        "path to a YAML file of settings (relative to this file).",
    )
    compliance: ComplianceName | None = Field(
        default=None,
        description=f"Compliance profile ({', '.join(COMPLIANCE_PROFILES)}): sets and "
        "locks settings so nothing else can loosen them.",
    )
    storage: StorageConfig = Field(default_factory=StorageConfig)
    embedder: ProviderSpec = Field(default_factory=lambda: ProviderSpec(provider="local"))
    llm: ProviderSpec | None = Field(
        default=None, description="Chat LLM for reflect (and llm extraction); null: none."
    )
    chunking: ChunkingConfig = Field(default_factory=ChunkingConfig)
    recall: RecallConfig = Field(default_factory=RecallConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    banks: BanksConfig = Field(default_factory=BanksConfig)
    access_grants: list[AccessGrant] = Field(default_factory=list)
    identity: IdentityConfig = Field(default_factory=IdentityConfig)
    agents: dict[str, AgentConfig] = Field(default_factory=dict)
    deployment: DeploymentConfig = Field(default_factory=DeploymentConfig)
    gateway: GatewayConfig = Field(default_factory=GatewayConfig)
    sources: dict[str, SourceConfig] = Field(default_factory=dict)
    extraction_profiles: dict[str, ExtractionProfileConfig] = Field(default_factory=dict)
    recall_authority: RecallAuthorityConfig = Field(default_factory=RecallAuthorityConfig)
    policy: PolicyConfig = Field(default_factory=PolicyConfig)

    @model_validator(mode="before")
    @classmethod
    def _layer(cls, data: Any, info: ValidationInfo) -> Any:
        # A deep copy: the cached defaults must not be shared with the validated model.
        return apply_layers(data, info.context, defaults=copy.deepcopy(_mapping_defaults()))

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> Self:
        # Imported here: crossref reads these models, so a module-level import would
        # be circular.
        from astrocyte.config.crossref import check_config

        self._complete(info.context or {})
        check_config(self)
        return self

    def _complete(self, context: dict[str, Any]) -> None:
        """Fill in values that depend on other sections or on where the file is."""
        # An extraction profile's chunking inherits what it leaves out from the
        # top-level chunking section, not from the built-in defaults.
        # Copies, not in-place edits: a section passed in as a model instance is the
        # caller's object.
        for name, profile in self.extraction_profiles.items():
            if profile.chunking is not None:
                own = profile.chunking.model_dump(exclude_unset=True)
                chunking = ChunkingConfig.model_validate({**self.chunking.model_dump(), **own})
                self.extraction_profiles[name] = profile.model_copy(update={"chunking": chunking})
        # Files a config refers to are found next to it, wherever the process runs.
        rules = self.recall_authority.rules_path
        if rules is not None and context.get("base_dir") is not None:
            path = Path(rules).expanduser()
            if not path.is_absolute():
                self.recall_authority = self.recall_authority.model_copy(
                    update={"rules_path": str(Path(context["base_dir"]) / path)}
                )
