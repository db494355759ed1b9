"""``Server-Timing`` for every response: how long the library call took and how long
the whole request had taken when the response started.

    Server-Timing: library;dur=16.322, total;dur=16.981

Browsers' developer tools show it, and a client can subtract ``library`` from its own
round trip to see exactly what the HTTP layer added to that very request (the gateway
benchmark does). The middleware opens a per-request record in a context variable; a
library call run through :func:`astrocyte_gateway.routes.deps.library_call` adds its
duration to it. A dict, not a value, is stored so that writes made deeper in the
request's task are seen by the middleware whatever context copies happen in between.
"""

from __future__ import annotations

import time
from contextvars import ContextVar

__all__ = ["HEADER", "begin", "header_value", "record_library"]

HEADER = b"server-timing"

_current: ContextVar[dict[str, float] | None] = ContextVar("astrocyte_timing", default=None)


def begin() -> dict[str, float]:
    """Start the current request's record (called by the middleware)."""
    record: dict[str, float] = {"start": time.perf_counter(), "library": 0.0}
    _current.set(record)
    return record


def record_library(seconds: float) -> None:
    """Add a library call's duration to the current request's record, if any."""
    record = _current.get()
    if record is not None:
        record["library"] += seconds


def header_value(record: dict[str, float]) -> bytes:
    """The header value at this moment (the response is starting)."""
    total = (time.perf_counter() - record["start"]) * 1000
    return f"library;dur={record['library'] * 1000:.3f}, total;dur={total:.3f}".encode()
