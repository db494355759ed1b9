"""Storage quotas: memories per bank and bytes per tenant, checked before any write.

**Memories per bank** are counted by the document store (``DocumentStore.count``, O(1)
in the embedded store). Check-then-write is a race — two retains could both see room
for one more — so the retain pipeline holds a per-bank lock (see
:class:`~astrocyte.policy.engine.PolicyEngine.write_slot`) from the count to the end of
the write: within one process the limit is never overshot. Processes sharing a store
file do not see each other's locks, so across processes the limit can be overshot by
at most the batches in flight at once.

**Bytes per tenant** cannot be read from the stores (memories carry no tenant), so the
guard keeps a ledger: the UTF-8 bytes of memory text each tenant's callers have
retained. The check reserves the bytes synchronously (no await between check and
reservation, under a ``threading.Lock``), so concurrent retains never overshoot; a
failed write releases its reservation. The ledger is cumulative — forgetting does not
give bytes back, so it is an upper bound of what a tenant stores — and lives in process
memory unless ``policy.quotas.ledger_path`` names a JSON file that keeps it across
restarts (written atomically after each retain).
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from astrocyte.config.policy_schema import QuotaConfig
from astrocyte.errors import ConfigError, QuotaExceeded
from astrocyte.identity.access import TENANT_SEPARATOR
from astrocyte.policy._match import bank_matches
from astrocyte.spi import DocumentStore

#: Ledger key of callers whose context names no tenant.
DEFAULT_TENANT = "default"


@dataclass(slots=True)
class ByteReservation:
    """Bytes set aside for one retain until its write commits or fails."""

    tenant: str
    nbytes: int
    settled: bool = False


class QuotaGuard:
    """Checks :class:`QuotaConfig` limits; see the module docstring for the guarantees."""

    def __init__(self, config: QuotaConfig, documents: DocumentStore | None) -> None:
        self._config = config
        self._documents = documents
        self._lock = threading.Lock()
        self._used: dict[str, int] = {}
        self._reserved: dict[str, int] = {}
        self._bank_limits: dict[str, int | None] = {}
        self._counts: dict[str, tuple[int, int]] = {}  # bank -> (write mark, count)
        self.memories_active = config.max_memories_per_bank is not None or any(
            rule.max_memories is not None for rule in config.banks
        )
        self.bytes_active = config.max_bytes_per_tenant is not None or any(
            limit is not None for limit in config.tenants.values()
        )
        self._ledger = Path(config.ledger_path).expanduser() if config.ledger_path else None
        if self._ledger is not None:
            self._used = _load_ledger(self._ledger)

    # ------------------------------------------------------------------ memories

    def max_memories(self, bank_id: str) -> int | None:
        """The memory limit of ``bank_id`` (the last matching bank rule wins)."""
        if bank_id in self._bank_limits:
            return self._bank_limits[bank_id]
        limit = self._config.max_memories_per_bank
        for rule in self._config.banks:
            if bank_matches(rule.banks, bank_id):
                limit = rule.max_memories
        if len(self._bank_limits) >= 4096:
            self._bank_limits.clear()
        self._bank_limits[bank_id] = limit
        return limit

    async def memories_used(self, bank_id: str, mark: int | None = None) -> int | None:
        """The bank's memory count when it has a limit (``None`` otherwise).

        ``mark`` is the engine's write mark of the bank: when the count remembered by
        :meth:`remember_count` was taken at the same mark, nothing was written since
        and it is returned without asking the store.
        """
        if self.max_memories(bank_id) is None or self._documents is None:
            return None
        cached = self._counts.get(bank_id)
        if mark is not None and cached is not None and cached[0] == mark:
            return cached[1]
        used = await self._documents.count(bank_id)
        if mark is not None:
            self._remember(bank_id, mark, used)
        return used

    def remember_count(self, bank_id: str, mark: int, used: int) -> None:
        """The bank held ``used`` memories right after the write that set ``mark``."""
        if self.max_memories(bank_id) is not None:
            self._remember(bank_id, mark, used)

    def _remember(self, bank_id: str, mark: int, used: int) -> None:
        if len(self._counts) >= 4096 and bank_id not in self._counts:
            self._counts.clear()
        self._counts[bank_id] = (mark, used)

    async def check_memories(
        self, bank_id: str, adding: int, used: int | None = None
    ) -> int | None:
        """Raise :class:`QuotaExceeded` if ``adding`` memories would not fit in the
        bank; ``used`` is the count if the caller already has it. Returns the count
        the decision was made on (``None`` when the bank has no limit). Call it while
        holding the bank's write slot, up to the write."""
        limit = self.max_memories(bank_id)
        if limit is None or self._documents is None:
            return None
        if adding <= 0:
            return used
        if used is not None and used + adding > limit:
            # A remembered count can be stale high (a forget that did not change the
            # write mark); the store has the last word before a refusal.
            used = None
        if used is None:
            used = await self._documents.count(bank_id)
        if used + adding > limit:
            raise QuotaExceeded(
                "max_memories_per_bank",
                limit=limit,
                used=used,
                requested=adding,
                # Name the bank as its tenant knows it, never by its storage id.
                subject=f"bank {bank_id.rpartition(TENANT_SEPARATOR)[2]!r}",
                fix="forget old memories, retain into another bank, or raise "
                "policy.quotas.max_memories_per_bank",
            )
        return used

    # ------------------------------------------------------------------ tenant bytes

    def max_bytes(self, tenant: str) -> int | None:
        """The byte limit of ``tenant`` (per-tenant override, else the global one)."""
        if tenant in self._config.tenants:
            return self._config.tenants[tenant]
        return self._config.max_bytes_per_tenant

    def used_bytes(self, tenant: str | None) -> int:
        """Bytes counted against ``tenant`` so far (``None`` = callers without one)."""
        with self._lock:
            return self._used.get(tenant or DEFAULT_TENANT, 0)

    def reserve_bytes(self, tenant: str | None, nbytes: int) -> ByteReservation:
        """Set ``nbytes`` aside for ``tenant`` or raise :class:`QuotaExceeded`.

        Bytes in flight count as used, so two concurrent retains cannot both take the
        last free bytes.
        """
        key = tenant or DEFAULT_TENANT
        limit = self.max_bytes(key)
        with self._lock:
            used = self._used.get(key, 0) + self._reserved.get(key, 0)
            if limit is not None and nbytes > 0 and used + nbytes > limit:
                raise QuotaExceeded(
                    "max_bytes_per_tenant",
                    limit=limit,
                    used=used,
                    requested=nbytes,
                    subject=f"tenant {key!r}",
                    fix="retain less, or raise policy.quotas.max_bytes_per_tenant "
                    f"(or policy.quotas.tenants.{key})",
                )
            self._reserved[key] = self._reserved.get(key, 0) + nbytes
        return ByteReservation(key, nbytes)

    def settle(self, reservation: ByteReservation, *, written: bool) -> None:
        """Turn a reservation into usage (``written``) or give it back (idempotent)."""
        if reservation.settled:
            return
        reservation.settled = True
        with self._lock:
            key = reservation.tenant
            self._reserved[key] -= reservation.nbytes
            if written:
                self._used[key] = self._used.get(key, 0) + reservation.nbytes

    def save_ledger(self) -> None:
        """Write the ledger file atomically (blocking: run it in a thread)."""
        if self._ledger is None:
            return
        # The snapshot is taken under the lock that guards every change, and the file
        # is replaced under it too, so the last write always holds the latest state.
        with self._lock:
            data = json.dumps({"version": 1, "tenant_bytes": dict(sorted(self._used.items()))})
            self._ledger.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".ledger-", dir=self._ledger.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    f.write(data)
                os.replace(tmp, self._ledger)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise

    @property
    def persists(self) -> bool:
        """Whether usage is written to a ledger file."""
        return self._ledger is not None


def _load_ledger(path: Path) -> dict[str, int]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        usage = data["tenant_bytes"]
        return {str(k): int(v) for k, v in usage.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(
            "policy.quotas.ledger_path",
            f"cannot read the usage ledger {path}: {exc}",
            fix="fix or delete the file (usage then restarts from zero)",
        ) from None
