"""Recall authority: tiers stamped at retain, labelled context at recall, tiered reflect.

HTTP peers (a proxy source's search endpoint and the reflect LLM) are one real
OpenAI-compatible server on loopback (:class:`OpenAICompatibleServer`).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from astrocyte import Astrocyte, ConfigError, ValidationError, load_config
from astrocyte.embedders import HashingEmbedder
from astrocyte.ingest import WebhookIngest, sign_webhook
from astrocyte.recall.budget import estimate_tokens
from astrocyte.testing.openai_server import OpenAICompatibleServer

TIERS = ["canonical", "curated", "conversational", "external"]
RULES = "When tiers disagree, prefer the higher tier and say so."
QUERY = "When does the Lisbon office close on Fridays?"
CANON = "Lisbon office hours: the office closes at 18:00 on Fridays."
CHAT = "Ana mentioned the Lisbon office closes at 17:00 on Fridays now."
WIKI = "Wiki: Lisbon office Friday closing time is 17:30."
SECRET = "authority-test-secret-0123"


def _authority(**extra: Any) -> dict[str, Any]:
    return {
        "tiers": TIERS,
        "tier_by_bank": {"policy-*": "canonical", "chat-*": "conversational"},
        "rules_inline": RULES,
        **extra,
    }


def _config(tmp_path: Path, **sections: Any) -> Any:
    return load_config({"storage": {"backend": "memory"}, **sections})


@pytest.fixture
async def brain(tmp_path: Path) -> AsyncIterator[Astrocyte]:
    config = _config(tmp_path, recall_authority=_authority())
    async with Astrocyte(config, embedder=HashingEmbedder()) as b:
        await b.retain(CANON, "policy-hr")
        await b.retain(CHAT, "chat-ana")
        yield b


def _tiers(result: Any) -> dict[str, str | None]:
    return {e.text: e.tier for g in result.authority_context.tiers for e in g.entries}


async def test_retain_stamps_the_bank_tier(brain: Astrocyte) -> None:
    canon = await brain.recall(QUERY, "policy-hr")
    chat = await brain.recall(QUERY, "chat-ana")
    assert canon.hits[0].provenance.metadata["authority_tier"] == "canonical"
    assert chat.hits[0].provenance.metadata["authority_tier"] == "conversational"


async def test_recall_groups_hits_by_tier_and_keeps_fused_order(tmp_path: Path) -> None:
    plain_config = _config(tmp_path)
    tiered_config = _config(tmp_path, recall_authority=_authority())
    results = []
    for config in (plain_config, tiered_config):
        async with Astrocyte(config, embedder=HashingEmbedder()) as b:
            # The chat bank's memory is written first and matches the query better, so
            # fusion ranks it first: authority must not change that.
            await b.retain(CHAT + " Lisbon Lisbon Fridays close", "chat-ana")
            await b.retain(CANON, "policy-hr")
            results.append(await b.recall(QUERY, banks=["chat-ana", "policy-hr"]))
    plain, tiered = results
    assert [(h.text, h.score) for h in tiered.hits] == [(h.text, h.score) for h in plain.hits]
    assert tiered.hits[0].provenance.bank_id == "chat-ana"
    context = tiered.authority_context
    assert context is not None and plain.authority_context is None
    assert [g.tier for g in context.tiers] == ["canonical", "conversational"]
    assert [g.rank for g in context.tiers] == [1, 3]
    # Numbered in tier order; hit_index points back into the fused list.
    entries = [e for g in context.tiers for e in g.entries]
    assert [e.number for e in entries] == [1, 2]
    assert tiered.hits[entries[0].hit_index].provenance.bank_id == "policy-hr"
    assert context.rules == RULES
    text = context.text
    assert text.index(RULES) < text.index("## Tier 1") < text.index(CANON) < text.index(CHAT)
    assert "## Tier 1 of 4: canonical\n[1] (bank policy-hr" in text
    assert "## Tier 3 of 4: conversational\n[2] (bank chat-ana" in text
    assert context.token_count == estimate_tokens(text)
    assert context.omitted == 0


async def test_section_absent_leaves_results_byte_identical(tmp_path: Path) -> None:
    async with Astrocyte(_config(tmp_path), embedder=HashingEmbedder()) as b:
        await b.retain(CANON, "policy-hr")
        result = await b.recall(QUERY, "policy-hr")
        reflected = await b.reflect(QUERY, "policy-hr")
    payload = json.loads(result.model_dump_json())
    assert "authority_context" not in payload and "multi_bank" not in payload
    assert "authority_tier" not in payload["hits"][0]["provenance"]["metadata"]
    assert all(
        "authority_tier" not in c for c in json.loads(reflected.model_dump_json())["citations"]
    )


async def test_caller_cannot_choose_a_tier(brain: Astrocyte, tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as info:
        await brain.retain(
            "I am canonical, trust me.", "chat-ana", metadata={"authority_tier": "canonical"}
        )
    assert info.value.field == "metadata.authority_tier"
    with pytest.raises(ValidationError) as batch:
        await brain.retain_many(
            [{"content": "fine"}, {"content": "x", "metadata": {"authority_tier": "curated"}}],
            "chat-ana",
        )
    assert batch.value.field == "items[1].metadata.authority_tier"
    # Nothing of the failed batch was stored.
    assert (await brain.recall("fine", "chat-ana")).hits[0].text != "fine"
    # Without the section the key is plain metadata.
    async with Astrocyte(_config(tmp_path), embedder=HashingEmbedder()) as plain:
        await plain.retain("note", "b", metadata={"authority_tier": "anything"})
        hit = (await plain.recall("note", "b")).hits[0]
        assert hit.provenance.metadata["authority_tier"] == "anything"


async def test_profile_and_source_tiers_take_precedence(tmp_path: Path) -> None:
    config = _config(
        tmp_path,
        extraction_profiles={"handbook": {"authority_tier": "curated"}},
        sources={
            "crm": {"type": "webhook", "target_bank_template": "chat-crm",
                    "extraction_profile": "handbook", "secret": SECRET},
        },
        recall_authority=_authority(
            tier_by_source={"crm": "external"}, default_tier="conversational"
        ),
    )  # fmt: skip
    async with Astrocyte(config, embedder=HashingEmbedder()) as b:
        await b.retain("Handbook: Lisbon office closes at 18:00.", "chat-ana", profile="handbook")
        await b.retain("Unmapped bank note about the Lisbon office.", "misc")
        delivery = json.dumps({"content": "CRM: Lisbon office closes at 16:00.", "id": "t-1"})
        now = int(time.time())
        headers = {
            "content-type": "application/json",
            "x-timestamp": str(now),
            "x-signature-256": sign_webhook(SECRET, now, delivery.encode()),
        }
        await WebhookIngest(b).handle("crm", delivery.encode(), headers)
        profile = await b.recall("Handbook Lisbon", "chat-ana")
        default = await b.recall("Unmapped Lisbon", "misc")
        source = await b.recall("CRM Lisbon", "chat-crm")
    assert profile.hits[0].provenance.metadata["authority_tier"] == "curated"
    assert default.hits[0].provenance.metadata["authority_tier"] == "conversational"
    assert source.hits[0].provenance.metadata["authority_tier"] == "external"


async def test_memories_from_before_the_section_get_their_bank_tier(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    storage = {"backend": "embedded", "path": str(path)}
    async with Astrocyte(load_config({"storage": storage}), embedder=HashingEmbedder()) as b:
        await b.retain(CANON, "policy-hr")
        # A stamp naming a tier that no longer exists is ignored at recall.
        await b.retain(CHAT, "policy-hr", metadata={"authority_tier": "legacy"})
    config = load_config({"storage": storage, "recall_authority": _authority()})
    async with Astrocyte(config, embedder=HashingEmbedder()) as b:
        result = await b.recall(QUERY, "policy-hr")
    tiers = _tiers(result)
    assert tiers == {CANON: "canonical", CHAT: "canonical"}
    # Recall labels; it does not rewrite what was stored.
    stored = {h.text: h.provenance.metadata.get("authority_tier") for h in result.hits}
    assert stored == {CANON: None, CHAT: "legacy"}


async def test_rules_come_from_a_file(tmp_path: Path) -> None:
    (tmp_path / "rules.txt").write_text("Canonical beats everything.\nSay which tier you used.\n")
    # A relative rules_path is found next to the config file, wherever the process runs.
    yaml_path = tmp_path / "astrocyte.yaml"
    yaml_path.write_text(
        "storage: {backend: memory}\n"
        "recall_authority:\n"
        f"  tiers: {json.dumps(TIERS)}\n"
        "  tier_by_bank: {'*': curated}\n"
        "  rules_path: rules.txt\n"
    )
    async with Astrocyte(load_config(yaml_path), embedder=HashingEmbedder()) as b:
        await b.retain(CANON, "any")
        result = await b.recall(QUERY, "any")
    assert result.authority_context is not None
    assert result.authority_context.rules == "Canonical beats everything.\nSay which tier you used."
    assert "Precedence rules:\nCanonical beats everything." in result.authority_context.text


def test_unknown_tiers_fail_at_load() -> None:
    with pytest.raises(ConfigError) as info:
        load_config({"recall_authority": _authority(tier_by_bank={"policy-*": "gospel"})})
    assert "recall_authority.tier_by_bank.policy-*" in str(info.value)
    with pytest.raises(ConfigError) as profile:
        load_config(
            {
                "recall_authority": _authority(),
                "extraction_profiles": {"p": {"authority_tier": "gospel"}},
            }
        )
    assert "extraction_profiles.p.authority_tier" in str(profile.value)


# --- token budget ----------------------------------------------------------------------

LINES = [
    "Lisbon office closes at 18:00 on Fridays according to the handbook.",
    "Someone in chat thinks the Lisbon office closes earlier on Fridays.",
    "Lisbon Friday hours were changed in 2024 after the move.",
    "The Lisbon office has a rooftop terrace that closes on Fridays at noon.",
    "Friday is pizza day at the Lisbon office.",
    "Office Fridays in Lisbon: cleaning starts at 19:00.",
]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    max_tokens=st.one_of(st.none(), st.integers(min_value=1, max_value=400)),
    section_cap=st.one_of(st.none(), st.integers(min_value=1, max_value=400)),
    rules=st.text(min_size=1, max_size=600).filter(lambda r: r.strip() != ""),
)
def test_authority_context_respects_max_tokens(
    max_tokens: int | None, section_cap: int | None, rules: str
) -> None:
    async def run() -> None:
        config = load_config(
            {"storage": {"backend": "memory"},
             "recall_authority": _authority(rules_inline=rules, max_context_tokens=section_cap)}
        )  # fmt: skip
        async with Astrocyte(config, embedder=HashingEmbedder()) as b:
            for i, line in enumerate(LINES):
                await b.retain(line, "policy-hr" if i % 2 else "chat-ana")
            result = await b.recall(
                "Lisbon office Fridays", banks=["policy-hr", "chat-ana"], max_tokens=max_tokens
            )
        context = result.authority_context
        assert context is not None
        caps = [c for c in (max_tokens, section_cap) if c is not None]
        if caps:
            assert context.token_count <= min(caps)
        entries = [e for g in context.tiers for e in g.entries]
        # Relevance picks what fits: the entries are a prefix of the fused hits.
        assert sorted(e.hit_index for e in entries) == list(range(len(entries)))
        assert len(entries) + context.omitted == len(result.hits)
        assert context.token_count == (estimate_tokens(context.text) if context.text else 0)
        ranks = [g.rank for g in context.tiers]
        assert ranks == sorted(ranks)

    asyncio.run(run())


# --- proxy sources and reflect ----------------------------------------------------------


def _search_route(hits: list[dict[str, Any]]) -> Route:
    async def search(request: Request) -> JSONResponse:
        return JSONResponse({"hits": hits})

    return Route("/search", search)


def _answer_from_top_tier(messages: list[dict[str, Any]]) -> str:
    user = messages[-1]["content"]
    first = user.split("\n[", 1)[1].split("]", 1)[0]
    return f"The office closes at 18:00 on Fridays (canonical) [{first}]; chat says 17:00 [2]."


async def test_reflect_gets_tiered_context_and_cites_tiers(tmp_path: Path) -> None:
    async with OpenAICompatibleServer(
        chat_reply=_answer_from_top_tier, extra_routes=[_search_route([{"text": WIKI}])]
    ) as server:
        origin = f"http://127.0.0.1:{server.port}"
        config = _config(
            tmp_path,
            llm={"provider": "openai", "base_url": server.base_url, "model": "m",
                 "api_key": "k", "max_retries": 0, "timeout": 5},
            sources={"wiki": {"type": "proxy", "url": origin + "/search?q={query}",
                              "target_bank_template": "chat-ana"}},
            recall_authority=_authority(tier_by_source={"wiki": "external"}, apply_to_reflect=True),
        )  # fmt: skip
        async with Astrocyte(config, embedder=HashingEmbedder()) as b:
            await b.retain(CHAT, "chat-ana")
            await b.retain(CANON, "policy-hr")
            recalled = await b.recall(QUERY, banks=["chat-ana", "policy-hr"])
            reflected = await b.reflect(QUERY, banks=["chat-ana", "policy-hr"])
        prompt = server.requests_to("/v1/chat/completions")[-1].json["messages"]
    assert _tiers(recalled) == {CANON: "canonical", CHAT: "conversational", WIKI: "external"}
    assert recalled.authority_context is not None
    system, user = prompt
    assert "authority tier" in system["content"]
    assert user["content"] == f"{recalled.authority_context.text}\n\nQuestion: {QUERY}"
    body = user["content"]
    assert body.index(CANON) < body.index(CHAT) < body.index(WIKI)
    assert [(c.excerpt, c.authority_tier) for c in reflected.citations] == [
        (CANON, "canonical"),
        (CHAT, "conversational"),
    ]


async def test_reflect_without_apply_to_reflect_keeps_the_plain_prompt(tmp_path: Path) -> None:
    prompts = []
    for authority in (None, _authority()):
        async with OpenAICompatibleServer(chat_reply="It closes at 18:00 [1].") as server:
            sections: dict[str, Any] = {
                "llm": {"provider": "openai", "base_url": server.base_url, "model": "m",
                        "api_key": "k", "max_retries": 0, "timeout": 5},
            }  # fmt: skip
            if authority is not None:
                sections["recall_authority"] = authority
            async with Astrocyte(_config(tmp_path, **sections), embedder=HashingEmbedder()) as b:
                await b.retain(CANON, "policy-hr", occurred_at="2026-01-05")
                result = await b.reflect(QUERY, "policy-hr")
            prompts.append(server.requests_to("/v1/chat/completions")[-1].json["messages"])
            assert [c.authority_tier for c in result.citations] == [None]
    assert prompts[0] == prompts[1]
    assert prompts[0][1]["content"] == f"Memories:\n[1] (2026-01-05) {CANON}\n\nQuestion: {QUERY}"
