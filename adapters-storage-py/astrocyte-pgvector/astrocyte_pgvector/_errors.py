"""Translating driver and network failures into Astrocyte's typed errors.

Retrying can fix an unreachable, hung or restarting server (``ProviderUnavailable``);
it cannot fix bad credentials or a bad address (``ConfigError``). Messages never hold
the DSN's password: the driver's own messages do not contain it, and we only ever
print the masked DSN.
"""

from __future__ import annotations

import asyncio

import asyncpg
from astrocyte.errors import AstrocyteError, ConfigError, ProviderUnavailable, StoreError

PROVIDER = "pgvector"

_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncio.TimeoutError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.InsufficientResourcesError,
)

#: Transient conflicts between concurrent writers: the transaction can simply rerun.
RETRYABLE_CONFLICTS: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.DeadlockDetectedError,
    asyncpg.exceptions.SerializationError,
)


def is_connection_loss(exc: BaseException) -> bool:
    """Whether ``exc`` means the connection or server is gone (not a query error)."""
    if isinstance(exc, _UNAVAILABLE):
        return True
    # The driver raises a plain InterfaceError for "connection is closed".
    return isinstance(exc, asyncpg.InterfaceError) and "closed" in str(exc)


def translate(exc: BaseException, safe_dsn: str, *, timeout_s: float | None = None) -> Exception:
    """The Astrocyte error for a failure of an operation against ``safe_dsn``."""
    if isinstance(exc, AstrocyteError):
        return exc
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        within = f" within {timeout_s:g}s" if timeout_s is not None else ""
        return ProviderUnavailable(PROVIDER, f"no answer from {safe_dsn}{within}")
    if isinstance(exc, asyncpg.InvalidPasswordError):
        return ConfigError(
            "password",
            f"authentication failed for {safe_dsn}: {exc}",
            fix="check the user and password in storage.*.dsn",
        )
    if isinstance(exc, asyncpg.InvalidAuthorizationSpecificationError):
        return ConfigError("dsn", f"login refused by {safe_dsn}: {exc}")
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return ConfigError(
            "dsn", f"{exc} (at {safe_dsn})", fix="create the database or fix its name in the dsn"
        )
    if isinstance(exc, asyncpg.InsufficientPrivilegeError):
        return ConfigError(
            "dsn",
            f"the user of {safe_dsn} lacks a privilege: {exc}",
            fix="grant the user CREATE on the database, or have a superuser run "
            "CREATE EXTENSION vector once",
        )
    if is_connection_loss(exc):
        return ProviderUnavailable(PROVIDER, f"{safe_dsn} unreachable: {type(exc).__name__}: {exc}")
    if isinstance(exc, asyncpg.PostgresError | asyncpg.InterfaceError):
        return StoreError(f"{PROVIDER}: {type(exc).__name__}: {exc}")
    if isinstance(exc, Exception):
        return exc
    raise exc
