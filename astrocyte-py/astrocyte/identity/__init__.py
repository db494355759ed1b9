"""Identity and access: who is calling, what they may do, and which bank they mean.

* :class:`AstrocyteContext` / :class:`ActorIdentity` — the caller (with delegation
  through ``on_behalf_of`` and a ``tenant``);
* :class:`AccessControl` / :class:`Permission` — grants from ``access_grants`` and
  agent limits from ``agents``;
* :class:`BankResolver` and the built-in resolvers — the bank a call means when it
  names none.

See docs/identity.md for a guide.
"""

from astrocyte.identity.access import (
    TENANT_SEPARATOR,
    AccessControl,
    storage_bank_id,
    visible_bank_id,
)
from astrocyte.identity.context import LOCAL_CONTEXT, ActorIdentity, AstrocyteContext
from astrocyte.identity.patterns import ALL_PERMISSIONS, Permission
from astrocyte.identity.resolver import (
    BankResolver,
    ConfigResolver,
    ConventionResolver,
    build_resolver,
)

__all__ = [
    "ALL_PERMISSIONS",
    "LOCAL_CONTEXT",
    "TENANT_SEPARATOR",
    "AccessControl",
    "ActorIdentity",
    "AstrocyteContext",
    "BankResolver",
    "ConfigResolver",
    "ConventionResolver",
    "Permission",
    "build_resolver",
    "storage_bank_id",
    "visible_bank_id",
]
