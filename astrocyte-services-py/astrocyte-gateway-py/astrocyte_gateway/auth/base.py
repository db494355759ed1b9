"""What every authenticator returns and raises; the gateway's routes see only this."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

from astrocyte.identity.context import AstrocyteContext

AuthMethod = Literal["api_key", "jwt_hs256", "jwt_oidc", "none"]


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated caller.

    ``context`` goes to every library call (actor, on_behalf_of, tenant); ``principal``
    is the caller's own principal (for logs and rate limits); ``is_admin`` is true when
    the principal is listed in ``gateway.admin_principals``.
    """

    context: AstrocyteContext
    principal: str
    is_admin: bool
    method: AuthMethod


class AuthError(Exception):
    """Authentication failed: 401 (no or bad credentials) or 403 (valid but refused).

    ``message`` is safe to return to the client: it never contains a token, key or
    secret, nor says which of several checks failed beyond what helps a legitimate
    caller fix their request.
    """

    def __init__(self, message: str, *, status: int = 401, code: str = "unauthenticated") -> None:
        self.message = message
        self.status = status
        self.code = code
        super().__init__(message)


class Authenticator(Protocol):
    """Turns request headers (names lower-cased) into a :class:`Caller`."""

    async def authenticate(self, headers: Mapping[str, str]) -> Caller:
        """The caller, or :class:`AuthError`."""
        ...

    async def close(self) -> None:
        """Release HTTP clients (JWKS fetching) and other resources."""
        ...
