"""In-process vector index of one bank: a contiguous normalised matrix plus filter postings.

Exact (brute-force) cosine search: one matrix-vector product over the bank, then
``argpartition`` for the top k. Filters never touch SQLite: tags and metadata values
are kept as postings (payload key -> set of rows), ``occurred_at`` as an int64 array,
so a filter becomes a row subset before scoring.

Rows are dense ``0..n-1``; a delete moves the last row into the hole so the matrix
never needs compaction. Readers (searches) and the single writer (the store's write
thread applying committed changes) are separated by a readers-writer lock.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import numpy as np
import numpy.typing as npt

from astrocyte.spi import MetadataValue, RecordFilter, Vector
from astrocyte.stores.sqlite._sql import to_micros

PayloadKey = tuple[object, ...]
"""A filterable fact about a vector: ``("t", tag)`` or ``("m", key, type, value)``."""

Rows = npt.NDArray[np.int64]

# Below this fraction of the bank, scoring only the candidate rows (a gather plus a
# small product) beats scoring every row and masking.
_GATHER_FRACTION = 0.25


def _typed(value: MetadataValue) -> tuple[str, MetadataValue]:
    # Mirrors metadata_equal: bools only equal bools; 1 and 1.0 share a key because
    # they are equal and hash alike in Python.
    if isinstance(value, bool):
        return ("b", value)
    if value is None:
        return ("z", None)
    if isinstance(value, str):
        return ("s", value)
    return ("n", value)


def payload_keys(
    tags: Sequence[str], metadata: Mapping[str, MetadataValue]
) -> tuple[PayloadKey, ...]:
    """The postings keys of one vector's payload."""
    keys: list[PayloadKey] = [("t", tag) for tag in dict.fromkeys(tags)]
    keys.extend(("m", key, *_typed(value)) for key, value in metadata.items())
    return tuple(keys)


def top_k(scores: npt.NDArray[np.float32], k: int) -> Rows:
    """Indices of the ``k`` highest scores, best first."""
    n = scores.shape[0]
    if k >= n:
        order: Rows = np.argsort(-scores, kind="stable").astype(np.int64)
        return order
    # Partition on the scores themselves (no negated copy of a 100k array).
    part = np.argpartition(scores, n - k)[n - k :]
    best: Rows = part[np.argsort(-scores[part], kind="stable")].astype(np.int64)
    return best


