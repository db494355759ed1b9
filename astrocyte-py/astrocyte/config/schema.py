"""The configuration schema (``astrocyte.yaml``), as pydantic models.

Every section has defaults, so ``AstrocyteConfig()`` is the zero-config setup: the
embedded SQLite store under ``~/.astrocyte``, the local ONNX embedder, no LLM.
Unknown keys are errors, never silently ignored.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from astrocyte.config.identity_schema import AccessGrant, AgentConfig, IdentityConfig
from astrocyte.config.ingest_schema import DeploymentConfig
from astrocyte.config.policy_schema import PolicyConfig

StrategyName = Literal["semantic", "keyword", "graph", "temporal"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProviderSpec(_Section):
    """A pluggable component: a built-in name, an entry-point name, or ``module:Class``,
    plus keyword options passed to its constructor."""

    model_config = ConfigDict(extra="allow")

    provider: str = Field(min_length=1)

    def options(self) -> dict[str, Any]:
        """Constructor keyword arguments (everything except ``provider``)."""
        return dict(self.model_extra or {})


class StorageConfig(_Section):
    """Where memories live.

    ``backend: embedded`` (default) keeps records, keyword index, vectors and graph in
    one SQLite file at ``path``; ``memory`` keeps everything in process (tests).
    Setting ``vector_store`` / ``document_store`` / ``graph_store`` overrides that
    store with an adapter (entry-point name or ``module:Class``).
    """

    backend: Literal["embedded", "memory"] = "embedded"
    path: str = Field(default="~/.astrocyte/astrocyte.db", min_length=1)
    vector_store: ProviderSpec | None = None
    document_store: ProviderSpec | None = None
    graph_store: ProviderSpec | None = None


class ChunkingConfig(_Section):
    """How retained content is split into memories."""

    strategy: Literal["sentence", "paragraph", "fixed"] = "sentence"
    max_chars: int = Field(default=1000, ge=50, le=20_000)
    overlap: int = Field(default=0, ge=0, le=5_000)


class RerankConfig(_Section):
    """Optional stage after fusion. ``none`` keeps the fused order."""

    provider: str = "none"
    top_n: int = Field(default=50, ge=1, le=1000)


def _default_weights() -> dict[StrategyName, float]:
    return {"semantic": 1.0, "keyword": 1.0, "graph": 0.5, "temporal": 0.5}


def _default_strategies() -> list[StrategyName]:
    return ["semantic", "keyword", "graph", "temporal"]


class RecallConfig(_Section):
    """How recall finds and ranks memories."""

    rrf_k: int = Field(default=60, ge=1, le=10_000)
    weights: dict[StrategyName, float] = Field(default_factory=_default_weights)
    strategies: list[StrategyName] = Field(default_factory=_default_strategies)
    candidates_per_strategy: int = Field(default=50, ge=1, le=2_000)
    graph_depth: int = Field(default=1, ge=0, le=4)
    rerank: RerankConfig = Field(default_factory=RerankConfig)
    default_max_results: int = Field(default=10, ge=1, le=1000)

    @field_validator("weights")
    @classmethod
    def _non_negative(cls, weights: dict[str, float]) -> dict[str, float]:
        for name, weight in weights.items():
            if weight < 0:
                raise ValueError(f"weight of {name!r} must be >= 0")
        return weights


class LimitsConfig(_Section):
    """Input limits that protect the store from absurd requests."""

    max_content_bytes: int = Field(default=5 * 1024 * 1024, ge=1)
    max_query_chars: int = Field(default=8_000, ge=1)
    max_batch_items: int = Field(default=10_000, ge=1)
    max_results: int = Field(default=1_000, ge=1)
    max_tags: int = Field(default=64, ge=0)
    max_metadata_keys: int = Field(default=64, ge=0)


class BanksConfig(_Section):
    """Bank lifecycle."""

    auto_create: bool = Field(
        default=True, description="Create a bank on its first retain instead of failing."
    )


class AstrocyteConfig(_Section):
    """The whole configuration. Every section is optional."""

    storage: StorageConfig = Field(default_factory=StorageConfig)
    embedder: ProviderSpec = Field(default_factory=lambda: ProviderSpec(provider="local"))
    llm: ProviderSpec | None = None
    chunking: ChunkingConfig = Field(default_factory=ChunkingConfig)
    recall: RecallConfig = Field(default_factory=RecallConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    banks: BanksConfig = Field(default_factory=BanksConfig)
    access_grants: list[AccessGrant] = Field(default_factory=list)
    identity: IdentityConfig = Field(default_factory=IdentityConfig)
    agents: dict[str, AgentConfig] = Field(default_factory=dict)
    deployment: DeploymentConfig = Field(default_factory=DeploymentConfig)
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
