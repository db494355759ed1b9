"""Validation of public arguments, before anything touches a store.

Each function returns the cleaned value or raises :class:`ValidationError` naming the
field (e.g. ``items[3].tags[0]``) and the fix. Python's ``bool`` is never accepted
where an ``int`` is expected, and strings are never accepted where a list is.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from astrocyte.errors import PayloadTooLarge, ValidationError
from astrocyte.spi import MetadataValue
from astrocyte.types import TimeRange

_BANK_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$")
_MAX_KEY_CHARS = 128
_MAX_TAG_CHARS = 128
_MAX_METADATA_STR = 4096
_MAX_SOURCE_CHARS = 512


def bank_id(value: object, field: str = "bank_id") -> str:
    """A bank id: 1–128 of letters, digits and ``. _ : @ -``, starting alphanumeric."""
    if not isinstance(value, str):
        raise ValidationError(field, f"must be a string, got {type(value).__name__}")
    if not _BANK_ID.match(value):
        raise ValidationError(
            field,
            f"invalid bank id {value[:140]!r}",
            fix="use 1-128 letters, digits or . _ : @ -, starting with a letter or digit",
        )
    return value


def content(value: object, max_bytes: int, field: str = "content") -> str:
    """Retained content: ``str`` or UTF-8 ``bytes``, non-blank, at most ``max_bytes``."""
    if isinstance(value, bytes | bytearray):
        if len(value) > max_bytes:
            raise _too_large(field, len(value), max_bytes)
        try:
            value = bytes(value).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValidationError(
                field,
                f"is not valid UTF-8 (bad byte at offset {exc.start})",
                fix="decode the bytes with their real encoding and pass a str",
            ) from None
    if not isinstance(value, str):
        raise ValidationError(field, f"must be a string, got {type(value).__name__}")
    # Every character is at least one UTF-8 byte: reject obvious giants before encoding.
    if len(value) > max_bytes:
        raise _too_large(field, len(value), max_bytes)
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise ValidationError(
            field,
            f"contains an unpaired surrogate at index {exc.start} (not valid Unicode)",
            fix="decode the source bytes with errors='replace' or fix the encoding",
        ) from None
    if size > max_bytes:
        raise _too_large(field, size, max_bytes)
    if not value.strip():
        raise ValidationError(field, "is empty", fix="pass some text to remember")
    return value


def _too_large(field: str, size: int, limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        field,
        f"is {size} bytes, over the limit of {limit}",
        fix="split it into smaller retains or raise limits.max_content_bytes",
    )


def query(value: object, max_chars: int, field: str = "query") -> str:
    """A recall/reflect query: non-blank text of at most ``max_chars``."""
    if not isinstance(value, str):
        raise ValidationError(field, f"must be a string, got {type(value).__name__}")
    if not value.strip():
        raise ValidationError(field, "is empty", fix="pass the question or keywords to recall")
    if len(value) > max_chars:
        raise ValidationError(
            field,
            f"is {len(value)} characters, over the limit of {max_chars}",
            fix="shorten the query or raise limits.max_query_chars",
        )
    return value.strip()


def positive_int(value: object, field: str, *, maximum: int) -> int:
    """An ``int`` (not ``bool``) in ``[1, maximum]``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(field, f"must be an integer, got {type(value).__name__}")
    if not 1 <= value <= maximum:
        raise ValidationError(field, f"must be between 1 and {maximum}, got {value}")
    return value


def optional_positive_int(value: object, field: str, *, maximum: int) -> int | None:
    """``None`` or a :func:`positive_int`."""
    return None if value is None else positive_int(value, field, maximum=maximum)


def tags(value: object, max_tags: int, field: str = "tags") -> tuple[str, ...]:
    """A list of distinct non-empty tag strings (order kept, duplicates dropped)."""
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, Sequence | set | frozenset):
        raise ValidationError(
            field, f"must be a list of strings, got {type(value).__name__}", fix='e.g. ["work"]'
        )
    out: dict[str, None] = {}
    for i, tag in enumerate(value):
        if not isinstance(tag, str) or not tag.strip():
            raise ValidationError(f"{field}[{i}]", "must be a non-empty string")
        if len(tag) > _MAX_TAG_CHARS:
            raise ValidationError(f"{field}[{i}]", f"is longer than {_MAX_TAG_CHARS} characters")
        out[tag.strip()] = None
    if len(out) > max_tags:
        raise ValidationError(field, f"has {len(out)} tags, over the limit of {max_tags}")
    return tuple(out)


