"""Config section ``policy``: PII barrier, rate limits, quotas, dedup, audit.

Owned by the policy layer (:mod:`astrocyte.policy`). Every default is "off": with no
``policy`` section nothing is scanned, rejected, redacted, limited or logged, which is
the zero-config behaviour. See ``docs/policy.md`` for examples.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

PIIAction = Literal["allow", "redact", "reject"]
"""What happens to a detected piece of personal data: kept as is, replaced by a typed
placeholder such as ``[EMAIL]`` before anything is chunked, embedded or stored, or the
whole request refused."""

#: Built-in detectors that ``pii.action`` switches on.
DEFAULT_ON_DETECTORS: tuple[str, ...] = ("email", "phone", "credit_card", "iban", "ipv4", "ipv6")
#: Built-in detectors that run only when named in a ``detectors`` map: national ids are
#: country specific and their formats collide with ordinary numbers elsewhere.
OPT_IN_DETECTORS: tuple[str, ...] = ("us_ssn",)
BUILTIN_DETECTORS: tuple[str, ...] = DEFAULT_ON_DETECTORS + OPT_IN_DETECTORS

_DETECTOR_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_BANK_PATTERN = re.compile(r"^[A-Za-z0-9._:@/*-]{1,160}$")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _check_bank_patterns(patterns: list[str]) -> list[str]:
    for pattern in patterns:
        if not _BANK_PATTERN.match(pattern):
            raise ValueError(
                f"invalid bank pattern {pattern[:80]!r}: use bank id characters and * as "
                "a wildcard, e.g. 'user-*'"
            )
    return patterns


class CustomPIIDetector(_Section):
    """A user-supplied detector, e.g. a national id: a named regular expression.

    It behaves like a built-in default-on detector: ``pii.action`` applies to it and
    ``detectors: {<name>: ...}`` overrides that.
    """

    name: str = Field(description="Detector name, lowercase, e.g. 'nl_bsn'.")
    pattern: str = Field(min_length=1, description="Python regular expression.")
    placeholder: str | None = Field(
        default=None, description="Replacement when redacting; default '[<NAME>]'."
    )
    ignore_case: bool = False

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _DETECTOR_NAME.match(value):
            raise ValueError("must be 1-40 lowercase letters, digits or _, starting with a letter")
        if value in BUILTIN_DETECTORS:
            raise ValueError(f"{value!r} is a built-in detector; pick another name")
        return value

    @model_validator(mode="after")
    def _check_pattern(self) -> CustomPIIDetector:
        try:
            compiled = re.compile(self.pattern, re.IGNORECASE if self.ignore_case else 0)
        except re.error as exc:
            raise ValueError(f"pattern is not a valid regular expression: {exc}") from None
        # A pattern matching "" would redact between every character.
        if compiled.fullmatch("") is not None:
            raise ValueError("pattern must not match the empty string")
        return self


class PIIBankRule(_Section):
    """PII settings for banks matching ``banks`` (``*`` wildcards, e.g. ``user-*``);
    layered over the global ones, later rules over earlier ones."""

    banks: list[str] = Field(min_length=1)
    action: PIIAction | None = Field(
        default=None, description="Action of every default-on detector in these banks."
    )
    detectors: dict[str, PIIAction] = Field(default_factory=dict)

    @field_validator("banks")
    @classmethod
    def _check_banks(cls, value: list[str]) -> list[str]:
        return _check_bank_patterns(value)


class PIIConfig(_Section):
    """The PII barrier on retain.

    The action of a detector in a bank is resolved layer by layer — the global
    settings, then each matching bank rule in order — where each layer first sets every
    default-on detector (built-ins except ``us_ssn``, plus custom detectors) to its
    ``action`` (when set) and then applies its ``detectors`` map. Opt-in detectors
    (``us_ssn``) only run when a ``detectors`` map names them.
    """

    action: PIIAction = Field(
        default="allow", description="Action of every default-on detector ('allow' = off)."
    )
    detectors: dict[str, PIIAction] = Field(default_factory=dict)
    custom: list[CustomPIIDetector] = Field(default_factory=list)
    banks: list[PIIBankRule] = Field(default_factory=list)
    scan_metadata: bool = Field(
        default=True,
        description="Also scan metadata string values, tags and the source id.",
    )

    @model_validator(mode="after")
    def _known_detectors(self) -> PIIConfig:
        known = set(BUILTIN_DETECTORS)
        for custom in self.custom:
            if custom.name in known:
                raise ValueError(f"custom detector {custom.name!r} is defined twice")
            known.add(custom.name)
        maps = [("detectors", self.detectors)] + [
            (f"banks[{i}].detectors", rule.detectors) for i, rule in enumerate(self.banks)
        ]
        for where, mapping in maps:
            for name in mapping:
                if name not in known:
                    raise ValueError(
                        f"{where}: unknown detector {name!r} (known: {', '.join(sorted(known))})"
                    )
        return self


class RateSpec(_Section):
    """A token bucket: ``rate`` calls per second sustained, bursts of up to ``burst``."""

    rate: float = Field(gt=0, description="Tokens added per second.")
    burst: int = Field(ge=1, description="Bucket size: calls admitted at once after idling.")


class OperationRateLimits(_Section):
    """Limits of one operation class; each set bucket must admit a call."""

    per_principal: RateSpec | None = None
    per_bank: RateSpec | None = None


class RateLimitConfig(_Section):
    """Token buckets per operation class. One call (``retain_many`` included) costs one
    token of each bucket that applies."""

    retain: OperationRateLimits = Field(default_factory=OperationRateLimits)
    recall: OperationRateLimits = Field(default_factory=OperationRateLimits)
    reflect: OperationRateLimits = Field(default_factory=OperationRateLimits)
    forget: OperationRateLimits = Field(default_factory=OperationRateLimits)


class BankQuotaRule(_Section):
    """``max_memories`` for banks matching ``banks`` (overrides the global value; the
    last matching rule wins; ``null`` lifts the limit)."""

    banks: list[str] = Field(min_length=1)
    max_memories: int | None = Field(ge=1)

    @field_validator("banks")
    @classmethod
    def _check_banks(cls, value: list[str]) -> list[str]:
        return _check_bank_patterns(value)


class QuotaConfig(_Section):
    """Storage quotas, checked before anything of a retain is written."""

    max_memories_per_bank: int | None = Field(default=None, ge=1)
    banks: list[BankQuotaRule] = Field(default_factory=list)
    max_bytes_per_tenant: int | None = Field(
        default=None,
        ge=1,
        description="UTF-8 bytes of memory text retained by a tenant's callers "
        "(cumulative: forgetting does not give bytes back). Callers without a tenant "
        "count as tenant 'default'.",
    )
    tenants: dict[str, int | None] = Field(
        default_factory=dict, description="Per-tenant overrides of max_bytes_per_tenant."
    )
    ledger_path: str | None = Field(
        default=None,
        description="JSON file keeping tenant byte usage across restarts; without it "
        "usage is counted from process start.",
    )

    @field_validator("tenants")
    @classmethod
    def _positive(cls, tenants: dict[str, int | None]) -> dict[str, int | None]:
        for tenant, limit in tenants.items():
            if limit is not None and limit < 1:
                raise ValueError(f"limit of tenant {tenant!r} must be >= 1 or null")
        return tenants


class DedupConfig(_Section):
    """Duplicate suppression on retain. Off by default: identical text retained twice
    (the same 'Yes.' in two sessions) is two memories, each with its own time and
    metadata."""

    exact: bool = Field(
        default=False,
        description="An item whose every chunk's text already exists in the bank is "
        "not stored; its result carries the existing ids and deduplicated=true.",
    )
    near_threshold: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="Also treat a chunk as a duplicate when its nearest stored vector "
        "has cosine similarity >= this (one vector search per chunk).",
    )


class AuditConfig(_Section):
    """Audit trail: one JSON object per line per audited action."""

    enabled: bool = False
    path: str = Field(default="~/.astrocyte/audit.jsonl", min_length=1)


class PolicyConfig(_Section):
    """Policies applied on every retain/recall path. Everything is off by default."""

    pii: PIIConfig = Field(default_factory=PIIConfig)
    rate_limits: RateLimitConfig = Field(default_factory=RateLimitConfig)
    quotas: QuotaConfig = Field(default_factory=QuotaConfig)
    dedup: DedupConfig = Field(default_factory=DedupConfig)
    audit: AuditConfig = Field(default_factory=AuditConfig)
