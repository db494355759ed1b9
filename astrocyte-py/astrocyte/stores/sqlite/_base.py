"""Connections, threads and transactions of the embedded store, shared by its parts.

Writes run on one writer thread that owns the write connection, one ``BEGIN IMMEDIATE``
transaction per call; reads run on a small pool of threads, each with its own read
connection (WAL lets them proceed while the writer works). Nothing blocking ever runs
on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from astrocyte.errors import AstrocyteError, StoreError, ValidationError
from astrocyte.spi import SPI_VERSION, HealthStatus
from astrocyte.stores.sqlite._schema import migrate
from astrocyte.stores.sqlite._vectors import BankVectors

T = TypeVar("T")
AfterCommit = Callable[[], None] | None
"""Work to do once a write transaction has committed (cache maintenance)."""

_MIN_SQLITE = (3, 35, 0)


@contextlib.contextmanager
def snapshot(conn: sqlite3.Connection) -> Iterator[None]:
    """A read transaction, so several SELECTs see one consistent state."""
    conn.execute("BEGIN")
    try:
        yield
    finally:
        conn.execute("COMMIT")


class StoreBase:
    """Plumbing shared by the document, vector and graph parts of ``SQLiteStore``."""

    SPI_VERSION = SPI_VERSION

    def __init__(
        self,
        path: str | Path,
        *,
        readers: int = 4,
        vector_cache_bytes: int = 2 << 30,
        busy_timeout: float = 30.0,
    ) -> None:
        """Open (creating and migrating if needed) the database at ``path``.

        ``readers`` is the number of read threads; ``vector_cache_bytes`` bounds the
        memory of cached vector matrices (least recently searched banks are dropped
        first); ``busy_timeout`` is how long to wait for another process's write lock.
        """
        if sqlite3.sqlite_version_info < _MIN_SQLITE:
            raise StoreError(
                f"SQLite {sqlite3.sqlite_version} is too old; the embedded store needs "
                f"{'.'.join(map(str, _MIN_SQLITE))} or newer",
                fix="use a Python build with a newer SQLite (e.g. from python.org or uv)",
            )
        if readers < 1:
            raise ValidationError("readers", "must be at least 1")
        self._path = str(path)
        self._in_memory = self._path == ":memory:"
        self._timeout = busy_timeout
        self._closed = False
        self._cache_budget = vector_cache_bytes
        try:
            self._writer = self._connect(read_only=False)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SQLite database {self._path!r}: {exc}") from exc
        try:
            if not self._in_memory:
                mode = self._writer.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise StoreError(f"cannot enable WAL on {self._path!r} (got {mode!r})")
            migrate(self._writer)
        except sqlite3.Error as exc:
            self._writer.close()
            raise StoreError(f"cannot initialise SQLite database {self._path!r}: {exc}") from exc
        except BaseException:
            self._writer.close()
            raise
        self._write_pool = ThreadPoolExecutor(1, thread_name_prefix="astrocyte-sqlite-write")
        self._read_pool = (
            self._write_pool
            if self._in_memory
            else ThreadPoolExecutor(readers, thread_name_prefix="astrocyte-sqlite-read")
        )
        self._local = threading.local()
        self._read_conns: list[sqlite3.Connection] = []
        self._read_conns_lock = threading.Lock()
        self._caches: OrderedDict[str, BankVectors] = OrderedDict()
        self._caches_lock = threading.Lock()

    @property
    def path(self) -> str:
        """The database file path (or ``":memory:"``)."""
        return self._path

    # ------------------------------------------------------------------ plumbing

    def _connect(self, *, read_only: bool) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self._path,
            timeout=self._timeout,
            isolation_level=None,
            check_same_thread=False,
        )
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA temp_store = MEMORY")
        conn.execute("PRAGMA cache_size = -32768")
        if read_only:
            conn.execute("PRAGMA query_only = ON")
        else:
            # Checkpoint every ~32 MiB of WAL instead of every 4 MiB: big retain batches
            # would otherwise pay for a checkpoint on nearly every commit. Cap the size
            # the WAL file is truncated back to after a checkpoint.
            conn.execute("PRAGMA wal_autocheckpoint = 8192")
            conn.execute(f"PRAGMA journal_size_limit = {64 << 20:d}")
        return conn

    def _reader(self) -> sqlite3.Connection:
        if self._in_memory:
            return self._writer
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect(read_only=True)
            self._local.conn = conn
            with self._read_conns_lock:
                self._read_conns.append(conn)
        return conn

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("SQLiteStore is closed")

    def _run_read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        try:
            return fn(self._reader())
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite read failed: {exc}") from exc

    def _run_raw(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        try:
            return fn(self._writer)
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite read failed: {exc}") from exc

    def _run_write(self, fn: Callable[[sqlite3.Connection], tuple[T, AfterCommit]]) -> T:
        conn = self._writer
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result, after = fn(conn)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite write failed and was rolled back: {exc}") from exc
        if after is not None:
            after()
        return result

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        self._check_open()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._read_pool, self._run_read, fn)

    async def _write(self, fn: Callable[[sqlite3.Connection], tuple[T, AfterCommit]]) -> T:
        self._check_open()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._write_pool, self._run_write, fn)

    async def _on_writer(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` on the writer thread without opening a write transaction."""
        self._check_open()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._write_pool, self._run_raw, fn)

    # ------------------------------------------------------------------ vectors

    def _cache(self, bank_id: str) -> BankVectors | None:
        with self._caches_lock:
            cache = self._caches.get(bank_id)
            if cache is not None:
                self._caches.move_to_end(bank_id)
            return cache

    def _drop_cache(self, bank_id: str) -> None:
        with self._caches_lock:
            self._caches.pop(bank_id, None)

    def _install_cache(self, bank_id: str, cache: BankVectors) -> None:
        with self._caches_lock:
            self._caches[bank_id] = cache
            self._caches.move_to_end(bank_id)
            total = sum(c.nbytes for c in self._caches.values())
            while total > self._cache_budget and len(self._caches) > 1:
                _, evicted = self._caches.popitem(last=False)
                total -= evicted.nbytes

    # ------------------------------------------------------------------ lifecycle

    async def health(self) -> HealthStatus:
        """Runs ``SELECT 1`` on a read connection."""
        if self._closed:
            return HealthStatus(ok=False, detail="closed")
        try:
            await self._read(lambda conn: conn.execute("SELECT 1").fetchone())
        except AstrocyteError as exc:
            return HealthStatus(ok=False, detail=str(exc))
        return HealthStatus(ok=True, detail=f"sqlite {sqlite3.sqlite_version} at {self._path}")

    def _shutdown(self) -> None:
        self._write_pool.shutdown(wait=True)
        if self._read_pool is not self._write_pool:
            self._read_pool.shutdown(wait=True)
        with self._read_conns_lock:
            conns, self._read_conns = self._read_conns, []
        for conn in conns:
            conn.close()
        with contextlib.suppress(sqlite3.Error):
            self._writer.execute("PRAGMA optimize")
        self._writer.close()
        with self._caches_lock:
            self._caches.clear()

    async def close(self) -> None:
        """Wait for running calls, then close every connection (idempotent)."""
        if self._closed:
            return
        self._closed = True
        await asyncio.to_thread(self._shutdown)
