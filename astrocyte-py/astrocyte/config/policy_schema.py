"""Config section ``policy``: PII barrier, rate limits, quotas, dedup, audit.

Owned by the policy layer (:mod:`astrocyte.policy`). A stub to be completed; the default
must keep zero-config behaviour (nothing rejected, nothing redacted).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PolicyConfig(_Section):
    """Policies applied on every retain/recall path."""
