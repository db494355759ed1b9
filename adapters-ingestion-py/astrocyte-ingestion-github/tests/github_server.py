"""A local stand-in for the part of the GitHub REST API the driver uses.

Starlette + uvicorn on ``127.0.0.1`` and a free port, on a background thread (its own
event loop), so drivers in the test's loop — or in a subprocess — talk to it over a
real socket. It implements exactly what the driver relies on:

* ``GET /repos/{owner}/{repo}/issues`` and ``GET /repos/{owner}/{repo}/issues/comments``
  with ``since`` (inclusive, on ``updated_at``), ``state``, ``sort=updated``,
  ``direction=asc``, ``per_page`` / ``page`` and a ``Link`` header (``next``,
  ``last``, ``first``, ``prev``), absolute URLs as GitHub sends;
* ``ETag`` on every list, ``If-None-Match`` → ``304 Not Modified`` (not counted
  against the rate limit);
* ``X-RateLimit-Limit/Remaining/Used/Reset/Resource``; an exhausted limit answers
  ``403`` with ``X-RateLimit-Remaining: 0`` until the reset time; secondary limits
  (``429``/``403`` with ``Retry-After``) can be queued;
* ``Authorization: Bearer <token>`` checked (``401 Bad credentials``);
* ``404 Not Found`` for unknown repositories.

Issues and comments get ``updated_at`` from a simulated clock that ticks one second
per change unless the test gives the time (to make several items share a second).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

__all__ = ["FakeGitHub", "RecordedRequest"]

_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)


def _ts(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    received_at: float  # time.time()
    status: int = 0


@dataclass(slots=True)
class _Repo:
    full_name: str
    issues: dict[int, dict[str, Any]] = field(default_factory=dict)
    comments: dict[int, dict[str, Any]] = field(default_factory=dict)
    raw_issues: list[Any] = field(default_factory=list)  # malformed extras, always listed
    next_number: int = 1


@dataclass(slots=True)
class _Fault:
    remaining: int
    status: int
    retry_after: str | None
    message: str
    body: bytes | None = None


class FakeGitHub:
    """The fake API; use as ``with FakeGitHub(token=...) as gh:`` (or ``async with``)."""

    def __init__(self, *, token: str | None = "test-token", rate_limit: int = 5000) -> None:
        self.token = token
        self.limit = rate_limit
        self.remaining = rate_limit
        self.reset = int(time.time()) + 3600
        self._lock = threading.Lock()
        self._repos: dict[str, _Repo] = {}
        self._requests: list[RecordedRequest] = []
        self._faults: list[_Fault] = []
        self._clock = _EPOCH
        self._next_comment_id = 1000
        self._port: int | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.app = Starlette(
            routes=[
                Route("/repos/{owner}/{repo}/issues", self._issues, methods=["GET"]),
                Route("/repos/{owner}/{repo}/issues/comments", self._comments, methods=["GET"]),
            ]
        )

    # -- lifecycle ----------------------------------------------------------------

    @property
    def port(self) -> int:
        assert self._port is not None, "not running"
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app, log_config=None, log_level="warning", access_log=False, lifespan="off"
        )
        self._server = uvicorn.Server(config)
        server = self._server

        def run() -> None:
            try:
                asyncio.run(server.serve(sockets=[sock]))
            finally:
                sock.close()

        self._thread = threading.Thread(target=run, name="fake-github", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("fake GitHub did not start")
            time.sleep(0.005)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> FakeGitHub:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> FakeGitHub:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.stop)

    # -- data -----------------------------------------------------------------------

    def _tick(self, at: datetime | None) -> str:
        if at is None:
            self._clock += timedelta(seconds=1)
            at = self._clock
        else:
            self._clock = max(self._clock, at)
        return _ts(at)

    def at(self, seconds: float) -> datetime:
        """A simulated instant ``seconds`` after the current simulated time."""
        return self._clock + timedelta(seconds=seconds)

    def _repo(self, full_name: str) -> _Repo:
        return self._repos.setdefault(full_name.lower(), _Repo(full_name))

    def add_repo(self, full_name: str) -> None:
        with self._lock:
            self._repo(full_name)

    def add_issue(
        self,
        repo: str,
        title: str,
        body: str | None = "",
        *,
        labels: tuple[str, ...] = (),
        user: str = "octocat",
        state: str = "open",
        pull_request: bool = False,
        at: datetime | None = None,
    ) -> int:
        with self._lock:
            r = self._repo(repo)
            number = r.next_number
            r.next_number += 1
            stamp = self._tick(at)
            item: dict[str, Any] = {
                "id": 10_000 + number,
                "number": number,
                "title": title,
                "body": body,
                "state": state,
                "user": {"login": user},
                "labels": [{"name": name} for name in labels],
                "html_url": f"https://github.com/{r.full_name}/"
                f"{'pull' if pull_request else 'issues'}/{number}",
                "created_at": stamp,
                "updated_at": stamp,
            }
            if pull_request:
                item["pull_request"] = {"url": f"https://api.github.com/pulls/{number}"}
            r.issues[number] = item
            return number

    def edit_issue(
        self, repo: str, number: int, *, at: datetime | None = None, **changes: Any
    ) -> str:
        """Change fields (``title``, ``body``, ``state``, ``labels``); returns the new
        ``updated_at``."""
        with self._lock:
            item = self._repo(repo).issues[number]
            for key, value in changes.items():
                item[key] = [{"name": n} for n in value] if key == "labels" else value
            item["updated_at"] = self._tick(at)
            return str(item["updated_at"])

    def add_comment(
        self, repo: str, number: int, body: str, *, user: str = "hubot", at: datetime | None = None
    ) -> int:
        with self._lock:
            r = self._repo(repo)
            issue = r.issues[number]
            comment_id = self._next_comment_id
            self._next_comment_id += 1
            stamp = self._tick(at)
            kind = "pull" if "pull_request" in issue else "issues"
            r.comments[comment_id] = {
                "id": comment_id,
                "body": body,
                "user": {"login": user},
                "html_url": f"https://github.com/{r.full_name}/{kind}/{number}"
                f"#issuecomment-{comment_id}",
                "issue_url": f"https://api.github.com/repos/{r.full_name}/issues/{number}",
                "created_at": stamp,
                "updated_at": stamp,
            }
            return comment_id

    def edit_comment(self, repo: str, comment_id: int, body: str) -> str:
        with self._lock:
            item = self._repo(repo).comments[comment_id]
            item["body"] = body
            item["updated_at"] = self._tick(None)
            return str(item["updated_at"])

    def issue(self, repo: str, number: int) -> dict[str, Any]:
        """A copy of the issue as served."""
        with self._lock:
            return dict(self._repo(repo).issues[number])

    def add_raw_issue(self, repo: str, item: Any) -> None:
        """A list element served as is (malformed data), after the real issues."""
        with self._lock:
            self._repo(repo).raw_issues.append(item)

    # -- misbehaviour ---------------------------------------------------------------

    def set_rate_limit(self, remaining: int, reset_in: float) -> int:
        """``remaining`` requests left until ``reset_in`` seconds from now (rounded up
        to a whole epoch second, as GitHub's reset is); returns the reset epoch."""
        with self._lock:
            self.remaining = remaining
            self.reset = math.ceil(time.time() + reset_in)
            return self.reset

    def fail_next(
        self,
        n: int = 1,
        status: int = 500,
        *,
        retry_after: float | None = None,
        message: str = "injected failure",
        body: bytes | None = None,
    ) -> None:
        with self._lock:
            self._faults.append(
                _Fault(n, status, None if retry_after is None else str(retry_after), message, body)
            )

    # -- what happened ------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    # -- endpoints ----------------------------------------------------------------------

    def _rate_headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(max(0, self.remaining)),
            "X-RateLimit-Used": str(self.limit - max(0, self.remaining)),
            "X-RateLimit-Reset": str(self.reset),
            "X-RateLimit-Resource": "core",
        }

    def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
        return Response(
            json.dumps(body), status_code=status, media_type="application/json", headers=headers
        )

    def _handle(self, request: Request, kind: str) -> Response:
        with self._lock:
            response = self._answer(request, kind)
            self._requests.append(
                RecordedRequest(
                    method=request.method,
                    path=request.url.path,
                    query=dict(request.query_params),
                    headers={k.lower(): v for k, v in request.headers.items()},
                    received_at=time.time(),
                    status=response.status_code,
                )
            )
            return response

    def _answer(self, request: Request, kind: str) -> Response:
        now = time.time()
        if now >= self.reset:
            self.remaining, self.reset = self.limit, int(now) + 3600
        if self._faults:
            fault = self._faults[0]
            fault.remaining -= 1
            if fault.remaining <= 0:
                self._faults.pop(0)
            headers = self._rate_headers()
            if fault.retry_after is not None:
                headers["Retry-After"] = fault.retry_after
            if fault.body is not None:
                return Response(fault.body, status_code=fault.status, headers=headers)
            return self._json(fault.status, {"message": fault.message}, headers)
        if self.token is not None and request.headers.get("authorization") != (
            f"Bearer {self.token}"
        ):
            return self._json(401, {"message": "Bad credentials"})
        if self.remaining <= 0:
            return self._json(
                403,
                {"message": "API rate limit exceeded for user ID 1."},
                self._rate_headers(),
            )
        repo = self._repos.get(
            f"{request.path_params['owner']}/{request.path_params['repo']}".lower()
        )
        if repo is None:
            self.remaining -= 1
            return self._json(404, {"message": "Not Found"}, self._rate_headers())
        q = request.query_params
        if q.get("sort") != "updated" or q.get("direction") != "asc":
            return self._json(422, {"message": "this fake only serves sort=updated&direction=asc"})
        items: list[Any] = list(
            repo.issues.values() if kind == "issues" else repo.comments.values()
        )
        since = q.get("since")
        if since is not None:
            floor = datetime.fromisoformat(since)
            items = [i for i in items if datetime.fromisoformat(i["updated_at"]) >= floor]
        if kind == "issues":
            state = q.get("state", "open")
            if state != "all":
                items = [i for i in items if i["state"] == state]
        items.sort(key=lambda i: (i["updated_at"], i.get("number", i.get("id"))))
        if kind == "issues":
            items.extend(repo.raw_issues)
        per_page = min(100, int(q.get("per_page", "30")))
        page = int(q.get("page", "1"))
        last = max(1, math.ceil(len(items) / per_page))
        body = json.dumps(items[(page - 1) * per_page : page * per_page]).encode()
        links = []

        def link(n: int, rel: str) -> str:
            return f'<{request.url.include_query_params(page=n)}>; rel="{rel}"'

        if page < last:
            links += [link(page + 1, "next"), link(last, "last")]
        if page > 1:
            links += [link(page - 1, "prev"), link(1, "first")]
        etag = 'W/"' + hashlib.sha256(body + "|".join(links).encode()).hexdigest()[:40] + '"'
        headers = {"ETag": etag, **self._rate_headers()}
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)  # free: not counted
        self.remaining -= 1
        headers = {"ETag": etag, **self._rate_headers()}
        if links:
            headers["Link"] = ", ".join(links)
        return Response(body, media_type="application/json; charset=utf-8", headers=headers)

    async def _issues(self, request: Request) -> Response:
        return self._handle(request, "issues")

    async def _comments(self, request: Request) -> Response:
        return self._handle(request, "comments")
