"""Recall authority end to end over real parts.

One fact, stated three ways, in three places:

* a ``canonical`` bank kept in PostgreSQL/pgvector (a storage route),
* a ``conversational`` bank in the embedded SQLite file (the default store),
* a proxy source (a search endpoint on a real loopback HTTP server), tiered ``external``.

Recall must show all three with their tier labels; reflect's LLM (the same loopback
server, OpenAI-compatible, recording every request) must receive them in tier order; and
with the section absent, results and prompts must be exactly what they were before.

Needs ``ASTROCYTE_TEST_PG_DSN`` (``scripts/services.sh start postgres``).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from astrocyte import Astrocyte, load_config
from astrocyte.testing.openai_server import OpenAICompatibleServer

QUERY = "When does the Lisbon office close on Fridays?"
CANON = "Lisbon office hours: the office closes at 18:00 on Fridays."
CHAT = "Ana said in chat that the Lisbon office closes at 17:00 on Fridays."
WIKI = "Wiki: the Lisbon office Friday closing time is 17:30."
RULES = "When tiers disagree, prefer the higher tier and say so."
BANKS = ["canonical-hr", "chat-ana"]


async def _search(request: Request) -> JSONResponse:
    """The proxy source's search endpoint: one wiki passage for any query."""
    return JSONResponse({"hits": [{"text": WIKI, "score": 0.9, "id": "wiki-lisbon"}]})


def _reply(messages: list[dict[str, Any]]) -> str:
    """Answer like a model following the rules: [1] is the top tier's memory."""
    return "It closes at 18:00 on Fridays, per the canonical handbook [1]; chat says 17:00 [2]."


@pytest.fixture
async def server() -> AsyncIterator[OpenAICompatibleServer]:
    async with OpenAICompatibleServer(
        chat_reply=_reply, extra_routes=[Route("/search", _search)]
    ) as s:
        yield s


def _config(
    tmp_path: Path, dsn: str, schema: str, server: OpenAICompatibleServer, authority: Any
) -> Any:
    pg = {"provider": "pgvector", "dsn": dsn, "schema": schema, "dimensions": 256}
    sections: dict[str, Any] = {
        "embedder": {"provider": "hashing"},
        "storage": {
            "path": str(tmp_path / "main.db"),
            "routes": [
                {
                    "banks": ["canonical-*"],
                    "document_store": pg,
                    "vector_store": dict(pg),
                    "path": str(tmp_path / "canonical-graph.db"),
                }
            ],
        },
        "llm": {
            "provider": "openai",
            "base_url": server.base_url,
            "model": "test-chat",
            "api_key": "sk-test",
            "max_retries": 0,
            "timeout": 10,
        },
        "sources": {
            "wiki": {
                "type": "proxy",
                "url": f"http://127.0.0.1:{server.port}/search?q={{query}}",
                "target_bank_template": "chat-ana",
            }
        },
    }
    if authority is not None:
        sections["recall_authority"] = authority
    return load_config(sections)


AUTHORITY = {
    "tiers": ["canonical", "curated", "conversational", "external"],
    "tier_by_bank": {"canonical-*": "canonical", "chat-*": "conversational"},
    "tier_by_source": {"wiki": "external"},
    "rules_inline": RULES,
    "apply_to_reflect": True,
}


def _stable(result: Any) -> dict[str, Any]:
    """A result as JSON without what differs run to run: timings, and the ``created_at``
    of outside (proxy) hits, which is the time of the recall."""
    data = json.loads(result.model_dump_json())
    data.pop("elapsed_ms", None)
    for hit in data["hits"]:
        if hit["origin"] != "local":
            hit["provenance"].pop("created_at")
    for trace in data.get("strategies", []):
        trace.pop("elapsed_ms", None)
    for proxy in data.get("proxies", []):
        proxy.pop("elapsed_ms", None)
    return data


