"""Config sections for identity and access: ``access_grants``, ``identity``, ``agents``.

Owned by the identity layer (:mod:`astrocyte.identity`); see docs/identity.md. Every
field is optional and the defaults mean "no access control configured": no grants
(single-user mode, everything allowed), the ``convention`` bank resolver, no agents.

Problems are reported at load time with the exact key, e.g.
``access_grants.2.permissions.0`` for an unknown permission name.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from astrocyte.identity.patterns import (
    Permission,
    check_bank_pattern,
    check_principal_pattern,
)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


# Validating each element (rather than the list) puts its index in the error's key.
PrincipalPattern = Annotated[str, AfterValidator(check_principal_pattern)]
BankPattern = Annotated[str, AfterValidator(check_bank_pattern)]

_BUILTIN_RESOLVERS = ("convention", "config")
_IMPORT_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_BANK_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$")


def _check_bank_id(value: str) -> str:
    if not _BANK_ID.match(value):
        raise ValueError(
            f"invalid bank id {value[:80]!r}: use 1-128 letters, digits or . _ : @ -, "
            "starting with a letter or digit"
        )
    return value


BankId = Annotated[str, AfterValidator(_check_bank_id)]


class AccessGrant(_Section):
    """Grants ``permissions`` on banks matching ``banks`` to principals matching
    ``principals``.

    Patterns use ``*`` as a wildcard (``agent:*``, ``user-*``, ``*``). Bank patterns may
    say ``{id}`` / ``{type}``, filled with the id / type of the principal being checked,
    so ``{principals: ["user:*"], banks: ["user-{id}"]}`` gives each user their own bank.
    ``admin`` implies ``read``, ``write`` and ``forget``.
    """

    principals: list[PrincipalPattern] = Field(min_length=1)
    banks: list[BankPattern] = Field(min_length=1)
    permissions: list[Permission] = Field(min_length=1)


class IdentityConfig(_Section):
    """How a caller's identity maps to a bank when a call names none.

    ``resolver`` is ``convention`` (``user:{id}`` -> ``user-{id}``; an agent acting on
    behalf of a user gets the user's bank), ``config`` (the ``banks`` table) or the
    import path ``module:Class`` of a custom resolver, built with ``options``.
    """

    resolver: str = "convention"
    banks: dict[PrincipalPattern, BankPattern] = Field(
        default_factory=dict,
        description="For resolver 'config': principal pattern -> bank id, which may use "
        "{id} / {type}. Exact principals win over patterns; patterns apply in order.",
    )
    options: dict[str, Any] = Field(
        default_factory=dict, description="Keyword arguments for a custom resolver class."
    )

    @field_validator("resolver")
    @classmethod
    def _known_resolver(cls, value: str) -> str:
        if value not in _BUILTIN_RESOLVERS and not _IMPORT_PATH.match(value):
            raise ValueError(
                f"unknown resolver {value!r}: use 'convention', 'config' or an import "
                "path 'package.module:Class'"
            )
        return value


class AgentConfig(_Section):
    """An agent known to this deployment, keyed by name (principal ``agent:{name}``).

    The agent may only touch banks matching ``allowed_banks`` (patterns; default all),
    whatever its grants say. ``default_bank`` is where it works when it acts for itself
    and a call names no bank.
    """

    default_bank: BankId | None = None
    allowed_banks: list[BankPattern] = Field(default_factory=lambda: ["*"])
