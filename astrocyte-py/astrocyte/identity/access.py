"""Access control: which permissions a caller has on a bank, and tenant namespacing.

Grants come from the ``access_grants`` config section; ``agents`` further confines
declared agents to their ``allowed_banks``. With no grants configured the library runs
in single-user mode: every caller may do everything (agent limits still apply).

Grants are evaluated on bank ids *as the caller names them*; tenant isolation is not a
grant but a namespace (:func:`storage_bank_id`), so no grant can cross tenants.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from astrocyte.errors import AccessDenied, ConfigError
from astrocyte.identity.patterns import (
    ACTOR_ID,
    ALL_PERMISSIONS,
    NO_PERMISSIONS,
    Permission,
    expand,
    fill,
    matches,
    split_principal,
)

if TYPE_CHECKING:
    from astrocyte.config.identity_schema import AccessGrant, AgentConfig
    from astrocyte.config.schema import AstrocyteConfig
    from astrocyte.identity.context import ActorIdentity, AstrocyteContext

#: Separates tenant and bank in a storage bank id. Neither tenants nor bank ids may
#: contain it, so ``"{tenant}/{bank}"`` is unambiguous and never equals a plain bank id.
TENANT_SEPARATOR = "/"


def storage_bank_id(tenant: str | None, bank_id: str) -> str:
    """The id a store knows a caller's (already validated) ``bank_id`` by."""
    return bank_id if tenant is None else f"{tenant}{TENANT_SEPARATOR}{bank_id}"


def visible_bank_id(tenant: str | None, storage_id: str) -> str | None:
    """The bank id a caller of ``tenant`` knows ``storage_id`` by, or ``None`` when the
    storage bank is outside the caller's namespace (another tenant's, or a tenant's
    bank seen by a tenant-less caller)."""
    if tenant is None:
        return None if TENANT_SEPARATOR in storage_id else storage_id
    prefix = f"{tenant}{TENANT_SEPARATOR}"
    if not storage_id.startswith(prefix):
        return None
    rest = storage_id[len(prefix) :]
    return rest if rest and TENANT_SEPARATOR not in rest else None


@dataclass(frozen=True, slots=True)
class _Grant:
    principals: tuple[str, ...]
    banks: tuple[str, ...]
    permissions: frozenset[Permission]


class AccessControl:
    """Permission checks for one deployment's ``access_grants`` and ``agents``.

    An :class:`~astrocyte.Astrocyte` builds one from its config (``brain.access``);
    build one yourself to ask about permissions outside a facade call.
    """

    def __init__(
        self,
        grants: Sequence[AccessGrant] = (),
        agents: Mapping[str, AgentConfig] | None = None,
    ) -> None:
        self._grants = tuple(
            _Grant(
                tuple(g.principals),
                tuple(g.banks),
                expand(frozenset(Permission(p) for p in g.permissions)),
            )
            for g in grants
        )
        self._agents: dict[str, tuple[str, ...]] = {}
        for name, agent in (agents or {}).items():
            # The config schema keys agents by plain strings; the name becomes the id
            # of principal "agent:{name}", so it must be a valid actor id.
            if not ACTOR_ID.match(name):
                raise ConfigError(
                    f"agents.{name}",
                    "invalid agent name",
                    fix="use 1-128 letters, digits or . _ : @ -, starting with a letter or digit",
                )
            self._agents[name] = tuple(agent.allowed_banks)

    @classmethod
    def from_config(cls, config: AstrocyteConfig) -> AccessControl:
        """Access control for ``config.access_grants`` and ``config.agents``."""
        return cls(config.access_grants, config.agents)

    @property
    def enforced(self) -> bool:
        """Whether grants are configured; without them every caller has every permission
        (single-user library mode) and only agent limits apply."""
        return bool(self._grants)

    def granted(self, principal: str, bank_id: str) -> frozenset[Permission]:
        """Permissions ``principal`` alone has on ``bank_id``: its grants, limited by its
        agent declaration. No delegation and no tenant are involved."""
        kind, ident = split_principal(principal)
        allowed = self._agents.get(ident) if kind == "agent" else None
        if allowed is not None and not any(_bank_matches(p, bank_id, kind, ident) for p in allowed):
            return NO_PERMISSIONS
        if not self._grants:
            return ALL_PERMISSIONS
        found: set[Permission] = set()
        for grant in self._grants:
            if not any(matches(p, principal) for p in grant.principals):
                continue
            if any(_bank_matches(p, bank_id, kind, ident) for p in grant.banks):
                found |= grant.permissions
                if found == ALL_PERMISSIONS:
                    break
        return frozenset(found)

    def effective_permissions(
        self, context: AstrocyteContext, bank_id: str
    ) -> frozenset[Permission]:
        """The caller's permissions on ``bank_id``: the actor's grants, intersected with
        the ``on_behalf_of`` principal's grants when the call is delegated."""
        permissions = self.granted(context.principal, bank_id)
        if context.on_behalf_of is not None and permissions:
            # Delegation can only narrow: an agent acting for a user may do what the
            # agent may do *and* the user may do, never more than either.
            permissions &= self.granted(context.on_behalf_of.principal, bank_id)
        return permissions

    def allows(self, context: AstrocyteContext, bank_id: str, permission: Permission) -> bool:
        """Whether the caller has ``permission`` on ``bank_id``."""
        return permission in self.effective_permissions(context, bank_id)

    def check(self, context: AstrocyteContext, bank_id: str, permission: Permission) -> None:
        """Raise :class:`AccessDenied` unless the caller has ``permission`` on ``bank_id``.

        The decision depends only on the context, the bank id and config, never on
        whether the bank exists, so a denial reveals nothing about other callers' banks.
        """
        if not self.allows(context, bank_id, permission):
            raise denied(context, bank_id, permission)

    def readable(self, context: AstrocyteContext, bank_ids: Iterable[str]) -> list[str]:
        """The ids of ``bank_ids`` the caller may read, in order."""
        return [b for b in bank_ids if self.allows(context, b, Permission.READ)]


def denied(context: AstrocyteContext, bank_id: str, permission: Permission) -> AccessDenied:
    """The :class:`AccessDenied` for a caller lacking ``permission`` on ``bank_id``."""
    return AccessDenied.for_bank(
        context.principal,
        bank_id,
        str(permission),
        on_behalf_of=_principal_of(context.on_behalf_of),
    )


def _principal_of(actor: ActorIdentity | None) -> str | None:
    return None if actor is None else actor.principal


def _bank_matches(pattern: str, bank_id: str, kind: str, ident: str) -> bool:
    filled = fill(pattern, actor_type=kind, actor_id=ident)
    return filled is not None and matches(filled, bank_id)
