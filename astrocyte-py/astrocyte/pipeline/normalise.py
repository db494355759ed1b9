"""Normalisation: turn raw retained content into clean text, per content type.

Chunk spans and provenance offsets refer to the normalised text, so normalisers must be
deterministic. Each content type has one normaliser; an unknown type is a
:class:`~astrocyte.errors.ValidationError` listing the supported ones.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

from astrocyte.errors import ValidationError

# Control characters other than tab and newline carry no meaning for recall and
# confuse tokenisers (and some of them break terminals when hits are printed).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_TRAILING_SPACE = re.compile(r"[ \t]+\n")
_MANY_BLANK_LINES = re.compile(r"\n{3,}")
_INLINE_SPACE = re.compile(r"[ \t]{2,}")


def normalise_text(raw: str) -> str:
    """Unicode NFC, ``\\r\\n`` → ``\\n``, no control characters, no runs of spaces,
    at most one blank line in a row, no leading/trailing whitespace."""
    text = unicodedata.normalize("NFC", raw).replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text)
    text = _INLINE_SPACE.sub(" ", text)
    text = _TRAILING_SPACE.sub("\n", text)
    text = _MANY_BLANK_LINES.sub("\n\n", text)
    return text.strip()


Normaliser = Callable[[str], str]

# Conversations keep their line structure (one turn per line) through normalise_text,
# and the sentence chunker never splits inside a short line, so turns stay whole.
_NORMALISERS: dict[str, Normaliser] = {
    "text": normalise_text,
    "conversation": normalise_text,
    "transcript": normalise_text,
}


def supported_content_types() -> list[str]:
    """Content types retain accepts."""
    return sorted(_NORMALISERS)


def normalise(content: str, content_type: str) -> str:
    """Normalise ``content`` with the normaliser registered for ``content_type``."""
    normaliser = _NORMALISERS.get(content_type)
    if normaliser is None:
        raise ValidationError(
            "content_type",
            f"unknown content type {content_type!r}",
            fix=f"use one of {supported_content_types()}",
        )
    return normaliser(content)
