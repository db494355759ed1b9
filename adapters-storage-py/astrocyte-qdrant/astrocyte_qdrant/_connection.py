"""The lazily opened qdrant-client and the one way every request goes through it.

The store's constructor runs in synchronous code (the config factory) and must not do
I/O, so the client is made on first use. Every request then runs under the configured
timeout and has its failures translated (see :mod:`astrocyte_qdrant._errors`).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Awaitable, Callable
from typing import TypeVar

from astrocyte.errors import ConfigError, StoreError
from qdrant_client import AsyncQdrantClient
from qdrant_client.http.exceptions import UnexpectedResponse

from astrocyte_qdrant._errors import PROVIDER, translate
from astrocyte_qdrant._options import QdrantOptions

T = TypeVar("T")


class CollectionMissing(StoreError):
    """A collection vanished between our look-up and the request (dropped by someone
    else); the caller forgets what it knew and looks again."""


class Connection:
    """Owns the :class:`AsyncQdrantClient`; opened on first use, closed once."""

    def __init__(self, options: QdrantOptions, api_key: str | None) -> None:
        """Remember how to connect; nothing is opened yet."""
        self.options = options
        self._api_key = api_key
        self._client: AsyncQdrantClient | None = None
        self._lock = asyncio.Lock()
        self._closed = False

    @property
    def target(self) -> str:
        """Where requests go, safe to show in messages."""
        return self.options.describe_target()

    def check_open(self) -> None:
        """Raise :class:`StoreError` once :meth:`close` was called."""
        if self._closed:
            raise StoreError(f"{PROVIDER}: the store is closed")

    async def call(self, action: str, request: Callable[[AsyncQdrantClient], Awaitable[T]]) -> T:
        """Run one request under the timeout; failures come out as Astrocyte errors."""
        client = await self._open()
        try:
            async with asyncio.timeout(self.options.timeout_s):
                return await request(client)
        except Exception as exc:
            if _is_missing_collection(exc):
                raise CollectionMissing(f"{PROVIDER}: {action}: collection is gone") from exc
            raise translate(
                exc,
                action,
                target=self.target,
                timeout_s=self.options.timeout_s,
                remote=self.options.mode == "server",
            ) from exc

    async def close(self) -> None:
        """Close the client; later requests raise :class:`StoreError`."""
        self._closed = True
        async with self._lock:
            client, self._client = self._client, None
        if client is not None:
            # Closing a client whose server is gone must not fail the close.
            with contextlib.suppress(Exception):
                await client.close()

    async def _open(self) -> AsyncQdrantClient:
        self.check_open()
        if self._client is not None:
            return self._client
        async with self._lock:
            self.check_open()
            if self._client is None:
                self._client = self._make_client()
            return self._client

    def _make_client(self) -> AsyncQdrantClient:
        opts = self.options
        if opts.mode == "memory":
            return AsyncQdrantClient(location=":memory:")
        if opts.mode == "disk":
            try:
                return AsyncQdrantClient(path=opts.path)
            except (RuntimeError, OSError) as exc:
                # Most often another process holds the folder's lock: local mode is
                # single-writer, and no retry helps while that process lives.
                raise ConfigError(
                    "path",
                    f"cannot open local Qdrant storage at {opts.path}: {exc}",
                    fix="give each process its own path, or use a Qdrant server (url)",
                ) from None
        try:
            return AsyncQdrantClient(
                url=opts.url,
                # None: a URL without a port means its scheme's port, not 6333.
                port=None,
                api_key=self._api_key,
                timeout=math.ceil(opts.timeout_s),
                # The check would send a blocking request from a thread at construction.
                check_compatibility=False,
            )
        except ValueError as exc:
            raise ConfigError("url", f"rejected by qdrant-client: {exc}") from None


def _is_missing_collection(exc: Exception) -> bool:
    if isinstance(exc, UnexpectedResponse):
        return exc.status_code == 404 and b"doesn't exist" in exc.content
    # Local mode reports a missing collection with a ValueError; the server with a 404.
    text = str(exc)
    return isinstance(exc, ValueError) and text.startswith("Collection ") and "not found" in text
