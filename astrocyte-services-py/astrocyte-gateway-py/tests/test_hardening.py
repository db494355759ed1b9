"""Request ids, body limit, CORS, unhealthy stores, graceful shutdown, access log,
tracing: all over a real server."""

from __future__ import annotations

import asyncio
import json
import logging

import httpx
from astrocyte import Astrocyte
from astrocyte.config import load_config
from astrocyte.spi import HealthStatus
from astrocyte.stores.memory import InMemoryDocumentStore, InMemoryGraphStore, InMemoryVectorStore
from astrocyte.stores.storeset import StoreSet
from conftest import start_gateway
from helpers import api_key_config, h


async def test_request_id_propagation(gateway_server):
    url = gateway_server(api_key_config())
    async with httpx.AsyncClient(base_url=url) as client:
        r = await client.get("/health/live", headers={"X-Request-ID": "abc-123"})
        assert r.headers["x-request-id"] == "abc-123"
        r = await client.post("/v1/recall", json={"query": "x"}, headers={"X-Request-ID": "req.42"})
        assert r.status_code == 401 and r.json()["error"]["request_id"] == "req.42"
        # Insane ids are replaced, not echoed.
        r = await client.get("/health/live", headers={"X-Request-ID": "bad id\twith<stuff>"})
        generated = r.headers["x-request-id"]
        assert generated != "bad id\twith<stuff>" and len(generated) == 32
        r2 = await client.get("/health/live")
        assert r2.headers["x-request-id"] != generated


async def _raw(port: int, head: bytes, body_parts: list[bytes]) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head)
    for part in body_parts:
        writer.write(part)
    await writer.drain()
    data = b""
    # The server answers and closes the connection (the rest of the body is unread).
    while b"payload_too_large" not in data:
        part = await asyncio.wait_for(reader.read(65536), 10)
        if not part:
            break
        data += part
    writer.close()
    return data


