"""Normalisation: turn raw retained content into clean text, per content type.

Chunk spans and provenance offsets refer to the normalised text, so normalisers must be
deterministic. Each content type has one normaliser; an unknown type is a
:class:`~astrocyte.errors.ValidationError` listing the supported ones.

=================  =========================================================================
content type       normalised text
=================  =========================================================================
``text``           :func:`normalise_text` (whitespace and Unicode clean-up only)
``conversation``,  like ``text``: one turn per line stays one turn per line
``transcript``
``email``          :func:`normalise_email`: one ``From: … | To: … | Subject: … | Date: …``
                   line, a blank line, then the body without quoted replies or signature
``document``       :func:`html_to_text` when the content is an HTML document, otherwise
                   :func:`markdown_to_text`: one line per heading, paragraph, list item
``html``,          the same two, for callers that know which one they have
``markdown``
``event``          :func:`normalise_event`: a JSON object as sorted ``key: value`` lines,
                   nested keys dotted
=================  =========================================================================

Everything here is pure and offline: only the standard library (``html.parser``,
``email``, ``json``), no I/O.
"""

from __future__ import annotations

import email
import email.errors
import email.message
import email.utils
import json
import re
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime
from email.header import decode_header, make_header
from email.policy import compat32
from html.parser import HTMLParser

from astrocyte.errors import ValidationError

# Control characters other than tab and newline carry no meaning for recall and
# confuse tokenisers (and some of them break terminals when hits are printed).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_TRAILING_SPACE = re.compile(r"[ \t]+\n")
_MANY_BLANK_LINES = re.compile(r"\n{3,}")
_INLINE_SPACE = re.compile(r"[ \t]{2,}")
_ANY_SPACE = re.compile(r"\s+")


def normalise_text(raw: str) -> str:
    """Unicode NFC, ``\\r\\n`` → ``\\n``, no control characters, no runs of spaces,
    at most one blank line in a row, no leading/trailing whitespace."""
    text = unicodedata.normalize("NFC", raw).replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text)
    text = _INLINE_SPACE.sub(" ", text)
    text = _TRAILING_SPACE.sub("\n", text)
    text = _MANY_BLANK_LINES.sub("\n\n", text)
    return text.strip()


def _one_line(text: str) -> str:
    return _ANY_SPACE.sub(" ", _CONTROL.sub("", text)).strip()


# --------------------------------------------------------------------------- HTML


