"""Gateway authentication: ``build_authenticator(config)`` picks the configured mode.

==============  =======================================  ===========================
mode            module                                   what it checks
==============  =======================================  ===========================
``api_key``     :mod:`astrocyte_gateway.auth.api_key`    hashed keys → principals
``jwt_hs256``   :mod:`astrocyte_gateway.auth.jwt`        HMAC-signed JWTs
``jwt_oidc``    :mod:`astrocyte_gateway.auth.jwt`        RS/ES/PS JWTs via JWKS
``none``        :mod:`astrocyte_gateway.auth.api_key`    nothing (library mode only)
==============  =======================================  ===========================
"""

from __future__ import annotations

from astrocyte.config import AstrocyteConfig

from astrocyte_gateway.auth.base import Authenticator, AuthError, AuthMethod, Caller

__all__ = ["AuthError", "AuthMethod", "Authenticator", "Caller", "build_authenticator"]


def build_authenticator(config: AstrocyteConfig) -> Authenticator:
    """The authenticator for ``config.gateway.auth.mode`` (no I/O happens here)."""
    mode = config.gateway.auth.mode
    if mode in ("jwt_hs256", "jwt_oidc"):
        from astrocyte_gateway.auth.jwt import JwtAuthenticator

        return JwtAuthenticator(config)
    from astrocyte_gateway.auth.api_key import ApiKeyAuthenticator, NoAuthenticator

    if mode == "none":
        return NoAuthenticator(config)
    return ApiKeyAuthenticator(config)
