"""Time expressions in queries ("last week", "in March", "since 8 May 2023") as ranges.

:func:`parse_time_range` turns the first time expression of a query into a half-open
range ``[start, end)`` of UTC datetimes, and says where in the query it was, so a caller
can both filter recall by time and take the words out of the keyword query. Pure and
offline: rules over regular expressions, no model, no clock (``now`` is an argument).

Calendar words mean calendar units: "yesterday" is the whole previous day, "last
week" the previous Monday-to-Sunday week, "3 months ago" the whole calendar month three
months back. Rolling windows are spelled with "the": "in the last 3 days", "the past
week". Days begin at midnight in the time zone of ``now`` (UTC if ``now`` is naive), so a
caller passing its user's local time gets that user's "yesterday"; the range is
returned in UTC either way.

=============================  ====================================================
expression                     range (today = the date of ``now``)
=============================  ====================================================
today, this morning/evening    today
yesterday                      the day before today
the day before yesterday       two days before today
this / last week, month, year  the current / previous calendar unit (weeks from Monday)
N days/weeks/months/years ago  the calendar unit N units back ("a week ago" too)
in the last/past N days, …     from N units before today up to the end of today
last Friday                    the most recent Friday before today
on Friday                      the most recent Friday, today included
2023-05-08, on 8 May 2023,     that day; without a year, its most recent occurrence
May 8th, 2023, 8th of May      that is not after today
May 2023, 2023-05              that month
in March                       the most recent March that has begun
2023, in 2023                  that year
since / after X                from the start / end of X on, open-ended
before / until X               up to the start / end of X, open-ended
between X and Y, from X to Y   from the start of X to the end of Y
=============================  ====================================================
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo

from astrocyte.types import TimeRange

#: Month names and their usual abbreviations, lower-case, to month numbers. English
#: only, spelled out here: calendar.month_name follows the process locale.
MONTHS: dict[str, int] = {
    **{
        name: i + 1
        for i, name in enumerate(
            "january february march april may june july august september october "
            "november december".split()
        )
    },
    **{
        name: i + 1
        for i, name in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split())
    },
    "sept": 9,
}
# Longest first, so the alternation prefers "september" to "sep".
_MONTH_NAMES = sorted(MONTHS, key=len, reverse=True)
WEEKDAYS: dict[str, int] = {
    name: i
    for i, name in enumerate("monday tuesday wednesday thursday friday saturday sunday".split())
}
_NUMBERS: dict[str, int] = {
    "a": 1,
    "an": 1,
    "one": 1,
    "a couple of": 2,
    "couple of": 2,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
}

_MONTH = r"(?P<mon>" + "|".join(_MONTH_NAMES) + r")\.?"
# A month on its own ("in March") must be spelled out: "in mar" or "in dec" are
# too likely to be something else.
_MONTH_WORD = (
    r"(?P<mon>"
    + "|".join(n for n in _MONTH_NAMES if len(n) > 4 or n in ("may", "june", "july"))
    + r")"
)
_DAY = r"(?P<day>[0-3]?\d)(?:st|nd|rd|th)?(?!\d)"
_YEAR = r"(?P<year>\d{4})(?![\d:])"
_NUM = r"(?P<n>\d{1,4}|" + "|".join(sorted(_NUMBERS, key=len, reverse=True)) + r")"
_UNIT = r"(?P<unit>day|week|month|year)s?"
_WEEKDAY = r"(?P<wd>" + "|".join(WEEKDAYS) + r")"

DateSpan = tuple[date | None, date | None]
_Resolver = Callable[[re.Match[str], date], DateSpan | None]


@dataclass(frozen=True, slots=True)
class TimeMatch:
    """A time expression found in a query and the range it denotes.

    ``start`` is inclusive and ``end`` exclusive, both UTC; ``None`` leaves that side
    open ("before May" has no start). At least one side is set, and when both are,
    ``start < end``. ``span`` is where the expression is in the query
    (``query[span[0]:span[1]] == text``), including a leading "on"/"in"/"since".
    """

    start: datetime | None
    end: datetime | None
    span: tuple[int, int]
    text: str

    def remove_from(self, query: str) -> str:
        """``query`` without this expression, spaces tidied (for the keyword query)."""
        return " ".join((query[: self.span[0]] + " " + query[self.span[1] :]).split())

    def as_time_range(self) -> TimeRange:
        """The range as the public :class:`~astrocyte.types.TimeRange` recall accepts."""
        return TimeRange(start=self.start, end=self.end)


# ------------------------------------------------------------------ calendar helpers


def _week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _month_start(day: date, shift: int = 0) -> date:
    index = day.year * 12 + day.month - 1 + shift
    return date(index // 12, index % 12 + 1, 1)


def _shift_months(day: date, shift: int) -> date:
    """Same day of month ``shift`` months away, clamped to that month's length."""
    first = _month_start(day, shift)
    last_day = calendar.monthrange(first.year, first.month)[1]
    return first.replace(day=min(day.day, last_day))


