"""Policies applied on every path: PII barrier, rate limits, quotas, dedup, audit.

:class:`PolicyEngine` bundles them for one Astrocyte instance; see ``docs/policy.md``.
"""

from astrocyte.policy.audit import (
    AuditEvent,
    AuditSink,
    JsonlAuditSink,
    MemoryAuditSink,
    NullAuditSink,
)
from astrocyte.policy.engine import PolicyEngine
from astrocyte.policy.pii import Detector, Finding, PIIBarrier, all_detectors, detect
from astrocyte.policy.quota import QuotaGuard
from astrocyte.policy.ratelimit import RateLimiter

__all__ = [
    "AuditEvent",
    "AuditSink",
    "Detector",
    "Finding",
    "JsonlAuditSink",
    "MemoryAuditSink",
    "NullAuditSink",
    "PIIBarrier",
    "PolicyEngine",
    "QuotaGuard",
    "RateLimiter",
    "all_detectors",
    "detect",
]
