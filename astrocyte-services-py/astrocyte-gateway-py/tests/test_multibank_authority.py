"""Multi-bank strategies and recall authority through the HTTP API (real uvicorn)."""

from __future__ import annotations

import httpx
from helpers import ALICE_KEY, api_key_config, h

AUTHORITY = {
    "tiers": ["canonical", "conversational"],
    "tier_by_bank": {"policy": "canonical", "chat-*": "conversational"},
    "rules_inline": "Prefer the higher tier when they disagree.",
    "apply_to_reflect": True,
}


async def _seed(client: httpx.AsyncClient) -> None:
    for bank, text in (
        ("policy", "The Lisbon office closes at 18:00 on Fridays."),
        ("chat-alice", "Someone said the Lisbon office closes at 17:00 on Fridays."),
    ):
        r = await client.post("/v1/retain", json={"content": text, "bank_id": bank}, headers=h())
        assert r.status_code == 200, r.text


async def test_strategy_and_authority_context_over_http(gateway_server):
    url = gateway_server(api_key_config(recall_authority=AUTHORITY))
    async with httpx.AsyncClient(base_url=url) as client:
        await _seed(client)
        query = {"query": "Lisbon office Friday closing", "banks": ["chat-alice", "policy"]}
        r = await client.post("/v1/recall", json={**query, "strategy": "first_match"}, headers=h())
        assert r.status_code == 200, r.text
        body = r.json()
        assert [hit["provenance"]["bank_id"] for hit in body["hits"]] == ["chat-alice"]
        assert body["multi_bank"] == {
            "strategy": "first_match",
            "min_score": 0.0,
            "searched": ["chat-alice"],
            "not_searched": ["policy"],
        }

        r = await client.post("/v1/recall", json=query, headers=h())
        context = r.json()["authority_context"]
        assert [g["tier"] for g in context["tiers"]] == ["canonical", "conversational"]
        assert context["rules"] == AUTHORITY["rules_inline"]
        assert context["text"].index("18:00") < context["text"].index("17:00")

        r = await client.post("/v1/reflect", json=query, headers=h())
        assert r.status_code == 200, r.text
        tiers = [c["authority_tier"] for c in r.json()["citations"]]
        assert tiers == ["canonical", "conversational"]


async def test_bad_strategy_is_a_422_naming_the_field(gateway_server):
    url = gateway_server(api_key_config())
    async with httpx.AsyncClient(base_url=url) as client:
        r = await client.post(
            "/v1/recall",
            json={"query": "x", "banks": ["a", "b"], "strategy": "round_robin"},
            headers=h(ALICE_KEY),
        )
        assert r.status_code == 422
        error = r.json()["error"]
        assert any(d["loc"][-1] == "strategy" for d in error["details"])
        r = await client.post(
            "/v1/recall",
            json={"query": "x", "banks": ["a", "b"], "min_score": -1},
            headers=h(ALICE_KEY),
        )
        assert r.status_code == 422


async def test_without_the_section_responses_have_no_new_keys(gateway_server):
    url = gateway_server(api_key_config())
    async with httpx.AsyncClient(base_url=url) as client:
        await _seed(client)
        r = await client.post(
            "/v1/recall", json={"query": "Lisbon", "bank_id": "policy"}, headers=h()
        )
        assert "authority_context" not in r.json() and "multi_bank" not in r.json()
        r = await client.post(
            "/v1/reflect", json={"query": "Lisbon", "bank_id": "policy"}, headers=h()
        )
        assert all("authority_tier" not in c for c in r.json()["citations"])