def _unit_span(today: date, unit: str, back: int) -> DateSpan:
    """The calendar ``unit`` containing today, ``back`` units earlier."""
    if unit == "day":
        start = today - timedelta(days=back)
        return start, start + timedelta(days=1)
    if unit == "week":
        start = _week_start(today) - timedelta(weeks=back)
        return start, start + timedelta(weeks=1)
    if unit == "month":
        start = _month_start(today, -back)
        return start, _month_start(start, 1)
    return date(today.year - back, 1, 1), date(today.year - back + 1, 1, 1)


def _rolling(today: date, unit: str, count: int) -> DateSpan:
    """From ``count`` units before today through the end of today."""
    if unit == "day":
        start = today - timedelta(days=count)
    elif unit == "week":
        start = today - timedelta(weeks=count)
    elif unit == "month":
        start = _shift_months(today, -count)
    else:
        start = _shift_months(today, -12 * count)
    return start, today + timedelta(days=1)


def _number(text: str) -> int:
    text = " ".join(text.lower().split())
    return _NUMBERS[text] if text in _NUMBERS else int(text)


def _recent_day(today: date, month: int, day: int) -> date | None:
    """The most recent ``day`` of ``month`` not after today (29 Feb looks back years)."""
    for year in range(today.year, today.year - 9, -1):
        try:
            candidate = date(year, month, day)
        except ValueError:
            continue
        if candidate <= today:
            return candidate
    return None


def _one_day(day: date) -> DateSpan:
    return day, day + timedelta(days=1)


# ---------------------------------------------------------------------- resolvers


def _day_month(match: re.Match[str], today: date) -> DateSpan | None:
    month = MONTHS[match.group("mon").lower()]
    day = int(match.group("day"))
    if match.group("year"):
        return _one_day(date(int(match.group("year")), month, day))
    found = _recent_day(today, month, day)
    return _one_day(found) if found else None


def _month_year(match: re.Match[str], today: date) -> DateSpan:
    start = date(int(match.group("year")), MONTHS[match.group("mon").lower()], 1)
    return start, _month_start(start, 1)


def _month_only(match: re.Match[str], today: date) -> DateSpan:
    month = MONTHS[match.group("mon").lower()]
    year = today.year if today.month >= month else today.year - 1
    start = date(year, month, 1)
    return start, _month_start(start, 1)


def _iso_day(match: re.Match[str], today: date) -> DateSpan:
    return _one_day(date(int(match.group("year")), int(match.group("m")), int(match.group("day"))))


def _iso_month(match: re.Match[str], today: date) -> DateSpan:
    start = date(int(match.group("year")), int(match.group("m")), 1)
    return start, _month_start(start, 1)


def _year(match: re.Match[str], today: date) -> DateSpan:
    year = int(match.group("year"))
    return date(year, 1, 1), date(year + 1, 1, 1)


def _relative_unit(match: re.Match[str], today: date) -> DateSpan:
    which = match.group("which").lower()
    return _unit_span(today, match.group("unit").lower(), 0 if which == "this" else 1)


def _ago(match: re.Match[str], today: date) -> DateSpan:
    return _unit_span(today, match.group("unit").lower(), _number(match.group("n")))


def _last_n(match: re.Match[str], today: date) -> DateSpan:
    count = _number(match.group("n")) if match.group("n") else 1
    return _rolling(today, match.group("unit").lower(), count)


def _weekday(match: re.Match[str], today: date) -> DateSpan:
    wanted = WEEKDAYS[match.group("wd").lower()]
    back = (today.weekday() - wanted) % 7
    if match.group("last") and back == 0:
        back = 7  # "last Friday" said on a Friday is a week ago, not today
    return _one_day(today - timedelta(days=back))


def _fixed(days_back: int) -> _Resolver:
    def resolve(match: re.Match[str], today: date) -> DateSpan:
        return _one_day(today - timedelta(days=days_back))

    return resolve


# An anchor is one expression denoting a span of days. ``prep`` is the preposition a
# query may put before it ("on 8 May"), which becomes part of the matched span;
# ``needs_prep`` anchors only count with one at the top level ("in March": a bare
# "march" is too often the verb), but need none after since/before ("since March").
# ``the`` says whether "the" may precede the body ("on the 8th of May").
@dataclass(frozen=True, slots=True)
class _Anchor:
    body: str
    resolve: _Resolver
    prep: str = r"(?:on|in|during|from)"
    needs_prep: bool = False
    the: bool = False


