"""Offline, rule-based entity hints for the graph strategy.

Retain links each memory to the names it mentions (capitalised word runs, ``@handles``,
``#hashtags``); recall looks the query's word n-grams up among those names. It is
deliberately conservative — a missed entity only means the graph strategy adds nothing,
while a spurious one adds noise to fusion.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from astrocyte.stores.text import STOPWORDS

_NAME_RUN = re.compile(r"\b[A-Z][\w'’-]*[\w](?:\s+[A-Z][\w'’-]*[\w])*")
_HANDLE = re.compile(r"(?<![\w@])@[A-Za-z0-9_][A-Za-z0-9_.-]{1,38}")
_HASHTAG = re.compile(r"(?<![\w#])#[A-Za-z][A-Za-z0-9_]{1,49}")
_WORD = re.compile(r"[\w'’@#-]+")

# Capitalised words that are almost never names: every keyword stopword (a
# sentence-initial "Did" or "What"), interjections and other common sentence starters,
# calendar words (dates belong to the temporal strategy).
_NOT_NAMES = STOPWORDS | frozenset(
    """
    i'm i've i'd i'll it's yes oh hi hey hello thanks thank ok okay also well wow sure
    really maybe please sorry great good nice cool awesome yeah yep nope congrats
    congratulations told poor impressive take let like love glad happy exactly totally
    definitely absolutely anyway btw lol haha omg
    monday tuesday wednesday thursday friday saturday sunday today tomorrow yesterday
    january february march april may june july august september october november december
    mr mrs ms dr
    """.split()
)


@dataclass(frozen=True, slots=True)
class EntityMention:
    """A name found in text: as written, normalised, and what kind of name it is."""

    name: str
    normalized: str
    kind: str


def normalise_name(name: str) -> str:
    """Lowercase, unify apostrophes, drop a trailing possessive ``'s``."""
    text = name.strip().lower().replace("’", "'")
    if text.endswith("'s"):
        text = text[:-2]
    return " ".join(text.split())


def entity_id(bank_id: str, normalized: str) -> str:
    """Deterministic entity id, so re-mentions in a bank upsert the same entity."""
    digest = hashlib.blake2b(f"{bank_id}\x1f{normalized}".encode(), digest_size=12)
    return "ent_" + digest.hexdigest()


def extract_mentions(text: str) -> list[EntityMention]:
    """Names mentioned in ``text``, each normalised name once, in order of appearance.

    A multi-word name also yields its words (``"Alice Smith"`` → ``alice smith``,
    ``alice``, ``smith``), so a later mention of just "Alice" reaches the same memories.
    """
    seen: dict[str, EntityMention] = {}

    def add(name: str, kind: str) -> None:
        norm = normalise_name(name)
        if len(norm) >= 2 and norm not in _NOT_NAMES and norm not in seen:
            seen[norm] = EntityMention(name, norm, kind)

    for match in _HANDLE.finditer(text):
        add(match.group(), "handle")
    for match in _HASHTAG.finditer(text):
        add(match.group(), "hashtag")
    for match in _NAME_RUN.finditer(text):
        words = [w for w in match.group().split() if normalise_name(w) not in _NOT_NAMES]
        if not words:
            continue
        if len(words) > 1:
            add(" ".join(words), "name")
        for word in words:
            add(word, "name")
    return list(seen.values())


def query_name_candidates(query: str, max_ngram: int = 3) -> list[str]:
    """Normalised word n-grams of a query to look up among known entity names.

    Queries are often typed in lower case, so unlike :func:`extract_mentions` this does
    not require capitals; the store lookup decides what is a known name.
    """
    words = [normalise_name(w) for w in _WORD.findall(query)]
    words = [w.strip("'-") for w in words]
    out: dict[str, None] = {}
    for n in range(1, max_ngram + 1):
        for i in range(len(words) - n + 1):
            gram = words[i : i + n]
            if gram[0] in _NOT_NAMES or gram[-1] in _NOT_NAMES:
                continue
            joined = " ".join(gram)
            if len(joined) >= 2:
                out[joined] = None
    return list(out)
