"""SourceRegistry: loading, lifecycle, health, thresholds and exponential backoff;
and how WebhookIngest uses it (503 while backing off, failures vs rejections)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from astrocyte import Astrocyte, load_config
from astrocyte.config.ingest_schema import SourceConfig
from astrocyte.embedders import HashingEmbedder
from astrocyte.ingest import (
    IngestSource,
    SourceRegistry,
    WebhookError,
    WebhookIngest,
    handle_webhook_ingest,
    sign_webhook,
)
from astrocyte.spi import HealthStatus

SECRET = "whsec-test-0123456789abcdef"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeStream:
    source_type = "stream"

    def __init__(self, source_id: str, fail_start: bool = False) -> None:
        self.source_id = source_id
        self.fail_start = fail_start
        self.started = 0
        self.stopped = 0

    async def start(self) -> None:
        if self.fail_start:
            raise ConnectionError("broker down")
        self.started += 1

    async def stop(self) -> None:
        self.stopped += 1

    async def health_check(self) -> HealthStatus:
        return HealthStatus(True, "ok")


def test_fake_source_satisfies_protocol() -> None:
    assert isinstance(FakeStream("s"), IngestSource)


def test_from_config_builds_webhooks_and_factory_sources() -> None:
    config = load_config(
        {
            "sources": {
                "hook": {"type": "webhook", "secret": SECRET, "target_bank_template": "b"},
                "kafka-in": {"type": "stream", "driver": "kafka"},
                "no-driver": {"type": "stream", "driver": "redis"},
                "proxy": {"type": "proxy", "url": "https://api.example.com/v1"},
                "off": {"type": "webhook", "enabled": False},
            }
        }
    )

    def kafka(name: str, source: SourceConfig) -> FakeStream:
        assert source.driver == "kafka"
        return FakeStream(name)

    registry = SourceRegistry.from_config(config, factories={"kafka": kafka})
    assert registry.names() == ["hook", "kafka-in"]
    assert registry.get("kafka-in") is not None
    assert not registry.is_registered("no-driver")


async def test_lifecycle_register_deregister_and_start_failures() -> None:
    clock = Clock()
    registry = SourceRegistry(clock=clock, failure_threshold=1, base_backoff_seconds=2)
    good, bad = FakeStream("good"), FakeStream("bad", fail_start=True)
    registry.register(good)
    registry.register(bad)
    with pytest.raises(ValueError, match="already registered"):
        registry.register(FakeStream("good"))
    assert registry.state("good") == "stopped"

    errors = await registry.start_all()
    assert errors["good"] is None and errors["bad"] == "broker down"
    assert registry.state("good") == "healthy"
    assert registry.state("bad") == "unhealthy"
    assert registry.backoff_remaining("bad") == 2
    health = registry.health()
    assert health["bad"].last_error == "start failed: ConnectionError: broker down"
    probes = await registry.check_health()
    assert probes["good"].ok and not probes["bad"].ok

    await registry.deregister("good")
    assert good.stopped == 1 and not registry.is_registered("good")
    await registry.deregister("unknown")  # ignored
    await registry.stop_all()
    assert bad.stopped == 0  # never started, so never stopped


def test_threshold_within_window_then_exponential_backoff() -> None:
    clock = Clock()
    registry = SourceRegistry(
        clock=clock,
        failure_threshold=3,
        window_seconds=10,
        base_backoff_seconds=1,
        max_backoff_seconds=5,
    )
    registry.register(FakeStream("s"))
    registry._trackers["s"].started = True

    # Failures spread wider than the window never trip the breaker.
    for _ in range(5):
        registry.record_failure("s", "boom")
        clock.now += 6
    assert registry.state("s") == "degraded"
    clock.now += 10
    assert registry.state("s") == "healthy"
    assert registry.backoff_remaining("s") == 0

    # Three within the window trip it: 1 s, then each failed probe doubles, capped.
    for _ in range(3):
        registry.record_failure("s", "boom")
    assert registry.state("s") == "unhealthy"
    backoffs = [registry.backoff_remaining("s")]
    for _ in range(4):
        clock.now += backoffs[-1]
        assert registry.backoff_remaining("s") == 0
        registry.record_failure("s", "boom again")  # the probe fails
        backoffs.append(registry.backoff_remaining("s"))
    assert backoffs == [1, 2, 4, 5, 5]

    # A successful probe closes the breaker and resets the backoff.
    clock.now += 5
    registry.record_success("s")
    assert registry.state("s") == "healthy"
    for _ in range(3):
        registry.record_failure("s", "boom")
    assert registry.backoff_remaining("s") == 1

    # Rejections are counted but never affect health.
    registry.record_rejection("s")
    assert registry.health()["s"].total_rejections == 1


class FailingBrain(Astrocyte):
    fail = True

    async def retain_many(self, *args: object, **kwargs: object):  # type: ignore[no-untyped-def,override]
        if self.fail:
            raise RuntimeError("store unavailable")
        return await super().retain_many(*args, **kwargs)  # type: ignore[arg-type]


def _signed(payload: object, ts: int | None = None) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    stamp = int(time.time()) if ts is None else ts
    return body, {"x-timestamp": str(stamp), "x-signature-256": sign_webhook(SECRET, stamp, body)}


async def test_internal_failures_trip_the_source_and_503_until_backoff(tmp_path: Path) -> None:
    config = load_config(
        {
            "storage": {"backend": "memory"},
            "sources": {
                "hook": {"type": "webhook", "secret": SECRET, "target_bank_template": "inbox"}
            },
        }
    )
    clock = Clock()
    async with FailingBrain(config, embedder=HashingEmbedder()) as brain:
        registry = SourceRegistry.from_config(config, clock=clock, failure_threshold=2)
        ingest = WebhookIngest(brain, registry=registry)
        body, headers = _signed({"content": "hello there"})
        for _ in range(2):
            with pytest.raises(WebhookError) as failed:
                await ingest.handle("hook", body, headers)
            assert failed.value.http_status == 500
        with pytest.raises(WebhookError) as backing_off:
            await ingest.handle("hook", body, headers)
        assert backing_off.value.http_status == 503
        assert backing_off.value.retry_after == 1

        # Bad signatures while tripped or not are rejections, not failures.
        clock.now += 1
        with pytest.raises(WebhookError) as forged:
            await ingest.handle("hook", body, {**headers, "x-signature-256": "sha256=00"})
        assert forged.value.http_status == 401
        brain.fail = False
        result = await ingest.handle("hook", body, headers)
        assert result.status == "stored"
        assert registry.state("hook") == "stopped"  # healthy again, just never started
        assert registry.health()["hook"].total_rejections == 1

        # Deregistered at runtime: gone.
        await registry.deregister("hook")
        with pytest.raises(WebhookError) as gone:
            await ingest.handle("hook", body, headers)
        assert gone.value.http_status == 404


async def test_access_grants_apply_to_sources() -> None:
    config = load_config(
        {
            "storage": {"backend": "memory"},
            "access_grants": [
                {"principals": ["source:hook"], "banks": ["allowed"], "permissions": ["write"]}
            ],
            "sources": {
                "hook": {"type": "webhook", "secret": SECRET},
            },
        }
    )
    async with Astrocyte(config, embedder=HashingEmbedder()) as brain:
        body, headers = _signed({"bank_id": "secret-bank", "content": "x y z"})
        with pytest.raises(WebhookError) as denied:
            await handle_webhook_ingest(brain, "hook", body, headers)
        assert denied.value.http_status == 403
        body, headers = _signed({"bank_id": "allowed", "content": "x y z"})
        ok = await handle_webhook_ingest(brain, "hook", body, headers)
        assert ok.bank_id == "allowed"
        assert ok.idempotency_key is None  # no key: stored, not deduplicated
