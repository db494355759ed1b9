"""Poll cursors: how far each repository's issues/comments stream has been committed.

A cursor is advanced only after the page it covers was ingested (and its dead letters
written): it is this driver's "acknowledge". With a ``cursor_path`` the cursors are
persisted as one JSON file, replaced atomically (write a temporary file in the same
directory, fsync, rename, fsync the directory), so a crash leaves either the old or the
new file, never a torn one.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["CursorFileError", "CursorStore", "StreamCursor"]

_VERSION = 1


class CursorFileError(RuntimeError):
    """The cursor file exists but cannot be read as cursors (refuse to guess)."""


@dataclass(slots=True)
class StreamCursor:
    """The committed position of one stream (``owner/repo`` issues or comments).

    ``since`` is the ``updated_at`` of the newest committed item (the next poll's
    ``since``); ``seen`` the keys committed *at* that instant, because GitHub's
    ``since`` is inclusive and several items can share one second. ``etag`` is the
    ``ETag`` of the last complete (single-page) response to ``etag_url``: sent as
    ``If-None-Match`` when the next poll asks for that same URL.
    """

    since: str | None = None
    seen: list[str] = field(default_factory=list)
    etag: str | None = None
    etag_url: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "since": self.since,
            "seen": list(self.seen),
            "etag": self.etag,
            "etag_url": self.etag_url,
        }

    @classmethod
    def from_json(cls, data: object) -> StreamCursor:
        if not isinstance(data, dict):
            raise ValueError("a cursor must be an object")
        since, seen = data.get("since"), data.get("seen", [])
        etag, etag_url = data.get("etag"), data.get("etag_url")
        if since is not None and not isinstance(since, str):
            raise ValueError("since must be a string")
        if not isinstance(seen, list) or not all(isinstance(k, str) for k in seen):
            raise ValueError("seen must be a list of strings")
        if etag is not None and not isinstance(etag, str):
            raise ValueError("etag must be a string")
        if etag_url is not None and not isinstance(etag_url, str):
            raise ValueError("etag_url must be a string")
        return cls(since=since, seen=list(seen), etag=etag, etag_url=etag_url)


class CursorStore:
    """The cursors of one source: in memory, and in ``path`` when given."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.cursors: dict[str, StreamCursor] = {}

    def get(self, stream: str) -> StreamCursor:
        """The cursor of ``stream`` (created empty on first use)."""
        return self.cursors.setdefault(stream, StreamCursor())

    def load(self) -> None:
        """Read the file (no file: start empty). Blocking; call from a thread."""
        if self.path is None or not self.path.exists():
            return
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or data.get("version") != _VERSION:
                raise ValueError(f"expected an object with version {_VERSION}")
            streams = data.get("streams")
            if not isinstance(streams, dict):
                raise ValueError("streams must be an object")
            self.cursors = {str(k): StreamCursor.from_json(v) for k, v in streams.items()}
        except (OSError, ValueError) as exc:
            raise CursorFileError(
                f"cursor file {self.path} is unreadable ({exc}); fix or delete it "
                "(deleting re-reads from options.since; stored versions are not duplicated)"
            ) from exc

    def save(self) -> None:
        """Persist every cursor atomically (no-op without a path). Blocking."""
        if self.path is None:
            return
        body = json.dumps(
            {
                "version": _VERSION,
                "streams": {k: v.to_json() for k, v in sorted(self.cursors.items())},
            },
            indent=1,
            sort_keys=True,
        ).encode("utf-8")
        directory = self.path.parent
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(body)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        _fsync_dir(directory)


def _fsync_dir(directory: Path) -> None:
    """Make the rename durable (POSIX; a no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
