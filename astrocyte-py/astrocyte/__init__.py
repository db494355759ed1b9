"""Astrocyte: a memory layer for AI agents.

from astrocyte import Astrocyte
async with Astrocyte.from_config() as brain:
    await brain.retain("Alice moved to Lisbon in March", "alice")
    result = await brain.recall("where does Alice live?", "alice")
"""

from astrocyte._version import __version__
from astrocyte.brain import Astrocyte
from astrocyte.config import AstrocyteConfig, load_config
from astrocyte.errors import (
    AccessDenied,
    AstrocyteError,
    BankNotFound,
    ConfigError,
    EmbedderError,
    LLMError,
    PayloadTooLarge,
    PIIRejected,
    ProviderError,
    ProviderUnavailable,
    QuotaExceeded,
    RateLimited,
    StoreError,
    ValidationError,
)
from astrocyte.identity.access import AccessControl
from astrocyte.identity.context import ActorIdentity, AstrocyteContext
from astrocyte.identity.patterns import Permission
from astrocyte.identity.resolver import BankResolver
from astrocyte.types import (
    AuthorityContext,
    AuthorityEntry,
    AuthorityTierGroup,
    BankStats,
    Citation,
    ForgetResult,
    MultiBankReport,
    MultiBankStrategy,
    Provenance,
    ProxyReport,
    QueryTimeRange,
    RecallHit,
    RecallResult,
    ReflectResult,
    RetainBatchResult,
    RetainItem,
    RetainResult,
    StrategyTrace,
    TimeRange,
)

__all__ = [
    "AccessControl",
    "AccessDenied",
    "ActorIdentity",
    "Astrocyte",
    "AstrocyteConfig",
    "AstrocyteContext",
    "AstrocyteError",
    "AuthorityContext",
    "AuthorityEntry",
    "AuthorityTierGroup",
    "BankNotFound",
    "BankResolver",
    "BankStats",
    "Citation",
    "ConfigError",
    "EmbedderError",
    "ForgetResult",
    "LLMError",
    "MultiBankReport",
    "MultiBankStrategy",
    "PIIRejected",
    "PayloadTooLarge",
    "Permission",
    "Provenance",
    "ProviderError",
    "ProviderUnavailable",
    "ProxyReport",
    "QueryTimeRange",
    "QuotaExceeded",
    "RateLimited",
    "RecallHit",
    "RecallResult",
    "ReflectResult",
    "RetainBatchResult",
    "RetainItem",
    "RetainResult",
    "StoreError",
    "StrategyTrace",
    "TimeRange",
    "ValidationError",
    "__version__",
    "load_config",
]
