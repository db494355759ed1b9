"""Dialogue chunking: split a conversation into chunks of whole, consecutive turns.

Generic sentence chunking can put the end of one speaker's turn and the start of the
next in one chunk and lose who said what. Here a conversation is first parsed into
:class:`Turn` s — from ``Speaker: text`` lines (:func:`parse_turns`) or from structured
records (:func:`turns_from_records`) — and :func:`chunk_dialogue` then groups
consecutive turns into chunks that carry their speakers, turn ids and timestamps.

Pure functions, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from astrocyte.errors import ValidationError
from astrocyte.pipeline.chunking import chunk_text


@dataclass(frozen=True, slots=True)
class Turn:
    """One turn: who spoke (``""`` when unknown), what they said, its id and time."""

    speaker: str
    text: str
    turn_id: str
    timestamp: datetime | None = None

    def render(self) -> str:
        """The turn as it appears in a chunk: ``"Speaker: text"`` (just the text when
        the speaker is unknown)."""
        return f"{self.speaker}: {self.text}" if self.speaker else self.text


@dataclass(frozen=True, slots=True)
class DialogueChunk:
    """Consecutive turns that become one memory.

    ``text`` is their :meth:`Turn.render` lines joined by ``"\\n"``; ``speakers`` the
    distinct known speakers in order of first appearance; ``turn_ids`` the turns
    covered, in order; ``first_timestamp``/``last_timestamp`` the earliest- and
    latest-positioned timestamps among them (``None`` if no turn has one). ``partial``
    marks a piece of one turn too long for a chunk of its own (``turn_ids`` then holds
    just that turn, and consecutive pieces share it).
    """

    text: str
    index: int
    speakers: tuple[str, ...]
    turn_ids: tuple[str, ...]
    first_timestamp: datetime | None = None
    last_timestamp: datetime | None = None
    partial: bool = False


# A speaker is 1-4 words before a colon: capitalised words ("Dr. Ann Lee"), @handles,
# or a number after the first word ("Speaker 2"). An optional ISO timestamp in square
# brackets may come first ("[2024-05-21T19:15:00Z] Ann: ...").
_WORD = r"(?:@[\w.-]+|[A-Z][\w'’.-]*)"
_TURN_LINE = re.compile(
    r"^\s*(?:\[(?P<ts>\d{4}-\d\d-\d\d[^\]]*)\]\s*)?"
    rf"(?P<speaker>{_WORD}(?:[ \t]+(?:{_WORD}|\d{{1,3}})){{0,3}})"
    r"[ \t]*:(?:[ \t]+(?P<text>.*)|[ \t]*)$"
)
# Capitalised labels that introduce a line of prose, not a speaker's turn.
_NOT_SPEAKERS = frozenset(
    """
    note notes nb ps p.s. subject re fwd fw date time when where update edit warning
    caution tip tips example examples summary tl;dr tldr todo important source sources
    http https step answer question
    """.split()
)


def _parse_timestamp(value: object, field: str) -> datetime | None:
    """A datetime (naive taken as UTC) from a datetime or an ISO-8601 string."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValidationError(
                field, f"is not an ISO-8601 date-time: {value!r}", fix="e.g. 2024-05-21T19:15:00Z"
            ) from None
    if not isinstance(value, datetime):
        raise ValidationError(field, "must be an ISO-8601 string or a datetime")
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def parse_turns(text: str) -> list[Turn]:
    """Turns of a ``Speaker: text`` transcript, ids ``"T1"``, ``"T2"``, ... in order.

    A line opening with a speaker (see ``_TURN_LINE``: 1-4 capitalised words or
    @handles, then a colon) starts a turn; any other non-blank line continues the
    previous turn (joined with ``"\\n"``). Lines before the first speaker form a turn
    with speaker ``""``. Labels such as "Note:" or "Subject:" are not speakers. A
    turn with no text at all is dropped. A leading ``[ISO timestamp]`` sets the turn's
    timestamp.
    """
    turns: list[tuple[str, list[str], datetime | None]] = []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        match = _TURN_LINE.match(line)
        timestamp: datetime | None = None
        if match and match.group("ts"):
            try:
                timestamp = _parse_timestamp(match.group("ts"), "text")
            except ValidationError:
                match = None  # "[2024-13-45 ...] Ann:" is not a timestamped turn
        if match and match.group("speaker").lower() not in _NOT_SPEAKERS:
            speaker = " ".join(match.group("speaker").split())
            first = (match.group("text") or "").strip()
            turns.append((speaker, [first] if first else [], timestamp))
        elif line.strip():
            if not turns:
                turns.append(("", [], None))
            turns[-1][1].append(line.strip())
    out: list[Turn] = []
    for i, (speaker, lines, timestamp) in enumerate(turns):
        if lines:
            out.append(Turn(speaker, "\n".join(lines), f"T{i + 1}", timestamp))
    return out


