"""Built-in profiles: named presets and compliance profiles, as plain data.

A **named profile** (``profile: support``) is a partial config laid over the
built-in defaults; the user's file is laid over it, so any of its values can be
changed. A **compliance profile** (``compliance: hipaa``) is laid over the named
profile and additionally *locks* some paths: the final config must keep a value at
least as strict as the one the profile sets, or loading fails.

Locks are dotted paths (``*`` for every key or item) with a rule (allowed values, or
a numeric bound), not code that knows about particular sections, so the enforcement
in :func:`astrocyte.config.crossref.check_locks` works for any field, including ones
added to the schema later.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

MISSING: Any = object()
"""Marker for a locked path that does not resolve in the final config."""


@dataclass(frozen=True, slots=True)
class Lock:
    """One locked path of a compliance profile.

    Exactly one rule applies: ``allowed`` (the value must be one of these) or a
    numeric bound (``at_least`` / ``at_most``; ``None`` as a value means "no limit"
    and therefore violates either bound).
    """

    path: str
    reason: str
    allowed: tuple[Any, ...] | None = None
    at_least: float | None = None
    at_most: float | None = None

    def violated_by(self, value: Any) -> bool:
        """Whether ``value`` (the final config's value at :attr:`path`) loosens the lock."""
        if value is MISSING:
            return True
        if self.allowed is not None:
            return value not in self.allowed
        if isinstance(value, bool) or not isinstance(value, int | float):
            return True  # None ("unlimited") or a non-number is looser than any bound
        if self.at_least is not None and value < self.at_least:
            return True
        return self.at_most is not None and value > self.at_most

    def requirement(self) -> str:
        """Human description of what the lock demands, for error messages and docs."""
        if self.allowed is not None:
            shown = [yaml_repr(v) for v in self.allowed]
            if len(shown) == 1:
                return f"must be {shown[0]}"
            return "must be one of " + ", ".join(shown)
        parts = []
        if self.at_least is not None:
            parts.append(f">= {self.at_least:g}")
        if self.at_most is not None:
            parts.append(f"<= {self.at_most:g}")
        return "must be " + " and ".join(parts)


def yaml_repr(value: Any) -> str:
    # Spell values as they are written in astrocyte.yaml, not as Python reprs.
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


@dataclass(frozen=True, slots=True)
class Profile:
    """A named or compliance profile: a partial config plus (compliance only) locks."""

    name: str
    description: str
    values: Mapping[str, Any]
    locks: tuple[Lock, ...] = field(default_factory=tuple)


# Named profiles differ in how content is cut, how much recall returns and whether
# contact details are redacted. They are starting points, not tuned results, so the
# user file may change anything they set.
NAMED_PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(
            name="personal",
            description="A personal assistant: short conversational memories, small "
            "recall budgets, recent events weigh more.",
            values={
                "chunking": {"strategy": "sentence", "max_chars": 600},
                "recall": {
                    "weights": {"temporal": 0.75},
                    "default_max_results": 8,
                    "default_max_tokens": 1500,
                },
            },
        ),
        Profile(
            name="support",
            description="Customer support: tickets and replies chunked by paragraph, "
            "exact terms (ids, product names) weigh more, customers' contact details "
            "redacted.",
            values={
                "chunking": {"strategy": "paragraph", "max_chars": 1500},
                "policy": {"pii": {"action": "redact"}},
                "recall": {
                    "weights": {"keyword": 1.5},
                    "default_max_results": 10,
                    "default_max_tokens": 3000,
                },
            },
        ),
        Profile(
            name="research",
            description="Long documents: overlapping fixed-size chunks, more candidates, "
            "two graph hops, large recall budgets.",
            values={
                "chunking": {"strategy": "fixed", "max_chars": 2000, "overlap": 200},
                "recall": {
                    "weights": {"graph": 0.75},
                    "candidates_per_strategy": 100,
                    "graph_depth": 2,
                    "default_max_results": 20,
                    "default_max_tokens": 8000,
                },
            },
        ),
        Profile(
            name="edge",
            description="Small machines: semantic and keyword recall only, fewer "
            "candidates, smaller inputs.",
            values={
                "recall": {
                    "strategies": ["semantic", "keyword"],
                    "candidates_per_strategy": 20,
                    "default_max_results": 5,
                    "default_max_tokens": 1000,
                },
                "limits": {"max_content_bytes": 1024 * 1024, "max_batch_items": 1000},
            },
        ),
    )
}

