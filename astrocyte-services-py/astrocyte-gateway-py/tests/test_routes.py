"""Every route against a real uvicorn server."""

from __future__ import annotations

import json
import time

import httpx
from astrocyte.ingest.webhook import sign_webhook
from helpers import ACME_KEY, ADMIN_KEY, ALICE_KEY, BOB_KEY, WEBHOOK_SECRET, api_key_config, h


async def test_retain_recall_reflect_forget(gateway_server):
    url = gateway_server(api_key_config())
    async with httpx.AsyncClient(base_url=url) as client:
        r = await client.post(
            "/v1/retain",
            json={
                "content": "Alice prefers green tea in the morning.",
                "bank_id": "notes",
                "tags": ["pref"],
                "metadata": {"topic": "drinks"},
            },
            headers=h(),
        )
        assert r.status_code == 200, r.text
        retained = r.json()
        assert retained["bank_id"] == "notes" and retained["memory_ids"]

        r = await client.post(
            "/v1/recall", json={"query": "green tea", "bank_id": "notes"}, headers=h()
        )
        assert r.status_code == 200, r.text
        hits = r.json()["hits"]
        assert hits and "green tea" in hits[0]["text"]
        assert hits[0]["provenance"]["metadata"]["topic"] == "drinks"

        r = await client.post(
            "/v1/reflect", json={"query": "what tea?", "bank_id": "notes"}, headers=h()
        )
        assert r.status_code == 200, r.text
        assert r.json()["mode"] == "extractive" and r.json()["citations"]

        r = await client.post(
            "/v1/forget",
            json={"bank_id": "notes", "memory_ids": retained["memory_ids"]},
            headers=h(),
        )
        assert r.status_code == 200, r.text
        assert r.json()["deleted_ids"] == retained["memory_ids"]

        r = await client.post(
            "/v1/recall", json={"query": "green tea", "bank_id": "notes"}, headers=h()
        )
        assert r.json()["hits"] == []


async def test_health_routes(gateway_server):
    url = gateway_server(api_key_config())
    async with httpx.AsyncClient(base_url=url) as client:
        r = await client.get("/health")
        assert r.status_code == 200
        body = r.json()
        assert body["status"] == "ok" and body["stores"]
        assert all(s["ok"] for s in body["stores"].values())
        assert (await client.get("/health/live")).json() == {"status": "ok"}
        r = await client.get("/health/ingest")
        assert r.status_code == 200 and r.json() == {"ok": True, "sources": {}}


def _webhook_config():
    return api_key_config(
        sources={
            "crm": {
                "type": "webhook",
                "secret": WEBHOOK_SECRET,
                "target_bank_template": "crm-{payload.customer}",
                "principal": "source:crm",
            },
            "legacy": {
                "type": "webhook",
                "secret": WEBHOOK_SECRET,
                "path": "/hooks/legacy",
                "target_bank_template": "legacy",
            },
        }
    )


def _signed(body: bytes, secret: str = WEBHOOK_SECRET, ts: int | None = None) -> dict[str, str]:
    ts = int(time.time()) if ts is None else ts
    return {
        "X-Timestamp": str(ts),
        "X-Signature-256": sign_webhook(secret, ts, body),
        "Content-Type": "application/json",
    }


