"""Who is calling: the context every operation runs under.

Issue 4 extends this with structured actor / on-behalf-of identities and grants; the
core already threads a context through every call so enforcement has one place to live.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class AstrocyteContext(BaseModel):
    """The caller of an operation, e.g. ``AstrocyteContext(principal="user:123")``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    principal: str = Field(min_length=1, max_length=256)
    tenant: str | None = None


#: Context used when a library caller passes none (single-user, local use).
LOCAL_CONTEXT = AstrocyteContext(principal="local")
