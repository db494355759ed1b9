"""Retain through extraction profiles: dialogue chunking, structured transcripts,
profile selection, metadata_mapping, tag_rules, aliases and email/turn times."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from astrocyte import Astrocyte, RetainItem
from astrocyte.embedders import HashingEmbedder
from astrocyte.errors import ValidationError
from tests.conftest import make_config

CHAT = "\n".join(
    [
        "Maya: I signed the lease on the flat in Porto, moving on the 15th.",
        "Tomas: Congrats! Is that the one near the river with the blue tiles?",
        "Maya: Yes, in Ribeira. The rent is 950 euros a month.",
        "Tomas: I'm still training for the Lisbon half marathon, 18 km today.",
        "Maya: Impressive. What time are you aiming for?",
        "Tomas: Under 1 hour 45 minutes, my coach Ines says more intervals.",
    ]
)

PROFILES: dict[str, Any] = {
    "chat_small": {"chunking": {"max_chars": 150}},
    "ticket": {
        "content_path": "$.ticket.body",
        "occurred_at_path": "$.ticket.created",
        "metadata_mapping": {
            "customer_id": "$.ticket.customer.id",
            "priority": "$.ticket.priority",
            "labels": "$.ticket.labels[*]",
        },
        "tags": ["support"],
        "tag_rules": [
            {"tag": "urgent", "path": "$.ticket.priority", "equals": "high"},
            {"tag": "billing", "path": "$.ticket.body", "matches": "(?i)invoice|refund"},
            {"tag": "vip", "path": "$.ticket.labels", "contains": "vip"},
            {"tag": "never", "path": "$.ticket.missing"},
        ],
        "target_bank_template": "support-{metadata.customer_id}",
    },
    "keywords": {
        "tag_rules": [{"tag": "travel", "path": "$.content", "matches": "(?i)flight|train"}],
        "metadata_mapping": {"origin": "$.metadata.channel"},
        "entity_extraction": "none",
    },
}


@pytest.fixture
async def pbrain(backend: str, tmp_path: Path) -> Any:
    config = make_config(backend, tmp_path, extraction_profiles=PROFILES)
    async with Astrocyte(config, embedder=HashingEmbedder()) as b:  # type: ignore[arg-type]
        yield b


async def _records(brain: Astrocyte, bank: str, ids: list[str]) -> list[Any]:
    records = await brain.stores.documents.get(bank, ids)
    order = {i: n for n, i in enumerate(ids)}
    return sorted(records, key=lambda r: order[r.id])


async def test_plain_text_without_profile_is_unchanged(pbrain: Astrocyte) -> None:
    result = await pbrain.retain("Alice prefers green tea. Bob likes coffee.", "b", tags=["x"])
    (record,) = await _records(pbrain, "b", result.memory_ids)
    assert record.metadata == {}
    assert record.tags == ("x",)
    assert record.text == "Alice prefers green tea. Bob likes coffee."


async def test_conversation_chunks_by_whole_turns_with_speakers(pbrain: Astrocyte) -> None:
    batch = await pbrain.retain_many(
        [{"content": CHAT, "content_type": "conversation", "profile": "chat_small"}], "c"
    )
    records = await _records(pbrain, "c", batch.results[0].memory_ids)
    assert len(records) > 1
    lines = CHAT.split("\n")
    seen: list[str] = []
    for record in records:
        chunk_lines = record.text.split("\n")
        # Every line of a chunk is a whole turn of the input: no turn was split.
        assert all(line in lines for line in chunk_lines), record.text
        ids = str(record.metadata["turn_ids"]).split(",")
        assert len(ids) == len(chunk_lines)
        seen += ids
        speakers = {line.split(":")[0] for line in chunk_lines}
        assert set(str(record.metadata["speakers"]).split(", ")) == speakers
        if len(speakers) == 1:
            assert record.metadata["speaker"] == speakers.pop()
        else:
            assert "speaker" not in record.metadata
    assert seen == [f"T{i}" for i in range(1, 7)]
    hits = (await pbrain.recall("Ribeira rent euros", "c", max_results=3)).hits
    assert "Maya" in str(hits[0].provenance.metadata["speakers"])
    assert hits[0].provenance.metadata["turn_ids"]


async def test_caller_metadata_wins_over_derived_keys(pbrain: Astrocyte) -> None:
    result = await pbrain.retain(
        "Maya: hello there",
        "c",
        content_type="conversation",
        metadata={"speaker": "Maya Silva", "turn_id": "S1:1"},
    )
    (record,) = await _records(pbrain, "c", result.memory_ids)
    assert record.metadata == {
        "speaker": "Maya Silva",
        "speakers": "Maya",
        "turn_ids": "T1",
        "turn_id": "S1:1",
    }


async def test_conversation_without_speakers_is_prose(pbrain: Astrocyte) -> None:
    result = await pbrain.retain("we talked about the weather.", "c", content_type="conversation")
    (record,) = await _records(pbrain, "c", result.memory_ids)
    assert record.metadata == {}


async def test_structured_transcript_keeps_turn_ids_and_first_timestamp(
    pbrain: Astrocyte,
) -> None:
    turns = [
        {
            "speaker": "Maya",
            "text": "Biscuit hid under the bed.",
            "turn_id": "S2:1",
            "timestamp": "2024-03-20T20:30:00Z",
        },
        {"speaker": "Tomas", "text": "Cats hate new places.", "turn_id": "S2:2"},
    ]
    batch = await pbrain.retain_many([{"content": turns, "content_type": "conversation"}], "c")
    (record,) = await _records(pbrain, "c", batch.results[0].memory_ids)
    assert record.text == "Maya: Biscuit hid under the bed.\nTomas: Cats hate new places."
    assert record.metadata["turn_ids"] == "S2:1,S2:2"
    assert record.metadata["speakers"] == "Maya, Tomas"
    assert record.occurred_at == datetime(2024, 3, 20, 20, 30, tzinfo=UTC)


async def test_structured_transcript_errors_name_the_item(pbrain: Astrocyte) -> None:
    bad = [{"speaker": "Maya", "text": "ok"}, {"speaker": "Tomas", "text": 3}]
    with pytest.raises(ValidationError) as info:
        await pbrain.retain_many(
            [{"content": "fine"}, {"content": bad, "content_type": "conversation"}], "c"
        )
    assert info.value.field == "items[1].content[1].text"
    with pytest.raises(ValidationError) as info:
        await pbrain.retain_many([{"content": bad[:1]}, {"content": "x"}], "c")
    assert info.value.field == "items[0].content"
    assert "conversation" in str(info.value)


async def test_unknown_profile_is_a_validation_error(pbrain: Astrocyte) -> None:
    with pytest.raises(ValidationError) as info:
        await pbrain.retain_many([{"content": "x", "profile": "tikets"}, {"content": "y"}], "c")
    assert info.value.field == "items[0].profile"
    assert "builtin_text" in str(info.value)


async def test_event_profile_maps_metadata_tags_text_and_time(pbrain: Astrocyte) -> None:
    event = {
        "ticket": {
            "body": "Customer asks for a refund of invoice 88.",
            "created": "2024-02-01T10:00:00Z",
            "priority": "high",
            "labels": ["vip", "eu"],
            "customer": {"id": 4417},
        }
    }
    batch = await pbrain.retain_many(
        [RetainItem(content=json.dumps(event), content_type="event", profile="ticket")], "t"
    )
    (record,) = await _records(pbrain, "t", batch.results[0].memory_ids)
    assert record.text == "Customer asks for a refund of invoice 88."
    assert record.metadata == {"customer_id": 4417, "priority": "high", "labels": "vip, eu"}
    assert record.tags == ("support", "urgent", "billing", "vip")
    assert record.occurred_at == datetime(2024, 2, 1, 10, tzinfo=UTC)


async def test_envelope_paths_for_text_and_no_entities(pbrain: Astrocyte) -> None:
    batch = await pbrain.retain_many(
        [
            {
                "content": "Booked the Lisbon train for Friday.",
                "profile": "keywords",
                "metadata": {"channel": "sms"},
                "tags": ["mine"],
            }
        ],
        "k",
    )
    (record,) = await _records(pbrain, "k", batch.results[0].memory_ids)
    assert record.tags == ("mine", "travel")
    assert record.metadata == {"origin": "sms", "channel": "sms"}
    assert await pbrain.stores.graph.find_entities("k", ["lisbon"]) == []


async def test_email_occurred_at_from_date_header(pbrain: Astrocyte) -> None:
    mail = (
        "From: ann@example.com\nTo: bob@example.com\nSubject: Lunch\n"
        "Date: Tue, 21 May 2024 19:15:00 +0000\n\nSee you at noon."
    )
    result = await pbrain.retain(mail, "e", content_type="email")
    (record,) = await _records(pbrain, "e", result.memory_ids)
    assert record.occurred_at == datetime(2024, 5, 21, 19, 15, tzinfo=UTC)
    given = await pbrain.retain(
        mail + " Again.", "e", content_type="email", occurred_at="2020-01-01T00:00:00Z"
    )
    (record,) = await _records(pbrain, "e", given.memory_ids)
    assert record.occurred_at == datetime(2020, 1, 1, tzinfo=UTC)


async def test_pii_redaction_reaches_turns_and_mapped_metadata(tmp_path: Path) -> None:
    config = make_config(
        "memory",
        tmp_path,
        policy={"pii": {"action": "redact"}},
        extraction_profiles={"m": {"metadata_mapping": {"first": "$.turns[0].text"}}},
    )
    async with Astrocyte(config, embedder=HashingEmbedder()) as brain:  # type: ignore[arg-type]
        turns = [{"speaker": "Maya", "text": "mail me at maya.okafor@brightlane.io"}]
        batch = await brain.retain_many(
            [{"content": turns, "content_type": "conversation", "profile": "m"}], "p"
        )
        (record,) = await _records(brain, "p", batch.results[0].memory_ids)
        assert "brightlane" not in record.text
        assert "brightlane" not in str(record.metadata)
        assert record.metadata["speaker"] == "Maya"
