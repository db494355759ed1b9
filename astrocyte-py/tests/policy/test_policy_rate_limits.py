"""Token-bucket rate limits: refill timing with an injected clock, atomicity across the
principal and bank buckets, and exact admission counts under concurrency."""

from __future__ import annotations

import asyncio
import threading

import pytest

from astrocyte.config.policy_schema import RateLimitConfig
from astrocyte.errors import AstrocyteError, RateLimited
from astrocyte.identity.context import AstrocyteContext
from astrocyte.policy.ratelimit import RateLimiter
from tests.policy.conftest import HarnessFactory


class FakeClock:
    """Monotonic seconds that only move when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _limiter(clock: FakeClock, **ops: object) -> RateLimiter:
    return RateLimiter(RateLimitConfig.model_validate(ops), clock)


def test_burst_then_refill_at_rate() -> None:
    clock = FakeClock()
    limiter = _limiter(clock, retain={"per_principal": {"rate": 2, "burst": 3}})
    for _ in range(3):
        limiter.admit("user:1", "b", "retain")
    with pytest.raises(RateLimited) as err:
        limiter.admit("user:1", "b", "retain")
    assert err.value.retry_after_s == pytest.approx(0.5)
    assert err.value.code == "rate_limited" and err.value.scope == "principal"
    assert isinstance(err.value, AstrocyteError)
    clock.now += 0.25  # half a token: still refused, and the wait shrinks
    with pytest.raises(RateLimited) as err:
        limiter.admit("user:1", "b", "retain")
    assert err.value.retry_after_s == pytest.approx(0.25)
    clock.now += 0.25
    limiter.admit("user:1", "b", "retain")
    # A long idle refills only up to the burst.
    clock.now += 3600
    for _ in range(3):
        limiter.admit("user:1", "b", "retain")
    with pytest.raises(RateLimited):
        limiter.admit("user:1", "b", "retain")


def test_buckets_are_per_principal_per_bank_and_per_operation() -> None:
    clock = FakeClock()
    limiter = _limiter(
        clock,
        retain={"per_principal": {"rate": 1, "burst": 1}, "per_bank": {"rate": 1, "burst": 2}},
    )
    limiter.admit("user:1", "b", "retain")
    with pytest.raises(RateLimited) as err:
        limiter.admit("user:1", "other", "retain")
    assert err.value.scope == "principal"
    limiter.admit("user:2", "b", "retain")  # another principal, same bank: 2nd bank token
    with pytest.raises(RateLimited) as err:
        limiter.admit("user:3", "b", "retain")
    assert err.value.scope == "bank"
    # Recall has no limits configured.
    for _ in range(100):
        limiter.admit("user:1", "b", "recall")


def test_a_refused_call_takes_no_token_from_any_bucket() -> None:
    clock = FakeClock()
    limiter = _limiter(
        clock,
        recall={"per_principal": {"rate": 1, "burst": 1}, "per_bank": {"rate": 1, "burst": 5}},
    )
    limiter.admit("user:1", "b", "recall")
    for _ in range(10):  # refused by the principal bucket: the bank bucket keeps 4
        with pytest.raises(RateLimited):
            limiter.admit("user:1", "b", "recall")
    for i in range(4):
        limiter.admit(f"user:{i + 2}", "b", "recall")
    with pytest.raises(RateLimited):
        limiter.admit("user:9", "b", "recall")


def test_a_clock_stepping_back_does_not_drain_buckets() -> None:
    clock = FakeClock()
    limiter = _limiter(clock, forget={"per_bank": {"rate": 1, "burst": 2}})
    limiter.admit("p", "b", "forget")
    clock.now -= 100
    limiter.admit("p", "b", "forget")


def test_no_limits_configured_admits_everything() -> None:
    limiter = RateLimiter(RateLimitConfig())
    assert not limiter.active
    for _ in range(1000):
        limiter.admit("p", "b", "retain")


def test_threads_get_exactly_the_burst() -> None:
    """50 threads racing for a bucket of 10 with no refill: exactly 10 get in."""
    clock = FakeClock()
    limiter = _limiter(clock, recall={"per_bank": {"rate": 0.001, "burst": 10}})
    admitted: list[int] = []
    refused: list[int] = []
    start = threading.Barrier(50)

    def call(i: int) -> None:
        start.wait()
        try:
            limiter.admit(f"user:{i}", "shared", "recall")
            admitted.append(i)
        except RateLimited:
            refused.append(i)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(admitted) == 10 and len(refused) == 40


async def test_concurrent_retains_admit_exactly_the_burst(harness: HarnessFactory) -> None:
    """50 concurrent retains by one principal with burst 10: exactly 10 are stored."""
    h = harness({"rate_limits": {"retain": {"per_principal": {"rate": 0.001, "burst": 10}}}})
    caller = AstrocyteContext(principal="agent:bot")
    outcomes = await asyncio.gather(
        *(h.retain("bank", f"memory number {i}", context=caller) for i in range(50)),
        return_exceptions=True,
    )
    stored = [o for o in outcomes if not isinstance(o, BaseException)]
    limited = [o for o in outcomes if isinstance(o, RateLimited)]
    assert len(stored) == 10 and len(limited) == 40
    assert all(e.retry_after_s > 0 for e in limited)
    assert await h.stores.documents.count("bank") == 10
    # Another principal has its own bucket.
    await h.retain("bank", "someone else", context=AstrocyteContext(principal="user:2"))


async def test_engine_admit_refills_with_the_injected_clock(harness: HarnessFactory) -> None:
    clock = FakeClock()
    h = harness({"rate_limits": {"recall": {"per_bank": {"rate": 10, "burst": 1}}}}, clock=clock)
    h.engine.admit("p", "b", "recall")
    with pytest.raises(RateLimited) as err:
        h.engine.admit("p", "b", "recall")
    assert err.value.retry_after_s == pytest.approx(0.1)
    clock.now += 0.1
    h.engine.admit("p", "b", "recall")
