"""A blocking wrapper around :class:`astrocyte.Astrocyte` for scripts and notebooks.

    from astrocyte.sync import Astrocyte
    brain = Astrocyte.from_config()
    brain.retain("Alice prefers tea", "alice")
    print(brain.recall("what does Alice drink?", "alice").hits[0].text)
    brain.close()

Calls run on a private event loop in a background thread, so this also works where an
event loop is already running (e.g. Jupyter) — but inside async code, use the async API.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

from astrocyte.brain import Astrocyte as AsyncAstrocyte
from astrocyte.config.loader import ConfigSource
from astrocyte.spi import HealthStatus
from astrocyte.types import (
    BankStats,
    ForgetResult,
    RecallResult,
    ReflectResult,
    RetainBatchResult,
    RetainItem,
    RetainResult,
)

T = TypeVar("T")


class Astrocyte:
    """Blocking twin of :class:`astrocyte.Astrocyte`; same methods and arguments."""

    def __init__(self, inner: AsyncAstrocyte | None = None) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="astrocyte-sync", daemon=True
        )
        self._thread.start()
        self._inner = inner if inner is not None else AsyncAstrocyte()
        self._closed = False

    @classmethod
    def from_config(cls, source: ConfigSource = None) -> Astrocyte:
        """Build from a config object, mapping, YAML path, or ``None``."""
        return cls(AsyncAstrocyte.from_config(source))

    @property
    def inner(self) -> AsyncAstrocyte:
        """The async instance this wraps."""
        return self._inner

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._closed:
            coro.close()
            raise RuntimeError("this Astrocyte is closed")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def retain(
        self, content: str | bytes, bank_id: str | None = None, **kwargs: Any
    ) -> RetainResult:
        """See :meth:`astrocyte.Astrocyte.retain`."""
        return self._run(self._inner.retain(content, bank_id, **kwargs))

    def retain_many(
        self,
        items: Sequence[RetainItem | Mapping[str, Any]],
        bank_id: str | None = None,
        **kwargs: Any,
    ) -> RetainBatchResult:
        """See :meth:`astrocyte.Astrocyte.retain_many`."""
        return self._run(self._inner.retain_many(items, bank_id, **kwargs))

    def recall(self, query: str, bank_id: str | None = None, **kwargs: Any) -> RecallResult:
        """See :meth:`astrocyte.Astrocyte.recall`."""
        return self._run(self._inner.recall(query, bank_id, **kwargs))

    def reflect(self, query: str, bank_id: str | None = None, **kwargs: Any) -> ReflectResult:
        """See :meth:`astrocyte.Astrocyte.reflect`."""
        return self._run(self._inner.reflect(query, bank_id, **kwargs))

    def forget(self, bank_id: str | None = None, **kwargs: Any) -> ForgetResult:
        """See :meth:`astrocyte.Astrocyte.forget`."""
        return self._run(self._inner.forget(bank_id, **kwargs))

    def create_bank(self, bank_id: str | None = None, **kwargs: Any) -> None:
        """See :meth:`astrocyte.Astrocyte.create_bank`."""
        self._run(self._inner.create_bank(bank_id, **kwargs))

    def list_banks(self, **kwargs: Any) -> list[BankStats]:
        """See :meth:`astrocyte.Astrocyte.list_banks`."""
        return self._run(self._inner.list_banks(**kwargs))

    def health(self) -> dict[str, HealthStatus]:
        """See :meth:`astrocyte.Astrocyte.health`."""
        return self._run(self._inner.health())

    def close(self) -> None:
        """Close the stores and stop the background loop (idempotent)."""
        if self._closed:
            return
        try:
            self._run(self._inner.close())
        finally:
            self._closed = True
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()

    def __enter__(self) -> Astrocyte:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run one coroutine to completion from synchronous code (a thin ``asyncio.run``)."""
    return asyncio.run(coro)