_ROLLING_PREP = r"(?:(?:in|over|during|within|for)\s+)?"
_ANCHORS: tuple[_Anchor, ...] = (
    # The first three are full dates, also used by find_dates.
    _Anchor(
        r"(?P<year>\d{4})-(?P<m>[01]\d)-"
        + _DAY
        + r"(?:[T ]\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:Z|[+-]\d\d:?\d\d)?)?",
        _iso_day,
    ),
    _Anchor(_DAY + r"\s+(?:of\s+)?" + _MONTH + r"(?:,?\s+" + _YEAR + r")?", _day_month, the=True),
    _Anchor(_MONTH + r"\s+" + _DAY + r"(?:,?\s+" + _YEAR + r")?", _day_month),
    _Anchor(r"(?P<year>\d{4})-(?P<m>[01]\d)(?![\d-])", _iso_month),
    _Anchor(_MONTH + r",?\s+" + _YEAR, _month_year),
    _Anchor(
        r"(?:the\s+month\s+of\s+)?" + _MONTH_WORD + r"(?!\s*\d)",
        _month_only,
        r"(?:in|during|of|throughout)",
        needs_prep=True,
    ),
    _Anchor(
        r"(?<![\w$£€.:/-])(?P<year>(?:19|20)\d\d)(?![\w%/-]|\.\d)", _year, r"(?:in|during|from)"
    ),
    _Anchor(r"the\s+day\s+before\s+yesterday", _fixed(2)),
    _Anchor(r"yesterday", _fixed(1)),
    _Anchor(r"today|tonight|this\s+(?:morning|afternoon|evening)", _fixed(0)),
    # No "the" before these: "in the last week" is the rolling window below.
    _Anchor(r"(?P<which>this|last|previous)\s+(?P<unit>week|month|year)", _relative_unit),
    _Anchor(_NUM + r"\s+" + _UNIT + r"\s+ago", _ago),
    _Anchor(_ROLLING_PREP + r"(?:the\s+)?(?:last|past)\s+" + _NUM + r"\s+" + _UNIT, _last_n, "for"),
    _Anchor(
        _ROLLING_PREP + r"(?:the\s+(?:last|past)|past)\s+(?P<n>)(?P<unit>day|week|month|year)",
        _last_n,
        "for",
    ),
    _Anchor(r"(?P<last>last\s+)?" + _WEEKDAY, _weekday, r"(?:on)"),
)


def _compile(anchor: _Anchor, top: bool) -> re.Pattern[str]:
    the = r"(?:the\s+)?" if anchor.the else ""
    # After since/before/between, the operator is the preposition.
    prep = the
    if top:
        prep = rf"(?:{anchor.prep}\s+)" + ("" if anchor.needs_prep else "?") + the
    return re.compile(rf"\b{prep}(?:{anchor.body})(?!\w)", re.IGNORECASE)


_TOP = [(_compile(a, True), a) for a in _ANCHORS]
_INNER = [(_compile(a, False), a) for a in _ANCHORS]
_OPERATOR = re.compile(
    r"\b(?P<op>since|after|before|until|till|prior\s+to|between|from)\s+", re.IGNORECASE
)
_JOINER = re.compile(r"\s*(?:\s(?:and|to|until|till|through)\s|-|–)\s*", re.IGNORECASE)


def _valid(span: DateSpan | None) -> bool:
    if span is None or (span[0] is None and span[1] is None):
        return False
    return span[0] is None or span[1] is None or span[0] < span[1]


def _resolve(anchor: _Anchor, match: re.Match[str], today: date) -> DateSpan | None:
    try:
        return anchor.resolve(match, today)
    except (ValueError, OverflowError):  # 31 April, year 0, N so large it leaves the calendar
        return None


@dataclass(frozen=True, slots=True)
class _Found:
    end: int
    days: DateSpan
    anchor: _Anchor
    match: re.Match[str]


def _inner_at(query: str, pos: int, today: date) -> _Found | None:
    """The longest anchor starting exactly at ``pos`` that resolves."""
    best: _Found | None = None
    for pattern, anchor in _INNER:
        match = pattern.match(query, pos)
        if match is None or (best is not None and match.end() <= best.end):
            continue
        days = _resolve(anchor, match, today)
        if days is not None:
            best = _Found(match.end(), days, anchor, match)
    return best


# Anchors that need "today" only to pick a year the query left out.
_YEARLESS = (_month_only, _day_month)


