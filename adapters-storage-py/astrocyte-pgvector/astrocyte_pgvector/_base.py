"""Connection handling shared by the document and vector halves of the store.

The constructor does no I/O (the factory calls it from synchronous code); the first
async call connects, runs the migrations and opens the pool under an ``asyncio.Lock``.
Every operation runs under one deadline (``timeout_s``) covering the pool checkout and
all its statements; on a deadline or a lost connection the connection is terminated
(never handed back half-used) and ``ProviderUnavailable`` is raised. A failed first
connect is retried on the next call, and the pool replaces dead connections by itself,
so the store recovers when the server comes back.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg
from astrocyte.errors import StoreError
from astrocyte.spi import HealthStatus

from astrocyte_pgvector._errors import (
    RETRYABLE_CONFLICTS,
    is_connection_loss,
    translate,
)
from astrocyte_pgvector._options import Options
from astrocyte_pgvector._schema import migrate, quote_ident
from astrocyte_pgvector._sql import decode_vector, encode_vector

T = TypeVar("T")

Operation = Callable[[asyncpg.Connection], Awaitable[T]]

#: How long close() waits for in-flight operations before cutting connections.
_CLOSE_GRACE_S = 5.0


class PgBase:
    """Pool, migrations and the guarded ``_run`` every public method goes through."""

    def __init__(self, options: Options) -> None:
        self._options = options
        self._s = quote_ident(options.schema)
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()
        self._closed = False

    async def _init_connection(self, conn: asyncpg.Connection) -> None:
        # Binary codec: COPY of 10k+ vectors then costs one numpy tobytes per vector.
        schema = await conn.fetchval(
            "SELECT n.nspname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace"
            " WHERE t.typname = 'vector'"
        )
        await conn.set_type_codec(
            "vector",
            schema=schema,
            encoder=encode_vector,
            decoder=decode_vector,
            format="binary",
        )

    async def _connect_args(self) -> dict[str, Any]:
        return {
            "dsn": self._options.dsn,
            "timeout": self._options.connect_timeout_s,
            "server_settings": {"application_name": "astrocyte-pgvector"},
        }

    async def _ensure_pool(self) -> asyncpg.Pool:
        if self._closed:
            raise StoreError("pgvector: the store is closed")
        pool = self._pool
        if pool is not None:
            return pool
        async with self._lock:
            if self._pool is not None:
                return self._pool
            if self._closed:
                raise StoreError("pgvector: the store is closed")
            args = await self._connect_args()
            try:
                conn = await asyncpg.connect(**args)
            except BaseException as exc:
                raise translate(exc, self._options.safe_dsn) from None
            try:
                async with asyncio.timeout(max(self._options.timeout_s, 60.0)):
                    await migrate(conn, self._options)
            except BaseException as exc:
                conn.terminate()
                raise translate(exc, self._options.safe_dsn) from None
            await conn.close()
            try:
                self._pool = await asyncpg.create_pool(
                    min_size=self._options.min_pool_size,
                    max_size=self._options.max_pool_size,
                    init=self._init_connection,
                    **args,
                )
            except BaseException as exc:
                raise translate(exc, self._options.safe_dsn) from None
            return self._pool

    async def _run(self, op: Operation[T], *, read_only: bool = False) -> T:
        """Run ``op`` on a pooled connection under the operation deadline.

        Deadlocks rerun the transaction once. A lost connection reruns a read once
        (a stale pooled connection after a server restart); a write is not rerun
        because its commit may or may not have happened.
        """
        attempts = 2
        for attempt in range(attempts):
            try:
                return await self._run_once(op)
            except RETRYABLE_CONFLICTS:
                if attempt + 1 == attempts:
                    raise
            except Exception as exc:
                if not (read_only and is_connection_loss(exc)) or attempt + 1 == attempts:
                    raise translate(
                        exc, self._options.safe_dsn, timeout_s=self._options.timeout_s
                    ) from None
                if isinstance(exc, TimeoutError):
                    raise translate(
                        exc, self._options.safe_dsn, timeout_s=self._options.timeout_s
                    ) from None
        raise AssertionError("unreachable")

    async def _run_once(self, op: Operation[T], timeout_s: float | None = None) -> T:
        pool = await self._ensure_pool()
        conn: asyncpg.Connection | None = None
        try:
            async with asyncio.timeout(timeout_s or self._options.timeout_s):
                conn = await pool.acquire()
                return await op(conn)
        except BaseException as exc:
            if conn is not None and (
                isinstance(exc, TimeoutError | asyncio.CancelledError) or is_connection_loss(exc)
            ):
                # A connection stuck mid-protocol must not go back to the pool. A lost
                # one has already detached itself from its pool proxy, hence suppress.
                with contextlib.suppress(Exception):
                    conn.terminate()
            raise
        finally:
            if conn is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(pool.release(conn), self._options.timeout_s)

    async def _run_unbounded(self, op: Operation[T], timeout_s: float | None) -> T:
        """Like :meth:`_run` for bulk loads, with their own deadline (``None``: 1 day)."""
        try:
            return await self._run_once(op, timeout_s or 86400.0)
        except Exception as exc:
            raise translate(exc, self._options.safe_dsn, timeout_s=timeout_s) from None

    async def health(self) -> HealthStatus:
        """Liveness probe: one ``SELECT 1`` round trip (connecting first if needed)."""

        async def op(conn: asyncpg.Connection) -> int:
            value: int = await conn.fetchval("SELECT 1")
            return value

        try:
            await self._run(op, read_only=True)
        except Exception as exc:
            return HealthStatus(ok=False, detail=str(exc))
        return HealthStatus(ok=True, detail=f"postgresql at {self._options.safe_dsn}")

    async def close(self) -> None:
        """Close the pool; the store is unusable afterwards. Safe to call twice."""
        self._closed = True
        async with self._lock:
            pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            await asyncio.wait_for(pool.close(), _CLOSE_GRACE_S)
        except (TimeoutError, Exception):
            pool.terminate()
