"""JWT bearer-token authentication: ``jwt_hs256`` and ``jwt_oidc``.

``Authorization: Bearer <token>`` is verified and its claims become the caller's
:class:`~astrocyte.identity.context.AstrocyteContext`:

==================  =====================================================================
check               rule
==================  =====================================================================
algorithm           ``jwt_hs256``: HS256 only. ``jwt_oidc``: only ``gateway.auth.algorithms``
                    (RS*/ES*/PS*); HS* is refused there, so a token MAC'ed with the public
                    key as "secret" can never pass (key confusion). ``none`` never passes.
                    Tokens with a ``crit`` header are refused (no extension is understood).
signature           HS256 with ``secret``; OIDC with the JWKS key named by ``kid``
                    (see :mod:`astrocyte_gateway.auth.jwks`).
``exp``             required; checked with ``leeway_seconds``.
``nbf`` / ``iat``   when present: not in the future beyond ``leeway_seconds``.
``iss``             required and equal to ``issuer`` when one is configured.
``aud``             required and containing ``audience`` when one is configured.
==================  =====================================================================

Identity (see :mod:`astrocyte_gateway.auth.claims`): the principal comes from
``principal_claim`` (``type:id`` as is, a bare value becomes ``user:<value>``),
delegation from ``on_behalf_of_claim`` (absent: none), the tenant from
``tenant_claim`` (required in the token when configured). The verified claims travel
as ``ActorIdentity.claims`` for audit. ``is_admin`` needs the principal in
``gateway.admin_principals`` and, for a delegated call, the on-behalf-of principal
too: delegation never grants more than both parties hold.

Failures: a bad or missing token is :class:`AuthError` 401 ``unauthenticated``, with a
message that says what to fix (expired, wrong audience, ...) but never contains the
token, a claim value or key material. When the identity provider's keys cannot be
fetched, the token cannot be judged: 503 ``auth_unavailable`` (retry later; the token
may well be good).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import jwt
from astrocyte.config import AstrocyteConfig
from astrocyte.errors import ConfigError
from astrocyte.identity.context import ActorIdentity, AstrocyteContext

from astrocyte_gateway.auth.base import AuthError, AuthMethod, Caller
from astrocyte_gateway.auth.claims import (
    MISSING,
    claim_at,
    identity_from_claim,
    tenant_from_claim,
)
from astrocyte_gateway.auth.jwks import JWKS_TIMEOUT_SECONDS, JwksCache, KeysUnavailable

__all__ = ["MAX_TOKEN_BYTES", "JwtAuthenticator"]

logger = logging.getLogger(__name__)

#: Longer bearer tokens are refused unparsed (real ones are 1-4 KB).
MAX_TOKEN_BYTES = 16 * 1024

_BAD_SIGNATURE = "token signature is invalid"

# PyJWT's exceptions, most specific first, mapped to messages a legitimate caller can act
# on. PyJWT's own messages are not forwarded: some quote header values.
_REASONS: tuple[tuple[type[Exception], str], ...] = (
    (jwt.ExpiredSignatureError, "token has expired"),
    (jwt.ImmatureSignatureError, "token is not yet valid (nbf or iat in the future)"),
    (jwt.InvalidAudienceError, "token audience is not accepted"),
    (jwt.InvalidIssuerError, "token issuer is not accepted"),
    (jwt.InvalidIssuedAtError, "token iat claim is malformed"),
    (jwt.MissingRequiredClaimError, "token lacks a required claim (exp, iss or aud)"),
    (jwt.InvalidSignatureError, _BAD_SIGNATURE),
    (jwt.InvalidAlgorithmError, "token algorithm is not accepted"),
    (jwt.DecodeError, "token is malformed"),
)


def _unavailable() -> AuthError:
    return AuthError(
        "cannot verify tokens right now: the identity provider's signing keys are "
        "unreachable; retry later",
        status=503,
        code="auth_unavailable",
    )


class JwtAuthenticator:
    """Verifies ``Authorization: Bearer`` JWTs (``jwt_hs256`` or ``jwt_oidc``).

    Built from the whole :class:`AstrocyteConfig`; no I/O happens until the first
    token. ``jwks_client`` / ``jwks_timeout`` / ``clock`` tune the OIDC key fetching
    (tests, embedding); see :class:`~astrocyte_gateway.auth.jwks.JwksCache`.
    """

    def __init__(
        self,
        config: AstrocyteConfig,
        *,
        jwks_client: httpx.AsyncClient | None = None,
        jwks_timeout: float = JWKS_TIMEOUT_SECONDS,
        clock: Callable[[], float] | None = None,
    ) -> None:
        auth = config.gateway.auth
        if auth.mode not in ("jwt_hs256", "jwt_oidc"):
            raise ConfigError("gateway.auth.mode", f"{auth.mode!r} is not a JWT mode")
        self._mode: AuthMethod = auth.mode
        self._issuer = auth.issuer
        self._audience = auth.audience
        self._leeway = auth.leeway_seconds
        self._principal_claim = auth.principal_claim
        self._obo_claim = auth.on_behalf_of_claim
        self._tenant_claim = auth.tenant_claim
        self._admins = frozenset(config.gateway.admin_principals)
        self._secret: bytes | None = None
        self._jwks: JwksCache | None = None
        if auth.mode == "jwt_hs256":
            if auth.secret is None:
                raise ConfigError(
                    "gateway.auth.secret",
                    "is required for auth mode 'jwt_hs256'",
                    fix="secret: ${JWT_SECRET} (at least 32 characters)",
                )
            self._secret = auth.secret.encode()
            self._algorithms: frozenset[str] = frozenset({"HS256"})
        else:
            if auth.issuer is None and auth.jwks_url is None:
                raise ConfigError(
                    "gateway.auth.issuer",
                    "is required for auth mode 'jwt_oidc' (or set jwks_url)",
                    fix="the identity provider's issuer URL, e.g. https://login.example.com/",
                )
            # Only asymmetric algorithms are configurable (the schema's JwtAlgorithm),
            # and HS* is filtered again here so no config can reopen key confusion.
            self._algorithms = frozenset(a for a in auth.algorithms if not a.startswith("HS"))
            extra: dict[str, Any] = {} if clock is None else {"clock": clock}
            self._jwks = JwksCache(
                jwks_url=auth.jwks_url,
                issuer=auth.issuer,
                cache_seconds=auth.jwks_cache_seconds,
                timeout=jwks_timeout,
                client=jwks_client,
                **extra,
            )

    @property
    def jwks(self) -> JwksCache | None:
        """The OIDC key cache (``None`` in ``jwt_hs256`` mode)."""
        return self._jwks

    async def authenticate(self, headers: Mapping[str, str]) -> Caller:
        """The caller named by a valid bearer token; :class:`AuthError` otherwise."""
        token = _bearer_token(headers)
        claims = await self._verify(token)
        return self._caller(claims)

    async def close(self) -> None:
        """Close the JWKS HTTP client (OIDC mode)."""
        if self._jwks is not None:
            await self._jwks.close()

    # --- verification -------------------------------------------------------------

    async def _verify(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthError("token is malformed") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self._algorithms:
            # Covers "none", HS* in OIDC mode and RS*/ES* in HS256 mode.
            raise AuthError(
                "token algorithm is not accepted (expected one of "
                f"{', '.join(sorted(self._algorithms))})"
            )
        if "crit" in header:
            raise AuthError("token uses critical header extensions, which are not supported")
        if self._secret is not None:
            return self._decode(token, self._secret, alg)
        assert self._jwks is not None
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise AuthError("token is malformed")
        try:
            keys = await self._jwks.keys_for(kid, alg)
        except KeysUnavailable:
            raise _unavailable() from None
        if not keys:
            raise AuthError("token signing key is unknown (kid not in the provider's JWKS)")
        error: AuthError | None = None
        for key in keys:  # several only for a token without kid
            try:
                return self._decode(token, key.key, alg)
            except AuthError as failed:
                error = failed
                if failed.message != _BAD_SIGNATURE:
                    break  # a claim check failed: another key would not change that
        assert error is not None
        raise error

    def _decode(self, token: str, key: Any, alg: str) -> dict[str, Any]:
        required = ["exp"]
        if self._issuer is not None:
            required.append("iss")
        if self._audience is not None:
            required.append("aud")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={
                    "require": required,
                    # Without a configured audience there is nothing to compare with;
                    # PyJWT would otherwise refuse every token that carries an aud.
                    "verify_aud": self._audience is not None,
                },
            )
        except jwt.PyJWTError as error:
            for kind, reason in _REASONS:
                if isinstance(error, kind):
                    raise AuthError(reason) from None
            logger.debug("token refused by PyJWT: %s", type(error).__name__)
            raise AuthError("token is invalid") from None
        except (ValueError, TypeError):
            # A key that does not match the algorithm's expectations, or a garbled
            # payload that slipped past the decoder: the token cannot be valid.
            raise AuthError("token is invalid") from None
        return claims

    # --- identity -------------------------------------------------------------------

    def _caller(self, claims: dict[str, Any]) -> Caller:
        principal_value = claim_at(claims, self._principal_claim)
        if principal_value is MISSING:
            raise AuthError(f"token has no {self._principal_claim!r} claim (the principal)")
        base = identity_from_claim(principal_value, self._principal_claim)
        actor = ActorIdentity(type=base.type, id=base.id, claims=claims)
        on_behalf_of: ActorIdentity | None = None
        if self._obo_claim is not None:
            obo_value = claim_at(claims, self._obo_claim)
            if obo_value is not MISSING and obo_value is not None:
                on_behalf_of = identity_from_claim(obo_value, self._obo_claim)
        tenant: str | None = None
        if self._tenant_claim is not None:
            tenant = tenant_from_claim(claim_at(claims, self._tenant_claim), self._tenant_claim)
        try:
            context = AstrocyteContext(actor=actor, on_behalf_of=on_behalf_of, tenant=tenant)
        except ValueError:  # pydantic's ValidationError; the parts were checked above
            raise AuthError("token claims do not form a valid identity") from None
        is_admin = actor.principal in self._admins and (
            on_behalf_of is None or on_behalf_of.principal in self._admins
        )
        return Caller(
            context=context, principal=actor.principal, is_admin=is_admin, method=self._mode
        )


def _bearer_token(headers: Mapping[str, str]) -> str:
    value = headers.get("authorization")
    if value is None:
        raise AuthError("missing credentials: send 'Authorization: Bearer <token>'")
    scheme, _, token = value.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise AuthError("malformed Authorization header: expected 'Bearer <token>'")
    if len(token) > MAX_TOKEN_BYTES:
        raise AuthError("token is too long")
    return token
