"""Normalisers per content type: what each keeps, what each drops, and that none crash."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from astrocyte.errors import ValidationError
from astrocyte.pipeline.normalise import (
    email_date,
    html_to_text,
    markdown_to_text,
    normalise,
    normalise_document,
    normalise_email,
    normalise_event,
    supported_content_types,
)

EVERY_TYPE = supported_content_types()


def test_supported_types_and_unknown_type_error() -> None:
    assert set(EVERY_TYPE) >= {"text", "conversation", "transcript", "email", "document", "event"}
    with pytest.raises(ValidationError) as info:
        normalise("x", "spreadsheet")
    assert info.value.field == "content_type"
    assert "document" in str(info.value) and "event" in str(info.value)


def test_conversation_keeps_one_turn_per_line() -> None:
    raw = "Ann:  hi there\r\nBob: hello\n\n\n\nAnn: bye  "
    assert normalise(raw, "conversation") == "Ann: hi there\nBob: hello\n\nAnn: bye"
    assert normalise(raw, "transcript") == normalise(raw, "conversation")


# ----------------------------------------------------------------------- document

HTML = """<!DOCTYPE html>
<html><head><title>Trip notes</title>
<style>p { color: red }</style><script>var s = "<p>hidden</p>";</script></head>
<body>
  <h1>Lisbon   in   May</h1>
  <p>We stayed in <b>Alfama</b>,
     near the <a href="https://example.org">castle</a> &amp; the river.</p>
  <ul><li>Day 1: tram 28</li><li>Day 2: Belém</li></ul>
  <table><tr><th>Day</th><th>Cost</th></tr><tr><td>1</td><td>40 €</td></tr></table>
  <noscript>enable JS</noscript>
</body></html>"""


def test_html_document_becomes_lines_of_visible_text() -> None:
    assert normalise(HTML, "document") == "\n".join(
        [
            "Trip notes",
            "Lisbon in May",
            "We stayed in Alfama, near the castle & the river.",
            "Day 1: tram 28",
            "Day 2: Belém",
            "Day | Cost",
            "1 | 40 €",
        ]
    )


MARKDOWN = """# Lisbon in *May* #

We stayed in **Alfama**, near the [castle](https://example.org)
and the river. See ![the view](view.png) and `tram_28`.

Packing
-------

- sunscreen
- a [x] not-a-checkbox
  that wraps
1. first
2) second

> Quote with _emphasis_ and snake_case_word.

```
code   line
```

| day | cost |
|-----|-----:|
| 1   | 40   |

[castle]: https://example.org/castle
<script>alert("x")</script>
***
Escaped \\*stars\\* stay."""


def test_markdown_document_becomes_lines_without_markup() -> None:
    assert normalise(MARKDOWN, "document") == "\n".join(
        [
            "Lisbon in May",
            "We stayed in Alfama, near the castle and the river. See the view and tram_28.",
            "Packing",
            "sunscreen",
            "a [x] not-a-checkbox that wraps",
            "first",
            "second",
            "Quote with emphasis and snake_case_word.",
            "code line",
            "day | cost",
            "1 | 40",
            "Escaped *stars* stay.",
        ]
    )


def test_document_detection_and_explicit_types() -> None:
    readme = '<p align="center"><img src="logo.png"></p>\n\n# Title\n\nSome **text**.'
    assert normalise_document(readme) == "Title\nSome text."  # Markdown with some HTML
    assert normalise("<div><p>a</p><p>b</p></div>", "document") == "a\nb"
    assert normalise("# not a heading in html", "html") == "# not a heading in html"
    assert normalise("<p>x</p>", "markdown") == "x"


def test_markup_html_parser_rejects_still_gives_text() -> None:
    assert html_to_text("<p>kept</p><![weird section]> text") == "kept text"


def test_pathological_markup_is_linear_enough() -> None:
    # Unterminated tags and stray markers used to make html.parser and lazy regexes
    # quadratic; these each take well under a second now.
    for text in ["<a " * 20000, "**a " * 20000, "<script " * 5000, "[a " * 20000]:
        html_to_text(text)
        markdown_to_text(text)


# -------------------------------------------------------------------------- email

EMAIL = """From: Alice Smith <alice@example.com>
To: bob@example.com
Subject: =?utf-8?q?Lunch_on_Fr=C3=ADday?=
Date: Mon, 8 May 2023 10:00:00 +0200
Message-ID: <abc@example.com>
X-Mailer: something
 folded

Hi Bob,

Shall we meet at noon?

On Sun, 7 May 2023, Bob <bob@example.com>
wrote:
> Lunch on Friday?
> > older quote

