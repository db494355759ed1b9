"""Mapping of driver and server errors onto Astrocyte's typed errors.

The split that matters to callers: :class:`ProviderUnavailable` means "retry later,
nothing was applied", :class:`ConfigError` means "retrying cannot help, fix the
options", anything else is a :class:`StoreError`.
"""

from __future__ import annotations

from astrocyte.errors import AstrocyteError, ConfigError, ProviderUnavailable, StoreError
from neo4j.exceptions import (
    AuthError,
    ClientError,
    ConfigurationError,
    DriverError,
    Forbidden,
    Neo4jError,
    ServiceUnavailable,
    SessionExpired,
    TransientError,
)

from astrocyte_neo4j._options import Neo4jOptions, redact_uri

__all__ = ["PROVIDER", "is_connection_error", "is_transient", "translate"]

PROVIDER = "neo4j"

_AUTH_CODES = frozenset(
    {
        "Neo.ClientError.Security.Unauthorized",
        "Neo.ClientError.Security.AuthenticationRateLimit",
        "Neo.ClientError.Security.CredentialsExpired",
        "Neo.ClientError.Security.TokenExpired",
    }
)
_NO_DATABASE_CODES = frozenset(
    {
        "Neo.ClientError.Database.DatabaseNotFound",
        "Neo.ClientError.Database.DatabaseUnavailable",
    }
)


def is_connection_error(exc: BaseException) -> bool:
    """The connection failed or broke (refused, reset, pooled connection gone stale)."""
    return isinstance(exc, ServiceUnavailable | SessionExpired | OSError)


def is_transient(exc: BaseException) -> bool:
    """A server-side conflict (deadlock, lock timeout) that succeeds when retried."""
    return isinstance(exc, TransientError) and exc.is_retryable()


def translate(exc: BaseException, options: Neo4jOptions, what: str) -> AstrocyteError:
    """The Astrocyte error for a failure of operation ``what``."""
    where = redact_uri(options.uri)
    code = exc.code if isinstance(exc, Neo4jError) else None
    if isinstance(exc, AuthError) or code in _AUTH_CODES:
        return ConfigError(
            "password",
            f"Neo4j at {where} rejected user {options.user!r}: authentication failed",
            fix="check the user and password options",
        )
    if isinstance(exc, Forbidden):
        return ConfigError(
            "user",
            f"user {options.user!r} may not run {what} on database {options.database!r}",
            fix="grant the user read and write access, or use another user",
        )
    if code in _NO_DATABASE_CODES:
        return ConfigError(
            "database",
            f"database {options.database!r} does not exist or is offline at {where}",
            fix="create it (Enterprise) or set database to the default 'neo4j'",
        )
    if isinstance(exc, ConfigurationError):
        return ConfigError("uri", f"the driver rejected the configuration: {exc}")
    if is_connection_error(exc) or is_transient(exc) or isinstance(exc, TimeoutError):
        return ProviderUnavailable(PROVIDER, f"{what} failed at {where}: {_describe(exc)}")
    if isinstance(exc, ClientError | Neo4jError | DriverError):
        return StoreError(f"{PROVIDER}: {what} failed: {_describe(exc)}")
    return StoreError(f"{PROVIDER}: {what} failed: {type(exc).__name__}: {exc}")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, Neo4jError):
        return f"{exc.code}: {exc.message}"
    return str(exc) or type(exc).__name__