def turns_from_records(records: Sequence[Mapping[str, object]]) -> list[Turn]:
    """Turns from structured records ``{speaker, text, timestamp?, turn_id?}``.

    ``speaker`` and ``text`` must be strings (``speaker`` may be empty); ``timestamp``
    an ISO-8601 string or datetime (naive is UTC); ``turn_id`` a string or integer,
    default ``"T<position>"`` (1-based). Other keys are ignored. Text is stripped and
    a record with no text is skipped. Turn ids must be unique. Problems are
    ValidationErrors naming the field, e.g. ``turns[3].text``.
    """
    if isinstance(records, str | bytes) or not isinstance(records, Sequence):
        raise ValidationError("turns", "must be a list of {speaker, text} objects")
    out: list[Turn] = []
    seen: set[str] = set()
    for i, record in enumerate(records):
        field = f"turns[{i}]"
        if not isinstance(record, Mapping):
            raise ValidationError(field, "must be an object with speaker and text")
        speaker, text = record.get("speaker", ""), record.get("text")
        if not isinstance(speaker, str):
            raise ValidationError(f"{field}.speaker", "must be a string")
        if not isinstance(text, str):
            raise ValidationError(f"{field}.text", "must be a string")
        raw_id = record.get("turn_id")
        if raw_id is None:
            turn_id = f"T{i + 1}"
        elif isinstance(raw_id, str | int) and not isinstance(raw_id, bool):
            turn_id = str(raw_id).strip()
        else:
            raise ValidationError(f"{field}.turn_id", "must be a string or an integer")
        if not turn_id or turn_id in seen:
            raise ValidationError(
                f"{field}.turn_id", f"duplicate or empty turn id {turn_id!r}", fix="make ids unique"
            )
        seen.add(turn_id)
        timestamp = _parse_timestamp(record.get("timestamp"), f"{field}.timestamp")
        if text.strip():
            out.append(Turn(" ".join(speaker.split()), text.strip(), turn_id, timestamp))
    return out


def _make_chunk(turns: Sequence[Turn], text: str, index: int, partial: bool) -> DialogueChunk:
    stamps = [t.timestamp for t in turns if t.timestamp is not None]
    return DialogueChunk(
        text=text,
        index=index,
        speakers=tuple(dict.fromkeys(t.speaker for t in turns if t.speaker)),
        turn_ids=tuple(t.turn_id for t in turns),
        first_timestamp=stamps[0] if stamps else None,
        last_timestamp=stamps[-1] if stamps else None,
        partial=partial,
    )


def piece_budget(speaker: str, max_chars: int) -> int:
    """Characters of an oversized turn's text that go into each of its pieces.

    Each piece is rendered ``"Speaker: piece"`` so it keeps its attribution; the
    budget is what ``max_chars`` leaves after that prefix, but never less than half
    of ``max_chars`` (a speaker name longer than half a chunk then makes its pieces
    exceed ``max_chars``, rather than shrink to slivers).
    """
    prefix = len(speaker) + 2 if speaker else 0
    return max(max_chars - prefix, max_chars // 2, 1)


def chunk_dialogue(turns: Sequence[Turn], max_chars: int = 1000) -> list[DialogueChunk]:
    """Group consecutive turns into chunks of at most ``max_chars`` characters.

    Guarantees:

    * chunks are in turn order, and every turn is in exactly one chunk unless it is
      *oversized*, i.e. its :meth:`Turn.render` is longer than ``max_chars``;
    * a chunk of whole turns is their rendered lines joined by ``"\\n"`` and is at
      most ``max_chars`` long; turns are never split between such chunks;
    * an oversized turn alone is split with the sentence chunker into pieces of at
      most :func:`piece_budget` characters, each its own ``partial`` chunk rendered
      ``"Speaker: piece"``. So every chunk is at most ``max_chars`` long except a
      piece of a turn whose speaker prefix takes more than half of ``max_chars``;
      a piece is never longer than ``len(speaker) + 2 + piece_budget(...)``.
    """
    if max_chars < 1:
        raise ValueError("max_chars must be >= 1")
    chunks: list[DialogueChunk] = []
    group: list[Turn] = []
    size = 0

    def flush() -> None:
        nonlocal size
        if group:
            text = "\n".join(t.render() for t in group)
            chunks.append(_make_chunk(group, text, len(chunks), partial=False))
            group.clear()
            size = 0

    for turn in turns:
        rendered = len(turn.render())
        if rendered > max_chars:
            flush()
            budget = piece_budget(turn.speaker, max_chars)
            for piece in chunk_text(turn.text, "sentence", max_chars=budget):
                text = f"{turn.speaker}: {piece.text}" if turn.speaker else piece.text
                chunks.append(_make_chunk([turn], text, len(chunks), partial=True))
            continue
        # +1 for the newline joining this turn to the group.
        if group and size + 1 + rendered > max_chars:
            flush()
        size += rendered + (1 if group else 0)
        group.append(turn)
    flush()
    return chunks