--\x20
Alice Smith
Sent from my phone
"""


def test_email_keeps_a_header_line_and_new_body_text_only() -> None:
    assert normalise(EMAIL, "email") == (
        "From: Alice Smith <alice@example.com> | To: bob@example.com | "
        "Subject: Lunch on Fríday | Date: Mon, 8 May 2023 10:00:00 +0200\n\n"
        "Hi Bob,\n\nShall we meet at noon?"
    )


def test_email_date_is_timezone_aware() -> None:
    assert email_date(EMAIL) == datetime(2023, 5, 8, 8, 0, tzinfo=UTC)
    assert email_date(EMAIL).utcoffset() == timedelta(hours=2)  # type: ignore[union-attr]
    no_zone = "Date: Mon, 8 May 2023 10:00:00 -0000\n\nbody"
    assert email_date(no_zone) == datetime(2023, 5, 8, 10, tzinfo=UTC)
    assert email_date("Date: someday\n\nbody") is None
    assert email_date("just a body") is None


def test_mime_email_uses_the_text_part() -> None:
    mime = """From: a@example.com
Subject: news
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="XX"

--XX
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: quoted-printable

<p>Hello =C3=A9t=C3=A9</p><script>x()</script>
--XX--
"""
    assert normalise_email(mime) == "From: a@example.com | Subject: news\n\nHello été"


def test_bare_body_and_outlook_original_are_handled() -> None:
    body = "Thanks, done.\n\n-----Original Message-----\nFrom: x\nold text"
    assert normalise_email(body) == "Thanks, done."


# -------------------------------------------------------------------------- event


def test_event_renders_sorted_dotted_key_value_lines() -> None:
    event = {
        "type": "purchase",
        "user": {"name": "Ann  Lee", "address": {"city": "Porto"}},
        "items": [{"sku": "A1", "qty": 2}, {"sku": "B7", "qty": 1}],
        "tags": ["gift", "online"],
        "paid": True,
        "coupon": None,
        "meta": {},
        "total": 19.5,
    }
    expected = "\n".join(
        [
            "coupon: null",
            "items.0.qty: 2",
            "items.0.sku: A1",
            "items.1.qty: 1",
            "items.1.sku: B7",
            "meta: {}",
            "paid: true",
            "tags: gift, online",
            "total: 19.5",
            "type: purchase",
            "user.address.city: Porto",
            "user.name: Ann Lee",
        ]
    )
    assert normalise(json.dumps(event), "event") == expected
    # Key order does not matter: equal objects render equally.
    assert normalise_event(json.dumps(dict(reversed(event.items())))) == expected


@pytest.mark.parametrize("bad", ["{bad", "[1, 2]", '"text"', "NaN", '{"a": Infinity}', ""])
def test_event_that_is_not_a_json_object_is_a_validation_error(bad: str) -> None:
    with pytest.raises(ValidationError) as info:
        normalise(bad, "event")
    assert info.value.field == "content"


def test_deeply_nested_event_does_not_recurse() -> None:
    deep = '{"a":' * 900 + "1" + "}" * 900
    assert normalise_event(deep).endswith(": 1")


# ---------------------------------------------------------------------- properties

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=80, deadline=None)
@given(content=st.text(max_size=300), content_type=st.sampled_from(EVERY_TYPE))
def test_no_normaliser_crashes_on_arbitrary_text(content: str, content_type: str) -> None:
    try:
        out = normalise(content, content_type)
    except ValidationError as exc:
        assert content_type == "event" and exc.field == "content"
        return
    assert out == out.strip()
    assert "\r" not in out and "\x00" not in out
    assert normalise(content, content_type) == out  # deterministic


MARKUP_TOKENS = [
    *"<p> </p> <h2> </h2> <li> <br> <script> </script> <b> </b> &amp; <!-- --> < > <![ ]>".split(),
    *"# ** _ ` [ ]( ) word Ünï".split(),
    "\n",
    " ",
]


@settings(max_examples=60, deadline=None)
@given(markup=st.lists(st.sampled_from(MARKUP_TOKENS), max_size=40).map("".join))
def test_markup_soup_never_crashes(markup: str) -> None:
    for text in (html_to_text(markup), markdown_to_text(markup), normalise_document(markup)):
        assert text == text.strip()


keys = st.text(alphabet="abcdefghij_", min_size=1, max_size=5)


@settings(max_examples=60, deadline=None)
@given(obj=st.dictionaries(keys, json_values, max_size=5))
def test_event_lines_cover_every_key_in_sorted_order(obj: dict[str, object]) -> None:
    lines = normalise_event(json.dumps(obj)).split("\n")
    assert all(": " in line for line in lines if line)
    tops = [line.split(":")[0].split(".")[0] for line in lines if line]
    assert tops == sorted(tops)
    # Every key shows up, unless its value is an empty container nested nowhere...
    # which still renders as "key: {}" / "key: []", so: every key shows up.
    assert set(tops) == set(obj)


@settings(max_examples=50, deadline=None)
@given(
    offset_minutes=st.integers(-12 * 60, 14 * 60),
    when=st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1)),
)
def test_email_date_round_trips(offset_minutes: int, when: datetime) -> None:
    from email.utils import format_datetime

    zone = timezone(timedelta(minutes=offset_minutes))
    aware = when.replace(microsecond=0, tzinfo=zone)
    parsed = email_date(f"From: a@b.co\nDate: {format_datetime(aware)}\n\nhi")
    assert parsed == aware and parsed.tzinfo is not None
