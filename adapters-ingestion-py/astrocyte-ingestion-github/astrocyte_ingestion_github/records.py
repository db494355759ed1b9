"""GitHub issues and comments as :class:`~astrocyte.ingest.StreamRecord` s.

Each issue or comment *version* becomes one record whose value is an ingest payload
(see :mod:`astrocyte.ingest.payload`) and whose key names that version:

* issue: ``owner/repo#<number>@<updated_at>``
* comment: ``owner/repo#c<comment id>@<updated_at>``

An edit changes ``updated_at``, hence the key: the new version is stored as a new
memory, while a redelivery of the same version is a no-op (the key is the retain's
idempotency key).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from astrocyte.ingest import StreamRecord

__all__ = [
    "ItemKind",
    "MalformedItem",
    "ParsedItem",
    "comment_record",
    "format_timestamp",
    "issue_record",
    "parse_item",
    "parse_timestamp",
]

ItemKind = Literal["issue", "comment"]

_ISSUE_URL_NUMBER = re.compile(r"/issues/(\d+)$")


class MalformedItem(ValueError):
    """An element of a GitHub list response that is not an issue/comment we can key."""


def parse_timestamp(value: object) -> datetime:
    """A GitHub ISO 8601 timestamp (``2024-05-01T12:00:00Z``) as an aware UTC datetime."""
    if not isinstance(value, str) or not value:
        raise MalformedItem(f"timestamp must be an ISO 8601 string, got {value!r}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise MalformedItem(f"timestamp {value!r} is not ISO 8601") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def format_timestamp(value: datetime) -> str:
    """``value`` the way GitHub writes timestamps (UTC, ``Z``; seconds unless finer)."""
    value = value.astimezone(UTC)
    if value.microsecond:
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class ParsedItem:
    """One list element: its key, its version time, and its record (``None`` when the
    item is skipped, e.g. a pull request while they are excluded)."""

    key: str
    updated_at: datetime
    record: StreamRecord | None


def _login(item: Mapping[str, Any]) -> str | None:
    user = item.get("user")
    if isinstance(user, Mapping) and isinstance(user.get("login"), str):
        return str(user["login"])
    return None


def _labels(item: Mapping[str, Any]) -> list[str]:
    out: dict[str, None] = {}
    labels = item.get("labels")
    if not isinstance(labels, list):
        return []
    for label in labels:
        name = label.get("name") if isinstance(label, Mapping) else label
        if isinstance(name, str) and name.strip():
            out[name.strip()] = None
    return list(out)


def _record(
    key: str,
    updated_raw: str,
    updated_at: datetime,
    payload: dict[str, Any],
    kind: ItemKind,
    repo: str,
) -> StreamRecord:
    return StreamRecord(
        key=key,
        value=json.dumps(payload, ensure_ascii=False).encode("utf-8"),
        headers={"github-kind": kind, "github-repo": repo},
        timestamp=updated_at,
        position=updated_raw,
    )


def _metadata(**values: object) -> dict[str, object]:
    return {k: v for k, v in values.items() if v is not None and v != ""}


def issue_record(repo: str, item: Mapping[str, Any], *, labels_as_tags: bool = True) -> ParsedItem:
    """The record of one element of ``GET /repos/{owner}/{repo}/issues``.

    ``content`` is the title, a blank line and the body (just the title when the body is
    empty); an issue with neither gets an empty content, which the ingestor
    dead-letters as a malformed payload."""
    number = item.get("number")
    if isinstance(number, bool) or not isinstance(number, int):
        raise MalformedItem(f"issue has no integer 'number' (got {number!r})")
    updated_raw = item.get("updated_at")
    updated_at = parse_timestamp(updated_raw)
    assert isinstance(updated_raw, str)
    key = f"{repo.lower()}#{number}@{updated_raw}"
    title = item.get("title") if isinstance(item.get("title"), str) else ""
    body = item.get("body") if isinstance(item.get("body"), str) else ""
    assert isinstance(title, str) and isinstance(body, str)
    has_title, has_body = bool(title.strip()), bool(body.strip())
    content = f"{title}\n\n{body}" if has_title and has_body else title if has_title else body
    labels = _labels(item)
    payload: dict[str, Any] = {
        "content": content if content.strip() else "",
        "metadata": _metadata(
            repo=repo,
            number=number,
            kind="issue",
            author=_login(item),
            state=item.get("state") if isinstance(item.get("state"), str) else None,
            url=item.get("html_url") if isinstance(item.get("html_url"), str) else None,
            labels=",".join(labels),
            updated_at=updated_raw,
            pull_request=True if "pull_request" in item else None,
        ),
        "occurred_at": updated_raw,
    }
    if labels_as_tags and labels:
        payload["tags"] = labels
    return ParsedItem(
        key, updated_at, _record(key, updated_raw, updated_at, payload, "issue", repo)
    )


def comment_record(repo: str, item: Mapping[str, Any]) -> ParsedItem:
    """The record of one element of ``GET /repos/{owner}/{repo}/issues/comments``."""
    comment_id = item.get("id")
    if isinstance(comment_id, bool) or not isinstance(comment_id, int):
        raise MalformedItem(f"comment has no integer 'id' (got {comment_id!r})")
    updated_raw = item.get("updated_at")
    updated_at = parse_timestamp(updated_raw)
    assert isinstance(updated_raw, str)
    key = f"{repo.lower()}#c{comment_id}@{updated_raw}"
    issue_url = item.get("issue_url")
    match = _ISSUE_URL_NUMBER.search(issue_url) if isinstance(issue_url, str) else None
    body = item.get("body") if isinstance(item.get("body"), str) else ""
    assert isinstance(body, str)
    payload: dict[str, Any] = {
        "content": body if body.strip() else "",
        "metadata": _metadata(
            repo=repo,
            number=int(match.group(1)) if match else None,
            kind="comment",
            comment_id=comment_id,
            author=_login(item),
            url=item.get("html_url") if isinstance(item.get("html_url"), str) else None,
            updated_at=updated_raw,
        ),
        "occurred_at": updated_raw,
    }
    return ParsedItem(
        key, updated_at, _record(key, updated_raw, updated_at, payload, "comment", repo)
    )


def is_pull_request(kind: ItemKind, item: Mapping[str, Any]) -> bool:
    """An issue-list element that is a pull request (it carries ``pull_request``), or a
    comment on one (its ``html_url`` points at ``/pull/<n>``)."""
    if kind == "issue":
        return "pull_request" in item
    url = item.get("html_url")
    return isinstance(url, str) and "/pull/" in url


def parse_item(
    repo: str,
    kind: ItemKind,
    item: object,
    *,
    include_pull_requests: bool,
    labels_as_tags: bool,
) -> ParsedItem:
    """Key, time and record of one list element (record ``None`` when skipped);
    :class:`MalformedItem` when it cannot even be keyed."""
    if not isinstance(item, Mapping):
        raise MalformedItem(f"list element is {type(item).__name__}, not an object")
    parsed = (
        issue_record(repo, item, labels_as_tags=labels_as_tags)
        if kind == "issue"
        else comment_record(repo, item)
    )
    if not include_pull_requests and is_pull_request(kind, item):
        return ParsedItem(parsed.key, parsed.updated_at, None)
    return parsed
