"""Pure functions: what to recall on, the injected system message, the retained text.

They mirror the shared Lua core of the API-gateway plugins
(``gateway-plugins/lua/astrocyte_memory/core.lua``) so a deployment that uses both sees
the same system message for the same hits: budgets are counted in UTF-8 **bytes**,
"whitespace" is ASCII whitespace (Lua's ``%s``), cuts never split a UTF-8 sequence.

Messages may be dicts (what the OpenAI client takes) or objects with ``role`` and
``content`` attributes (e.g. a ``ChatCompletionMessage`` appended from an earlier reply).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

__all__ = [
    "DEFAULT_TEMPLATE",
    "PLACEHOLDER",
    "Position",
    "content_text",
    "exchange_text",
    "format_memories",
    "has_text",
    "inject",
    "insert_index",
    "last_user_message",
    "truncate_utf8",
]

PLACEHOLDER = "{memories}"
DEFAULT_TEMPLATE = "Relevant memories from earlier conversations:\n{memories}"

Position = Literal["first", "before_last_user"]

# Lua's %s in the C locale: space, \t, \n, \v, \f, \r (not Unicode spaces).
_WS = re.compile(r"[ \t\n\v\f\r]+")
_NON_WS = re.compile(r"[^ \t\n\v\f\r]")


def _field(message: object, name: str) -> Any:
    if isinstance(message, Mapping):
        return message.get(name)
    return getattr(message, name, None)


def content_text(content: object) -> str | None:
    """Text of an OpenAI message ``content``: the string itself, or the ``text`` parts
    of a list of parts joined by ``\\n``; ``None`` when there is no text."""
    if isinstance(content, str):
        return content
    if not isinstance(content, Sequence) or isinstance(content, bytes | bytearray):
        return None
    texts = []
    for part in content:
        if _field(part, "type") == "text":
            text = _field(part, "text")
            if isinstance(text, str):
                texts.append(text)
    return "\n".join(texts) if texts else None


def last_user_message(messages: Sequence[object]) -> tuple[str, int] | None:
    """Text and index of the last ``user`` message, or ``None`` when there is none or
    it has no non-blank text (earlier user messages are not looked at)."""
    for i in range(len(messages) - 1, -1, -1):
        if _field(messages[i], "role") == "user":
            text = content_text(_field(messages[i], "content"))
            if text is not None and _NON_WS.search(text):
                return text, i
            return None
    return None


def truncate_utf8(text: str, max_bytes: int) -> str:
    """``text`` cut to at most ``max_bytes`` UTF-8 bytes, never inside a character."""
    raw = text.encode("utf-8", "surrogatepass")
    if len(raw) <= max_bytes:
        return text
    cut = max(max_bytes, 0)
    # Step back over continuation bytes (10xxxxxx) to the start of a character.
    while cut > 0 and 0x80 <= raw[cut] < 0xC0:
        cut -= 1
    return raw[:cut].decode("utf-8", "surrogatepass")


def _size(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _one_line(text: str) -> str:
    return _WS.sub(" ", text).strip(" ")


def format_memories(
    texts: Sequence[object],
    *,
    template: str = DEFAULT_TEMPLATE,
    max_chars: int = 2000,
    max_tokens: int | None = None,
    max_results: int = 5,
) -> str | None:
    """The system message for recalled ``texts`` (best first), or ``None`` if none fits.

    Deterministic: texts keep their order, each becomes ``- <text>`` on one line
    (whitespace runs collapsed to one space), whole lines are added while the message
    stays within ``min(max_chars, 4 * max_tokens)`` UTF-8 bytes, at most
    ``max_results`` lines; when not even the first line fits it is cut and ends with
    ``...``. The lines replace the first ``{memories}`` of ``template``.
    """
    budget = max_chars if max_tokens is None else min(max_chars, max_tokens * 4)
    head, found, tail = template.partition(PLACEHOLDER)
    if not found:
        return None
    room = budget - _size(head) - _size(tail)
    if room <= 0:
        return None
    lines: list[str] = []
    used = 0
    for raw in texts:
        if len(lines) >= max_results:
            break
        if not isinstance(raw, str):
            continue
        text = _one_line(raw)
        if not text:
            continue
        line = "- " + text
        cost = _size(line) + (1 if lines else 0)
        if used + cost <= room:
            lines.append(line)
            used += cost
            continue
        if not lines and room > len("- ..."):
            lines.append(truncate_utf8(line, room - 3) + "...")
        break
    if not lines:
        return None
    return head + "\n".join(lines) + tail


def insert_index(messages: Sequence[object], position: Position) -> int:
    """Where the system message goes: 0 for ``first``; before the last user message for
    ``before_last_user`` (0 when there is none)."""
    if position == "before_last_user":
        for i in range(len(messages) - 1, -1, -1):
            if _field(messages[i], "role") == "user":
                return i
    return 0


def inject(messages: Sequence[object], system_message: str, position: Position) -> list[object]:
    """A new list: ``messages`` with ``{"role": "system", "content": system_message}``
    inserted at ``position`` (the caller's list is not changed)."""
    out = list(messages)
    out.insert(insert_index(out, position), {"role": "system", "content": system_message})
    return out


def exchange_text(user_text: str, reply_text: str) -> str:
    """What is retained for one exchange (``content_type`` ``conversation``)."""
    return f"user: {user_text}\nassistant: {reply_text}"


def has_text(text: str | None) -> bool:
    """``text`` contains something other than ASCII whitespace."""
    return text is not None and _NON_WS.search(text) is not None