async def test_body_limit_413_without_reading_everything(gateway_server):
    url = gateway_server(api_key_config(gateway={"max_request_bytes": 4096}))
    port = int(url.rsplit(":", 1)[1])
    # Declared 100 MB, only 1 KB sent: answered at once from Content-Length.
    head = (
        b"POST /v1/retain HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"X-Api-Key: alice-key-0123456789abcdef\r\nContent-Length: 100000000\r\n\r\n"
    )
    data = await _raw(port, head, [b"x" * 1024])
    assert data.startswith(b"HTTP/1.1 413"), data[:200]
    assert b'"payload_too_large"' in data
    # Chunked, no length: refused once 4 KB have streamed in, while the sender has
    # sent only 8 KB of a body it never finishes.
    head = (
        b"POST /v1/retain HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"X-Api-Key: alice-key-0123456789abcdef\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"400\r\n" + b"x" * 1024 + b"\r\n"
    data = await _raw(port, head, [chunk] * 8)
    assert data.startswith(b"HTTP/1.1 413"), data[:200]
    assert b'"payload_too_large"' in data and b"x-request-id" in data.lower()


async def test_cors_preflight(gateway_server):
    url = gateway_server(api_key_config(gateway={"cors_origins": ["https://app.example"]}))
    async with httpx.AsyncClient(base_url=url) as client:
        r = await client.options(
            "/v1/recall",
            headers={
                "Origin": "https://app.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "x-api-key, content-type",
            },
        )
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == "https://app.example"
        assert "x-api-key" in r.headers["access-control-allow-headers"].lower()
        r = await client.options(
            "/v1/recall",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
        assert r.status_code == 400
        assert "access-control-allow-origin" not in r.headers
        r = await client.get("/health/live", headers={"Origin": "https://app.example"})
        assert r.headers["access-control-allow-origin"] == "https://app.example"
        assert "x-request-id" in r.headers["access-control-expose-headers"].lower()


class _SickGraph(InMemoryGraphStore):
    async def health(self) -> HealthStatus:
        return HealthStatus(False, "graph at 10.1.2.3 unreachable")


def _brain(graph=None) -> Astrocyte:
    return Astrocyte(
        load_config(api_key_config()),
        stores=StoreSet(
            documents=InMemoryDocumentStore(),
            vectors=InMemoryVectorStore(),
            graph=graph or InMemoryGraphStore(),
        ),
    )


async def test_health_503_when_a_store_is_unhealthy(gateway_server):
    brain = _brain(_SickGraph())
    url = gateway_server(brain=brain)
    async with httpx.AsyncClient(base_url=url) as client:
        r = await client.get("/health")
        assert r.status_code == 503
        assert r.json()["status"] == "unhealthy"
        assert r.json()["stores"]["graph"]["ok"] is False
        assert "10.1.2.3" not in r.text  # details only for admins
        assert (await client.get("/health/live")).status_code == 200
    await brain.close()


async def test_graceful_shutdown_finishes_in_flight_request():
    brain = _brain()
    closed = asyncio.Event()
    started = asyncio.Event()
    loop = asyncio.get_running_loop()

    async def slow_recall(*args, **kwargs):
        loop.call_soon_threadsafe(started.set)
        await asyncio.sleep(1.0)
        return await Astrocyte.recall(brain, *args, **kwargs)

    brain.recall = slow_recall  # type: ignore[method-assign]
    # Owned-by-app closing is tested through the lifespan: wrap the authenticator.
    from astrocyte_gateway.app import create_app

    app = create_app(brain=brain)
    auth = app.state.gateway.authenticator
    original_close = auth.close

    async def close():
        await original_close()
        loop.call_soon_threadsafe(closed.set)

    auth.close = close
    running = start_gateway(app=app)
    async with httpx.AsyncClient(base_url=running, timeout=10) as client:
        await client.post("/v1/retain", json={"content": "x", "bank_id": "b"}, headers=h())
        pending = asyncio.create_task(
            client.post("/v1/recall", json={"query": "x", "bank_id": "b"}, headers=h())
        )
        await asyncio.wait_for(started.wait(), 5)
        running.server.should_exit = True  # what SIGTERM does
        r = await pending
        assert r.status_code == 200, r.text
        assert r.json()["hits"]
    await asyncio.to_thread(running.thread.join, 10)
    assert not running.thread.is_alive()
    assert closed.is_set()
    await brain.close()


async def test_access_log_is_one_json_line_per_request(gateway_server, caplog):
    url = gateway_server(api_key_config())
    with caplog.at_level(logging.INFO, logger="astrocyte_gateway.access"):
        async with httpx.AsyncClient(base_url=url) as client:
            await client.post(
                "/v1/retain",
                json={"content": "x", "bank_id": "b"},
                headers={**h(), "X-Request-ID": "log-1"},
            )
        for _ in range(50):
            if any("log-1" in r.getMessage() for r in caplog.records):
                break
            await asyncio.sleep(0.02)
    lines = [
        json.loads(r.getMessage()) for r in caplog.records if r.name == "astrocyte_gateway.access"
    ]
    entry = next(e for e in lines if e["request_id"] == "log-1")
    assert entry["method"] == "POST" and entry["path"] == "/v1/retain"
    assert entry["status"] == 200 and entry["principal"] == "user:alice"
    assert isinstance(entry["duration_ms"], float)
    assert set(entry) == {"method", "path", "status", "duration_ms", "principal", "request_id"}


async def test_tracing_spans(gateway_server):
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    url = gateway_server(api_key_config())
    async with httpx.AsyncClient(base_url=url) as client:
        r = await client.post("/v1/retain", json={"content": "x", "bank_id": "b"}, headers=h())
        assert r.status_code == 200
    await asyncio.sleep(0.1)
    finished = exporter.get_finished_spans()
    by_id = {s.context.span_id: s for s in finished}
    library = next(s for s in finished if s.name == "astrocyte.retain")
    # The library call's span sits under the gateway's request span (recent FastAPI
    # versions add their own HTTP spans around and inside it).
    ancestors = []
    span = library
    while span.parent is not None:
        span = by_id[span.parent.span_id]
        ancestors.append(span)
    request_span = next(a for a in ancestors if "astrocyte.request_id" in a.attributes)
    assert request_span.name == "POST /v1/retain"
    assert request_span.attributes["http.response.status_code"] == 200
    assert request_span.attributes["enduser.id"] == "user:alice"