_AUTHENTICATED = ("api_key", "jwt_hs256", "jwt_oidc")
_PROTECTIVE = ("redact", "reject")


def _pii_locks(regulation: str, reason: str) -> tuple[Lock, ...]:
    # Every way the PII barrier can be relaxed: the global action, a per-detector
    # override, and both of those inside per-bank rules (a bank rule's action may be
    # null, meaning "inherit", which cannot loosen anything).
    why = f"{regulation}: {reason}"
    return (
        Lock("policy.pii.action", why, allowed=_PROTECTIVE),
        Lock("policy.pii.detectors.*", why, allowed=_PROTECTIVE),
        Lock("policy.pii.banks.*.action", why, allowed=(*_PROTECTIVE, None)),
        Lock("policy.pii.banks.*.detectors.*", why, allowed=_PROTECTIVE),
        Lock(
            "policy.pii.scan_metadata",
            f"{regulation}: personal data in metadata, tags and source ids is personal data too",
            allowed=(True,),
        ),
    )


COMPLIANCE_PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(
            name="gdpr",
            description="GDPR: personal data redacted before storage (metadata included), "
            "an audit trail, no anonymous gateway access.",
            values={
                "policy": {
                    "pii": {"action": "redact", "scan_metadata": True},
                    "audit": {"enabled": True},
                },
            },
            locks=(
                *_pii_locks(
                    "GDPR",
                    "data minimisation (art. 5(1)(c)) — store no more personal data than needed",
                ),
                Lock(
                    "policy.audit.enabled",
                    "GDPR art. 30/32: processing must be demonstrable",
                    allowed=(True,),
                ),
                Lock(
                    "gateway.auth.mode",
                    "GDPR art. 32 requires access control on personal data",
                    allowed=_AUTHENTICATED,
                ),
            ),
        ),
        Profile(
            name="hipaa",
            description="HIPAA: identifiers (US SSNs included) redacted before storage, "
            "an audit trail, every gateway caller authenticated.",
            values={
                "policy": {
                    "pii": {
                        "action": "redact",
                        "detectors": {"us_ssn": "redact"},
                        "scan_metadata": True,
                    },
                    "audit": {"enabled": True},
                },
            },
            locks=(
                *_pii_locks("HIPAA", "identifiers are PHI and must not be stored in clear"),
                Lock(
                    "policy.audit.enabled",
                    "HIPAA §164.312(b) requires audit controls",
                    allowed=(True,),
                ),
                Lock(
                    "gateway.auth.mode",
                    "HIPAA §164.312(d) requires authenticating every caller",
                    allowed=_AUTHENTICATED,
                ),
            ),
        ),
    )
}


def resolve_paths(root: Any, path: str) -> list[tuple[tuple[str | int, ...], Any]]:
    """Every ``(concrete path, value)`` that dotted ``path`` names in a config object.

    Segments are attribute names or mapping keys; ``*`` stands for every key of a
    mapping or every item of a list (and yields nothing when there are none). A
    concrete segment that does not resolve yields the value :data:`MISSING`.
    """
    found: list[tuple[tuple[str | int, ...], Any]] = [((), root)]
    for part in path.split("."):
        step: list[tuple[tuple[str | int, ...], Any]] = []
        for where, current in found:
            if current is MISSING:
                step.append(((*where, part), MISSING))
            elif part == "*":
                step.extend(((*where, k), v) for k, v in _children(current))
            else:
                step.append(((*where, part), _child(current, part)))
        found = step
    return found


def _children(value: Any) -> list[tuple[str | int, Any]]:
    if isinstance(value, Mapping):
        return [(str(k), v) for k, v in value.items()]
    if isinstance(value, list | tuple):
        return list(enumerate(value))
    if isinstance(value, BaseModel):
        return [(name, getattr(value, name)) for name in type(value).model_fields]
    return []


def _child(value: Any, part: str) -> Any:
    if isinstance(value, Mapping):
        return value.get(part, MISSING)
    if isinstance(value, BaseModel) and part in type(value).model_fields:
        return getattr(value, part)
    return MISSING