class _HTMLText(HTMLParser):
    """Collects the visible text of an HTML document, one line per block element."""

    # Elements that start a new line. Anything else (a, span, b, em, ...) is inline.
    BLOCK = frozenset(
        """
        address article aside blockquote body br caption dd details dialog div dl dt
        fieldset figcaption figure footer form h1 h2 h3 h4 h5 h6 header hr html legend li
        main nav ol p pre section summary table tbody td tfoot th thead title tr ul
        """.split()
    )
    # Elements whose content is never visible text.
    SKIP = frozenset({"script", "style", "noscript", "template", "svg", "math", "iframe"})
    CELL = frozenset({"td", "th"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self._line: list[str] = []
        self._skip = 0
        self._pre = 0

    def _flush(self) -> None:
        line = _one_line("".join(self._line)) if not self._pre else "".join(self._line).rstrip()
        if line.strip():
            self.lines.append(line)
        self._line = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self._skip += 1
        elif tag in self.CELL and "".join(self._line).strip():
            # Cells of one row stay on one line, separated like a Markdown table.
            self._line.append(" | ")
        elif tag in self.BLOCK:
            self._flush()
            if tag == "pre":
                self._pre += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag in self.BLOCK and tag not in self.CELL:
            self._flush()
            if tag == "pre":
                self._pre = max(0, self._pre - 1)

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if not self._pre:
            self._line.append(_ANY_SPACE.sub(" ", data))
            return
        # Inside <pre> the source line breaks are the content's own.
        first, *rest = data.split("\n")
        self._line.append(first)
        for line in rest:
            self._flush()
            self._line.append(line)

    def close(self) -> None:
        super().close()
        self._flush()


_TAG = re.compile(r"<[^>]*>")
# A "<" with no ">" before the next "<" cannot open a tag. html.parser rescans such
# an unterminated tag from the start for every later "<", which is quadratic (minutes
# for 100 KB of "<a <a <a"), so they are escaped to text first.
_STRAY_LT = re.compile(r"<(?=[^<>]*(?:<|$))")


def html_to_text(html: str) -> str:
    """Visible text of an HTML document or fragment.

    Headings, paragraphs, list items, table rows and other block elements each become
    one line (table cells joined with ``" | "``); ``<script>``, ``<style>`` and other
    invisible elements are dropped; entities are decoded; whitespace inside a block is
    collapsed except in ``<pre>``. Uses only :mod:`html.parser` from the standard
    library, which accepts any input (broken markup included).
    """
    parser = _HTMLText()
    try:
        parser.feed(_STRAY_LT.sub("&lt;", html))
        parser.close()
    except AssertionError:
        # html.parser asserts on a marked section it does not know ("<![foo]>");
        # dropping every tag keeps the text, if not the line structure.
        return normalise_text(_TAG.sub(" ", html))
    return normalise_text("\n".join(parser.lines))


# ----------------------------------------------------------------------- Markdown

_MD_RAW_OPEN = re.compile(r"<(script|style)\b|<!--", re.IGNORECASE)
_MD_RAW_CLOSE = {
    "script": re.compile(r"</script\s*>", re.IGNORECASE),
    "style": re.compile(r"</style\s*>", re.IGNORECASE),
    None: re.compile(r"-->"),
}
_MD_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
_MD_RULE = re.compile(r"^\s{0,3}([-=*_])(?:\s*\1){2,}\s*$")
_MD_HEADING = re.compile(r"^\s{0,3}#{1,6}(?:\s+(.*?))?(?:\s+#+)?\s*$")
_MD_REF_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*\S+")
_MD_QUOTE = re.compile(r"^\s{0,3}>\s?")
_MD_ITEM = re.compile(r"^\s*(?:[-*+]|\d{1,9}[.)])(?:\s+\[[ xX]\])?(?:\s+|$)")
_MD_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-+:?\s*(?:\|\s*:?-+:?\s*)*\|?\s*$")

_MD_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")
# Inner lengths are bounded so an unmatched opener costs a bounded scan, not one to the
# end of the line (which makes a long paragraph of stray markers quadratic).
_MD_CODE = re.compile(r"(`+)(.{1,2000}?)\1")
_MD_IMAGE = re.compile(r"!\[([^\]]{0,500})\]\([^)]{0,2000}\)")
_MD_LINK = re.compile(r"\[([^\]]{1,500})\](?:\([^)]{0,2000}\)|\[[^\]]{0,500}\])")
_MD_AUTOLINK = re.compile(r"<((?:https?|ftp|mailto):[^\s<>]+|[^\s<>@]+@[^\s<>@]+)>")
_MD_INLINE_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>")
_MD_EMPHASIS = (
    re.compile(r"(\*\*|__)(?=\S)(.{1,300}?)(?<=\S)\1"),
    re.compile(r"(~~)(?=\S)(.{1,300}?)(?<=\S)~~"),
    re.compile(r"(\*)(?=\S)(.{1,300}?)(?<=\S)\*"),
    # An underscore inside a word (snake_case) is not emphasis.
    re.compile(r"(?<!\w)(_)(?=\S)(.{1,300}?)(?<=\S)_(?!\w)"),
)
# Placeholders for text that must survive the inline rewrites verbatim (escaped
# characters, code spans). NUL cannot occur in the input: normalise_text removed it.
_HOLD = re.compile(r"\x00(\d+)\x00")


def _md_inline(text: str) -> str:
    held: list[str] = []

    def hold(value: str) -> str:
        held.append(value)
        return f"\x00{len(held) - 1}\x00"

    text = _MD_ESCAPE.sub(lambda m: hold(m.group(1)), text)
    text = _MD_CODE.sub(lambda m: hold(m.group(2).strip()), text)
    text = _MD_IMAGE.sub(r"\1", text)
    text = _MD_LINK.sub(r"\1", text)
    text = _MD_AUTOLINK.sub(lambda m: hold(m.group(1)), text)
    text = _MD_INLINE_TAG.sub("", text)
    for pattern in _MD_EMPHASIS:
        # Twice, so nested emphasis of one kind (**a *b* c** is two kinds) unwraps;
        # deeper nesting of the same marker does not occur in real documents.
        for _ in range(2):
            text = pattern.sub(r"\2", text)
    # A held value never contains a placeholder itself, so one pass restores all.
    return _one_line(_HOLD.sub(lambda m: held[int(m.group(1))], text))


def _drop_raw_blocks(text: str) -> str:
    """``text`` without ``<script>``/``<style>`` elements and HTML comments.

    A loop rather than one lazy regex: an unclosed ``<script`` would make the regex
    scan to the end of the text once per opener, i.e. quadratically.
    """
    out: list[str] = []
    pos = 0
    while (opener := _MD_RAW_OPEN.search(text, pos)) is not None:
        kind = opener.group(1).lower() if opener.group(1) else None
        closer = _MD_RAW_CLOSE[kind].search(text, opener.end())
        if closer is None:
            break  # unclosed: keep the rest as text rather than guess where it ends
        out.append(text[pos : opener.start()])
        pos = closer.end()
    out.append(text[pos:])
    return "".join(out)


def markdown_to_text(markdown: str) -> str:
    """Plain text of a Markdown document, one line per block.

    Headings (ATX and setext), paragraphs (soft-wrapped lines joined), list items,
    block quotes and table rows each become one line; fenced code keeps its lines.
    Markers (``#``, ``>``, list bullets, emphasis, link and image syntax, inline HTML
    tags) are removed and their text kept; link targets, reference definitions,
    horizontal rules, scripts, styles and comments are dropped.
    """
    text = _drop_raw_blocks(normalise_text(markdown))
    blocks: list[str] = []
    para: list[str] = []
    fence: str | None = None

    def flush() -> None:
        if para:
            blocks.append(_md_inline(" ".join(para)))
            para.clear()

    for raw_line in text.split("\n"):
        if fence is not None:
            if raw_line.strip().startswith(fence):
                fence = None
            elif raw_line.strip():
                blocks.append(raw_line.rstrip())
            continue
        line = raw_line
        while _MD_QUOTE.match(line):
            line = _MD_QUOTE.sub("", line, count=1)
        if opening := _MD_FENCE.match(line):
            flush()
            fence = opening.group(1)
            continue
        if not line.strip() or _MD_RULE.match(line) or _MD_TABLE_RULE.match(line):
            # A setext underline also ends here: the heading text above it is
            # already its own paragraph, so it becomes its own line.
            flush()
            continue
        if heading := _MD_HEADING.match(line):
            flush()
            blocks.append(_md_inline(heading.group(1) or ""))
            continue
        if _MD_REF_DEF.match(line):
            flush()
            continue
        if line.lstrip().startswith("|"):
            flush()
            cells = [_md_inline(c) for c in line.strip().strip("|").split("|")]
            blocks.append(" | ".join(c for c in cells if c))
            continue
        if item := _MD_ITEM.match(line):
            flush()
            line = line[item.end() :]
        para.append(line.strip())
    flush()
    return normalise_text("\n".join(b for b in blocks if b.strip()))


# A document is treated as HTML when it opens with a tag and closes with one; a
# Markdown file that merely embeds some HTML (a README's centred logo) does not end
# with a tag, and treating it as HTML would lose its line structure.
_HTML_OPENING = re.compile(r"\s*<(?:!doctype|!--|[a-zA-Z][\w-]*)[^<>]*>", re.IGNORECASE)


def normalise_document(content: str) -> str:
    """:func:`html_to_text` for an HTML document, :func:`markdown_to_text` otherwise.

    Content counts as HTML when it starts with a tag (or doctype/comment) and ends
    with ``>``; plain text is valid Markdown, so anything else goes that way.
    """
    if _HTML_OPENING.match(content) and content.rstrip().endswith(">"):
        return html_to_text(content)
    return markdown_to_text(content)


# -------------------------------------------------------------------------- email

_HEADER_START = re.compile(r"^([A-Za-z][A-Za-z0-9-]*)[ \t]*:(.*)$")
_SHOWN_HEADERS = ("from", "to", "subject", "date")
_ATTRIBUTION = re.compile(r"\bwrote:\s*$", re.IGNORECASE)
_ORIGINAL = re.compile(r"^-+\s*original message\s*-+$", re.IGNORECASE)
_SENT_FROM = re.compile(r"^sent from my [\w -]+$", re.IGNORECASE)


def _split_headers(content: str) -> tuple[dict[str, str], str] | None:
    """``(headers, body)`` when ``content`` opens with an RFC 822 header block.

    A header block is a run of ``Name: value`` lines (with folded continuation lines)
    ending at the first blank line or the end, naming at least one of From, To,
    Subject or Date. Anything else is not an email header block, so the whole content
    is the body. Header names are lower-cased; a repeated header keeps its first value.
    """
    lines = content.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines and lines[0].startswith("From ") and not _HEADER_START.match(lines[0]):
        lines = lines[1:]  # an mbox separator line
    headers: dict[str, str] = {}
    # The header that continuation lines extend; None after a repeated header, whose
    # value (and continuations) we ignore because the first occurrence wins.
    last: str | None = None
    body = ""
    for i, line in enumerate(lines):
        if not line.strip():
            body = "\n".join(lines[i + 1 :])
            break
        if line[0] in " \t":
            if i == 0:
                return None
            if last is not None:
                headers[last] += " " + line.strip()
            continue
        match = _HEADER_START.match(line)
        if match is None:
            return None
        name = match.group(1).lower()
        last = None if name in headers else name
        if last is not None:
            headers[last] = match.group(2).strip()
    if not any(name in headers for name in _SHOWN_HEADERS):
        return None
    return headers, body


def _decode_header(value: str) -> str:
    """RFC 2047 encoded words (``=?utf-8?q?...?=``) decoded; the raw value if broken."""
    try:
        return _one_line(str(make_header(decode_header(value))))
    except (ValueError, LookupError, UnicodeError, email.errors.HeaderParseError):
        return _one_line(value)


def _text_part(message: email.message.Message) -> tuple[str, bool] | None:
    """The first text/plain part (else the first text/html) and whether it is HTML."""
    html: tuple[str, bool] | None = None
    for part in message.walk():
        if part.is_multipart() or part.get_content_maintype() != "text":
            continue
        if part.get("content-disposition", "").lower().startswith("attachment"):
            continue
        subtype = part.get_content_subtype()
        if subtype not in ("plain", "html"):
            continue
        payload: str
        if part.get("content-transfer-encoding", "").strip().lower() in (
            "base64",
            "quoted-printable",
        ):
            data = part.get_payload(decode=True)
            charset = part.get_content_charset() or "utf-8"
            try:
                payload = data.decode(charset, errors="replace") if isinstance(data, bytes) else ""
            except LookupError:  # an unknown charset name
                payload = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else ""
        else:
            raw = part.get_payload()
            payload = raw if isinstance(raw, str) else ""
        if subtype == "plain":
            return payload, False
        html = html or (payload, True)
    return html


def _clean_email_body(body: str) -> str:
    """The new text of a message: quoted replies, their attribution line, forwarded
    originals, the signature and "Sent from my phone" lines removed."""
    lines = body.split("\n")
    kept: list[str] = []
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped in ("--", "-- ") or line == "-- ":
            break  # RFC 3676 signature separator: the rest is the signature
        if _ORIGINAL.match(stripped):
            break  # Outlook quotes the whole original below this line
        if stripped.startswith(">"):
            continue
        if _SENT_FROM.match(stripped):
            continue
        if _ATTRIBUTION.search(stripped):
            following = next((ln.strip() for ln in lines[i + 1 :] if ln.strip()), ">")
            if following.startswith(">"):
                # "On Mon, 8 May 2023, Alice <a@x.org> wrote:" is often wrapped over two
                # lines; drop its first half too.
                if (
                    kept
                    and kept[-1].strip().lower().startswith("on ")
                    and not (stripped.lower().startswith("on "))
                ):
                    kept.pop()
                continue
        kept.append(line)
    return "\n".join(kept)


def normalise_email(content: str) -> str:
    """An RFC 822-style message as ``From: … | To: … | Subject: … | Date: …``, a blank
    line, then the body text.

    Only the headers that are present are shown (encoded words decoded). A MIME
    message contributes its first text/plain part, else its first text/html part as
    text. Quoted reply lines (``>``), the "On … wrote:" line introducing them, an
    Outlook "Original Message" tail and everything after a ``-- `` signature separator
    are dropped. Content without a header block is treated as a bare body.
    """
    split = _split_headers(content)
    if split is None:
        return normalise_text(_clean_email_body(normalise_text(content)))
    headers, body = split
    if "content-type" in headers or "content-transfer-encoding" in headers:
        message = email.message_from_string(content, policy=compat32)
        picked = _text_part(message)
        if picked is None:
            body = ""
        else:
            body, is_html = picked
            if is_html:
                body = html_to_text(body)
    header_line = " | ".join(
        f"{name.capitalize()}: {_decode_header(headers[name])}"
        for name in _SHOWN_HEADERS
        if headers.get(name, "").strip()
    )
    body_text = normalise_text(_clean_email_body(normalise_text(body)))
    return normalise_text(f"{header_line}\n\n{body_text}")


def email_date(content: str) -> datetime | None:
    """The message's ``Date`` header as a timezone-aware datetime, for ``occurred_at``.

    ``None`` when there is no header block, no Date header, or it does not parse. A
    date without a zone (or with ``-0000``, "zone unknown" in RFC 5322) is taken as UTC.
    """
    split = _split_headers(content)
    if split is None or not split[0].get("date"):
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(split[0]["date"])
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


# -------------------------------------------------------------------------- event


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


def _scalar(value: object) -> str:
    if isinstance(value, str):
        # An empty string still shows as a value, so every line reads "key: value".
        return _one_line(value) or '""'
    return json.dumps(value)  # true/false/null and numbers exactly as JSON spells them


def normalise_event(content: str) -> str:
    """A JSON object as ``key: value`` lines, keys sorted, nested keys dotted.

    ``{"user": {"name": "Ann"}, "tags": ["a", "b"], "ok": true}`` becomes::

        ok: true
        tags: a, b
        user.name: Ann

    A list of scalars is one comma-separated line; a list holding objects or lists
    numbers its elements (``items.0.sku``); empty containers show as ``{}`` / ``[]``.
    Sorting makes equal objects render equally whatever their key order, so identical
    events hash identically. Anything but a JSON object is a ValidationError on
    ``content``.
    """
    try:
        data = json.loads(content, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        # ValueError covers JSONDecodeError and Python's int digit limit.
        raise ValidationError(
            "content", f"is not valid JSON for content_type 'event': {exc}"
        ) from None
    if not isinstance(data, dict):
        raise ValidationError(
            "content",
            f"must be a JSON object for content_type 'event', got {type(data).__name__}",
            fix='send an object such as {"type": "login", "user": "ann"}',
        )
    lines: list[str] = []
    # An explicit stack rather than recursion: json.loads accepts nesting deeper than
    # Python's recursion limit would allow us to walk.
    stack: list[tuple[str, object]] = [("", data)]
    while stack:
        prefix, value = stack.pop()
        children: list[tuple[str, object]]
        if isinstance(value, dict):
            children = [(_one_line(str(k)), v) for k, v in sorted(value.items())]
            empty = "{}"
        elif isinstance(value, list) and any(isinstance(v, dict | list) for v in value):
            children = [(str(i), v) for i, v in enumerate(value)]
            empty = "[]"
        else:
            if isinstance(value, list):
                rendered = ", ".join(_scalar(v) for v in value) if value else "[]"
            else:
                rendered = _scalar(value)
            lines.append(f"{prefix}: {rendered}")
            continue
        if not children and prefix:
            lines.append(f"{prefix}: {empty}")
        # Reversed so the stack pops them in order.
        stack.extend((f"{prefix}.{k}" if prefix else k, v) for k, v in reversed(children))
    return normalise_text("\n".join(lines))


# ----------------------------------------------------------------------- registry

Normaliser = Callable[[str], str]

# Conversations keep their line structure (one turn per line) through normalise_text,
# and the sentence chunker never splits inside a short line, so turns stay whole.
_NORMALISERS: dict[str, Normaliser] = {
    "text": normalise_text,
    "conversation": normalise_text,
    "transcript": normalise_text,
    "email": normalise_email,
    "document": normalise_document,
    "html": html_to_text,
    "markdown": markdown_to_text,
    "event": normalise_event,
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
