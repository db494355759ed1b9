"""The policy engine: one object holding every policy of an Astrocyte instance.

Built from :class:`~astrocyte.config.AstrocyteConfig` and the stores. The retain
pipeline uses it on every retain (PII barrier, rate limit, dedup, quotas, audit); the
facade calls :meth:`PolicyEngine.admit` and :meth:`PolicyEngine.audit` for the other
operations. With the default config every part is inactive and each call returns at
once, so zero config costs nothing.

Use **one engine per Astrocyte instance** and share it between the retain pipeline and
the facade: rate-limit buckets, quota reservations and bank write locks live in it, and
two engines over one store would not see each other's.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from astrocyte.config.schema import AstrocyteConfig
from astrocyte.identity.access import visible_bank_id
from astrocyte.policy.audit import AuditEvent, AuditSink, JsonlAuditSink, NullAuditSink
from astrocyte.policy.dedup import Deduplicator
from astrocyte.policy.pii import BankPIIPlan, PIIBarrier
from astrocyte.policy.quota import QuotaGuard
from astrocyte.policy.ratelimit import Clock, Operation, RateLimiter

if TYPE_CHECKING:
    from astrocyte.identity.context import AstrocyteContext
    from astrocyte.stores.storeset import StoreSet


class PolicyEngine:
    """PII barrier, rate limits, quotas, dedup and audit of one Astrocyte instance.

    ``stores`` are needed for quotas on memory counts and for dedup; without them those
    parts are inactive. ``clock`` (monotonic seconds) drives the rate limiter;
    ``audit_sink`` replaces the sink chosen by ``policy.audit``.
    """

    def __init__(
        self,
        config: AstrocyteConfig | None = None,
        stores: StoreSet | None = None,
        *,
        clock: Clock = time.monotonic,
        audit_sink: AuditSink | None = None,
    ) -> None:
        policy = (config or AstrocyteConfig()).policy
        self.config = policy
        self.pii = PIIBarrier(policy.pii)
        self.rate_limiter = RateLimiter(policy.rate_limits, clock)
        self.quotas = QuotaGuard(policy.quotas, stores.documents if stores else None)
        self.dedup = Deduplicator(
            policy.dedup, stores.documents if stores else None, stores.vectors if stores else None
        )
        if audit_sink is not None:
            self.audit_sink: AuditSink = audit_sink
        elif policy.audit.enabled:
            self.audit_sink = JsonlAuditSink(policy.audit.path)
        else:
            self.audit_sink = NullAuditSink()
        self.audit_active = not isinstance(self.audit_sink, NullAuditSink)
        self._bank_locks: dict[str, _Slot] = {}
        self._write_seq = 0
        self._last_write: dict[str, int] = {}

    # ------------------------------------------------------------------ facade API

    def admit(self, principal: str, bank_id: str, operation: Operation) -> None:
        """Let the call through or raise :class:`~astrocyte.errors.RateLimited`
        (with ``retry_after_s``). Synchronous and thread-safe; call it before any work."""
        self.rate_limiter.admit(principal, bank_id, operation)

    async def audit(self, event: AuditEvent) -> None:
        """Record ``event`` in the audit sink (a no-op when audit is off)."""
        if self.audit_active:
            await self.audit_sink.write(event)

    async def record(
        self,
        context: AstrocyteContext | None,
        action: str,
        bank: str | None = None,
        **details: Any,
    ) -> None:
        """Shorthand for ``audit(AuditEvent.of(context, action, bank, **details))``
        that does not even build the event when audit is off."""
        if self.audit_active:
            if bank is not None and context is not None:
                # The retain path knows the storage id ("acme/notes"); the trail must
                # name banks the way their tenant does, like every other output.
                bank = visible_bank_id(context.tenant, bank) or bank
            await self.audit_sink.write(AuditEvent.of(context, action, bank, **details))

    async def close(self) -> None:
        """Flush and close the audit sink."""
        await self.audit_sink.close()

    # ------------------------------------------------------------------ retain path

    def pii_plan(self, bank_id: str) -> BankPIIPlan | None:
        """The PII detectors and actions of ``bank_id``; ``None`` when nothing runs."""
        return self.pii.plan(bank_id)

    @property
    def serialises_writes(self) -> bool:
        """Whether retains into one bank must take turns (quotas or dedup are on)."""
        return self.quotas.memories_active or self.dedup.active

    def write_mark(self, bank_id: str) -> int:
        """A token that changes whenever this engine's pipeline writes to ``bank_id``:
        a duplicate lookup made before the write slot is still valid inside it if the
        mark has not changed meanwhile."""
        return self._last_write.get(bank_id, 0)

    def note_write(self, bank_id: str) -> None:
        """Record that ``bank_id`` changed: the retain pipeline calls it after each
        write (inside the write slot); call it after a forget too, so a duplicate
        lookup made before the forget is repeated instead of trusted."""
        # A global sequence, not a per-bank counter: after the dict is cleared a bank's
        # mark can never come back to a value an earlier lookup saw.
        if len(self._last_write) >= 100_000:
            self._last_write.clear()
        self._write_seq += 1
        self._last_write[bank_id] = self._write_seq

    @contextlib.asynccontextmanager
    async def write_slot(self, bank_id: str, *, always: bool = False) -> AsyncIterator[None]:
        """Hold the bank's write lock when a check must see the bank as the write will
        leave it — a duplicate lookup or a memory count followed by the write.

        A no-op when neither quotas on memory counts nor dedup are configured, so
        retains keep running fully concurrently by default; ``always`` takes the lock
        anyway (a batch with idempotency keys checks for replays inside it).
        """
        if not self.serialises_writes and not always:
            yield
            return
        slot = self._bank_locks.get(bank_id)
        if slot is None:
            slot = self._bank_locks[bank_id] = _Slot()
        # Count users (holder and waiters) so the lock is dropped only when nobody
        # needs it: the dict then does not grow with every bank ever written.
        slot.users += 1
        try:
            async with slot.lock:
                yield
        finally:
            slot.users -= 1
            if slot.users == 0 and self._bank_locks.get(bank_id) is slot:
                del self._bank_locks[bank_id]


class _Slot:
    """A bank's write lock and how many tasks hold or wait for it."""

    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0
