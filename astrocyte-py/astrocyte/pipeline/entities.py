"""Offline, rule-based entity extraction for the graph strategy.

Retain links each memory to the entities it mentions; recall looks the query's word
n-grams (and any emails, handles, dates and titles in it) up among those names. The
rules are deliberately conservative — a missed entity only means the graph strategy
adds nothing, while a spurious one adds noise to fusion.

What counts as an entity (the ``kind`` of an :class:`EntityMention`):

* ``name`` — runs of capitalised words ("Alice Smith"), optionally joined by lower-case
  connectors ("University of Lisbon", "Leonardo da Vinci"), without honorifics
  ("Dr. Okafor" → ``okafor``), common words or a possessive ``'s``. A capitalised word
  at the start of a sentence is taken as a name only if it is not a common sentence
  opener ("Finally", "Went", "Cooking") — unless it is a known name, or also appears
  capitalised mid-sentence in the same text;
* ``handle`` (``@omar_h``), ``hashtag`` (``#running``), ``email``;
* ``date`` — a full date with a year, normalised to ISO (``8 May 2023`` → ``2023-05-08``);
* ``title`` — 2 to 8 words in double quotes written like a title (``"The Name of the
  Wind"``; ``"see you soon"`` is speech, not a title);
* any kind named in a *gazetteer* — ``{"org": ["Acme Corp"], "place": ["Porto"]}`` —
  matched case-insensitively as whole words; a gazetteer match wins over ``name``.

:func:`extract_entities` gives each entity once. :func:`extract_mentions` (what retain
links) adds the single words of multi-word names, so a later "Alice" alone reaches
memories about "Alice Smith"; :func:`link_aliases` says which full name such a single
word most likely stands for.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from astrocyte.pipeline.dates import find_dates
from astrocyte.stores.text import STOPWORDS

_WORD = re.compile(r"[\w'’@#-]+")
_TOKEN = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*")
_HANDLE = re.compile(r"(?<![\w@])@[A-Za-z0-9_][A-Za-z0-9_.-]{1,38}")
_HASHTAG = re.compile(r"(?<![\w#&])#[A-Za-z][A-Za-z0-9_]{1,49}")
_EMAIL = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
)
# Codes people look things up by: ticket, invoice, flight, order and part numbers
# (OPS-5606, INV-21043, TP1352, SKU_88-A). A letter first, at least two digits, no
# spaces. Embedding models blur neighbouring codes, so an exact link is what finds them.
_IDENTIFIER = re.compile(
    r"(?<![\w@#/.-])(?=[A-Za-z0-9_-]*\d[A-Za-z0-9_-]*\d)[A-Za-z][A-Za-z0-9]*(?:[-_][A-Za-z0-9]+)*"
    r"(?![\w@-])"
)
_URL = re.compile(r"\b(?:https?://|www\.)[^\s<>\"]+", re.IGNORECASE)
_QUOTED = re.compile(r"\"([^\"\n]{2,200})\"|“([^”\n]{2,200})”")

# Capitalised words that are almost never names anywhere in a sentence: every keyword
# stopword (a sentence-initial "Did" or "What"), interjections and other common
# sentence starters, calendar words (dates are their own kind; "Jan" is left out of the
# abbreviations because it is also a given name), honorifics.
_NOT_NAMES = STOPWORDS | frozenset(
    """
    i'm i've i'd i'll it's yes oh hi hey hello thanks thank ok okay also well wow sure
    really maybe please sorry great good nice cool awesome yeah yep nope congrats
    congratulations told poor impressive take let like love glad happy exactly totally
    definitely absolutely anyway btw lol haha omg tv pm am fyi asap diy imo tbh idk rsvp
    monday tuesday wednesday thursday friday saturday sunday today tomorrow yesterday
    mondays tuesdays wednesdays thursdays fridays saturdays sundays tonight weekend
    january february march april may june july august september october november december
    feb mar apr jun jul aug sep sept oct nov dec
    mr mrs ms dr prof sir madam st
    """.split()
)

# Words that open sentences far more often than they are names. Only applied at the
# start of a sentence: mid-sentence, capitalisation is evidence enough ("I met Hope").
_SENTENCE_OPENERS = frozenset(
    """
    a an any another anyone anybody anything anyhow anyway anyways almost although
    always apparently actually after afterwards again already alright amazing as asked
    ate aw aww away back basically because before being besides both bought brilliant
    brought but by bye called came can can't cannot certainly cheers check checked come
    coming could couldn't currently dear decided definitely did didn't do does doesn't
    don't done during each earlier either else enjoyed even eventually every everybody
    everyone everything everywhere excellent feel feels felt finally fine first
    fortunately found from funny further gave get gets getting give glad go goes going
    gone got gotta grabbed guess had hadn't has hasn't have haven't he'd he'll he's
    heard hello help helped here here's hmm hm honestly hope hopefully how however i
    if imagine in instead is isn't it just kind knew know last lately later learned
    learnt left let's lets literally looks lost lots loved made make many me mean
    meanwhile met might missed more moreover most mostly much must my need needed
    neither never new next no nobody none nope not nothing now nowhere of often oh
    once one only ooh oops or other otherwise our perfect perhaps plus pretty probably
    quick quite ran rather read real recently remember right said saw say see seems
    seriously several she'd she'll she's should shouldn't since sleep so some somebody
    someone something sometimes somewhere soon spent still super sure that's then
    there there's these they they'd they'll they're they've thing things think this
    those though thought thus to together too took totally truly try tried trying ugh
    um uh unfortunately unless until up us usually very wait wanted was wasn't watch
    we we'd we'll we're we've went were what what's whatever when whenever where
    wherever whether which while who whoever why wish with without won won't wonder
    work worked would wouldn't wow wrote yay yet you you'd you'll you're you've
    interview meeting dinner lunch breakfast party class school weather traffic
    reminder update note question idea plan trip news morning evening night afternoon
    two three four five six seven eight nine ten second third
    follow send call ask tell buy bring remind pick grab book email text ping message
    visit listen look join sign add put set keep stop start turn use find show share
    forward reply write meet let
    """.split()
)
# Sentence-initial words ending like this are verbs or adverbs ("Cooking", "Visited",
# "Luckily"), except these names.
_OPENER_SUFFIXES = (("ing", 6), ("ed", 6), ("ly", 7))
_NAMES_WITH_OPENER_SUFFIX = frozenset(
    "beverly kimberly shelly mohammed muhammed mohamed ahmed sterling harding".split()
)
_HONORIFICS = frozenset("mr mrs ms dr prof sir madam st".split())
# Lower-case words that may join capitalised words into one name.
_CONNECTORS = frozenset(
    "of the de da do dos das del della di du van von der den la le al bin y".split()
)
# Last or first words that make a multi-word name a place, organisation or event,
# not a person, so its single words are not aliases of it ("Lisbon" is not short
# for "Lisbon Marathon").
_NOT_PERSON_WORDS = frozenset(
    """
    academy airport avenue bank bar bay beach bridge cafe café castle cathedral centre
    center church city club college company corp corporation council county cup
    district festival foundation gallery group hall high hospital hotel house inc
    institute island lake league library ltd market marathon mountain museum park
    plaza road rua school square station street team theatre theater tower university
    valley
    """.split()
)
_TITLE_MINOR = STOPWORDS | _CONNECTORS | frozenset({"a", "an", "and", "or", "nor", "vs"})

#: Kinds that are identifiers or values rather than names; :func:`link_aliases` skips them.
NON_NAME_KINDS = frozenset({"handle", "hashtag", "email", "date", "title"})


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


class Gazetteer:
    """Known names by kind, compiled once: ``Gazetteer({"org": ["Acme Corp"]})``.

    Matching is case-insensitive on whole words, longest entry first, so "Acme Corp
    Ltd" beats "Acme Corp". A name listed under two kinds keeps the first kind in the
    mapping's order. Each match's ``normalized`` is the entry as listed, normalised.
    """

    def __init__(self, kinds: Mapping[str, Iterable[str]]) -> None:
        self.kinds: dict[str, str] = {}
        for kind, names in kinds.items():
            for name in names:
                key = normalise_name(name)
                if key:
                    self.kinds.setdefault(key, kind)
        alternatives = sorted(self.kinds, key=len, reverse=True)
        body = "|".join(r"\s+".join(re.escape(w) for w in n.split()) for n in alternatives)
        self._pattern = (
            re.compile(rf"(?<![\w@#.])(?:{body})(?:['’]s)?(?![\w@]|\.\w)", re.IGNORECASE)
            if alternatives
            else None
        )

    def finditer(self, text: str) -> Iterable[tuple[int, int, str, str]]:
        """``(start, end, normalized, kind)`` of every entry found in ``text``."""
        if self._pattern is None:
            return
        for match in self._pattern.finditer(text):
            key = normalise_name(match.group())
            if key in self.kinds:
                yield match.start(), match.end(), key, self.kinds[key]


GazetteerLike = Gazetteer | Mapping[str, Iterable[str]]


def _as_gazetteer(gazetteers: GazetteerLike | None) -> Gazetteer | None:
    if gazetteers is None or isinstance(gazetteers, Gazetteer):
        return gazetteers
    return Gazetteer(gazetteers)


@dataclass(slots=True)
class _Found:
    start: int
    end: int
    mention: EntityMention


def _title(inner: str) -> str | None:
    """The quoted text if it reads as a title (2-8 words, title case), else None."""
    text = inner.strip().rstrip(",.;:")
    words = text.split()
    if not 2 <= len(words) <= 8 or not (words[0][0].isupper() or words[0][0].isdigit()):
        return None
    for word in words[1:]:
        core = word.strip("()[],:;!?.'’-")
        if (
            core
            and not (core[0].isupper() or core[0].isdigit())
            and core.lower() not in _TITLE_MINOR
        ):
            return None
    return text


def _sentence_start(text: str, gap_start: int, start: int, previous: str | None) -> bool:
    """Whether the word at ``start`` opens a sentence, given the text since the previous
    word (or masked span) ended at ``gap_start`` and that previous word."""
    if previous is None and not text[:start].strip():
        return True
    gap = text[gap_start:start]
    if "\n" in gap or ":" in gap or "!" in gap or "?" in gap or "…" in gap:
        return True
    # "Dr. Okafor": a full stop after an honorific does not end a sentence.
    return "." in gap and (previous is None or previous.lower() not in _HONORIFICS)


def _opener(word: str) -> bool:
    lower = normalise_name(word)
    if lower in _SENTENCE_OPENERS or lower in _NOT_NAMES:
        return True
    if lower in _NAMES_WITH_OPENER_SUFFIX:
        return False
    return any(lower.endswith(s) and len(lower) >= n for s, n in _OPENER_SUFFIXES)


def _name_runs(
    text: str, masked: list[tuple[int, int]], keep: frozenset[str]
) -> list[tuple[int, int, str]]:
    """Capitalised name runs outside ``masked`` spans as ``(start, end, text)``."""
    tokens: list[tuple[int, int, str]] = []
    mask_iter = iter(sorted(masked))
    current = next(mask_iter, None)
    for match in _TOKEN.finditer(text):
        while current is not None and current[1] <= match.start():
            current = next(mask_iter, None)
        if current is not None and current[0] < match.end():
            tokens.append((current[0], current[1], ""))  # a masked span breaks runs
            continue
        tokens.append((match.start(), match.end(), match.group()))

    runs: list[list[tuple[int, int, str]]] = []
    initial: list[bool] = []
    previous: str | None = None
    previous_end = 0
    current_run: list[tuple[int, int, str]] = []
    pending: list[tuple[int, int, str]] = []  # connectors waiting for a capitalised word
    # Words seen capitalised mid-sentence: evidence that the same word is a name when
    # it opens a sentence too.
    mid_sentence_caps: set[str] = set()
    for start, end, word in tokens:
        gap = text[previous_end:start]
        is_cap = bool(word) and word[0].isupper() and not any(c.isdigit() for c in word)
        same_run = bool(current_run) and gap.strip() == "" and "\n" not in gap
        if is_cap and len(word) >= 2:
            if same_run and len(pending) <= 2:
                current_run.extend(pending)
                current_run.append((start, end, word))
            else:
                if current_run:
                    runs.append(current_run)
                current_run = [(start, end, word)]
                opens = _sentence_start(text, previous_end, start, previous)
                initial.append(opens)
                if not opens:
                    mid_sentence_caps.add(normalise_name(word))
            pending = []
        elif word and word in _CONNECTORS and same_run:
            pending.append((start, end, word))
        else:
            if current_run:
                runs.append(current_run)
            current_run, pending = [], []
        previous, previous_end = (word or None), end
    if current_run:
        runs.append(current_run)

    out: list[tuple[int, int, str]] = []
    for run, opens in zip(runs, initial, strict=True):
        # Split at words that are never names (and honorifics), and drop an opening
        # word that is only capitalised because it starts the sentence — unless it is
        # known, or capitalised mid-sentence elsewhere in the text too.
        pieces: list[list[tuple[int, int, str]]] = [[]]
        for i, token in enumerate(run):
            norm = normalise_name(token[2])
            opener_here = (
                opens
                and i == 0
                and _opener(token[2])
                and norm not in keep
                and norm not in mid_sentence_caps
            )
            if token[2] in _CONNECTORS:  # lower-case "of" inside "Bank of Portugal"
                pieces[-1].append(token)
            elif norm in _NOT_NAMES or opener_here:
                pieces.append([])
            else:
                pieces[-1].append(token)
        for piece in pieces:
            while piece and piece[-1][2] in _CONNECTORS:
                piece.pop()
            while piece and piece[0][2] in _CONNECTORS:
                piece.pop(0)
            if piece:
                out.append((piece[0][0], piece[-1][1], text[piece[0][0] : piece[-1][1]]))
    return out


def _extract(text: str, gazetteer: Gazetteer | None, known_names: Iterable[str]) -> list[_Found]:
    found: list[_Found] = []
    masked: list[tuple[int, int]] = []
    # One byte per character, 1 where masked: checking a span costs its length, not
    # the number of spans masked so far (a page of @handles would be quadratic).
    occupied = bytearray(len(text))

    def free(start: int, end: int) -> bool:
        return occupied.find(1, start, end) == -1

    def mask(start: int, end: int) -> None:
        masked.append((start, end))
        occupied[start:end] = b"\x01" * (end - start)

    def add(start: int, end: int, name: str, normalized: str, kind: str) -> None:
        mask(start, end)
        if len(normalized) >= 2:
            found.append(_Found(start, end, EntityMention(name, normalized, kind)))

    # Most specific first: each match masks its span from the rules after it, so an
    # email's domain is not a gazetteer hit and a title's words are not names.
    for match in _URL.finditer(text):
        mask(*match.span())
    for match in _EMAIL.finditer(text):
        if free(*match.span()):
            add(*match.span(), match.group(), match.group().lower(), "email")
    for match in _HANDLE.finditer(text):
        handle = match.group().rstrip(".-")
        if free(match.start(), match.start() + len(handle)):
            add(
                match.start(), match.start() + len(handle), handle, normalise_name(handle), "handle"
            )
    for match in _HASHTAG.finditer(text):
        if free(*match.span()):
            add(*match.span(), match.group(), normalise_name(match.group()), "hashtag")
    for match in _IDENTIFIER.finditer(text):
        if free(*match.span()) and len(match.group()) >= 3:
            add(*match.span(), match.group(), match.group().lower(), "identifier")
    for start, end, day in find_dates(text):
        if free(start, end):
            add(start, end, text[start:end], day.isoformat(), "date")
    for match in _QUOTED.finditer(text):
        inner_start = match.start() + 1
        inner = match.group(1) if match.group(1) is not None else match.group(2)
        title = _title(inner)
        if title is not None and free(*match.span()):
            offset = inner_start + inner.index(title)
            add(offset, offset + len(title), title, normalise_name(title), "title")
    if gazetteer is not None:
        for start, end, normalized, kind in gazetteer.finditer(text):
            if free(start, end):
                add(start, end, text[start:end], normalized, kind)
    keep = frozenset(normalise_name(n) for n in known_names)
    if gazetteer is not None:
        keep |= frozenset(gazetteer.kinds)
    for start, end, name in _name_runs(text, masked, keep):
        add(start, end, name, normalise_name(name), "name")
    found.sort(key=lambda f: f.start)
    return found


def extract_entities(
    text: str,
    *,
    gazetteers: GazetteerLike | None = None,
    known_names: Iterable[str] = (),
) -> list[EntityMention]:
    """Entities mentioned in ``text``, each normalised name once, in order of appearance.

    ``gazetteers`` maps kinds to known names (or is a prepared :class:`Gazetteer`);
    ``known_names`` are names already known (e.g. a bank's entities) which count as
    names even where a capitalised word would otherwise be taken for a sentence opener.
    See the module docstring for the rules.
    """
    seen: dict[str, EntityMention] = {}
    for item in _extract(text, _as_gazetteer(gazetteers), known_names):
        seen.setdefault(item.mention.normalized, item.mention)
    return list(seen.values())


def extract_mentions(text: str, *, gazetteers: GazetteerLike | None = None) -> list[EntityMention]:
    """What retain links a memory to: :func:`extract_entities`, plus the single words
    of multi-word names, each normalised name once, in order of appearance.

    ``"Alice Smith"`` → ``alice smith``, ``alice``, ``smith``, so a later mention of
    just "Alice" reaches the same memories. Connectors ("of", "van") are not words of
    their own.
    """
    seen: dict[str, EntityMention] = {}
    for mention in extract_entities(text, gazetteers=gazetteers):
        seen.setdefault(mention.normalized, mention)
        if mention.kind != "name" or " " not in mention.normalized:
            continue
        for word in mention.name.split():
            norm = normalise_name(word)
            if len(norm) >= 2 and norm not in _CONNECTORS and norm not in _NOT_NAMES:
                seen.setdefault(norm, EntityMention(word, norm, "name"))
    return list(seen.values())


def _person_like(normalized: str) -> bool:
    words = normalized.split()
    return (
        2 <= len(words) <= 4
        and not any(w in _CONNECTORS for w in words)
        and words[0] not in _NOT_PERSON_WORDS
        and words[-1] not in _NOT_PERSON_WORDS
    )


def link_aliases(
    mentions: Iterable[EntityMention], known_names: Iterable[str] = ()
) -> dict[str, str]:
    """Map single-word names to the full name they most likely stand for.

    A single-word mention (``alice``) maps to the multi-word name (``alice smith``)
    that contains it as a word, when exactly one such name is among ``mentions`` — or,
    failing that, exactly one among ``known_names`` (e.g. the bank's entities).
    Ambiguous words (``alice`` with both ``alice smith`` and ``alice jones``) stay
    unmapped, and so do words of names that look like places, organisations or events
    ("Lisbon" is not short for "Lisbon Marathon" or "University of Lisbon"). Only
    name-like kinds are linked, a gazetteer kind only to a full name of the same kind.
    Keys and values are normalised names.
    """
    items = [m for m in mentions if m.kind not in NON_NAME_KINDS]
    full_in_text: dict[str, str] = {
        m.normalized: m.kind for m in items if " " in m.normalized and _person_like(m.normalized)
    }
    full_known = {
        n for n in (normalise_name(k) for k in known_names) if " " in n and _person_like(n)
    }
    aliases: dict[str, str] = {}
    for mention in items:
        word = mention.normalized
        if " " in word:
            continue
        here = [f for f, kind in full_in_text.items() if word in f.split() and kind == mention.kind]
        if len(here) == 1:
            aliases[word] = here[0]
            continue
        if not here:
            known = [f for f in full_known if word in f.split()]
            if len(known) == 1:
                aliases[word] = known[0]
    return aliases


def query_name_candidates(query: str, max_ngram: int = 3) -> list[str]:
    """Normalised word n-grams of a query to look up among known entity names.

    Queries are often typed in lower case, so unlike :func:`extract_mentions` this does
    not require capitals; the store lookup decides what is a known name. Emails,
    handles, hashtags, full dates and quoted titles in the query are added in the
    normalised form :func:`extract_mentions` stores them in (``2023-05-08``).
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
    for item in _extract(query, None, ()):
        if item.mention.kind != "name":
            out[item.mention.normalized] = None
    return list(out)
