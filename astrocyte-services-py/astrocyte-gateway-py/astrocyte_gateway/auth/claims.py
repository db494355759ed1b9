"""From verified JWT claims to the library's identity types.

Three decisions live here, each documented where it is made:

* **Claim paths** (``principal_claim``, ``on_behalf_of_claim``, ``tenant_claim``) are
  dotted paths into nested claims (``act.sub``). A claim whose *name* contains dots
  (Auth0-style namespaced claims such as ``https://example.com/tenant``) is found by its
  full name first, so both styles work without an escape syntax.
* **Principals**: a claim value that already reads ``type:id`` with a valid actor type
  (``agent:support-bot``, ``user:alice``, ``service:etl``) is taken as is. A bare value
  (``alice``, a UUID, an e-mail address) is a *user*: it becomes ``user:<value>``.
  That is what an OIDC ``sub`` names in the common case, and it keeps a token from
  ever authenticating as a bare library principal such as ``local``. An IdP that
  issues tokens for agents or services puts ``agent:...`` / ``service:...`` in the
  claim (or in a custom claim named by ``principal_claim``). A value that fits neither
  form (e.g. ``auth0|abc``: ``|`` is not allowed in principals) is refused rather than
  rewritten, because rewriting could make two IdP subjects collide on one principal.
* **Tenant**: when ``tenant_claim`` is configured, a token without it is refused;
  otherwise a token lacking the claim would run unconfined, across every tenant.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from astrocyte.identity.context import ActorIdentity
from astrocyte.identity.patterns import ACTOR_ID, TENANT, split_principal

from astrocyte_gateway.auth.base import AuthError

__all__ = ["MISSING", "claim_at", "identity_from_claim", "tenant_from_claim"]

#: Actor type given to a bare claim value (see the module docstring).
BARE_PRINCIPAL_TYPE = "user"


#: Returned by :func:`claim_at` when the path leads nowhere.
MISSING: Any = object()


def claim_at(claims: Mapping[str, Any], path: str) -> Any:
    """The value at dotted ``path`` in ``claims``, or :data:`MISSING`.

    The full path is tried as one claim name first (names may contain dots); then
    the path is split at each dot, longest leading name first, descending into
    nested objects. Arrays are not indexed: no standard identity claim needs it.
    """
    if path in claims:
        return claims[path]
    # Longest head first, so {"a.b": {"c": 1}} wins over {"a": {"b.c": 2}} for "a.b.c"
    # only when both exist; in practice a token has one or the other.
    dot = path.rfind(".")
    while dot > 0:
        head, rest = path[:dot], path[dot + 1 :]
        nested = claims.get(head)
        if rest and isinstance(nested, Mapping):
            found = claim_at(nested, rest)
            if found is not MISSING:
                return found
        dot = path.rfind(".", 0, dot)
    return MISSING


def identity_from_claim(value: Any, claim: str) -> ActorIdentity:
    """The actor named by a claim value (``type:id`` as is, bare value → ``user:``).

    ``claim`` is the configured claim path, used in the error message (never the
    value, which may be personal data).
    """
    if not isinstance(value, str) or not value:
        raise AuthError(f"token claim {claim!r} must be a non-empty string")
    kind, ident = split_principal(value)
    if not kind:
        kind, ident = BARE_PRINCIPAL_TYPE, value
        if not ACTOR_ID.match(ident):
            raise AuthError(
                f"token claim {claim!r} is not a valid principal: use 'type:id' or an id of "
                "letters, digits and . _ : @ - (at most 128 characters)"
            )
    return ActorIdentity(type=kind, id=ident)


def tenant_from_claim(value: Any, claim: str) -> str:
    """The tenant named by a claim value; refuses a missing or malformed one."""
    if value is MISSING or value is None:
        raise AuthError(f"token has no {claim!r} claim (the gateway is tenant-scoped)")
    if not isinstance(value, str) or not TENANT.match(value):
        raise AuthError(
            f"token claim {claim!r} is not a valid tenant: 1-64 letters, digits or . _ -"
        )
    return value
