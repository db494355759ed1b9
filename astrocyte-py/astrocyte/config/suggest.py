""" "Did you mean ...?" hints for misspelt keys and names in the configuration."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice closest to ``word``, or ``None`` when nothing is close enough.

    The 0.6 cutoff is difflib's default: it catches typos (``rrf_kk``, ``semantc``)
    without proposing unrelated words that merely share a few letters.
    """
    options = [c for c in dict.fromkeys(choices) if isinstance(c, str)]
    if not options:
        return None
    # Compare case-insensitively (YAML keys are often mis-cased) but answer with the
    # real spelling.
    by_lower = {c.lower(): c for c in options}
    match = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=0.6)
    return by_lower[match[0]] if match else None


def hint(word: str, choices: Iterable[str], *, listing: bool = True) -> str:
    """``" (did you mean 'x'?)"`` or, without a close match, the valid choices.

    Returns a string to append to an error message (possibly empty). The listing is
    left out when there are too many choices to read at a glance.
    """
    options = sorted({c for c in choices if isinstance(c, str)})
    guess = closest(word, options)
    if guess is not None:
        return f" (did you mean {guess!r}?)"
    if listing and options and len(options) <= 15:
        return f" (valid: {', '.join(options)})"
    return ""
