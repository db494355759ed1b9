"""Chunking guarantees, checked on arbitrary text."""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from astrocyte.pipeline.chunking import chunk_text

STRATEGIES = ["sentence", "paragraph", "fixed"]

words = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30)
texts = st.lists(
    st.one_of(words, st.sampled_from([". ", "! ", "? ", "\n", "\n\n", " ", "  ", "\t"])),
    max_size=80,
).map("".join)


def _non_space(s: str) -> str:
    return re.sub(r"\s+", "", s)


@pytest.mark.parametrize("strategy", STRATEGIES)
@settings(max_examples=150, deadline=None)
@given(text=texts, max_chars=st.integers(5, 200))
def test_chunks_are_ordered_bounded_slices_covering_all_content(
    strategy: str, text: str, max_chars: int
) -> None:
    overlap = 0 if strategy != "fixed" else max_chars // 4
    chunks = chunk_text(text, strategy, max_chars=max_chars, overlap=overlap)  # type: ignore[arg-type]
    for i, chunk in enumerate(chunks):
        assert chunk.index == i
        assert chunk.text == text[chunk.start : chunk.end]
        assert chunk.text and chunk.text == chunk.text.strip()
        assert len(chunk.text) <= max_chars
    if strategy != "fixed":
        # Without overlap, chunks tile the content exactly (modulo whitespace).
        assert _non_space("".join(c.text for c in chunks)) == _non_space(text)
        assert all(a.end <= b.start for a, b in itertools.pairwise(chunks))
    else:
        covered = set()
        for c in chunks:
            covered.update(range(c.start, c.end))
        assert all(i in covered for i, ch in enumerate(text) if not ch.isspace())
        assert all(a.start < b.start for a, b in itertools.pairwise(chunks))


def test_sentence_strategy_keeps_sentences_whole_and_groups_small_ones() -> None:
    text = "Alice lives in Lisbon. She has a cat named Biscuit. " * 3
    chunks = chunk_text(text, "sentence", max_chars=60)
    assert [c.text for c in chunks][:2] == [
        "Alice lives in Lisbon. She has a cat named Biscuit.",
        "Alice lives in Lisbon. She has a cat named Biscuit.",
    ]


def test_paragraph_strategy_groups_paragraphs_and_splits_long_ones_by_sentence() -> None:
    text = "Short one.\n\nShort two.\n\nLong para. " + "It has many sentences. " * 5
    chunks = chunk_text(text, "paragraph", max_chars=50)
    assert chunks[0].text == "Short one.\n\nShort two."
    assert chunks[1].text.startswith("Long para.")
    assert all(c.text.endswith(".") for c in chunks)


def test_fixed_strategy_overlaps_on_word_boundaries() -> None:
    text = " ".join(f"word{i}" for i in range(60))
    chunks = chunk_text(text, "fixed", max_chars=50, overlap=15)
    assert len(chunks) > 1
    for a, b in itertools.pairwise(chunks):
        assert b.start < a.end  # overlapping
        assert text[b.start - 1] == " "  # starts on a word
        assert b.text.split()[0] in a.text.split()


def test_single_long_token_is_cut_hard() -> None:
    chunks = chunk_text("x" * 250, "sentence", max_chars=100)
    assert [len(c.text) for c in chunks] == [100, 100, 50]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"max_chars": 0}, "max_chars"), ({"overlap": 10, "max_chars": 10}, "overlap")],
)
def test_bad_parameters_are_rejected(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        chunk_text("text", "fixed", **kwargs)


def test_unknown_strategy_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown chunking strategy"):
        chunk_text("text", "semantic")  # type: ignore[arg-type]