def _between(query: str, first: _Found, today: date) -> tuple[int, DateSpan] | None:
    """``X and Y`` / ``X to Y`` after between/from: from the start of X to the end of Y."""
    joiner = _JOINER.match(query, first.end)
    second = _inner_at(query, joiner.end(), today) if joiner else None
    if second is None:
        return None
    a_start, a_end = first.days
    b_start, b_end = second.days
    if first.anchor.resolve in _YEARLESS and b_end is not None:
        # "from March to April 2023": March is the one before the end of April 2023,
        # not the most recent March.
        redone = _resolve(first.anchor, first.match, min(today, b_end - timedelta(days=1)))
        if redone is not None:
            a_start, a_end = redone
    starts = [d for d in (a_start, b_start) if d is not None]
    ends = [d for d in (a_end, b_end) if d is not None]
    return second.end, (min(starts) if starts else None, max(ends) if ends else None)


def _candidates(query: str, today: date) -> list[tuple[int, int, DateSpan]]:
    """Every expression found, as (start, end, days), possibly overlapping."""
    found: list[tuple[int, int, DateSpan]] = []
    for pattern, anchor in _TOP:
        for match in pattern.finditer(query):
            span = _resolve(anchor, match, today)
            if span is not None:
                found.append((match.start(), match.end(), span))
    for op_match in _OPERATOR.finditer(query):
        first = _inner_at(query, op_match.end(), today)
        if first is None:
            continue
        op = " ".join(op_match.group("op").lower().split())
        (a_start, a_end), end = first.days, first.end
        days: DateSpan
        if op in ("between", "from"):
            pair = _between(query, first, today)
            if pair is None:
                # "from May 2023" alone is the month itself (the "from" preposition of
                # the anchor), not an open range: "emails from May 2023".
                continue
            end, days = pair
        elif op == "since":
            days = (a_start, None)
        elif op == "after":
            days = (a_end, None)
        elif op in ("before", "prior to"):
            days = (None, a_start)
        else:  # until, till: the anchor itself included
            days = (None, a_end)
        found.append((op_match.start(), end, days))
    return [c for c in found if _valid(c[2])]


def _to_utc(day: date | None, zone: tzinfo) -> datetime | None:
    if day is None:
        return None
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


def find_time_expressions(query: str, now: datetime) -> list[TimeMatch]:
    """Every time expression in ``query``, left to right, none overlapping.

    Where expressions overlap, the one starting first wins, then the longest
    ("since 8 May 2023" over "8 May 2023" over "May 2023"). See the module docstring
    for what is understood; ``now`` fixes what "today" is.
    """
    zone = now.tzinfo or UTC
    today = now.date()
    chosen: list[TimeMatch] = []
    taken_until = 0
    for start, end, (first, last) in sorted(
        _candidates(query, today), key=lambda c: (c[0], -(c[1] - c[0]))
    ):
        if start < taken_until:
            continue
        try:
            match = TimeMatch(
                _to_utc(first, zone), _to_utc(last, zone), (start, end), query[start:end]
            )
        except (OverflowError, ValueError):  # year 1 or 9999 shifted out of range by UTC
            continue
        chosen.append(match)
        taken_until = end
    return chosen


def parse_time_range(query: str, now: datetime) -> TimeMatch | None:
    """The first time expression in ``query`` as a UTC range, or ``None``.

    ``now`` anchors relative expressions; its time zone decides where days begin (UTC
    if naive). ``parse_time_range("what did Ann do last week?", now)`` is the previous
    Monday 00:00 to this Monday 00:00, with ``text == "last week"``.
    """
    found = find_time_expressions(query, now)
    return found[0] if found else None


# ----------------------------------------------------------------- dates in text

# ISO day, "8 May 2023", "May 8, 2023" (the anchors with a day), without prepositions.
_TEXT_DATES = [(re.compile(rf"\b(?:{a.body})(?!\w)", re.IGNORECASE), a) for a in _ANCHORS[:3]]


def find_dates(text: str) -> list[tuple[int, int, date]]:
    """Full calendar dates written in ``text``: ISO (``2023-05-08``), ``8 May 2023``,
    ``8th of May, 2023``, ``May 8th, 2023``, as ``(start, end, date)``, left to right.

    Only dates with a year and a valid day count: without ``now`` a bare "8 May" has
    no year to resolve to. Overlaps resolve like :func:`find_time_expressions`.
    """
    found: list[tuple[int, int, date]] = []
    for pattern, anchor in _TEXT_DATES:
        for match in pattern.finditer(text):
            if not match.group("year"):
                continue
            days = _resolve(anchor, match, date.max)
            if days is not None and days[0] is not None:
                found.append((match.start(), match.end(), days[0]))
    found.sort(key=lambda f: (f[0], -(f[1] - f[0])))
    out: list[tuple[int, int, date]] = []
    for item in found:
        if not out or item[0] >= out[-1][1]:
            out.append(item)
    return out
