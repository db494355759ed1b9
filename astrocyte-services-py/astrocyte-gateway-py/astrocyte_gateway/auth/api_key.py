"""API-key authentication (``gateway.auth.mode: api_key``) and the no-auth mode
(``none``, library deployments only).

Keys are never kept in memory as given: each configured ``key`` is hashed with
SHA-256 when the authenticator is built (or ``key_sha256`` is taken as is), and a
presented key is hashed and compared against *every* entry with
:func:`hmac.compare_digest`, so neither an early exit nor the position of the match
tells an attacker anything through timing.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Mapping
from dataclasses import dataclass

import pydantic
from astrocyte.config import AstrocyteConfig
from astrocyte.errors import ConfigError
from astrocyte.identity.context import LOCAL_CONTEXT, AstrocyteContext

from astrocyte_gateway.auth.base import AuthError, Caller

__all__ = ["ApiKeyAuthenticator", "NoAuthenticator"]

logger = logging.getLogger("astrocyte_gateway.auth")


@dataclass(frozen=True, slots=True)
class _Entry:
    digest: bytes
    caller: Caller


def _bearer(value: str | None) -> str | None:
    if value is None:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


class ApiKeyAuthenticator:
    """Authenticates a request by the API key in ``gateway.auth.api_key_header`` or in
    ``Authorization: Bearer <key>``; the key's entry gives the principal and tenant.

    Raises :class:`~astrocyte.errors.ConfigError` at construction for an entry whose
    principal or tenant is not a valid identity, or for two entries with one key.
    """

    def __init__(self, config: AstrocyteConfig) -> None:
        auth = config.gateway.auth
        admins = set(config.gateway.admin_principals)
        self._header = auth.api_key_header.lower()
        entries: list[_Entry] = []
        for i, entry in enumerate(auth.api_keys):
            if entry.key_sha256 is not None:
                digest = bytes.fromhex(entry.key_sha256)
            else:
                assert entry.key is not None  # the schema requires one of the two
                digest = hashlib.sha256(entry.key.encode()).digest()
            if any(hmac.compare_digest(digest, e.digest) for e in entries):
                raise ConfigError(
                    f"gateway.auth.api_keys[{i}]",
                    "has the same key as an earlier entry",
                    fix="give every principal its own key",
                )
            try:
                context = AstrocyteContext(principal=entry.principal, tenant=entry.tenant)
            except pydantic.ValidationError as exc:
                raise ConfigError(
                    f"gateway.auth.api_keys[{i}]",
                    f"principal or tenant is not a valid identity: {exc.errors()[0]['msg']}",
                ) from None
            caller = Caller(
                context=context,
                principal=entry.principal,
                is_admin=entry.principal in admins,
                method="api_key",
            )
            entries.append(_Entry(digest, caller))
        self._entries = tuple(entries)

    async def authenticate(self, headers: Mapping[str, str]) -> Caller:
        """The caller whose key the request presents, or :class:`AuthError` (401)."""
        presented = headers.get(self._header) or _bearer(headers.get("authorization"))
        if not presented:
            raise AuthError(
                "missing API key: send it in the "
                f"{self._header} header or as 'Authorization: Bearer <key>'"
            )
        digest = hashlib.sha256(presented.encode("utf-8", "surrogateescape")).digest()
        found: Caller | None = None
        for entry in self._entries:
            # No break: every entry is compared whatever matched.
            if hmac.compare_digest(digest, entry.digest):
                found = entry.caller
        if found is None:
            raise AuthError("invalid API key")
        return found

    async def close(self) -> None:
        """Nothing to release."""


class NoAuthenticator:
    """Every request is the library's default local caller (principal ``local``).

    Allowed only with ``deployment.mode: library``: the config's cross-checks reject
    ``auth.mode: none`` in serving modes, and this class refuses again in case it is
    built from a config object that skipped them.
    """

    def __init__(self, config: AstrocyteConfig) -> None:
        if config.deployment.mode != "library":
            raise ConfigError(
                "gateway.auth.mode",
                f"'none' is not allowed with deployment.mode {config.deployment.mode!r}",
                fix="set gateway.auth.mode to api_key, jwt_hs256 or jwt_oidc",
            )
        principal = LOCAL_CONTEXT.principal
        self._caller = Caller(
            context=LOCAL_CONTEXT,
            principal=principal,
            is_admin=principal in config.gateway.admin_principals,
            method="none",
        )
        logger.warning(
            "!!! gateway authentication is OFF (gateway.auth.mode: none): every request "
            "acts as principal %r with full access to every bank it may use. Use this "
            "only on a trusted loopback interface, never on a network. !!!",
            principal,
        )

    async def authenticate(self, headers: Mapping[str, str]) -> Caller:
        """The local caller, whatever the headers say."""
        return self._caller

    async def close(self) -> None:
        """Nothing to release."""
