"""Parsing the public formats: messy evidence ids, dates, and the synthetic fixtures."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from astrocyte.bench.locomo import (
    parse_evidence,
    parse_locomo,
    parse_session_datetime,
    parse_turn_id,
)
from astrocyte.bench.longmemeval import parse_haystack_date, parse_longmemeval

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize(
    ("raw", "ids", "junk"),
    [
        (["D1:3"], ("D1:3",), 0),
        (["D8:6; D9:17"], ("D8:6", "D9:17"), 0),
        (["D1:3,D1:5"], ("D1:3", "D1:5"), 0),
        (["D1:3 D1:5"], ("D1:3", "D1:5"), 0),
        (["D 4:10"], ("D4:10",), 0),
        (["D3:05"], ("D3:5",), 0),
        (["D03 : 005"], ("D3:5",), 0),
        (["d2:1"], ("D2:1",), 0),
        ([], (), 0),
        (None, (), 0),
        ("D2:1", ("D2:1",), 0),  # a bare string instead of a list
        ([17, None, "D3:10"], ("D3:10",), 2),
        (["", "n/a"], (), 2),
        ([["D1:1"]], (), 1),  # nesting is not part of the format
        (42, (), 1),
        (["D1:3", "D1:03", "D1:3; D2:2"], ("D1:3", "D2:2"), 0),  # repeats collapse
    ],
)
def test_evidence_ids_are_parsed_defensively(raw: object, ids: tuple[str, ...], junk: int) -> None:
    parsed = parse_evidence(raw)
    assert parsed.ids == ids
    assert parsed.junk == junk


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("D3:5", "D3:5"),
        (" D 3:05 ", "D3:5"),
        ("d12:001", "D12:1"),
        ("D3:5; D3:6", None),
        ("S3:5", None),
        ("", None),
        (7, None),
        (None, None),
    ],
)
def test_turn_ids_are_canonical(raw: object, expected: str | None) -> None:
    assert parse_turn_id(raw) == expected


def _utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, sec: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, sec, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1:56 pm on 8 May, 2023", _utc(2023, 5, 8, 13, 56)),
        ("10:37 am on 27 June, 2023", _utc(2023, 6, 27, 10, 37)),
        ("12:09 am on 13 September, 2023", _utc(2023, 9, 13, 0, 9)),
        ("12:30 pm on 1 Jan, 2024", _utc(2024, 1, 1, 12, 30)),
        ("1:56 p.m. on 8 May 2023", _utc(2023, 5, 8, 13, 56)),
        ("1:56PM on 8 May, 2023", _utc(2023, 5, 8, 13, 56)),
        ("7 pm on 2 Sept, 2023", _utc(2023, 9, 2, 19, 0)),
        ("13:56 on 8 May, 2023", _utc(2023, 5, 8, 13, 56)),
        ("May 8, 2023 1:56 pm", _utc(2023, 5, 8, 13, 56)),
        ("Monday, 8th of May 2023", _utc(2023, 5, 8)),
        ("8 May, 2023", _utc(2023, 5, 8)),
        ("  1:56 pm   on  8   May,   2023  ", _utc(2023, 5, 8, 13, 56)),
        ("2023-07-14T09:30:00", _utc(2023, 7, 14, 9, 30)),
        ("2023-07-14T09:30:00+02:00", _utc(2023, 7, 14, 7, 30)),
        ("2023-07-14T09:30:00Z", _utc(2023, 7, 14, 9, 30)),
        ("2023-07-14", _utc(2023, 7, 14)),
        ("sometime in late summer", None),
        ("13:56 pm on 8 May, 2023", None),  # hour 13 cannot be pm
        ("1:56 pm on 30 February, 2023", None),
        ("1:56 pm on 8 Smarch, 2023", None),
        ("8 5 2023", None),
        ("May 2023", None),
        ("", None),
        (None, None),
        (20230508, None),
    ],
)
def test_locomo_session_dates(raw: object, expected: datetime | None) -> None:
    assert parse_session_datetime(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2023/05/20 (Sat) 02:21", _utc(2023, 5, 20, 2, 21)),
        ("2023/5/2 (Tue) 2:05", _utc(2023, 5, 2, 2, 5)),
        ("2023/05/20", _utc(2023, 5, 20)),
        ("2023-05-20 02:21", _utc(2023, 5, 20, 2, 21)),
        ("2023/05/20 (Sat) 02:21:09", _utc(2023, 5, 20, 2, 21, 9)),
        ("2023-05-20T02:21:00+01:00", _utc(2023, 5, 20, 1, 21)),
        ("2023/02/30 (Thu) 10:00", None),
        ("2023/05/20 (Sat) 25:00", None),
        ("yesterday", None),
        ("", None),
        (None, None),
    ],
)
def test_longmemeval_dates(raw: object, expected: datetime | None) -> None:
    assert parse_haystack_date(raw) == expected


def test_locomo_fixture_parses_with_every_quirk_counted() -> None:
    data = json.loads((DATA / "locomo_synthetic.json").read_text(encoding="utf-8"))
    samples, stats = parse_locomo(data)
    assert [s.sample_id for s in samples] == ["synth-1", "synth-2"]
    assert stats == {
        "samples_malformed": 0,
        "sessions": 6,
        "sessions_without_date": 1,  # "sometime in late summer"
        "turns": 54,
        "turns_skipped_empty": 0,
        "turn_ids_synthesised": 0,
        "questions": 21,
        "questions_malformed": 0,
        "questions_without_evidence": 1,  # the empty evidence list
        "questions_unknown_category": 0,
        "evidence_junk_entries": 2,  # 17 and null
        "evidence_ids_dangling": 1,  # D7:2 names no turn
    }
    first = {q.question: q for q in samples[0].questions}
    assert first["Which journal accepted Ines's seahorse survey paper?"].evidence == {
        "D2:6",
        "D3:1",
    }
    assert first["What is the name of Kofi's sourdough starter?"].evidence == {"D3:8"}
    assert first["When is Lucia travelling to Ghana?"].evidence == {"D3:5"}
    assert first["What does Kofi plan to open at the Saturday market?"].evidence == {"D3:10"}
    second = {q.question: q for q in samples[1].questions}
    assert second["What colour was the route Marta sent on her third attempt?"].evidence == {"D1:3"}

    turns = {t.turn_id: t for t in samples[0].turns}
    photo = turns["D2:7"]
    assert photo.content == (
        "Ines: Also, I adopted a grey rescue cat named Pebble last weekend. "
        "[shared a photo: a photo of a grey cat sleeping on a windowsill]"
    )
    item = photo.item()
    assert item["metadata"] == {"session_id": 2, "turn_id": "D2:7", "speaker": "Ines"}
    assert item["source"] == "D2:7"
    assert item["content_type"] == "conversation"
    assert item["occurred_at"] == _utc(2023, 3, 19, 10, 5)
    # The undated session's turns get no occurred_at: the core then uses retain time.
    undated = [t for t in samples[1].turns if t.session == 3]
    assert undated and all("occurred_at" not in t.item() for t in undated)


def test_locomo_malformed_entries_are_skipped_and_counted() -> None:
    data = [
        "not a sample",
        {"sample_id": "x", "conversation": None},
        {
            "sample_id": "y",
            "conversation": {
                "session_1_date_time": "1:00 pm on 1 May, 2023",
                "session_1": [
                    {"speaker": "A", "dia_id": "D1:1", "text": "hello there"},
                    {"speaker": "B", "text": "no dia id"},
                    {"speaker": "A", "dia_id": "D1:3", "text": "  "},
                    "junk",
                ],
                "session_2": "not a list",
            },
            "qa": [
                {"question": "", "evidence": ["D1:1"], "category": 4},
                {"question": "hello?", "evidence": ["D1:1"], "category": "4"},
                {"question": "who?", "evidence": ["D1:2"], "category": 9},
                "junk",
            ],
        },
    ]
    samples, stats = parse_locomo(data)
    assert [s.sample_id for s in samples] == ["y"]
    assert [t.turn_id for t in samples[0].turns] == ["D1:1", "D1:2"]
    assert stats["samples_malformed"] == 2
    assert stats["turn_ids_synthesised"] == 1
    assert stats["turns_skipped_empty"] == 2
    assert stats["questions"] == 4
    assert stats["questions_malformed"] == 2
    assert stats["questions_unknown_category"] == 1
    groups = [(q.question, q.group) for q in samples[0].questions]
    assert groups == [("hello?", "single-hop"), ("who?", "category-9")]


def test_longmemeval_fixture_parses() -> None:
    data = json.loads((DATA / "longmemeval_synthetic.json").read_text(encoding="utf-8"))
    instances, stats = parse_longmemeval(data)
    assert stats["instances"] == 6
    assert stats["abstention_skipped"] == 1
    assert stats["sessions_without_date"] == 0
    assert stats["questions_without_answer_session"] == 0
    assert [i.question_id for i in instances] == ["syn001", "syn002", "syn003", "syn004", "syn005"]
    library = instances[1]
    assert library.answer_turns == {"answer_library#1"}
    assert library.answer_sessions == {"answer_library"}
    turn = next(t for t in library.turns if t.has_answer)
    assert turn.item()["metadata"] == {
        "session_id": "answer_library",
        "turn_index": 1,
        "role": "assistant",
        "has_answer": True,
    }
    assert turn.item()["content"].startswith("assistant: I'd suggest sorting")
    assert turn.occurred_at == _utc(2023, 6, 5, 12, 10)


def test_longmemeval_dangling_answer_sessions_are_dropped() -> None:
    data = [
        {
            "question_id": "q1",
            "question_type": "multi-session",
            "question": "What?",
            "haystack_session_ids": ["s1"],
            "haystack_dates": ["2023/05/20 (Sat) 02:21"],
            "haystack_sessions": [[{"role": "user", "content": "hi"}, {"role": "user"}]],
            "answer_session_ids": ["s1", "gone"],
        },
        {
            "question_id": "q2",
            "question": "Where?",
            "haystack_session_ids": ["s1"],
            "haystack_dates": [],
            "haystack_sessions": [[{"role": "user", "content": "hi"}]],
            "answer_session_ids": ["gone"],
        },
        {"question_id": "q3", "question": "", "haystack_sessions": []},
        7,
    ]
    instances, stats = parse_longmemeval(data)
    assert [i.question_id for i in instances] == ["q1"]
    assert instances[0].answer_turns == frozenset()
    assert stats["answer_session_ids_dangling"] == 2
    assert stats["questions_without_answer_session"] == 1
    assert stats["instances_malformed"] == 2
    assert stats["turns_skipped_empty"] == 1
    assert stats["sessions_without_date"] == 1
