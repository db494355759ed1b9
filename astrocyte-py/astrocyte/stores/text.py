"""Keyword tokenisation shared by the stores and by extractive reflect.

Two views of the same word split:

* :func:`tokenize` gives *normalised terms* (case-folded, diacritics removed, stopwords
  dropped, light English plural folding). The in-memory store indexes and queries with
  it, so index and query always agree.
* :func:`keyword_terms` gives the *raw words* of a query, stopwords dropped and
  deduplicated, unchanged otherwise. The SQLite store quotes each one as an FTS5 phrase
  and lets FTS5 apply its own tokenizer (``porter unicode61 remove_diacritics 2``) to
  it, which is the only way to guarantee the query is tokenised exactly like the index.

Words are maximal runs of Unicode letters and digits (``_`` and punctuation separate
words), which matches how FTS5's ``unicode61`` tokenizer splits text.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = [
    "COMMON_WORD_MIN_BANK",
    "COMMON_WORD_SHARE",
    "MAX_QUERY_TERMS",
    "STOPWORDS",
    "fold",
    "informative",
    "keyword_terms",
    "normalize",
    "tokenize",
    "words",
]

#: Upper bound on distinct terms taken from one keyword query; a pasted page of text
#: would otherwise become a huge OR query that costs far more than it adds.
MAX_QUERY_TERMS = 64

_WORD = re.compile(r"[^\W_]+")

# fmt: off
STOPWORDS: frozenset[str] = frozenset((
    "a", "about", "above", "after", "again", "against", "all", "am", "an", "and", "any",
    "are", "as", "at", "be", "because", "been", "before", "being", "below", "between",
    "both", "but", "by", "can", "could", "did", "do", "does", "doing", "down", "during",
    "each", "few", "for", "from", "further", "had", "has", "have", "having", "he", "her",
    "here", "hers", "herself", "him", "himself", "his", "how", "i", "if", "in", "into",
    "is", "it", "its", "itself", "just", "me", "more", "most", "my", "myself", "no", "nor",
    "not", "now", "of", "off", "on", "once", "only", "or", "other", "our", "ours",
    "ourselves", "out", "over", "own", "same", "she", "should", "so", "some", "such",
    "than", "that", "the", "their", "theirs", "them", "themselves", "then", "there",
    "these", "they", "this", "those", "through", "to", "too", "under", "until", "up",
    "very", "was", "we", "were", "what", "when", "where", "which", "while", "who", "whom",
    "why", "will", "with", "would", "you", "your", "yours", "yourself", "yourselves",
    # Contraction tails: "don't" splits into "don" and "t".
    "d", "ll", "m", "re", "s", "t", "ve",
))
# fmt: on
"""A small English stopword list; terms here never take part in keyword matching."""


def words(text: str) -> list[str]:
    """The words of ``text`` exactly as written (no case or accent folding)."""
    return _WORD.findall(text)


def normalize(word: str) -> str:
    """Case-fold ``word`` and strip diacritics (``"Café"`` -> ``"cafe"``).

    NFKD also unpacks compatibility forms (ligatures, full-width letters), so visually
    equal words compare equal.
    """
    decomposed = unicodedata.normalize("NFKD", word)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return unicodedata.normalize("NFC", stripped).casefold()


def fold(term: str) -> str:
    """Light English plural folding (``"memories"`` -> ``"memory"``, ``"cats"`` -> ``"cat"``).

    Deliberately conservative: it must be applied identically at index and query time
    and should never merge unrelated words, so it only undoes the common plural forms.
    """
    if len(term) <= 3 or not term.endswith("s"):
        return term
    if term.endswith("ies") and len(term) > 4:
        return term[:-3] + "y"
    if term.endswith("sses"):
        return term[:-2]
    if term.endswith(("ss", "us", "is")):
        return term
    return term[:-1]


def tokenize(text: str) -> list[str]:
    """Normalised, stopword-free, plural-folded terms of ``text``, in order."""
    out: list[str] = []
    for word in _WORD.findall(text):
        term = normalize(word)
        if term and term not in STOPWORDS:
            out.append(fold(term))
    return out


def keyword_terms(query: str, *, limit: int = MAX_QUERY_TERMS) -> list[str]:
    """Distinct non-stopword words of ``query`` as written, first occurrence first.

    Words are deduplicated by their normalised form; at most ``limit`` are returned.
    """
    seen: set[str] = set()
    out: list[str] = []
    for word in _WORD.findall(query):
        term = normalize(word)
        if not term or term in STOPWORDS or term in seen:
            continue
        seen.add(term)
        out.append(word)
        if len(out) >= limit:
            break
    return out


#: A query word found in more than this share of a bank's memories cannot tell them
#: apart (a speaker's name in a chat log, the user's own name). With rank fusion a hit
#: on such a word alone is not weak evidence but noise: it ranks, and anything that also
#: ranks semantically is promoted. So such words are ignored while the query has other,
#: rarer words. BM25's own IDF reaches zero at one half; a third already says little.
COMMON_WORD_SHARE = 0.3

#: Below this many memories every word is "common" by share; the rule is not applied.
COMMON_WORD_MIN_BANK = 10


def informative(words: list[tuple[str, int]], bank_size: int) -> list[str]:
    """The query words worth matching, given each word's document count in the bank.

    ``words`` pairs each query word with the number of the bank's memories containing
    it. Words above :data:`COMMON_WORD_SHARE` are dropped unless every word is that
    common. Words with a count of 0 are kept: the store's own stemming may still match
    them, and if not they simply match nothing.
    """
    if bank_size < COMMON_WORD_MIN_BANK:
        return [w for w, _ in words]
    cutoff = COMMON_WORD_SHARE * bank_size
    rare = [w for w, count in words if count <= cutoff]
    return rare or [w for w, _ in words]
