"""Relative and absolute time expressions in queries become half-open UTC ranges."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from astrocyte.pipeline.dates import (
    find_dates,
    find_time_expressions,
    parse_time_range,
)
from astrocyte.types import TimeRange

# Wednesday 15 May 2024, mid-afternoon.
NOW = datetime(2024, 5, 15, 14, 30, tzinfo=UTC)


def d(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, tzinfo=UTC)


CASES: list[tuple[str, datetime | None, datetime | None, str]] = [
    ("what did I eat yesterday?", d(2024, 5, 14), d(2024, 5, 15), "yesterday"),
    ("plans for today", d(2024, 5, 15), d(2024, 5, 16), "today"),
    ("what did I do this morning", d(2024, 5, 15), d(2024, 5, 16), "this morning"),
    ("the day before yesterday", d(2024, 5, 13), d(2024, 5, 14), "the day before yesterday"),
    ("meetings last week", d(2024, 5, 6), d(2024, 5, 13), "last week"),
    ("meetings this week", d(2024, 5, 13), d(2024, 5, 20), "this week"),
    ("bills from last month", d(2024, 4, 1), d(2024, 5, 1), "from last month"),
    ("trips last year", d(2023, 1, 1), d(2024, 1, 1), "last year"),
    ("what happened in March", d(2024, 3, 1), d(2024, 4, 1), "in March"),
    ("what happened in June", d(2023, 6, 1), d(2023, 7, 1), "in June"),  # not the future
    ("what happened in May", d(2024, 5, 1), d(2024, 6, 1), "in May"),  # current month
    ("what happened in March 2023", d(2023, 3, 1), d(2023, 4, 1), "in March 2023"),
    ("who called on 8 May 2023?", d(2023, 5, 8), d(2023, 5, 9), "on 8 May 2023"),
    ("May 8th, 2023 dinner", d(2023, 5, 8), d(2023, 5, 9), "May 8th, 2023"),
    ("on the 8th of May", d(2024, 5, 8), d(2024, 5, 9), "on the 8th of May"),
    ("on 20 May", d(2023, 5, 20), d(2023, 5, 21), "on 20 May"),  # most recent, not future
    ("2023-05-08 notes", d(2023, 5, 8), d(2023, 5, 9), "2023-05-08"),
    ("sales in May 2023", d(2023, 5, 1), d(2023, 6, 1), "in May 2023"),
    ("report 2023-05", d(2023, 5, 1), d(2023, 6, 1), "2023-05"),
    ("everything from 2023", d(2023, 1, 1), d(2024, 1, 1), "from 2023"),
    ("2023", d(2023, 1, 1), d(2024, 1, 1), "2023"),
    ("3 days ago", d(2024, 5, 12), d(2024, 5, 13), "3 days ago"),
    ("two weeks ago", d(2024, 4, 29), d(2024, 5, 6), "two weeks ago"),
    ("a month ago", d(2024, 4, 1), d(2024, 5, 1), "a month ago"),
    ("a couple of years ago", d(2022, 1, 1), d(2023, 1, 1), "a couple of years ago"),
    ("in the last 10 days", d(2024, 5, 5), d(2024, 5, 16), "in the last 10 days"),
    ("over the past 2 weeks", d(2024, 5, 1), d(2024, 5, 16), "over the past 2 weeks"),
    ("in the last week", d(2024, 5, 8), d(2024, 5, 16), "in the last week"),
    ("past 3 months", d(2024, 2, 15), d(2024, 5, 16), "past 3 months"),
    ("last Friday", d(2024, 5, 10), d(2024, 5, 11), "last Friday"),
    ("last Wednesday", d(2024, 5, 8), d(2024, 5, 9), "last Wednesday"),
    ("on Wednesday", d(2024, 5, 15), d(2024, 5, 16), "on Wednesday"),
    ("since 8 May 2023", d(2023, 5, 8), None, "since 8 May 2023"),
    ("since last week", d(2024, 5, 6), None, "since last week"),
    ("since March", d(2024, 3, 1), None, "since March"),
    ("after 2020", d(2021, 1, 1), None, "after 2020"),
    ("before March 2023", None, d(2023, 3, 1), "before March 2023"),
    ("until yesterday", None, d(2024, 5, 15), "until yesterday"),
    (
        "between 1 May and 10 May 2023",
        d(2023, 5, 1),
        d(2023, 5, 11),
        "between 1 May and 10 May 2023",
    ),
    ("from March to April 2023", d(2023, 3, 1), d(2023, 5, 1), "from March to April 2023"),
    (
        "from 3 days ago to yesterday",
        d(2024, 5, 12),
        d(2024, 5, 15),
        "from 3 days ago to yesterday",
    ),
]


@pytest.mark.parametrize(("query", "start", "end", "text"), CASES, ids=[c[0] for c in CASES])
def test_expressions(query: str, start: datetime | None, end: datetime | None, text: str) -> None:
    match = parse_time_range(query, NOW)
    assert match is not None
    assert (match.start, match.end, match.text) == (start, end, text)
    assert query[match.span[0] : match.span[1]] == text


@pytest.mark.parametrize(
    "query",
    [
        "what did Alice say about the budget?",
        "I may go",  # the verb
        "call me at 10:30",
        "room 101",
        "the 1990s",
        "price was $2023",
        "we march on",
        "",
    ],
)
def test_no_time_expression(query: str) -> None:
    assert parse_time_range(query, NOW) is None


def test_remove_from_and_time_range() -> None:
    query = "what did Ann cook last week for dinner?"
    match = parse_time_range(query, NOW)
    assert match is not None
    assert match.remove_from(query) == "what did Ann cook for dinner?"
    assert match.as_time_range() == TimeRange(start=d(2024, 5, 6), end=d(2024, 5, 13))


def test_days_begin_in_the_time_zone_of_now() -> None:
    tokyo = timezone(timedelta(hours=9))
    # 01:00 on 15 May in Tokyo is still 14 May in UTC; "yesterday" is Tokyo's 14 May.
    match = parse_time_range("yesterday", datetime(2024, 5, 15, 1, 0, tzinfo=tokyo))
    assert match is not None
    assert match.start == datetime(2024, 5, 13, 15, 0, tzinfo=UTC)
    assert match.end == datetime(2024, 5, 14, 15, 0, tzinfo=UTC)
    naive = parse_time_range("today", datetime(2024, 5, 15, 23, 0))
    assert naive is not None and naive.start == d(2024, 5, 15)


def test_first_and_all_expressions() -> None:
    found = find_time_expressions("yesterday and since 8 May 2023 and in 2022", NOW)
    assert [m.text for m in found] == ["yesterday", "since 8 May 2023", "in 2022"]
    match = parse_time_range("in May 2023 or later", NOW)
    assert match is not None and match.text == "in May 2023"  # longest at the first position


def test_find_dates_in_text() -> None:
    text = "Met on 2023-05-08, again on 8th of May, 2023 and May 9 2023; not 31 Feb 2023 or 8 May."
    assert [(text[s:e], day) for s, e, day in find_dates(text)] == [
        ("2023-05-08", date(2023, 5, 8)),
        ("8th of May, 2023", date(2023, 5, 8)),
        ("May 9 2023", date(2023, 5, 9)),
    ]


# ---------------------------------------------------------------------- properties

nows = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2090, 12, 31)).flatmap(
    lambda naive: st.sampled_from([0, 60, -300, 330, 540, -720]).map(
        lambda minutes: naive.replace(tzinfo=timezone(timedelta(minutes=minutes)))
    )
)
MONTH_NAMES = (
    "January February March April May June July August September October November December".split()
)


def _phrase(kind: str, n: int, now: datetime) -> tuple[str, date]:
    """A phrase and a date its range must contain (``today`` in now's zone)."""
    today = now.date()
    if kind == "ago":
        return f"{n} days ago", today - timedelta(days=n)
    if kind == "weeks_ago":
        return f"{n} weeks ago", today - timedelta(weeks=n)
    if kind == "last_n":
        return f"in the last {n} days", today - timedelta(days=n)
    if kind == "day":
        day = today - timedelta(days=n * 37)
        return f"on {day.day} {MONTH_NAMES[day.month - 1]} {day.year}", day
    if kind == "iso":
        day = today - timedelta(days=n * 11)
        return day.isoformat(), day
    if kind == "month":
        day = today - timedelta(days=n * 29)
        return f"in {MONTH_NAMES[day.month - 1]} {day.year}", day
    if kind == "month_only":
        return f"in {MONTH_NAMES[today.month - 1]}", today
    if kind == "yesterday":
        return "yesterday", today - timedelta(days=1)
    if kind == "last_week":
        return "last week", today - timedelta(days=7)
    if kind == "last_month":
        first = today.replace(day=1)
        return "last month", first - timedelta(days=1)
    if kind == "since":
        return f"since {n} days ago", today
    assert kind == "before"
    day = today - timedelta(days=n)
    return f"before {day.isoformat()}", day - timedelta(days=1)


@settings(max_examples=100, deadline=None)
@given(
    now=nows,
    kind=st.sampled_from(
        [
            "ago",
            "weeks_ago",
            "last_n",
            "day",
            "iso",
            "month",
            "month_only",
            "yesterday",
            "last_week",
            "last_month",
            "since",
            "before",
        ]
    ),
    n=st.integers(1, 60),
    prefix=st.sampled_from(["", "what did Ann say ", "Notes: "]),
)
def test_range_contains_the_anchor_date(now: datetime, kind: str, n: int, prefix: str) -> None:
    phrase, anchor = _phrase(kind, n, now)
    assume(anchor.year >= 1900)
    query = f"{prefix}{phrase}?"
    match = parse_time_range(query, now)
    assert match is not None, query
    assert match.text == phrase and query[match.span[0] : match.span[1]] == phrase
    zone = now.tzinfo
    anchor_start = datetime(anchor.year, anchor.month, anchor.day, tzinfo=zone)
    assert match.start is None or match.start <= anchor_start
    assert match.end is None or anchor_start < match.end
    if match.start is not None and match.end is not None:
        assert match.start < match.end


@settings(max_examples=100, deadline=None)
@given(
    query=st.lists(
        st.sampled_from(
            [
                "in",
                "on",
                "since",
                "before",
                "between",
                "and",
                "to",
                "from",
                "last",
                "the",
                "past",
                "ago",
                "May",
                "march",
                "8",
                "31",
                "2023",
                "2023-02-30",
                "1999-12",
                "days",
                "week",
                "month",
                "year",
                "yesterday",
                "today",
                "Friday",
                "3",
                "a",
                "couple",
                "of",
                ",",
                "x",
                "9999",
                "0001-01-01",
            ]
        ),
        max_size=12,
    ).map(" ".join),
    now=nows,
)
def test_any_query_gives_a_well_formed_range_or_none(query: str, now: datetime) -> None:
    for match in find_time_expressions(query, now):
        assert match.start is not None or match.end is not None
        if match.start is not None and match.end is not None:
            assert match.start < match.end
        for bound in (match.start, match.end):
            assert bound is None or bound.utcoffset() == timedelta(0)
        assert query[match.span[0] : match.span[1]] == match.text