def metadata(value: object, max_keys: int, field: str = "metadata") -> dict[str, MetadataValue]:
    """A flat mapping of string keys to JSON scalars (finite numbers only)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValidationError(field, f"must be a mapping, got {type(value).__name__}")
    if len(value) > max_keys:
        raise ValidationError(field, f"has {len(value)} keys, over the limit of {max_keys}")
    out: dict[str, MetadataValue] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not key or len(key) > _MAX_KEY_CHARS:
            raise ValidationError(
                field, f"key {key!r} must be a non-empty string of at most {_MAX_KEY_CHARS} chars"
            )
        out[key] = _scalar(item, f"{field}.{key}")
    return out


def _scalar(value: object, field: str) -> MetadataValue:
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValidationError(field, "must be a finite number")
        return value
    if isinstance(value, str):
        if len(value) > _MAX_METADATA_STR:
            raise ValidationError(field, f"is longer than {_MAX_METADATA_STR} characters")
        return value
    raise ValidationError(
        field,
        f"must be a string, number, bool or null, got {type(value).__name__}",
        fix="flatten nested values or serialise them to a string",
    )


def timestamp(value: object, field: str) -> datetime | None:
    """A ``datetime`` or ISO-8601 string; naive times are taken as UTC. Returns UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value
        try:
            value = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValidationError(
                field, f"{text[:60]!r} is not an ISO-8601 time", fix="e.g. 2024-05-01T14:30:00Z"
            ) from None
    if not isinstance(value, datetime):
        raise ValidationError(field, f"must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def time_range(value: object, field: str = "time_range") -> TimeRange | None:
    """A :class:`TimeRange`, a ``(start, end)`` pair or a ``{"start", "end"}`` mapping."""
    if value is None:
        return None
    if isinstance(value, TimeRange):
        start, end = value.start, value.end
    elif isinstance(value, Mapping):
        unknown = set(value) - {"start", "end"}
        if unknown:
            raise ValidationError(field, f"unknown keys {sorted(unknown)}", fix="use start/end")
        start, end = value.get("start"), value.get("end")
    elif isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2:
        start, end = value[0], value[1]
    else:
        raise ValidationError(
            field, "must be a TimeRange, a (start, end) pair or {'start': .., 'end': ..}"
        )
    start_utc = timestamp(start, f"{field}.start")
    end_utc = timestamp(end, f"{field}.end")
    if start_utc is not None and end_utc is not None and end_utc <= start_utc:
        raise ValidationError(field, "end must be after start")
    return TimeRange(start=start_utc, end=end_utc)


def optional_str(value: object, field: str, max_chars: int = _MAX_SOURCE_CHARS) -> str | None:
    """``None`` or a non-empty string of at most ``max_chars``."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(field, "must be a non-empty string")
    if len(value) > max_chars:
        raise ValidationError(field, f"is longer than {max_chars} characters")
    return value


def id_list(value: object, field: str) -> list[str]:
    """A list of non-empty id strings."""
    if isinstance(value, str) or not isinstance(value, Sequence | set | frozenset):
        raise ValidationError(field, f"must be a list of ids, got {type(value).__name__}")
    out: list[str] = []
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item:
            raise ValidationError(f"{field}[{i}]", "must be a non-empty string")
        out.append(item)
    return out


def mapping_item(value: Any, field: str) -> Mapping[str, Any]:
    """An item of a batch: a mapping or a pydantic model (dumped)."""
    if hasattr(value, "model_dump"):
        dumped: Mapping[str, Any] = value.model_dump(exclude_unset=True)
        return dumped
    if isinstance(value, Mapping):
        return value
    raise ValidationError(field, f"must be a RetainItem or a mapping, got {type(value).__name__}")
