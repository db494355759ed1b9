"""Config sections for identity and access: ``access_grants``, ``identity``, ``agents``.

Owned by the identity layer (:mod:`astrocyte.identity`). These are stubs to be
completed: keep them backward compatible (every field optional with a default that
means "no access control configured", i.e. the zero-config behaviour).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AccessGrant(_Section):
    """Grants ``permissions`` on banks matching ``banks`` to principals matching
    ``principals`` (wildcards such as ``agent:*`` and ``user-*``)."""

    principals: list[str] = Field(min_length=1)
    banks: list[str] = Field(min_length=1)
    permissions: list[str] = Field(min_length=1)


class IdentityConfig(_Section):
    """How a caller's identity maps to a bank."""

    resolver: str = "convention"


class AgentConfig(_Section):
    """An agent known to this deployment."""

    default_bank: str | None = None
    allowed_banks: list[str] = Field(default_factory=list)
