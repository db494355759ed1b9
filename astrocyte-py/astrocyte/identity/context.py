"""Who is calling: the context every operation runs under.

``AstrocyteContext(principal="user:123")`` is the simplest form. A structured
:class:`ActorIdentity` (``actor``) can replace the string, ``on_behalf_of`` names the
principal an agent acts for (delegation), and ``tenant`` confines the caller to one
tenant's banks. The facade checks every operation against the context.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from astrocyte.errors import ValidationError
from astrocyte.identity.patterns import (
    ACTOR_ID,
    ACTOR_TYPE,
    PRINCIPAL,
    TENANT,
    Permission,
    split_principal,
)

if TYPE_CHECKING:
    from astrocyte.identity.access import AccessControl


class ActorIdentity(BaseModel):
    """A structured identity: ``ActorIdentity(type="agent", id="support-bot")``.

    ``claims`` carries whatever the authenticating layer knows (e.g. JWT claims) for
    audit and custom resolvers; grants never look at it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str = Field(description="Kind of actor: 'user', 'agent', 'service', ...")
    id: str = Field(description="Id of the actor within its type.")
    claims: dict[str, Any] = Field(default_factory=dict)

    @field_validator("type")
    @classmethod
    def _check_type(cls, value: str) -> str:
        if not ACTOR_TYPE.match(value):
            raise ValueError(
                "must be 1-32 lowercase letters, digits, _ or -, starting with a letter "
                "(e.g. 'user', 'agent')"
            )
        return value

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        if not ACTOR_ID.match(value):
            raise ValueError(
                "must be 1-128 letters, digits or . _ : @ -, starting with a letter or digit"
            )
        return value

    @property
    def principal(self) -> str:
        """The principal string, ``"{type}:{id}"``."""
        return f"{self.type}:{self.id}"

    # Claims are a dict, which pydantic's frozen hash cannot hash: hash type and id
    # only (actors that compare equal still hash equal).
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ActorIdentity):
            return NotImplemented
        return (self.type, self.id, self.claims) == (other.type, other.id, other.claims)

    def __hash__(self) -> int:
        return hash((self.type, self.id))


class AstrocyteContext(BaseModel):
    """The caller of an operation, e.g. ``AstrocyteContext(principal="user:123")``.

    With ``actor`` set, ``principal`` is derived from it (``"{type}:{id}"``); passing
    both with different values is an error. ``on_behalf_of`` makes the call a
    delegation: the caller gets only what *both* principals are granted. ``tenant``
    confines every bank id to that tenant's namespace.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Optional in the signature only so that ``AstrocyteContext(actor=...)`` type-checks;
    # the validators derive it from ``actor`` or reject a context with neither.
    principal: str = Field(default="", max_length=256, description="Who is calling.")
    actor: ActorIdentity | None = None
    on_behalf_of: ActorIdentity | None = None
    tenant: str | None = None

    # The access control of the Astrocyte this context was bound to (Astrocyte.bind);
    # private, so it is neither serialised nor part of equality.
    _access: AccessControl | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _principal_from_actor(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("principal") is not None:
            return data
        actor = data.get("actor")
        if actor is None:
            raise ValueError("pass a principal (e.g. 'user:123') or an actor")
        if isinstance(actor, ActorIdentity):
            return {**data, "principal": actor.principal}
        if isinstance(actor, dict) and isinstance(actor.get("type"), str):
            # Not validated here: the actor field's own validation reports bad parts.
            return {**data, "principal": f"{actor['type']}:{actor.get('id')}"}
        return data

    @field_validator("principal")
    @classmethod
    def _check_principal(cls, value: str) -> str:
        if not PRINCIPAL.match(value):
            raise ValueError(
                "must be 'type:id' or a name of letters, digits and . _ : @ -, starting "
                "with a letter or digit (e.g. 'user:123')"
            )
        return value

    @field_validator("tenant")
    @classmethod
    def _check_tenant(cls, value: str | None) -> str | None:
        if value is not None and not TENANT.match(value):
            raise ValueError(
                "must be 1-64 letters, digits or . _ -, starting with a letter or digit "
                "(no '/' or ':')"
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> AstrocyteContext:
        if self.actor is not None and self.principal != self.actor.principal:
            raise ValueError(
                f"principal {self.principal!r} does not match actor {self.actor.principal!r}; "
                "pass only actor (the principal is derived from it)"
            )
        return self

    @property
    def acting(self) -> ActorIdentity | None:
        """The actor, or one parsed from a ``type:id`` principal; ``None`` for a bare
        principal such as ``local``."""
        if self.actor is not None:
            return self.actor
        kind, ident = split_principal(self.principal)
        return ActorIdentity(type=kind, id=ident) if kind else None

    def effective_permissions(
        self, bank_id: str, access: AccessControl | None = None
    ) -> frozenset[Permission]:
        """What this caller may do on ``bank_id`` (a bank id as the caller names it).

        The actor's grants, intersected with the ``on_behalf_of`` principal's grants
        when set, and limited by the ``agents:`` section. Grants live in config, so
        they come from ``access`` or, when omitted, from the :class:`Astrocyte` this
        context was bound to with ``brain.bind(context)``.
        """
        control = access if access is not None else self._access
        if control is None:
            raise ValidationError(
                "access",
                "this context is not bound to an Astrocyte, so its grants are unknown",
                fix="use brain.bind(context).effective_permissions(bank) "
                "or pass access=brain.access",
            )
        return control.effective_permissions(self, bank_id)

    def bound_to(self, access: AccessControl) -> AstrocyteContext:
        """A copy of this context bound to ``access`` (see :meth:`Astrocyte.bind`)."""
        bound = self.model_copy()
        bound._access = access
        return bound

    # Binding does not change who the caller is; compare the public fields only.
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AstrocyteContext):
            return NotImplemented
        return (self.principal, self.actor, self.on_behalf_of, self.tenant) == (
            other.principal,
            other.actor,
            other.on_behalf_of,
            other.tenant,
        )

    def __hash__(self) -> int:
        return hash((self.principal, self.actor, self.on_behalf_of, self.tenant))


#: Context used when a library caller passes none (single-user, local use).
LOCAL_CONTEXT = AstrocyteContext(principal="local")