async def test_webhook_end_to_end(gateway_server):
    url = gateway_server(_webhook_config())
    payload = {"content": "Ticket 42: printer on fire", "customer": "c7", "event_id": "ev-1"}
    body = json.dumps(payload).encode()
    async with httpx.AsyncClient(base_url=url) as client:
        # No API key needed: the HMAC signature authenticates the source.
        r = await client.post("/v1/ingest/webhook/crm", content=body, headers=_signed(body))
        assert r.status_code == 200, r.text
        stored = r.json()
        assert stored["status"] == "stored" and stored["bank_id"] == "crm-c7"

        again = await client.post("/v1/ingest/webhook/crm", content=body, headers=_signed(body))
        assert again.status_code == 200 and again.json()["status"] == "duplicate"
        assert again.json()["memory_ids"] == stored["memory_ids"]

        bad = await client.post(
            "/v1/ingest/webhook/crm", content=body, headers=_signed(body, secret="x" * 20)
        )
        assert bad.status_code == 401
        assert bad.json()["error"]["code"] == "invalid_signature"
        stale = await client.post(
            "/v1/ingest/webhook/crm", content=body, headers=_signed(body, ts=1_000_000)
        )
        assert stale.status_code == 401 and stale.json()["error"]["code"] == "stale_timestamp"
        unknown = await client.post("/v1/ingest/webhook/nope", content=body, headers=_signed(body))
        assert unknown.status_code == 404

        # The configured custom path serves the same handler.
        r = await client.post("/hooks/legacy", content=body, headers=_signed(body))
        assert r.status_code == 200 and r.json()["bank_id"] == "legacy"

        # The retained event is recallable by the source's principal's bank reader.
        r = await client.post(
            "/v1/recall", json={"query": "printer", "bank_id": "crm-c7"}, headers=h()
        )
        assert r.status_code == 200 and "printer" in r.json()["hits"][0]["text"]

        r = await client.get("/health/ingest")
        assert r.status_code == 200
        assert r.json()["sources"]["crm"] == {
            "source_type": "webhook",
            "state": "healthy",
            "ok": True,
        }

        r = await client.get("/v1/admin/sources", headers=h(ADMIN_KEY))
        assert r.status_code == 200, r.text
        crm = r.json()["sources"]["crm"]
        assert crm["total_successes"] == 2 and crm["total_rejections"] == 2
        assert crm["enabled"] is True


async def test_admin_routes_refuse_non_admins(gateway_server):
    url = gateway_server(_webhook_config())
    async with httpx.AsyncClient(base_url=url) as client:
        for path in ("/v1/admin/sources", "/v1/admin/banks"):
            r = await client.get(path, headers=h(ALICE_KEY))
            assert r.status_code == 403, path
            assert r.json()["error"]["code"] == "forbidden"
            assert (await client.get(path)).status_code == 401


async def test_admin_banks_lists_counts_tenants_and_health(gateway_server):
    url = gateway_server(api_key_config())
    async with httpx.AsyncClient(base_url=url) as client:
        await client.post("/v1/retain", json={"content": "a", "bank_id": "b1"}, headers=h())
        await client.post("/v1/retain", json={"content": "b", "bank_id": "b1"}, headers=h())
        await client.post("/v1/retain", json={"content": "c", "bank_id": "t1"}, headers=h(ACME_KEY))
        r = await client.get("/v1/admin/banks", headers=h(ADMIN_KEY))
        assert r.status_code == 200, r.text
        banks = {(b["tenant"], b["bank_id"]): b["memory_count"] for b in r.json()["banks"]}
        assert banks == {(None, "b1"): 2, ("acme", "t1"): 1}
        assert all(s["ok"] for s in r.json()["stores"].values())


async def test_hashed_key_and_tenant_confinement(gateway_server):
    url = gateway_server(api_key_config())
    async with httpx.AsyncClient(base_url=url) as client:
        # Bob's entry holds only the SHA-256 of his key.
        r = await client.post(
            "/v1/retain", json={"content": "bob's note", "bank_id": "shared"}, headers=h(BOB_KEY)
        )
        assert r.status_code == 200, r.text
        # Carol (tenant acme) names the same bank id but lands in her tenant's bank.
        r = await client.post(
            "/v1/recall", json={"query": "note", "bank_id": "shared"}, headers=h(ACME_KEY)
        )
        assert r.status_code == 404  # acme's "shared" does not exist yet
        assert r.json()["error"]["code"] == "bank_not_found"
        r = await client.post(
            "/v1/retain",
            json={"content": "carol's note", "bank_id": "shared"},
            headers=h(ACME_KEY),
        )
        assert r.status_code == 200
        r = await client.post(
            "/v1/recall", json={"query": "note", "bank_id": "shared"}, headers=h(BOB_KEY)
        )
        assert [hit["text"] for hit in r.json()["hits"]] == ["bob's note"]
        r = await client.post(
            "/v1/recall", json={"query": "note", "bank_id": "shared"}, headers=h(ACME_KEY)
        )
        assert [hit["text"] for hit in r.json()["hits"]] == ["carol's note"]
