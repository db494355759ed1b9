"""Audit trail: who did what to which bank, as :class:`AuditEvent` s sent to a sink.

Events never carry memory text or detected PII, only ids, counts and kinds, so the
audit log is not itself a place where personal data piles up.

The default sink (:class:`JsonlAuditSink`) appends one JSON object per line. ``write``
only puts the line on a queue: a dedicated thread does the file I/O, so an audited
operation never waits for the disk and the event loop never blocks. ``flush`` waits
until everything queued is on disk; ``close`` flushes and stops the thread (an
``atexit`` hook flushes too, so events are not lost on a normal exit without close).
"""

from __future__ import annotations

import asyncio
import atexit
import queue
import threading
import weakref
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from astrocyte.identity.context import AstrocyteContext


class AuditEvent(BaseModel):
    """One audited action.

    ``action`` is dotted, e.g. ``retain``, ``retain.rejected``, ``forget``,
    ``bank.create``; ``details`` holds JSON-able facts (ids, counts, reasons).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    time: datetime = Field(default_factory=lambda: datetime.now(UTC))
    principal: str
    tenant: str | None = None
    action: str
    bank: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def of(
        cls,
        context: AstrocyteContext | None,
        action: str,
        bank: str | None = None,
        **details: Any,
    ) -> AuditEvent:
        """An event for ``context`` (``None``: the local caller) happening now."""
        principal = context.principal if context is not None else "local"
        tenant = getattr(context, "tenant", None)
        return cls(principal=principal, tenant=tenant, action=action, bank=bank, details=details)


@runtime_checkable
class AuditSink(Protocol):
    """Where audit events go. ``write`` must not block the event loop for long."""

    async def write(self, event: AuditEvent) -> None:
        """Record ``event``."""
        ...

    async def close(self) -> None:
        """Flush and release resources."""
        ...


class NullAuditSink:
    """Drops every event: the sink when audit is off."""

    async def write(self, event: AuditEvent) -> None:
        """Do nothing."""

    async def close(self) -> None:
        """Do nothing."""


class MemoryAuditSink:
    """Keeps events in a list (tests, or callers that ship events themselves)."""

    def __init__(self) -> None:
        """An empty sink."""
        self.events: list[AuditEvent] = []

    async def write(self, event: AuditEvent) -> None:
        """Append ``event`` to :attr:`events`."""
        self.events.append(event)

    async def close(self) -> None:
        """Nothing to release."""


_STOP = object()


class JsonlAuditSink:
    """Appends events as JSON lines to ``path``, from a writer thread."""

    def __init__(self, path: str | Path) -> None:
        """Events go to ``path`` (created with its parent folders on first event)."""
        self.path = Path(path).expanduser()
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._closed = False
        self.error: BaseException | None = None
        """The last I/O error of the writer thread, if any (events are then dropped)."""
        # Flush on interpreter exit even when nobody called close(); a weak reference
        # keeps the hook from holding the sink alive.
        atexit.register(_stop_at_exit, weakref.ref(self))

    def _ensure_thread(self) -> None:
        if self._thread is not None:
            return
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="astrocyte-audit", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        handle = None
        try:
            while True:
                item = self._queue.get()
                batch = [item]
                # Drain what is already queued: one write and flush per burst.
                while True:
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                lines = [x for x in batch if isinstance(x, str)]
                if lines:
                    try:
                        if handle is None:
                            self.path.parent.mkdir(parents=True, exist_ok=True)
                            handle = self.path.open("a", encoding="utf-8")
                        handle.write("".join(lines))
                        handle.flush()
                    except OSError as exc:
                        self.error = exc
                for x in batch:
                    if isinstance(x, threading.Event):
                        x.set()
                if any(x is _STOP for x in batch):
                    return
        finally:
            if handle is not None:
                handle.close()

    async def write(self, event: AuditEvent) -> None:
        """Queue ``event``; returns at once."""
        if self._closed:
            return
        self._ensure_thread()
        self._queue.put(event.model_dump_json() + "\n")

    async def flush(self) -> None:
        """Wait until every queued event is written."""
        if self._thread is None or not self._thread.is_alive():
            return
        done = threading.Event()
        self._queue.put(done)
        await asyncio.to_thread(done.wait)

    def _stop(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()

    async def close(self) -> None:
        """Write what is queued and stop the writer thread (idempotent)."""
        await asyncio.to_thread(self._stop)


def _stop_at_exit(ref: weakref.ref[JsonlAuditSink]) -> None:
    sink = ref()
    if sink is not None:
        sink._stop()
