"""End to end: signed webhooks over a real socket (uvicorn on 127.0.0.1) into memories."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from astrocyte import Astrocyte, load_config
from astrocyte.embedders import HashingEmbedder
from astrocyte.ingest import SourceRegistry, WebhookIngest, create_ingest_webhook_app, sign_webhook

SECRET = "whsec-test-0123456789abcdef"
MAX_BODY = 4096

TRANSCRIPT: dict[str, Any] = {
    "event_id": "evt-1001",
    "principal": "alice",
    "session_id": "s-42",
    "turns": [
        {
            "speaker": "Alice",
            "text": "My parcel to Lisbon never arrived.",
            "timestamp": "2024-05-21T19:15:00Z",
            "turn_id": "t1",
        },
        {
            "speaker": "Bob",
            "text": "I have issued a refund for the Lisbon parcel.",
            "timestamp": "2024-05-21T19:16:00Z",
            "turn_id": "t2",
        },
        {
            "speaker": "Alice",
            "text": "Thanks, please also cancel my subscription renewal.",
            "timestamp": "2024-05-21T19:17:00Z",
            "turn_id": "t3",
        },
        {
            "speaker": "Carol",
            "text": "Supervisor here: the renewal is cancelled as of today.",
            "timestamp": "2024-05-21T19:18:00Z",
            "turn_id": "t4",
        },
    ],
}


@dataclass
class Server:
    brain: Astrocyte
    client: httpx.AsyncClient
    registry: SourceRegistry

    async def post(
        self,
        source: str,
        payload: Any,
        *,
        secret: str = SECRET,
        timestamp: int | None = None,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> httpx.Response:
        body = raw if raw is not None else json.dumps(payload).encode()
        ts = int(time.time()) if timestamp is None else timestamp
        sent = {
            "Content-Type": "application/json",
            "X-Timestamp": str(ts),
            "X-Signature-256": sign_webhook(secret, ts, body),
            **(headers or {}),
        }
        return await self.client.post(f"/ingest/webhook/{source}", content=body, headers=sent)

    async def memory_count(self) -> int:
        return sum(b.memory_count for b in await self.brain.list_banks())


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture
async def server(backend: str, tmp_path: Path) -> AsyncIterator[Server]:
    config = load_config(
        {
            "storage": {"backend": backend, "path": str(tmp_path / "astrocyte.db")},
            # Small chunks so the four turns become several turn-preserving memories.
            "chunking": {"max_chars": 120},
            "sources": {
                "support-chat": {
                    "type": "webhook",
                    "secret": SECRET,
                    "target_bank_template": "user-{principal}",
                },
                "unsigned": {"type": "webhook", "target_bank_template": "inbox"},
                "off": {"type": "webhook", "secret": SECRET, "enabled": False},
                "tickets": {
                    "type": "webhook",
                    "secret": SECRET,
                    "extraction_profile": "ticket",
                    "target_bank_template": "support",
                },
            },
            "extraction_profiles": {
                "ticket": {
                    "tag_rules": [{"tag": "urgent", "path": "$.content", "contains": "outage"}],
                    "metadata_mapping": {"customer": "$.metadata.customer_id"},
                }
            },
        }
    )
    async with Astrocyte(config, embedder=HashingEmbedder()) as brain:
        registry = SourceRegistry.from_config(brain.config)
        ingest = WebhookIngest(brain, registry=registry, max_body_bytes=MAX_BODY)
        app = create_ingest_webhook_app(brain, registry, ingest=ingest)
        sock = _free_socket()
        port = sock.getsockname()[1]
        # Served on the test's own event loop, so the brain is used from one loop.
        uv = uvicorn.Server(
            uvicorn.Config(app, log_config=None, log_level="warning", access_log=False)
        )
        task = asyncio.create_task(uv.serve(sockets=[sock]))
        deadline = time.monotonic() + 10
        while not uv.started:
            assert not task.done(), task
            assert time.monotonic() < deadline, "server did not start"
            await asyncio.sleep(0.01)
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                yield Server(brain, client, registry)
        finally:
            uv.should_exit = True
            await asyncio.wait_for(task, 10)
            sock.close()


async def test_signed_transcript_becomes_attributed_memories(server: Server) -> None:
    response = await server.post("support-chat", TRANSCRIPT)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "stored"
    assert body["bank_id"] == "user-alice"
    assert body["idempotency_key"] == "support-chat:evt-1001"
    assert len(body["memory_ids"]) >= 2  # 120-char chunks: the turns are split up

    result = await server.brain.recall("refund Lisbon parcel", "user-alice")
    assert result.hits
    top = result.hits[0].provenance
    assert "Bob: I have issued a refund" in result.hits[0].text
    assert "Bob" in str(top.metadata["speakers"]).split(",")
    assert "t2" in str(top.metadata["turn_ids"]).split(",")
    assert top.metadata["ingest_source"] == "support-chat"
    assert top.source_id == "support-chat:evt-1001"

    # Every turn is in exactly one memory, with its speaker, and each memory's
    # occurred_at is its first turn's timestamp.
    hits = (await server.brain.recall("Alice Bob Carol", "user-alice", max_results=50)).hits
    turn_ids = [t for h in hits for t in str(h.provenance.metadata["turn_ids"]).split(",")]
    assert sorted(turn_ids) == ["t1", "t2", "t3", "t4"]
    by_turn = {str(h.provenance.metadata["turn_ids"]).split(",")[0]: h for h in hits}
    carol = next(h for h in hits if "t4" in str(h.provenance.metadata["turn_ids"]))
    assert "Carol" in str(carol.provenance.metadata["speakers"])
    assert by_turn["t1"].provenance.occurred_at is not None
    assert by_turn["t1"].provenance.occurred_at.isoformat().startswith("2024-05-21T19:15")


async def test_content_payload_and_health(server: Server) -> None:
    payload = {"id": 7, "principal": "bob", "content": "Bob prefers email over phone calls."}
    response = await server.post("support-chat", payload)
    assert response.status_code == 200, response.text
    assert response.json()["bank_id"] == "user-bob"
    health = await server.client.get("/health/ingest")
    sources = health.json()["sources"]
    assert sources["support-chat"]["ok"] is True
    assert sources["support-chat"]["total_successes"] == 1
    # A webhook without a secret is registered but reported unhealthy (it refuses all).
    assert sources["unsigned"]["ok"] is False
    assert health.status_code == 503
    assert "off" not in sources


@pytest.mark.parametrize(
    ("case", "status", "error"),
    [
        ("bad_signature", 401, "invalid_signature"),
        ("missing_signature", 401, "invalid_signature"),
        ("stale_timestamp", 401, "stale_timestamp"),
        ("future_timestamp", 401, "stale_timestamp"),
        ("oversized", 413, "body_too_large"),
        ("malformed_json", 400, "malformed_payload"),
        ("not_an_object", 400, "malformed_payload"),
        ("no_turns_or_content", 400, "malformed_payload"),
        ("bad_turn", 400, "malformed_payload"),
        ("template_field_missing", 400, "malformed_payload"),
        ("unknown_source", 404, "unknown_source"),
        ("disabled_source", 404, "unknown_source"),
        ("unsigned_source", 401, "invalid_signature"),
    ],
)
async def test_rejections_store_nothing(server: Server, case: str, status: int, error: str) -> None:
    now = int(time.time())
    post = server.post
    if case == "bad_signature":
        response = await post("support-chat", TRANSCRIPT, secret="x" * 24)
    elif case == "missing_signature":
        response = await post("support-chat", TRANSCRIPT, headers={"X-Signature-256": ""})
    elif case == "stale_timestamp":
        response = await post("support-chat", TRANSCRIPT, timestamp=now - 301)
    elif case == "future_timestamp":
        response = await post("support-chat", TRANSCRIPT, timestamp=now + 3600)
    elif case == "oversized":
        big = {**TRANSCRIPT, "pad": "x" * MAX_BODY}
        response = await post("support-chat", big)
    elif case == "malformed_json":
        response = await post("support-chat", None, raw=b'{"turns": [')
    elif case == "not_an_object":
        response = await post("support-chat", ["a", "b"])
    elif case == "no_turns_or_content":
        response = await post("support-chat", {"principal": "alice", "text": "hi"})
    elif case == "bad_turn":
        response = await post("support-chat", {"principal": "alice", "turns": [{"text": 5}]})
    elif case == "template_field_missing":
        response = await post(
            "support-chat", {k: v for k, v in TRANSCRIPT.items() if k != "principal"}
        )
    elif case == "unknown_source":
        response = await post("nope", TRANSCRIPT)
    elif case == "disabled_source":
        response = await post("off", TRANSCRIPT)
    else:
        response = await post("unsigned", TRANSCRIPT)
    assert response.status_code == status, response.text
    assert response.json()["error"] == error
    assert await server.brain.list_banks() == []
    assert await server.memory_count() == 0


async def test_redelivery_is_idempotent(server: Server) -> None:
    first = await server.post("support-chat", TRANSCRIPT)
    assert first.json()["status"] == "stored"
    stored = await server.memory_count()
    # A retry is signed afresh (new timestamp) but carries the same event id.
    again = await server.post("support-chat", TRANSCRIPT, timestamp=int(time.time()) + 1)
    assert again.status_code == 200
    assert again.json()["status"] == "duplicate"
    assert sorted(again.json()["memory_ids"]) == sorted(first.json()["memory_ids"])
    assert await server.memory_count() == stored


async def test_idempotency_header_overrides_payload_id(server: Server) -> None:
    payload = {"principal": "alice", "content": "Alice's locker code is 4411."}
    one = await server.post("support-chat", payload, headers={"Idempotency-Key": "k-1"})
    two = await server.post("support-chat", payload, headers={"Idempotency-Key": "k-1"})
    three = await server.post("support-chat", payload, headers={"Idempotency-Key": "k-2"})
    assert [r.json()["status"] for r in (one, two, three)] == ["stored", "duplicate", "stored"]


async def test_concurrent_redeliveries_store_one_set(server: Server) -> None:
    responses = await asyncio.gather(*(server.post("support-chat", TRANSCRIPT) for _ in range(3)))
    statuses = sorted(r.json()["status"] for r in responses)
    assert statuses == ["duplicate", "duplicate", "stored"]
    stored = next(r for r in responses if r.json()["status"] == "stored")
    assert await server.memory_count() == len(stored.json()["memory_ids"])


async def test_the_sources_extraction_profile_applies_to_deliveries(server: Server) -> None:
    sent = await server.post(
        "tickets",
        {"event_id": "t-1", "content": "Full outage in the Lisbon office since 9am.",
         "metadata": {"customer_id": "c-77"}},
    )  # fmt: skip
    assert sent.status_code == 200, sent.text
    hits = (await server.brain.recall("outage Lisbon office", "support")).hits
    assert hits and "urgent" in hits[0].provenance.tags
    assert hits[0].provenance.metadata["customer"] == "c-77"
