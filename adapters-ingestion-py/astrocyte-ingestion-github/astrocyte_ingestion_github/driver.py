"""The ``github`` poll driver: issues and issue comments of repositories, as memories.

Every ``interval_seconds`` the driver walks each configured repository's issues (and
comments) updated since its cursor, oldest update first, one page (``per_page``
items) per :meth:`StreamIngestor.ingest` batch. After a page was ingested and its dead
letters written, the cursor advances to the page's newest ``updated_at`` and is
persisted: that is the commit. A crash before it re-reads the page on restart and the
idempotency keys turn the replay into a no-op.

Paging: the walk is *keyset* paging on ``since`` (after each committed page the next
request asks again with ``since`` = the new cursor), following the response's
``Link: rel="next"`` only when a page could not move the cursor (a full page of items
updated in the same second). Plain offset paging over a list sorted by a field that
changes would skip an item whenever an earlier one is edited during the walk.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import httpx
from astrocyte.errors import ConfigError
from astrocyte.ingest import DeadLetter, IngestUnavailable, StreamRecord, dead_letter_json
from astrocyte.spi import HealthStatus

from astrocyte_ingestion_github.cursor import CursorStore, StreamCursor
from astrocyte_ingestion_github.records import (
    ItemKind,
    MalformedItem,
    format_timestamp,
    parse_item,
    parse_timestamp,
)

if TYPE_CHECKING:
    from astrocyte.config.ingest_schema import SourceConfig
    from astrocyte.ingest import StreamIngestor

__all__ = ["DEFAULT_BASE_URL", "GitHubAPIError", "GitHubIssuesDriver", "GitHubOptions"]

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.github.com"
_USER_AGENT = "astrocyte-ingestion-github/0.1.0"
_REPO = re.compile(r"^[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_KNOWN_OPTIONS = frozenset(
    {
        "repos",
        "repo",
        "token_env",
        "include_comments",
        "include_pull_requests",
        "labels_as_tags",
        "per_page",
        "state",
        "cursor_path",
        "since",
        "dead_letter_path",
        "max_rate_limit_wait_seconds",
        "format",  # read by the core (StreamSettings); must stay json here
    }
)
#: How long to back off on a secondary rate limit that names no time (GitHub's advice).
_SECONDARY_DEFAULT_WAIT = 60.0


class GitHubAPIError(RuntimeError):
    """GitHub answered with an error that waiting for a rate limit does not cure.

    ``status`` is the HTTP status, or 0 for a response that is not what the API
    promises (not a JSON list, a pagination link to another host)."""

    def __init__(self, status: int, url: str, message: str) -> None:
        super().__init__(f"GitHub API {status or 'error'} for {url}: {message}")
        self.status = status
        self.url = url

    @property
    def repo_scoped(self) -> bool:
        """A 4xx: about this repository (gone, no access), not the service."""
        return 400 <= self.status < 500


class _StopRequested(Exception):
    """``stop`` was set while waiting (rate limit): nothing is in hand, return."""


def _option_error(source_id: str, key: str, message: str, fix: str | None = None) -> ConfigError:
    return ConfigError(f"sources.{source_id}.options.{key}", message, fix=fix)


def _bool(source_id: str, options: Mapping[str, Any], key: str, default: bool) -> bool:
    value = options.get(key, default)
    if not isinstance(value, bool):
        raise _option_error(source_id, key, f"must be true or false, got {value!r}")
    return value


def _path(source_id: str, options: Mapping[str, Any], key: str) -> Path | None:
    value = options.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise _option_error(source_id, key, f"must be a file path, got {value!r}")
    return Path(value).expanduser()


@dataclass(frozen=True, slots=True)
class GitHubOptions:
    """The validated ``options`` of a ``github`` source (see the README for each)."""

    repos: tuple[str, ...]
    token_env: str = "GITHUB_TOKEN"
    token_required: bool = False
    include_comments: bool = True
    include_pull_requests: bool = False
    labels_as_tags: bool = True
    per_page: int = 100
    state: Literal["open", "closed", "all"] = "all"
    cursor_path: Path | None = None
    since: str | None = None
    dead_letter_path: Path | None = None
    max_rate_limit_wait_seconds: float = 3600.0

    @classmethod
    def parse(cls, source_id: str, options: Mapping[str, Any]) -> GitHubOptions:
        """Validate ``options``; :class:`ConfigError` names the bad key."""
        unknown = sorted(set(options) - _KNOWN_OPTIONS)
        if unknown:
            raise _option_error(
                source_id,
                unknown[0],
                "unknown option",
                fix=f"known options: {', '.join(sorted(_KNOWN_OPTIONS))}",
            )
        if options.get("format", "json") != "json":
            raise _option_error(
                source_id, "format", "the github driver sends JSON payloads", fix="remove it"
            )
        raw_repos: object
        if "repos" in options and "repo" in options:
            raise _option_error(source_id, "repo", "give repos or repo, not both")
        if "repo" in options:
            raw_repos, key = [options["repo"]], "repo"
        else:
            raw_repos, key = options.get("repos"), "repos"
        if not isinstance(raw_repos, list) or not raw_repos:
            raise _option_error(
                source_id, key, "needs at least one repository", fix='repos: ["owner/name"]'
            )
        repos: dict[str, None] = {}
        for i, repo in enumerate(raw_repos):
            if (
                not isinstance(repo, str)
                or not _REPO.match(repo)
                or any(part in (".", "..") for part in repo.split("/"))
            ):
                raise _option_error(
                    source_id,
                    key if key == "repo" else f"repos[{i}]",
                    f"{repo!r} is not an owner/name repository",
                    fix="e.g. octocat/Hello-World",
                )
            # GitHub names are case-insensitive: one stream per repository.
            if repo.lower() not in {r.lower() for r in repos}:
                repos[repo] = None
        token_env = options.get("token_env", "GITHUB_TOKEN")
        if not isinstance(token_env, str) or not _ENV_NAME.match(token_env):
            raise _option_error(
                source_id,
                "token_env",
                f"must name an environment variable, got {token_env!r}",
                fix="e.g. GITHUB_TOKEN (the token itself never goes in the config file)",
            )
        per_page = options.get("per_page", 100)
        if isinstance(per_page, bool) or not isinstance(per_page, int) or not 1 <= per_page <= 100:
            raise _option_error(source_id, "per_page", f"must be 1..100, got {per_page!r}")
        state = options.get("state", "all")
        if state not in ("open", "closed", "all"):
            raise _option_error(source_id, "state", f"must be open, closed or all, got {state!r}")
        since = options.get("since")
        if since is not None:
            try:
                since = format_timestamp(parse_timestamp(since))
            except MalformedItem:
                raise _option_error(
                    source_id,
                    "since",
                    f"must be an ISO 8601 timestamp, got {since!r}",
                    fix="e.g. 2024-01-01T00:00:00Z",
                ) from None
        wait = options.get("max_rate_limit_wait_seconds", 3600.0)
        if isinstance(wait, bool) or not isinstance(wait, int | float) or not 1 <= wait <= 86_400:
            raise _option_error(
                source_id, "max_rate_limit_wait_seconds", f"must be 1..86400, got {wait!r}"
            )
        return cls(
            repos=tuple(repos),
            token_env=token_env,
            token_required="token_env" in options,
            include_comments=_bool(source_id, options, "include_comments", True),
            include_pull_requests=_bool(source_id, options, "include_pull_requests", False),
            labels_as_tags=_bool(source_id, options, "labels_as_tags", True),
            per_page=per_page,
            state=state,
            cursor_path=_path(source_id, options, "cursor_path"),
            since=since,
            dead_letter_path=_path(source_id, options, "dead_letter_path"),
            max_rate_limit_wait_seconds=float(wait),
        )


class GitHubIssuesDriver:
    """Polls GitHub issues (and their comments) of ``options.repos`` into memories.

    Implements :class:`astrocyte.ingest.IngestDriver`; registered as the ``github``
    entry point of ``astrocyte.ingest_drivers``. The constructor only validates.
    """

    def __init__(self, source_id: str, source: SourceConfig) -> None:
        self.source_id = source_id
        self.source = source
        self.options = GitHubOptions.parse(source_id, source.options)
        if source.target_bank_template is None and source.extraction_profile is None:
            raise ConfigError(
                f"sources.{source_id}.target_bank_template",
                "GitHub payloads carry no bank_id, so the source needs a bank",
                fix="e.g. target_bank_template: github (or an extraction_profile with one)",
            )
        for name in source.headers:
            if name.lower() == "authorization":
                raise ConfigError(
                    f"sources.{source_id}.headers.{name}",
                    "the token must not be written in the config",
                    fix="put it in an environment variable named by options.token_env",
                )
        self.base_url = (source.url or DEFAULT_BASE_URL).rstrip("/")
        self.interval_seconds = float(source.interval_seconds)
        self._base = httpx.URL(self.base_url)
        self._cursors = CursorStore(self.options.cursor_path)
        self._loaded = False
        self._client: httpx.AsyncClient | None = None
        self._authenticated = False
        # Rate limit, as last reported by GitHub.
        self.rate_limit_remaining: int | None = None
        self.rate_limit_reset: float | None = None
        self._blocked_until = 0.0  # monotonic
        # Observability (read by health_check and tests).
        self.requests_sent = 0
        self.not_modified = 0
        self.polls_completed = 0
        self.rate_limit_waits = 0
        self.rate_limit_waited_seconds = 0.0
        self.last_poll_at: float | None = None  # monotonic
        self.last_error: str | None = None
        self.repo_errors: dict[str, str] = {}

    # -- IngestDriver ------------------------------------------------------------

    async def run(self, ingestor: StreamIngestor, stop: asyncio.Event) -> None:
        """Poll every ``interval_seconds`` until ``stop``; a page in hand is finished
        and committed first. Raises on HTTP/transport failures and on
        :class:`~astrocyte.ingest.IngestUnavailable` (nothing of that page committed)."""
        while not stop.is_set():
            try:
                await self.poll_once(ingestor, stop)
            except IngestUnavailable as exc:
                # Nothing of the page was committed. Honour the store's Retry-After
                # before handing over to the supervisor's back-off, so the restart
                # does not re-fetch the page into the same refusal.
                if exc.retry_after:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(
                            stop.wait(),
                            min(exc.retry_after, self.options.max_rate_limit_wait_seconds),
                        )
                raise
            if stop.is_set():
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval_seconds)

    async def health_check(self) -> HealthStatus:
        """From the last poll (no request: probing would spend rate limit)."""
        try:
            limit = (
                ""
                if self.rate_limit_remaining is None
                else f"; rate limit remaining {self.rate_limit_remaining}"
            )
            wait = self._blocked_until - time.monotonic()
            if self.last_error is not None:
                return HealthStatus(False, f"last poll failed: {self.last_error}{limit}")
            if wait > 0:
                return HealthStatus(True, f"rate limited; resuming in {wait:.1f}s{limit}")
            if self.last_poll_at is None:
                return HealthStatus(True, "not polled yet")
            age = time.monotonic() - self.last_poll_at
            auth = "" if self._authenticated else "; unauthenticated"
            return HealthStatus(
                True,
                f"{len(self.options.repos)} repositories, last poll {age:.0f}s ago{limit}{auth}",
            )
        except Exception as exc:  # pragma: no cover - must never raise
            return HealthStatus(False, f"health check failed: {exc!r}")

    async def close(self) -> None:
        """Close the HTTP client (the next ``run`` opens a new one)."""
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    # -- polling -----------------------------------------------------------------

    async def poll_once(self, ingestor: StreamIngestor, stop: asyncio.Event | None = None) -> None:
        """One pass over every repository (issues, then comments), until caught up.

        A repository GitHub refuses (404, 403 without rate limit...) does not keep the
        others from being polled; the pass then raises at its end."""
        stop = stop or asyncio.Event()
        try:
            await self._open()
            failures: list[str] = []
            for repo in self.options.repos:
                kinds: Sequence[ItemKind] = (
                    ("issue", "comment") if self.options.include_comments else ("issue",)
                )
                for kind in kinds:
                    try:
                        await self._drain(repo, kind, ingestor, stop)
                    except GitHubAPIError as exc:
                        if not exc.repo_scoped:
                            raise
                        self.repo_errors[repo] = str(exc)
                        failures.append(str(exc))
                        break
                    else:
                        self.repo_errors.pop(repo, None)
                    if stop.is_set():
                        return
            if failures:
                raise GitHubAPIError(0, self.base_url, "; ".join(failures))
        except _StopRequested:
            return
        except Exception as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"
            raise
        self.last_error = None
        self.polls_completed += 1
        self.last_poll_at = time.monotonic()

    async def _open(self) -> None:
        if not self._loaded:
            await asyncio.to_thread(self._load_cursors)
            self._loaded = True
        if self._client is not None:
            return
        token = os.environ.get(self.options.token_env, "").strip()
        if not token and self.options.token_required:
            raise ConfigError(
                f"sources.{self.source_id}.options.token_env",
                f"environment variable {self.options.token_env} is not set",
                fix=f"export {self.options.token_env}=<a GitHub token with read access>",
            )
        headers = {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
            "User-Agent": _USER_AGENT,
            **self.source.headers,
        }
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._authenticated = bool(token)
        self._client = httpx.AsyncClient(
            headers=headers, timeout=self.source.timeout_seconds, follow_redirects=True
        )

    def _load_cursors(self) -> None:
        self._cursors.load()
        floor = self.options.since
        for repo in self.options.repos:
            for kind in ("issue", "comment"):
                cursor = self._cursors.get(_stream(repo, kind))
                if floor is not None and (
                    cursor.since is None or parse_timestamp(cursor.since) < parse_timestamp(floor)
                ):
                    # options.since moved past the stored cursor: start from it.
                    cursor.since, cursor.seen = floor, []

    def cursor(self, repo: str, kind: ItemKind) -> StreamCursor:
        """The committed cursor of ``repo``'s issues or comments (for inspection)."""
        return self._cursors.get(_stream(repo, kind))

    def _first_url(self, repo: str, kind: ItemKind, since: str | None) -> str:
        path = "issues" if kind == "issue" else "issues/comments"
        params: dict[str, str | int] = {}
        if kind == "issue":
            params["state"] = self.options.state
        params.update({"sort": "updated", "direction": "asc", "per_page": self.options.per_page})
        if since is not None:
            params["since"] = since
        return str(httpx.URL(f"{self.base_url}/repos/{repo}/{path}", params=params))

    async def _drain(
        self, repo: str, kind: ItemKind, ingestor: StreamIngestor, stop: asyncio.Event
    ) -> None:
        """Ingest and commit every page of ``repo``'s ``kind`` updated since the cursor."""
        cursor = self._cursors.get(_stream(repo, kind))
        url = self._first_url(repo, kind, cursor.since)
        first = True
        while True:
            etag = cursor.etag if first and cursor.etag_url == url else None
            response = await self._get(url, etag, stop)
            if response.status_code == 304:
                self.not_modified += 1
                return
            items = _json_list(response, url)
            since_before = cursor.since
            records, dead = self._page(repo, kind, items, cursor_copy := _copy(cursor))
            await self._commit_page(ingestor, records, dead)  # raises: nothing committed
            next_url = response.links.get("next", {}).get("url")
            # A complete single-page answer's ETag lets the next poll ask "changed?".
            if first and next_url is None and cursor_copy.since == since_before:
                cursor_copy.etag, cursor_copy.etag_url = response.headers.get("etag"), url
            cursor.since, cursor.seen = cursor_copy.since, cursor_copy.seen
            cursor.etag, cursor.etag_url = cursor_copy.etag, cursor_copy.etag_url
            await asyncio.to_thread(self._cursors.save)
            if next_url is None or stop.is_set():
                return
            if cursor.since != since_before:
                url, first = self._first_url(repo, kind, cursor.since), True  # keyset step
            else:
                url, first = self._same_origin(next_url), False

    def _page(
        self, repo: str, kind: ItemKind, items: list[Any], cursor: StreamCursor
    ) -> tuple[list[StreamRecord], list[DeadLetter]]:
        """Records of ``items`` not yet committed; advances ``cursor`` (a copy) past them."""
        since = parse_timestamp(cursor.since) if cursor.since else None
        seen = set(cursor.seen)
        records: list[StreamRecord] = []
        dead: list[DeadLetter] = []
        newest, newest_keys = since, set(seen)
        newest_raw = cursor.since
        for index, item in enumerate(items):
            try:
                parsed = parse_item(
                    repo,
                    kind,
                    item,
                    include_pull_requests=self.options.include_pull_requests,
                    labels_as_tags=self.options.labels_as_tags,
                )
            except MalformedItem as exc:
                raw = json.dumps(item, ensure_ascii=False, sort_keys=True, default=str)
                digest = hashlib.sha256(raw.encode("utf-8")).hexdigest()[:16]
                at_or_none = _updated_at(item)
                key = f"{repo.lower()}#{kind}-malformed-{digest}@" + (
                    format_timestamp(at_or_none) if at_or_none else f"index-{index}"
                )
                if at_or_none is not None and _committed(at_or_none, key, since, seen):
                    continue
                dead.append(
                    DeadLetter(StreamRecord(key, raw.encode("utf-8")), "malformed_item", str(exc))
                )
                if at_or_none is None:
                    continue  # cannot be placed in time: dead-lettered whenever listed
                at, item_key = at_or_none, key
            else:
                at, item_key = parsed.updated_at, parsed.key
                if _committed(at, item_key, since, seen):
                    continue  # committed before (since is inclusive)
                if parsed.record is not None and item_key not in {r.key for r in records}:
                    records.append(parsed.record)
            if newest is None or at > newest:
                newest, newest_keys = at, {item_key}
                newest_raw = format_timestamp(at)
            elif at == newest:
                newest_keys.add(item_key)
        cursor.since, cursor.seen = newest_raw, sorted(newest_keys)
        return records, dead

    async def _commit_page(
        self, ingestor: StreamIngestor, records: list[StreamRecord], dead: list[DeadLetter]
    ) -> None:
        """Ingest, then write every dead letter; the caller then moves the cursor."""
        letters = list(dead)
        if records:
            outcome = await ingestor.ingest(records)
            letters.extend(outcome.dead)
        if dead:  # the driver's own dead letters never reached the ingestor's counters
            ingestor.stats.processed += len(dead)
            ingestor.stats.dead_lettered += len(dead)
            if ingestor.registry is not None:
                for _ in dead:
                    ingestor.registry.record_rejection(self.source_id)
        if letters:
            for letter in letters:
                log.warning(
                    "github source %s: dead-lettered %s (%s: %s)",
                    self.source_id,
                    letter.record.key,
                    letter.error,
                    letter.message,
                )
            await asyncio.to_thread(self._write_dead_letters, letters)

    def _write_dead_letters(self, letters: list[DeadLetter]) -> None:
        path = self.options.dead_letter_path
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("ab") as fh:
            for letter in letters:
                fh.write(dead_letter_json(letter) + b"\n")
            fh.flush()
            os.fsync(fh.fileno())

    def _same_origin(self, url: str) -> str:
        """``url`` if it is on the configured API host (the token goes nowhere else)."""
        target = httpx.URL(url)
        if (target.scheme, target.host, target.port) != (
            self._base.scheme,
            self._base.host,
            self._base.port,
        ):
            raise GitHubAPIError(0, url, f"pagination link leaves {self.base_url}; refused")
        return url

    # -- HTTP and rate limits -----------------------------------------------------

    async def _get(self, url: str, etag: str | None, stop: asyncio.Event) -> httpx.Response:
        """GET ``url``, waiting out rate limits (never sending while exhausted)."""
        assert self._client is not None
        while True:
            await self._sleep(self._blocked_until - time.monotonic(), stop)
            headers = {"If-None-Match": etag} if etag else None
            response = await self._client.get(url, headers=headers)
            self.requests_sent += 1
            self._note_rate_limit(response)
            if response.status_code in (403, 429):
                wait = self._rate_limited_wait(response)
                if wait is None:
                    raise GitHubAPIError(response.status_code, url, _message(response))
                log.warning(
                    "github source %s: rate limited (HTTP %s); waiting %.1fs",
                    self.source_id,
                    response.status_code,
                    wait,
                )
                self._blocked_until = max(self._blocked_until, time.monotonic() + wait)
                continue
            if response.status_code == 304 or response.is_success:
                return response
            raise GitHubAPIError(response.status_code, url, _message(response))

    async def _sleep(self, seconds: float, stop: asyncio.Event) -> None:
        if seconds <= 0:
            return
        self.rate_limit_waits += 1
        started = time.monotonic()
        try:
            await asyncio.wait_for(stop.wait(), seconds)
        except TimeoutError:
            return
        finally:
            self.rate_limit_waited_seconds += time.monotonic() - started
        raise _StopRequested

    def _server_now(self, response: httpx.Response) -> tuple[float, float]:
        """(server epoch now, safety margin): from ``Date`` when present (an upper bound
        of the wait, since ``Date`` is truncated to the second), else the local clock."""
        date = response.headers.get("date")
        if date:
            with contextlib.suppress(TypeError, ValueError, IndexError):
                return email.utils.parsedate_to_datetime(date).timestamp(), 0.0
        return time.time(), 1.0

    def _note_rate_limit(self, response: httpx.Response) -> None:
        remaining = _int_header(response, "x-ratelimit-remaining")
        reset = _int_header(response, "x-ratelimit-reset")
        if remaining is not None:
            self.rate_limit_remaining = remaining
        if reset is not None:
            self.rate_limit_reset = float(reset)
        if remaining == 0 and reset is not None:
            now, margin = self._server_now(response)
            wait = min(max(0.0, reset - now + margin), self.options.max_rate_limit_wait_seconds)
            self._blocked_until = max(self._blocked_until, time.monotonic() + wait)

    def _rate_limited_wait(self, response: httpx.Response) -> float | None:
        """Seconds to wait before retrying a 403/429, or ``None`` if it is not a rate
        limit (then it is an authorization error)."""
        cap = self.options.max_rate_limit_wait_seconds
        retry_after = response.headers.get("retry-after")
        if retry_after is not None:
            with contextlib.suppress(ValueError):
                return min(max(0.0, float(retry_after)), cap)
        if _int_header(response, "x-ratelimit-remaining") == 0:
            if _int_header(response, "x-ratelimit-reset") is None:
                return min(_SECONDARY_DEFAULT_WAIT, cap)
            # Never retry at once, even if the reset looks past (clock skew).
            return max(1.0, self._blocked_until - time.monotonic())
        if response.status_code == 429 or "rate limit" in _message(response).lower():
            return min(_SECONDARY_DEFAULT_WAIT, cap)
        return None


def _committed(at: datetime, key: str, since: datetime | None, seen: set[str]) -> bool:
    """Whether the item at ``at`` was committed before (``since`` is inclusive)."""
    return since is not None and (at < since or (at == since and key in seen))


def _updated_at(item: object) -> datetime | None:
    if isinstance(item, Mapping):
        with contextlib.suppress(MalformedItem):
            return parse_timestamp(item.get("updated_at"))
    return None


def _stream(repo: str, kind: ItemKind) -> str:
    return f"{repo.lower()}/{'issues' if kind == 'issue' else 'comments'}"


def _copy(cursor: StreamCursor) -> StreamCursor:
    return StreamCursor(cursor.since, list(cursor.seen), cursor.etag, cursor.etag_url)


def _int_header(response: httpx.Response, name: str) -> int | None:
    value = response.headers.get(name)
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])
    return response.text[:200]


def _json_list(response: httpx.Response, url: str) -> list[Any]:
    try:
        body = response.json()
    except ValueError:
        raise GitHubAPIError(
            response.status_code, url, "response is not JSON (a proxy in the way?)"
        ) from None
    if not isinstance(body, list):
        raise GitHubAPIError(response.status_code, url, "expected a JSON list")
    return body
