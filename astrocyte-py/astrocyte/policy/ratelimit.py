"""Token-bucket rate limits per principal and per bank, per operation class.

A bucket holds up to ``burst`` tokens and gains ``rate`` tokens per second; a call takes
one token from *every* bucket that applies to it (the caller's and the bank's) or from
none: if any bucket is empty the call is refused with the longest wait, and the other
buckets keep their tokens, so a refused call never eats into anyone's budget.

Admission is synchronous and guarded by a ``threading.Lock``: it holds no awaits, so
it is atomic for asyncio tasks and also for threads (the blocking :mod:`astrocyte.sync`
wrapper, or several event loops sharing one instance). The clock is injectable so tests
control refill without sleeping.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from astrocyte.config.policy_schema import RateLimitConfig, RateSpec
from astrocyte.errors import RateLimited

Operation = Literal["retain", "recall", "reflect", "forget"]
OPERATIONS: tuple[Operation, ...] = ("retain", "recall", "reflect", "forget")

Clock = Callable[[], float]

#: Idle buckets are forgotten once this many exist (a full bucket carries no state).
_MAX_BUCKETS = 100_000


@dataclass(slots=True)
class _Bucket:
    tokens: float
    stamp: float


class RateLimiter:
    """Admits or refuses calls according to :class:`RateLimitConfig`."""

    def __init__(self, config: RateLimitConfig, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str, str], _Bucket] = {}
        self._specs: dict[Operation, tuple[RateSpec | None, RateSpec | None]] = {
            op: (getattr(config, op).per_principal, getattr(config, op).per_bank)
            for op in OPERATIONS
        }
        self.active = any(p or b for p, b in self._specs.values())

    def admit(self, principal: str, bank_id: str, operation: Operation) -> None:
        """Take one token from each bucket of this call, or raise :class:`RateLimited`
        (taking none) with the time until every bucket has a token again."""
        per_principal, per_bank = self._specs[operation]
        if per_principal is None and per_bank is None:
            return
        wanted: list[tuple[tuple[str, str, str], RateSpec, str]] = []
        if per_principal is not None:
            wanted.append(((operation, "principal", principal), per_principal, "principal"))
        if per_bank is not None:
            wanted.append(((operation, "bank", bank_id), per_bank, "bank"))
        with self._lock:
            now = self._clock()
            buckets: list[_Bucket] = []
            wait, scope = 0.0, ""
            for key, spec, kind in wanted:
                bucket = self._buckets.get(key)
                if bucket is None:
                    if len(self._buckets) >= _MAX_BUCKETS:
                        self._prune(now)
                    bucket = self._buckets[key] = _Bucket(float(spec.burst), now)
                else:
                    # max(): a clock that steps back must not drain the bucket.
                    elapsed = max(0.0, now - bucket.stamp)
                    bucket.tokens = min(float(spec.burst), bucket.tokens + elapsed * spec.rate)
                    bucket.stamp = now
                if bucket.tokens < 1.0:
                    need = (1.0 - bucket.tokens) / spec.rate
                    if need > wait:
                        wait, scope = need, kind
                buckets.append(bucket)
            if wait > 0.0:
                raise RateLimited(round(wait, 6), operation=operation, scope=scope)
            for bucket in buckets:
                bucket.tokens -= 1.0

    def _prune(self, now: float) -> None:
        """Drop buckets that have refilled completely (indistinguishable from new)."""
        specs: dict[tuple[str, str], RateSpec] = {}
        for op, (per_principal, per_bank) in self._specs.items():
            if per_principal is not None:
                specs[(op, "principal")] = per_principal
            if per_bank is not None:
                specs[(op, "bank")] = per_bank
        for key in list(self._buckets):
            spec = specs[(key[0], key[1])]
            bucket = self._buckets[key]
            if bucket.tokens + (now - bucket.stamp) * spec.rate >= spec.burst:
                del self._buckets[key]