async def test_tiers_across_pgvector_embedded_and_proxy(
    tmp_path: Path, dsn: str, schema: str, server: OpenAICompatibleServer
) -> None:
    # Written without the section: the "before" data every later recall reads.
    async with Astrocyte(_config(tmp_path, dsn, schema, server, None)) as before:
        await before.retain(CANON, "canonical-hr", occurred_at="2026-03-02")
        await before.retain(CHAT, "chat-ana", occurred_at="2026-11-20")
        plain = await before.recall(QUERY, banks=BANKS)
        server.clear()
        await before.reflect(QUERY, banks=BANKS)
        plain_prompt = server.requests_to("/v1/chat/completions")[-1].json["messages"]

    # The canonical bank really lives in PostgreSQL, the chat bank in the embedded file.
    conn = await asyncpg.connect(dsn)
    try:
        in_pg = await conn.fetchval(
            f'SELECT count(*) FROM "{schema}".memories WHERE bank_id = $1', "canonical-hr"
        )
        chat_in_pg = await conn.fetchval(
            f'SELECT count(*) FROM "{schema}".memories WHERE bank_id = $1', "chat-ana"
        )
    finally:
        await conn.close()
    assert (in_pg, chat_in_pg) == (1, 0)

    async with Astrocyte(_config(tmp_path, dsn, schema, server, AUTHORITY)) as tiered:
        result = await tiered.recall(QUERY, banks=BANKS)
        server.clear()
        reflected = await tiered.reflect(QUERY, banks=BANKS)
        prompt = server.requests_to("/v1/chat/completions")[-1].json["messages"]

    # All three, each labelled with its tier.
    context = result.authority_context
    assert context is not None
    labelled = {e.text: e.tier for g in context.tiers for e in g.entries}
    assert labelled == {CANON: "canonical", CHAT: "conversational", WIKI: "external"}
    origins = {h.text: (h.origin, h.provenance.bank_id) for h in result.hits}
    assert origins[CANON] == ("local", "canonical-hr")
    assert origins[CHAT] == ("local", "chat-ana")
    assert origins[WIKI][0] == "proxy:wiki"
    # Fusion is untouched: same hits, same order, same scores as without the section.
    without_context = _stable(result)
    without_context.pop("authority_context")
    assert without_context == _stable(plain)

    # Reflect's LLM got the tiered context, highest tier first, with the rules.
    system, user = prompt
    assert "authority tier" in system["content"]
    body = user["content"]
    assert body == f"{context.text}\n\nQuestion: {QUERY}"
    assert body.index(RULES) < body.index(CANON) < body.index(CHAT) < body.index(WIKI)
    assert "## Tier 1 of 4: canonical\n[1] (bank canonical-hr, 2026-03-02)" in body
    assert [(c.bank_id, c.authority_tier) for c in reflected.citations] == [
        ("canonical-hr", "canonical"),
        ("chat-ana", "conversational"),
    ]

    # Section absent: no new keys, and the prompt is the plain numbered-evidence one.
    assert "authority_context" not in _stable(plain)
    system0, user0 = plain_prompt
    assert "authority" not in system0["content"]
    assert user0["content"].startswith("Memories:\n[1] ")
    assert user0["content"].endswith(f"\n\nQuestion: {QUERY}")


async def test_section_without_apply_to_reflect_keeps_the_prompt(
    tmp_path: Path, dsn: str, schema: str, server: OpenAICompatibleServer
) -> None:
    prompts = []
    for authority in (None, {**AUTHORITY, "apply_to_reflect": False}):
        async with Astrocyte(_config(tmp_path, dsn, schema, server, authority)) as b:
            if authority is None:
                await b.retain(CANON, "canonical-hr", occurred_at="2026-03-02")
                await b.retain(CHAT, "chat-ana", occurred_at="2026-11-20")
            server.clear()
            await b.reflect(QUERY, banks=BANKS)
            prompts.append(server.requests_to("/v1/chat/completions")[-1].json["messages"])
    assert prompts[0] == prompts[1]
