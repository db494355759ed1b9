"""Memory and source ids that sort in creation order.

Ties in ranking (equal BM25 scores, equal fused scores) are broken by memory id. With
random ids, tied hits swapped places from run to run and benchmark figures wandered;
with time-ordered ids a tie resolves to the memory retained first, every time.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time

_lock = threading.Lock()
_last = 0


def _tick() -> int:
    """Microseconds since the epoch, strictly increasing within this process (even if
    the wall clock steps back or two ids are made in the same microsecond)."""
    global _last
    with _lock:
        now = time.time_ns() // 1000
        _last = now if now > _last else _last + 1
        return _last


def new_id(prefix: str) -> str:
    """``prefix_`` + 14 hex digits of time + 8 random hex digits (collision-safe across
    processes); ids of one process sort in the order they were made."""
    return f"{prefix}_{_tick():014x}{secrets.token_hex(4)}"


def keyed_id(prefix: str, *parts: object) -> str:
    """A deterministic id of the same shape as :func:`new_id`, derived from ``parts``
    (e.g. bank, idempotency key, chunk index): the same parts always give the same id.

    Used for idempotent retains, where a replay must land on the memories it already
    wrote. Such ids do not sort by creation time; ties between them break by hash.
    """
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()
    return f"{prefix}_{digest[:22]}"
