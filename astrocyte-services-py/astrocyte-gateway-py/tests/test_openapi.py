"""The committed openapi.json must match what the app serves."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from export_openapi import CANONICAL_CONFIG, SPEC_PATH, render


def test_committed_spec_matches_the_app():
    assert SPEC_PATH.read_text(encoding="utf-8") == render(), (
        "openapi.json is stale: run python scripts/export_openapi.py"
    )


async def test_served_spec_and_docs(gateway_server):
    url = gateway_server(CANONICAL_CONFIG)
    async with httpx.AsyncClient(base_url=url) as client:
        served = (await client.get("/openapi.json")).json()
        assert served == json.loads(SPEC_PATH.read_text(encoding="utf-8"))
        assert set(served["paths"]) >= {
            "/v1/retain",
            "/v1/recall",
            "/v1/reflect",
            "/v1/forget",
            "/v1/ingest/webhook/{source_id}",
            "/health",
            "/health/live",
            "/health/ingest",
            "/v1/admin/sources",
            "/v1/admin/banks",
        }
        docs = await client.get("/docs")
        assert docs.status_code == 200 and "swagger" in docs.text.lower()
