"""Dialogue turns: parsing speakers, and chunking whole consecutive turns."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from astrocyte.errors import ValidationError
from astrocyte.pipeline.dialogue import (
    Turn,
    chunk_dialogue,
    parse_turns,
    piece_budget,
    turns_from_records,
)

TRANSCRIPT = """(recorded at the cafe)
Ann: Did you book the flights?
I mean the ones to Porto.
Bob Smith: Not yet.
Note: prices drop on Tuesdays
[2024-05-21T19:15:00Z] @carol_99: I can do it tonight
Speaker 2: thanks
Dr. Ann Lee:
  I'd wait a week.
Empty:
"""


def test_parse_turns_from_speaker_lines() -> None:
    turns = parse_turns(TRANSCRIPT)
    assert [(t.speaker, t.text, t.turn_id) for t in turns] == [
        ("", "(recorded at the cafe)", "T1"),
        ("Ann", "Did you book the flights?\nI mean the ones to Porto.", "T2"),
        ("Bob Smith", "Not yet.\nNote: prices drop on Tuesdays", "T3"),
        ("@carol_99", "I can do it tonight", "T4"),
        ("Speaker 2", "thanks", "T5"),
        ("Dr. Ann Lee", "I'd wait a week.", "T6"),
    ]  # "Empty:" has no text and is dropped (T7)
    assert turns[3].timestamp == datetime(2024, 5, 21, 19, 15, tzinfo=UTC)
    assert all(t.timestamp is None for t in turns if t.turn_id != "T4")


def test_lowercase_or_long_prefixes_are_not_speakers() -> None:
    text = "the plan: go early\nThis Is Far Too Long A Name: hi\nurl https://x.org: no"
    assert [t.speaker for t in parse_turns(text)] == [""]


def test_turns_from_records() -> None:
    turns = turns_from_records(
        [
            {"speaker": "Ann", "text": " hi ", "timestamp": "2024-05-21T19:15:00Z"},
            {"speaker": "Bob", "text": "hello", "turn_id": "D1:2", "extra": 1},
            {"speaker": "Ann", "text": "   "},  # nothing said: skipped
            {"speaker": "Bob", "text": "bye", "timestamp": datetime(2024, 5, 21, 20)},
        ]
    )
    assert [(t.speaker, t.text, t.turn_id) for t in turns] == [
        ("Ann", "hi", "T1"),
        ("Bob", "hello", "D1:2"),
        ("Bob", "bye", "T4"),
    ]
    assert turns[0].timestamp == datetime(2024, 5, 21, 19, 15, tzinfo=UTC)
    assert turns[2].timestamp == datetime(2024, 5, 21, 20, tzinfo=UTC)  # naive is UTC


@pytest.mark.parametrize(
    ("records", "field"),
    [
        ("not a list", "turns"),
        ([{"speaker": "Ann"}], "turns[0].text"),
        ([{"speaker": 3, "text": "x"}], "turns[0].speaker"),
        (["x"], "turns[0]"),
        ([{"text": "x", "timestamp": "yesterday"}], "turns[0].timestamp"),
        ([{"text": "x", "timestamp": 5}], "turns[0].timestamp"),
        ([{"text": "x", "turn_id": 1.5}], "turns[0].turn_id"),
        ([{"text": "x", "turn_id": "A"}, {"text": "y", "turn_id": "A"}], "turns[1].turn_id"),
        ([{"text": "x", "turn_id": "T2"}, {"text": "y"}], "turns[1].turn_id"),
    ],
)
def test_bad_records_name_the_field(records: object, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        turns_from_records(records)  # type: ignore[arg-type]
    assert info.value.field == field


def test_chunks_group_consecutive_turns() -> None:
    t0 = datetime(2024, 5, 21, 19, tzinfo=UTC)
    turns = [
        Turn("Ann", "Hi Bob.", "T1", t0),
        Turn("Bob", "Hi Ann, long time.", "T2"),
        Turn("Ann", "Indeed.", "T3", t0 + timedelta(minutes=2)),
        Turn("Cat", "Hello both!", "T4", t0 + timedelta(minutes=3)),
    ]
    chunks = chunk_dialogue(turns, max_chars=60)
    assert [c.text for c in chunks] == [
        "Ann: Hi Bob.\nBob: Hi Ann, long time.\nAnn: Indeed.",
        "Cat: Hello both!",
    ]
    assert chunks[0].speakers == ("Ann", "Bob")
    assert chunks[0].turn_ids == ("T1", "T2", "T3")
    assert (chunks[0].first_timestamp, chunks[0].last_timestamp) == (
        t0,
        t0 + timedelta(minutes=2),
    )
    assert chunks[1].first_timestamp == chunks[1].last_timestamp == t0 + timedelta(minutes=3)
    assert [c.index for c in chunks] == [0, 1]
    assert not any(c.partial for c in chunks)


def test_an_oversized_turn_is_split_by_sentences_and_keeps_its_speaker() -> None:
    long_text = "First sentence here. Second sentence follows. Third one ends it."
    chunks = chunk_dialogue(
        [Turn("Ann", "Short.", "T1"), Turn("Bob", long_text, "T2"), Turn("Ann", "Ok.", "T3")],
        max_chars=30,
    )
    assert [c.text for c in chunks] == [
        "Ann: Short.",
        "Bob: First sentence here.",
        "Bob: Second sentence follows.",
        "Bob: Third one ends it.",
        "Ann: Ok.",
    ]
    assert [c.partial for c in chunks] == [False, True, True, True, False]
    assert all(c.turn_ids == ("T2",) and c.speakers == ("Bob",) for c in chunks[1:4])


def test_max_chars_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_chars"):
        chunk_dialogue([], max_chars=0)


# ---------------------------------------------------------------------- properties

speakers = st.one_of(
    st.lists(
        st.sampled_from(["Ann", "Bob", "Cé", "Dr.", "Smith", "O'Neil"]), min_size=1, max_size=3
    ).map(" ".join),
    st.sampled_from(["@ann", "@bob_2", "Speaker 1"]),
)
# Turn text: lower-case words and punctuation, so no line of it looks like a speaker.
lines = st.lists(
    st.sampled_from(["hello", "there", "ok.", "why?", "it's", "fine!", "x" * 40, "a,", "é"]),
    min_size=1,
    max_size=12,
).map(" ".join)
texts = st.lists(lines, min_size=1, max_size=3).map("\n".join)
turn_lists = st.lists(st.tuples(speakers, texts), max_size=12).map(
    lambda pairs: [Turn(s, t, f"T{i + 1}") for i, (s, t) in enumerate(pairs)]
)


def _non_space(text: str) -> str:
    return re.sub(r"\s+", "", text)


@settings(max_examples=100, deadline=None)
@given(turns=turn_lists, max_chars=st.integers(1, 200))
def test_chunking_properties(turns: list[Turn], max_chars: int) -> None:
    chunks = chunk_dialogue(turns, max_chars)
    by_id = {t.turn_id: t for t in turns}
    assert [c.index for c in chunks] == list(range(len(chunks)))
    # Order: the covered turn ids, consecutive repeats (pieces of one turn) merged,
    # are exactly the turns in order — so no turn is lost, duplicated or reordered.
    covered: list[str] = []
    for chunk in chunks:
        for turn_id in chunk.turn_ids:
            if not (covered and covered[-1] == turn_id and chunk.partial):
                covered.append(turn_id)
    assert covered == [t.turn_id for t in turns]
    pieces: dict[str, list[str]] = {}
    for chunk in chunks:
        members = [by_id[i] for i in chunk.turn_ids]
        # Speakers: exactly the distinct speakers of the covered turns, in order.
        assert chunk.speakers == tuple(dict.fromkeys(t.speaker for t in members if t.speaker))
        if chunk.partial:
            (turn,) = members
            assert len(turn.render()) > max_chars  # only oversized turns are split
            assert chunk.text.startswith(f"{turn.speaker}: ")
            budget = piece_budget(turn.speaker, max_chars)
            assert len(chunk.text) <= len(turn.speaker) + 2 + budget
            pieces.setdefault(turn.turn_id, []).append(chunk.text[len(turn.speaker) + 2 :])
        else:
            # Whole turns: their rendered lines, within max_chars.
            assert chunk.text == "\n".join(t.render() for t in members)
            assert len(chunk.text) <= max_chars
        # The size bound, stated once for every chunk.
        assert len(chunk.text) <= max_chars or (
            chunk.partial and len(members[0].speaker) + 2 > max_chars // 2
        )
    # An oversized turn's pieces together hold all of its text, in order.
    for turn_id, parts in pieces.items():
        assert _non_space("".join(parts)) == _non_space(by_id[turn_id].text)


@settings(max_examples=100, deadline=None)
@given(turns=turn_lists)
def test_rendered_turns_parse_back(turns: list[Turn]) -> None:
    text = "\n".join(t.render() for t in turns)
    parsed = parse_turns(text)
    assert [(t.speaker, t.text) for t in parsed] == [(t.speaker, t.text) for t in turns]
    assert [t.turn_id for t in parsed] == [f"T{i + 1}" for i in range(len(turns))]
