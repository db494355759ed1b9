"""Splitting normalised text into chunks, each of which becomes one memory.

Pure functions, no I/O. Every strategy guarantees:

* chunks are non-empty, stripped slices ``text[start:end]`` of the input, in order;
* together they cover every non-whitespace character of the input;
* no chunk is longer than ``max_chars`` (a run of non-space characters longer than
  that is cut hard — there is no better place to cut it).

``fixed`` additionally repeats up to ``overlap`` characters of the previous chunk at the
start of the next, so a fact straddling a boundary is whole in at least one chunk.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

ChunkStrategy = Literal["sentence", "paragraph", "fixed"]

# A sentence ends at . ! ? (optionally followed by closing quotes/brackets) and
# whitespace, or at a line break. Abbreviations are not special-cased: a split after
# "Dr." only costs a slightly smaller chunk, because sentences are regrouped anyway.
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+|\n+")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")


@dataclass(frozen=True, slots=True)
class Chunk:
    """One chunk: its text and its character span in the normalised content."""

    text: str
    index: int
    start: int
    end: int


def chunk_text(
    text: str,
    strategy: ChunkStrategy = "sentence",
    *,
    max_chars: int = 1000,
    overlap: int = 0,
) -> list[Chunk]:
    """Split ``text`` with the named strategy; see the module docstring for guarantees."""
    if max_chars < 1:
        raise ValueError("max_chars must be >= 1")
    if not 0 <= overlap < max_chars:
        raise ValueError("overlap must be >= 0 and < max_chars")
    splitter = _STRATEGIES.get(strategy)
    if splitter is None:
        raise ValueError(
            f"unknown chunking strategy {strategy!r}; use one of {sorted(_STRATEGIES)}"
        )
    spans = splitter(text, max_chars, overlap)
    return [Chunk(text[s:e], i, s, e) for i, (s, e) in enumerate(spans)]


def _strip_span(text: str, start: int, end: int) -> tuple[int, int] | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if start < end else None


def _pieces(text: str, separator: re.Pattern[str]) -> Iterator[tuple[int, int]]:
    """Stripped, non-empty spans between separator matches."""
    pos = 0
    for match in separator.finditer(text):
        span = _strip_span(text, pos, match.start())
        if span:
            yield span
        pos = match.end()
    span = _strip_span(text, pos, len(text))
    if span:
        yield span


def _hard_split(text: str, start: int, end: int, max_chars: int) -> Iterator[tuple[int, int]]:
    """Split one span into pieces of at most max_chars, preferring whitespace."""
    while end - start > max_chars:
        cut = text.rfind(" ", start + 1, start + max_chars + 1)
        if cut <= start:
            cut = start + max_chars
        span = _strip_span(text, start, cut)
        if span:
            yield span
        start = cut
        while start < end and text[start].isspace():
            start += 1
    span = _strip_span(text, start, end)
    if span:
        yield span


def _group(text: str, pieces: Iterator[tuple[int, int]], max_chars: int) -> list[tuple[int, int]]:
    """Greedily merge consecutive pieces while the merged span fits in max_chars."""
    out: list[tuple[int, int]] = []
    current: tuple[int, int] | None = None
    for start, end in pieces:
        for s, e in _hard_split(text, start, end, max_chars):
            if current is not None and e - current[0] <= max_chars:
                current = (current[0], e)
            else:
                if current is not None:
                    out.append(current)
                current = (s, e)
    if current is not None:
        out.append(current)
    return out


def _by_sentence(text: str, max_chars: int, overlap: int) -> list[tuple[int, int]]:
    return _group(text, _pieces(text, _SENTENCE_END), max_chars)


def _by_paragraph(text: str, max_chars: int, overlap: int) -> list[tuple[int, int]]:
    # Whole paragraphs are grouped while they fit. A paragraph too long for one chunk
    # is split by sentences, and those pieces are grouped only among themselves, so a
    # chunk never holds the tail of one paragraph and the head of the next.
    out: list[tuple[int, int]] = []
    small: list[tuple[int, int]] = []
    for start, end in _pieces(text, _PARAGRAPH_BREAK):
        if end - start <= max_chars:
            small.append((start, end))
            continue
        out.extend(_group(text, iter(small), max_chars))
        small = []
        inner = [(start + s, start + e) for s, e in _pieces(text[start:end], _SENTENCE_END)]
        out.extend(_group(text, iter(inner), max_chars))
    out.extend(_group(text, iter(small), max_chars))
    return out


def _fixed(text: str, max_chars: int, overlap: int) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    first = _strip_span(text, 0, len(text))
    if first is None:
        return spans
    start, end = first
    while start < end:
        stop = min(start + max_chars, end)
        if stop < end:
            # Prefer to end on whitespace so words stay whole.
            cut = text.rfind(" ", start + 1, stop + 1)
            if cut > start + max_chars // 2:
                stop = cut
        span = _strip_span(text, start, stop)
        if span:
            spans.append(span)
        if stop >= end:
            break
        next_start = max(stop - overlap, start + 1)
        # Start the overlap on a word boundary so no chunk begins mid-word.
        if overlap and next_start < stop:
            space = text.find(" ", next_start, stop)
            next_start = space + 1 if space != -1 else stop
        while next_start < end and text[next_start].isspace():
            next_start += 1
        start = next_start
    return spans


_STRATEGIES: dict[str, Callable[[str, int, int], list[tuple[int, int]]]] = {
    "sentence": _by_sentence,
    "paragraph": _by_paragraph,
    "fixed": _fixed,
}
