"""Config sections used by later layers, parsed and validated now: ``deployment``,
``gateway``, ``sources``, ``extraction_profiles``, ``recall_authority``.

Owned by the config layer. Stubs to be completed.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DeploymentConfig(_Section):
    """How Astrocyte is deployed."""

    mode: str = "library"
