"""Shared fixtures: the server address comes from ``ASTROCYTE_TEST_REDIS_URL``.

Start the server with ``bash scripts/services.sh start redis`` and
``eval "$(bash scripts/services.sh env redis)"``. Without the variable the tests that
need the server skip, unless ``ASTROCYTE_REQUIRE_SERVICES=1`` (as in CI), where they
fail instead. Every test uses streams and groups of its own (random names) and deletes
them afterwards, so tests can share the server.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from astrocyte import Astrocyte, load_config
from astrocyte.testing import service_env
from redis.asyncio import Redis

URL_VAR = "ASTROCYTE_TEST_REDIS_URL"


def redis_url() -> str:
    """URL of the test server (skips or fails the test without one)."""
    return service_env(URL_VAR, hint="run scripts/services.sh start redis, then its env")[URL_VAR]


@pytest.fixture
def url() -> str:
    """URL of the test server."""
    return redis_url()


@pytest.fixture
async def redis(url: str) -> AsyncIterator[Redis]:
    """A plain client of the test server (the producer side of the tests)."""
    client = Redis.from_url(url)
    try:
        await client.ping()
    except Exception as exc:
        pytest.fail(f"Redis at {url} does not answer: {exc}")
    yield client
    await close_client(client)


async def close_client(client: Redis) -> None:
    """Close a client (``aclose`` is redis-py >= 5.0.1)."""
    closer: Any = getattr(client, "aclose", None) or client.close
    await closer()


@pytest.fixture
async def stream(redis: Redis) -> AsyncIterator[str]:
    """A stream name no other test uses; it and its dead-letter stream are deleted after."""
    name = f"astrocyte-test:{uuid.uuid4().hex[:12]}"
    yield name
    await redis.delete(name, f"{name}:dlq")


def source_config(url: str, streams: list[str], **options: Any) -> dict[str, Any]:
    """A ``sources.<name>`` entry of a redis stream source."""
    opts: dict[str, Any] = {"url": url, "streams": streams, "block_ms": 200, **options}
    return {"type": "stream", "driver": "redis", "options": opts}


def make_config(tmp_path: Path, sources: Mapping[str, Any], **sections: Any) -> Any:
    """A config on the embedded store under tmp_path with the hashing embedder."""
    return load_config(
        {
            "storage": {"backend": "embedded", "path": str(tmp_path / "astrocyte.db")},
            "embedder": {"provider": "hashing"},
            "sources": dict(sources),
            **sections,
        }
    )


@pytest.fixture
def brain_factory(tmp_path: Path) -> Callable[..., Astrocyte]:
    """``brain_factory(sources, **sections)``: an Astrocyte on its own embedded file."""

    def make(sources: Mapping[str, Any], **sections: Any) -> Astrocyte:
        return Astrocyte(make_config(tmp_path, sources, **sections))

    return make


async def produce(
    redis: Redis, stream: str, payloads: list[Any], field: str = "payload"
) -> list[str]:
    """XADD each payload (a dict is sent as JSON, bytes/str as is) in one MULTI, so a
    consumer sees all of them or none (tests rely on whole batches); the entry ids."""
    async with redis.pipeline(transaction=True) as pipe:
        for payload in payloads:
            value = json.dumps(payload) if isinstance(payload, dict) else payload
            pipe.xadd(stream, {field: value})
        ids = await pipe.execute()
    return [entry_id.decode() for entry_id in ids]


async def wait_until(
    check: Callable[[], Awaitable[bool]], within: float = 20.0, what: str = "condition"
) -> None:
    """Poll ``check`` until it is true; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        if await check():
            return
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.05)


async def bank_count(brain: Astrocyte, bank: str) -> int:
    """Memories in ``bank``."""
    return sum(b.memory_count for b in await brain.list_banks() if b.bank_id == bank)


async def bank_records(brain: Astrocyte, bank: str) -> list[Any]:
    """Every memory record stored in ``bank`` (read from the document store)."""
    from astrocyte.spi import RecordFilter

    docs = brain.stores.documents
    ids = await docs.find(bank, RecordFilter())
    return list(await docs.get(bank, ids))