class _RWLock:
    """Many readers or one writer; a waiting writer blocks new readers."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writing = False
        self._writers_waiting = 0

    @contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            while self._writing or self._writers_waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._writers_waiting += 1
            while self._writing or self._readers:
                self._cond.wait()
            self._writers_waiting -= 1
            self._writing = True
        try:
            yield
        finally:
            with self._cond:
                self._writing = False
                self._cond.notify_all()


class BankVectors:
    """Cached vectors of one bank at database ``version``."""

    def __init__(self, dim: int, version: int) -> None:
        """An empty cache for ``dim``-dimensional vectors at database ``version``."""
        self.dim = dim
        self.version = version
        self._lock = _RWLock()
        self._matrix: npt.NDArray[np.float32] = np.empty((0, dim), dtype=np.float32)
        self._when: npt.NDArray[np.int64] = np.empty(0, dtype=np.int64)
        self._has_when: npt.NDArray[np.bool_] = np.empty(0, dtype=np.bool_)
        self._n = 0
        self._ids: list[str] = []
        self._rows: dict[str, int] = {}
        self._keys: list[tuple[PayloadKey, ...]] = []
        self._postings: dict[PayloadKey, set[int]] = {}
        # Sorted row arrays of single postings, rebuilt lazily after a change.
        self._arrays: dict[PayloadKey, Rows] = {}

    @classmethod
    def build(
        cls,
        dim: int,
        version: int,
        ids: list[str],
        matrix: npt.NDArray[np.float32],
        when: Sequence[int | None],
        keys: list[tuple[PayloadKey, ...]],
    ) -> BankVectors:
        """A cache holding exactly these rows; takes ownership of ``matrix`` (n, dim)."""
        cache = cls(dim, version)
        n = len(ids)
        cache._matrix = matrix
        cache._when = np.fromiter((0 if w is None else w for w in when), np.int64, n)
        cache._has_when = np.fromiter((w is not None for w in when), np.bool_, n)
        cache._n = n
        cache._ids = ids
        cache._rows = {memory_id: row for row, memory_id in enumerate(ids)}
        cache._keys = keys
        postings = cache._postings
        for row, row_keys in enumerate(keys):
            for key in row_keys:
                posting = postings.get(key)
                if posting is None:
                    postings[key] = {row}
                else:
                    posting.add(row)
        return cache

    def __len__(self) -> int:
        return self._n

    @property
    def nbytes(self) -> int:
        """Approximate memory held (matrix plus per-row bookkeeping)."""
        capacity = int(self._matrix.shape[0])
        return int(self._matrix.nbytes) + capacity * 9 + self._n * 160

    def _reserve(self, rows: int) -> None:
        capacity = self._matrix.shape[0]
        if rows <= capacity:
            return
        capacity = max(rows, capacity * 2, 64)
        matrix = np.empty((capacity, self.dim), dtype=np.float32)
        matrix[: self._n] = self._matrix[: self._n]
        when = np.zeros(capacity, dtype=np.int64)
        when[: self._n] = self._when[: self._n]
        has_when = np.zeros(capacity, dtype=np.bool_)
        has_when[: self._n] = self._has_when[: self._n]
        self._matrix, self._when, self._has_when = matrix, when, has_when

    def _index(self, row: int, keys: tuple[PayloadKey, ...]) -> None:
        for key in keys:
            self._postings.setdefault(key, set()).add(row)
            self._arrays.pop(key, None)

    def _unindex(self, row: int, keys: tuple[PayloadKey, ...]) -> None:
        for key in keys:
            posting = self._postings[key]
            posting.discard(row)
            if not posting:
                del self._postings[key]
            self._arrays.pop(key, None)

    def _set_when(self, row: int, when: int | None) -> None:
        self._has_when[row] = when is not None
        self._when[row] = 0 if when is None else when

    def upsert(
        self,
        ids: Sequence[str],
        units: npt.NDArray[np.float32],
        when: Sequence[int | None],
        keys: Sequence[tuple[PayloadKey, ...]],
    ) -> None:
        """Insert or replace rows; ``ids`` must be distinct, ``units`` normalised."""
        with self._lock.write():
            fresh: list[int] = []
            for j, memory_id in enumerate(ids):
                row = self._rows.get(memory_id)
                if row is None:
                    fresh.append(j)
                    continue
                self._matrix[row] = units[j]
                self._set_when(row, when[j])
                self._unindex(row, self._keys[row])
                self._keys[row] = keys[j]
                self._index(row, keys[j])
            if not fresh:
                return
            start = self._n
            self._reserve(start + len(fresh))
            self._matrix[start : start + len(fresh)] = units[fresh]
            for offset, j in enumerate(fresh):
                row = start + offset
                self._ids.append(ids[j])
                self._rows[ids[j]] = row
                self._keys.append(keys[j])
                self._set_when(row, when[j])
                self._index(row, keys[j])
            self._n += len(fresh)

    def delete(self, ids: Sequence[str]) -> None:
        """Remove rows (missing ids are ignored)."""
        with self._lock.write():
            for memory_id in ids:
                row = self._rows.pop(memory_id, None)
                if row is None:
                    continue
                last = self._n - 1
                self._unindex(row, self._keys[row])
                if row != last:
                    moved_keys = self._keys[last]
                    self._unindex(last, moved_keys)
                    self._matrix[row] = self._matrix[last]
                    self._when[row] = self._when[last]
                    self._has_when[row] = self._has_when[last]
                    self._ids[row] = self._ids[last]
                    self._keys[row] = moved_keys
                    self._rows[self._ids[row]] = row
                    self._index(row, moved_keys)
                self._ids.pop()
                self._keys.pop()
                self._n -= 1

    def _posting_rows(self, key: PayloadKey) -> Rows:
        rows = self._arrays.get(key)
        if rows is None:
            posting = self._postings.get(key, set())
            rows = np.fromiter(posting, dtype=np.int64, count=len(posting))
            rows.sort()
            self._arrays[key] = rows
        return rows

    def _candidates(self, where: RecordFilter) -> Rows | None:
        """Rows passing ``where``, or ``None`` for all rows."""
        n = self._n
        keys: list[PayloadKey] = [("t", tag) for tag in dict.fromkeys(where.tags)]
        keys.extend(("m", key, *_typed(value)) for key, value in where.metadata.items())
        rows: Rows | None = None
        if where.ids is not None or keys:
            sets: list[set[int]] = [self._postings.get(key, set()) for key in keys]
            if where.ids is not None:
                sets.append({self._rows[i] for i in where.ids if i in self._rows})
            if any(not s for s in sets):
                return np.empty(0, dtype=np.int64)
            if len(sets) == 1 and where.ids is None:
                rows = self._posting_rows(keys[0])
            else:
                sets.sort(key=len)
                common = sets[0].intersection(*sets[1:])
                rows = np.fromiter(common, dtype=np.int64, count=len(common))
                rows.sort()
        if where.time_from is None and where.time_to is None:
            return rows
        if rows is None:
            mask = self._has_when[:n].copy()
            when = self._when[:n]
        else:
            mask = self._has_when[rows]
            when = self._when[rows]
        if where.time_from is not None:
            mask &= when >= to_micros(where.time_from)
        if where.time_to is not None:
            mask &= when < to_micros(where.time_to)
        hits: Rows = np.flatnonzero(mask).astype(np.int64)
        return hits if rows is None else rows[hits]

    def search(
        self, query: Vector, limit: int, where: RecordFilter | None
    ) -> list[tuple[str, float]]:
        """Top ``limit`` ``(id, cosine)`` pairs among rows passing ``where``."""
        with self._lock.read():
            n = self._n
            if n == 0 or limit <= 0:
                return []
            rows = None if where is None or where.is_empty() else self._candidates(where)
            matrix = self._matrix[:n]
            if rows is None:
                scores = matrix @ query
                best = top_k(scores, limit)
                return [(self._ids[i], float(scores[i])) for i in best.tolist()]
            if rows.shape[0] == 0:
                return []
            if rows.shape[0] < n * _GATHER_FRACTION:
                sub = matrix[rows] @ query
            else:
                sub = (matrix @ query)[rows]
            best = top_k(sub, limit)
            return [(self._ids[int(rows[i])], float(sub[i])) for i in best.tolist()]
