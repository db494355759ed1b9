"""In-memory stores: the reference implementations of the store SPIs.

Plain dictionaries, no persistence. Every public method does all its work without
awaiting in between, so each call is atomic with respect to other asyncio tasks and
needs no lock. They are meant for tests and throwaway brains; the embedded default is
:class:`astrocyte.stores.sqlite.SQLiteStore`.

The module also holds the validation and the filter/graph semantics that the embedded
store shares, so both stores reject the same inputs and rank graph hits identically.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Literal

import numpy as np
import numpy.typing as npt

from astrocyte.errors import BankNotFound, StoreError, ValidationError
from astrocyte.spi import (
    BankInfo,
    Entity,
    EntityLink,
    GraphHit,
    HealthStatus,
    MemoryRecord,
    RecordFilter,
    Relation,
    ScoredId,
    Vector,
    VectorItem,
)
from astrocyte.stores.text import informative, tokenize

__all__ = [
    "InMemoryDocumentStore",
    "InMemoryGraphStore",
    "InMemoryVectorStore",
    "check_entities",
    "check_filter",
    "check_id",
    "check_limit",
    "check_links",
    "check_records",
    "check_relations",
    "check_vector_items",
    "expand_neighbourhood",
    "filter_matches",
    "unit_vector",
]

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1

# --------------------------------------------------------------------------------------
# Validation shared with the embedded store
# --------------------------------------------------------------------------------------


def check_id(value: object, field_name: str) -> None:
    """Raise :class:`ValidationError` unless ``value`` is a non-empty string."""
    if not isinstance(value, str) or not value:
        raise ValidationError(field_name, "must be a non-empty string")


def _check_aware(value: object, field_name: str, *, optional: bool) -> None:
    if value is None and optional:
        return
    if not isinstance(value, datetime):
        raise ValidationError(field_name, "must be a datetime")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(
            field_name,
            "must be timezone-aware",
            fix="pass e.g. datetime(..., tzinfo=timezone.utc)",
        )


def _check_metadata(metadata: object, field_name: str) -> None:
    if not isinstance(metadata, Mapping):
        raise ValidationError(field_name, "must be a mapping of str to JSON scalars")
    for key, value in metadata.items():
        if not isinstance(key, str):
            raise ValidationError(field_name, f"key {key!r} is not a string")
        where = f"{field_name}.{key}"
        if value is None or isinstance(value, (bool, str)):
            continue
        if isinstance(value, int):
            if not _INT64_MIN <= value <= _INT64_MAX:
                raise ValidationError(where, "integer does not fit in 64 bits")
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise ValidationError(where, "float must be finite (no NaN or infinity)")
        else:
            raise ValidationError(
                where, f"unsupported type {type(value).__name__}; use str/int/float/bool/None"
            )


def _check_tags(tags: object, field_name: str) -> None:
    if isinstance(tags, str) or not isinstance(tags, (tuple, list)):
        raise ValidationError(field_name, "must be a tuple of strings")
    for tag in tags:
        if not isinstance(tag, str):
            raise ValidationError(field_name, f"tag {tag!r} is not a string")


def check_records(records: Sequence[MemoryRecord]) -> None:
    """Raise :class:`ValidationError` naming the first bad field of any record."""
    for i, r in enumerate(records):
        prefix = f"records[{i}]"
        check_id(r.id, f"{prefix}.id")
        check_id(r.bank_id, f"{prefix}.bank_id")
        if not isinstance(r.text, str):
            raise ValidationError(f"{prefix}.text", "must be a string")
        if not isinstance(r.source_id, str):
            raise ValidationError(f"{prefix}.source_id", "must be a string")
        if isinstance(r.chunk_index, bool) or not isinstance(r.chunk_index, int):
            raise ValidationError(f"{prefix}.chunk_index", "must be an integer")
        if not isinstance(r.content_type, str):
            raise ValidationError(f"{prefix}.content_type", "must be a string")
        if not isinstance(r.content_hash, str):
            raise ValidationError(f"{prefix}.content_hash", "must be a string")
        _check_aware(r.created_at, f"{prefix}.created_at", optional=False)
        _check_aware(r.occurred_at, f"{prefix}.occurred_at", optional=True)
        _check_tags(r.tags, f"{prefix}.tags")
        _check_metadata(r.metadata, f"{prefix}.metadata")


def unit_vector(vector: object, field_name: str = "vector") -> Vector:
    """``vector`` as a finite, L2-normalised 1-D float32 array (a fresh copy).

    Raises :class:`ValidationError` on the wrong shape, non-finite values or a zero
    vector (cosine similarity is undefined for it).
    """
    try:
        arr = np.asarray(vector, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise ValidationError(field_name, f"not a float vector: {exc}") from None
    if arr.ndim != 1 or arr.shape[0] == 0:
        raise ValidationError(field_name, f"must be a non-empty 1-D array, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValidationError(field_name, "contains NaN or infinite values")
    norm = float(np.linalg.norm(arr.astype(np.float64)))
    if norm == 0.0 or not math.isfinite(norm):
        raise ValidationError(field_name, "must not be the zero vector")
    out: Vector = (arr / np.float32(norm)).astype(np.float32)
    return out


def check_vector_items(items: Sequence[VectorItem]) -> list[Vector]:
    """Validate ``items``; returns their unit vectors (dimensions are checked per bank
    by the store).

    Vectors of one length are checked and normalised as one matrix: a retain batch has
    thousands of them and a per-vector numpy round trip would dominate the write.
    """
    arrays: list[npt.NDArray[np.float32]] = []
    for i, item in enumerate(items):
        prefix = f"items[{i}]"
        check_id(item.id, f"{prefix}.id")
        check_id(item.bank_id, f"{prefix}.bank_id")
        _check_tags(item.tags, f"{prefix}.tags")
        _check_aware(item.occurred_at, f"{prefix}.occurred_at", optional=True)
        _check_metadata(item.metadata, f"{prefix}.metadata")
        try:
            arr = np.asarray(item.vector, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise ValidationError("vector", f"{prefix}: not a float vector: {exc}") from None
        if arr.ndim != 1 or arr.shape[0] == 0:
            raise ValidationError(
                "vector", f"{prefix}: must be a non-empty 1-D array, got shape {arr.shape}"
            )
        arrays.append(arr)
    groups: dict[int, list[int]] = {}
    for i, arr in enumerate(arrays):
        groups.setdefault(arr.shape[0], []).append(i)
    units: list[Vector] = [np.empty(0, dtype=np.float32)] * len(arrays)
    for positions in groups.values():
        matrix = np.stack([arrays[i] for i in positions])
        finite = np.isfinite(matrix).all(axis=1)
        if not finite.all():
            bad = positions[int(np.argmin(finite))]
            raise ValidationError("vector", f"items[{bad}] contains NaN or infinite values")
        norms = np.linalg.norm(matrix.astype(np.float64), axis=1)
        if not (norms > 0).all() or not np.isfinite(norms).all():
            bad = positions[int(np.argmin((norms > 0) & np.isfinite(norms)))]
            raise ValidationError("vector", f"items[{bad}] must not be the zero vector")
        matrix = (matrix / norms[:, None]).astype(np.float32)
        for row, i in enumerate(positions):
            units[i] = matrix[row]
    return units


def check_filter(where: RecordFilter | None) -> None:
    """Raise :class:`ValidationError` if ``where`` holds naive datetimes or bad values."""
    if where is None:
        return
    _check_tags(where.tags, "where.tags")
    _check_aware(where.time_from, "where.time_from", optional=True)
    _check_aware(where.time_to, "where.time_to", optional=True)
    _check_metadata(where.metadata, "where.metadata")
    if where.ids is not None:
        for i in where.ids:
            if not isinstance(i, str):
                raise ValidationError("where.ids", f"id {i!r} is not a string")


def check_limit(limit: int | None, field_name: str = "limit") -> None:
    """Raise :class:`ValidationError` unless ``limit`` is ``None`` or a non-negative int."""
    if limit is None:
        return
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ValidationError(field_name, "must be a non-negative integer")


def check_entities(entities: Sequence[Entity]) -> None:
    """Raise :class:`ValidationError` naming the first bad field of any entity."""
    for i, e in enumerate(entities):
        prefix = f"entities[{i}]"
        check_id(e.id, f"{prefix}.id")
        check_id(e.bank_id, f"{prefix}.bank_id")
        for name in ("name", "normalized", "kind"):
            if not isinstance(getattr(e, name), str):
                raise ValidationError(f"{prefix}.{name}", "must be a string")


def check_links(links: Sequence[EntityLink]) -> None:
    """Raise :class:`ValidationError` naming the first bad field of any link."""
    for i, link in enumerate(links):
        check_id(link.bank_id, f"links[{i}].bank_id")
        check_id(link.memory_id, f"links[{i}].memory_id")
        check_id(link.entity_id, f"links[{i}].entity_id")


def check_relations(relations: Sequence[Relation]) -> None:
    """Raise :class:`ValidationError` naming the first bad field of any relation."""
    for i, rel in enumerate(relations):
        check_id(rel.bank_id, f"relations[{i}].bank_id")
        check_id(rel.source_entity_id, f"relations[{i}].source_entity_id")
        check_id(rel.target_entity_id, f"relations[{i}].target_entity_id")
        if not isinstance(rel.kind, str):
            raise ValidationError(f"relations[{i}].kind", "must be a string")


# --------------------------------------------------------------------------------------
# Reference semantics
# --------------------------------------------------------------------------------------


def filter_matches(where: RecordFilter | None, record: MemoryRecord | VectorItem) -> bool:
    """``where.matches(record)``, with ``None`` matching everything."""
    return where is None or where.matches(record)


def graph_score(distance: int, connected: int) -> float:
    """Score of a graph hit: strictly ordered by ``distance`` (closer is better), then
    by how many query entities reach the memory at that distance. Always in (0, 1)."""
    band = 1.0 / ((1 + distance) * (2 + distance))
    return 1.0 / (2 + distance) + band * connected / (connected + 1)


def expand_neighbourhood(
    entity_ids: Sequence[str],
    *,
    depth: int,
    limit: int,
    neighbours: Callable[[Collection[str]], Mapping[str, Iterable[str]]],
    links: Callable[[Collection[str]], Iterable[tuple[str, str]]],
) -> list[GraphHit]:
    """Breadth-first graph expansion shared by the graph stores.

    ``neighbours(entities)`` returns the entities one relation away (either direction)
    of each given entity; ``links(entities)`` returns ``(memory_id, entity_id)`` pairs.
    A memory's distance is the fewest hops from any query entity to an entity it is
    linked to; hits are ordered by distance, then by the number of query entities that
    reach the memory at that distance, then by memory id.

    Expansion stops after the first level at which ``limit`` memories are known: a
    memory found later is farther away and can never outrank them.
    """
    check_limit(limit)
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
        raise ValidationError("depth", "must be a non-negative integer")
    origins = list(dict.fromkeys(entity_ids))
    if limit == 0 or not origins:
        return []
    reached: dict[str, set[str]] = {o: {o} for o in origins}
    frontier: dict[str, set[str]] = {o: {o} for o in origins}
    # memory -> [distance, entity it is reached through, query entities reaching it]
    found: dict[str, tuple[int, list[str], set[str]]] = {}
    for level in range(depth + 1):
        if level > 0:
            adjacent = neighbours(list(frontier))
            following: dict[str, set[str]] = {}
            for entity, via in frontier.items():
                for other in adjacent.get(entity, ()):
                    for origin in via:
                        if other not in reached[origin]:
                            reached[origin].add(other)
                            following.setdefault(other, set()).add(origin)
            frontier = following
            if not frontier:
                break
        for memory_id, entity_id in links(list(frontier)):
            hit = found.get(memory_id)
            if hit is None:
                found[memory_id] = (level, [entity_id], set(frontier[entity_id]))
            elif hit[0] == level:
                if entity_id < hit[1][0]:
                    hit[1][0] = entity_id
                hit[2].update(frontier[entity_id])
        if len(found) >= limit:
            break
    ranked = sorted(found.items(), key=lambda kv: (kv[1][0], -len(kv[1][2]), kv[0]))
    return [
        GraphHit(memory_id, via[0], distance, graph_score(distance, len(origins_)))
        for memory_id, (distance, via, origins_) in ranked[:limit]
    ]


def _copy_record(record: MemoryRecord) -> MemoryRecord:
    # Callers may mutate the metadata dict they passed in or got back; never share it.
    # Stores hand back UTC whatever offset the caller used, like the SQL stores do.
    occurred = record.occurred_at
    return replace(
        record,
        created_at=record.created_at.astimezone(UTC),
        occurred_at=None if occurred is None else occurred.astimezone(UTC),
        tags=tuple(record.tags),
        metadata=dict(record.metadata),
    )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _order_key(newest: bool) -> Callable[[MemoryRecord], tuple[int, int, str]]:
    # Exact integer microseconds: float timestamps can tie or misorder distant dates.
    def key(r: MemoryRecord) -> tuple[int, int, str]:
        if r.occurred_at is None:
            return (1, 0, r.id)
        us = (r.occurred_at - _EPOCH) // _MICROSECOND
        return (0, -us if newest else us, r.id)

    return key


class _Closable:
    _closed: bool = False

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"{type(self).__name__} is closed")

    async def health(self) -> HealthStatus:
        """Healthy until closed."""
        return HealthStatus(ok=not self._closed, detail="closed" if self._closed else "")

    async def close(self) -> None:
        """Drop all data; the store is unusable afterwards."""
        self._closed = True


# --------------------------------------------------------------------------------------
# Documents
# --------------------------------------------------------------------------------------

_K1 = 1.2
_B = 0.75


@dataclass
class _DocBank:
    created_at: datetime
    records: dict[str, MemoryRecord] = field(default_factory=dict)
    postings: dict[str, dict[str, int]] = field(default_factory=dict)
    terms: dict[str, Counter[str]] = field(default_factory=dict)
    lengths: dict[str, int] = field(default_factory=dict)
    total_length: int = 0
    # content hash -> ids holding it, in insertion order (a dict used as ordered set).
    by_hash: dict[str, dict[str, None]] = field(default_factory=dict)

    def remove(self, memory_id: str) -> bool:
        record = self.records.pop(memory_id, None)
        if record is None:
            return False
        holders = self.by_hash.get(record.content_hash)
        if holders is not None:
            holders.pop(memory_id, None)
            if not holders:
                del self.by_hash[record.content_hash]
        for term in self.terms.pop(memory_id):
            posting = self.postings[term]
            del posting[memory_id]
            if not posting:
                del self.postings[term]
        self.total_length -= self.lengths.pop(memory_id)
        return True

    def add(self, record: MemoryRecord) -> None:
        self.remove(record.id)
        terms = Counter(tokenize(record.text))
        self.records[record.id] = record
        if record.content_hash:
            self.by_hash.setdefault(record.content_hash, {})[record.id] = None
        self.terms[record.id] = terms
        for term, tf in terms.items():
            self.postings.setdefault(term, {})[record.id] = tf
        length = sum(terms.values())
        self.lengths[record.id] = length
        self.total_length += length


class InMemoryDocumentStore(_Closable):
    """Reference :class:`~astrocyte.spi.DocumentStore`: dicts plus a small BM25 index.

    Keyword search tokenises with :func:`astrocyte.stores.text.tokenize` at index and
    query time and scores with Okapi BM25 (k1=1.2, b=0.75, Lucene's non-negative IDF),
    using statistics of the searched bank only.
    """

    def __init__(self) -> None:
        """An empty store."""
        self._banks: dict[str, _DocBank] = {}

    async def create_bank(self, bank_id: str) -> None:
        """Create the bank if it does not exist (idempotent)."""
        self._check_open()
        check_id(bank_id, "bank_id")
        if bank_id not in self._banks:
            self._banks[bank_id] = _DocBank(created_at=datetime.now(UTC))

    async def list_banks(self) -> list[BankInfo]:
        """Every bank with its memory count, ordered by bank id."""
        self._check_open()
        return [
            BankInfo(bank_id, len(bank.records), bank.created_at)
            for bank_id, bank in sorted(self._banks.items())
        ]

    async def bank_exists(self, bank_id: str) -> bool:
        """Whether ``create_bank`` was called for this bank."""
        self._check_open()
        return bank_id in self._banks

    async def put(self, records: Sequence[MemoryRecord]) -> None:
        """Insert or replace records, all-or-nothing; raises :class:`BankNotFound` if a
        record's bank was never created."""
        self._check_open()
        check_records(records)
        for r in records:
            if r.bank_id not in self._banks:
                raise BankNotFound(r.bank_id)
        for r in records:
            self._banks[r.bank_id].add(_copy_record(r))

    async def get(self, bank_id: str, ids: Sequence[str]) -> list[MemoryRecord]:
        """The records of ``ids`` that exist in the bank, in the order asked."""
        self._check_open()
        bank = self._banks.get(bank_id)
        if bank is None:
            return []
        return [_copy_record(bank.records[i]) for i in ids if i in bank.records]

    async def keyword_search(
        self, bank_id: str, query: str, *, limit: int, where: RecordFilter | None = None
    ) -> list[ScoredId]:
        """BM25 over the bank's records that pass ``where``; best first."""
        self._check_open()
        check_limit(limit)
        check_filter(where)
        bank = self._banks.get(bank_id)
        terms = list(dict.fromkeys(tokenize(query)))
        if bank is None or not terms or limit == 0 or not bank.records:
            return []
        n_docs = len(bank.records)
        terms = informative([(t, len(bank.postings.get(t, ()))) for t in terms], n_docs)
        avg_len = bank.total_length / n_docs if bank.total_length else 1.0
        scores: dict[str, float] = {}
        for term in terms:
            posting = bank.postings.get(term)
            if not posting:
                continue
            df = len(posting)
            idf = math.log(1.0 + (n_docs - df + 0.5) / (df + 0.5))
            for memory_id, tf in posting.items():
                norm = _K1 * (1.0 - _B + _B * bank.lengths[memory_id] / avg_len)
                scores[memory_id] = scores.get(memory_id, 0.0) + idf * tf * (_K1 + 1) / (tf + norm)
        hits = [
            ScoredId(memory_id, score)
            for memory_id, score in scores.items()
            if filter_matches(where, bank.records[memory_id])
        ]
        hits.sort(key=lambda h: (-h.score, h.id))
        return hits[:limit]

    async def find(
        self,
        bank_id: str,
        where: RecordFilter,
        *,
        limit: int | None = None,
        order: Literal["newest", "oldest"] | None = None,
    ) -> list[str]:
        """Ids matching ``where``; ``order`` sorts by ``occurred_at`` (memories
        without one last, ties by id); unordered results come in insertion order."""
        self._check_open()
        check_limit(limit)
        check_filter(where)
        if order not in (None, "newest", "oldest"):
            raise ValidationError("order", "must be 'newest', 'oldest' or None")
        bank = self._banks.get(bank_id)
        if bank is None:
            return []
        matched = [r for r in bank.records.values() if filter_matches(where, r)]
        if order is not None:
            matched.sort(key=_order_key(order == "newest"))
        ids = [r.id for r in matched]
        return ids if limit is None else ids[:limit]

    async def delete(self, bank_id: str, ids: Sequence[str]) -> int:
        """Delete these ids from the bank; returns how many existed."""
        self._check_open()
        bank = self._banks.get(bank_id)
        if bank is None:
            return 0
        return sum(1 for i in dict.fromkeys(ids) if bank.remove(i))

    async def count(self, bank_id: str) -> int:
        """Number of memories in the bank."""
        self._check_open()
        bank = self._banks.get(bank_id)
        return 0 if bank is None else len(bank.records)

    async def find_by_content_hash(self, bank_id: str, hashes: Sequence[str]) -> dict[str, str]:
        """Hash → id of the earliest stored memory with it (a dict lookup per hash)."""
        self._check_open()
        bank = self._banks.get(bank_id)
        if bank is None:
            return {}
        found: dict[str, str] = {}
        for digest in hashes:
            holders = bank.by_hash.get(digest) if digest else None
            if holders:
                found[digest] = next(iter(holders))
        return found

    async def close(self) -> None:
        """Drop all data; the store is unusable afterwards."""
        self._banks.clear()
        self._closed = True


# --------------------------------------------------------------------------------------
# Vectors
# --------------------------------------------------------------------------------------


class InMemoryVectorStore(_Closable):
    """Reference :class:`~astrocyte.spi.VectorStore`: exact cosine search with numpy.

    Vectors are stored L2-normalised; a bank's dimension is the dimension of the
    vectors it holds (fixed by the first one, free again once it is empty).
    """

    def __init__(self) -> None:
        """An empty store."""
        self._banks: dict[str, dict[str, tuple[Vector, VectorItem]]] = {}

    def _dimension(self, bank_id: str) -> int | None:
        bank = self._banks.get(bank_id)
        if not bank:
            return None
        return int(next(iter(bank.values()))[0].shape[0])

    async def upsert(self, items: Sequence[VectorItem]) -> None:
        """Insert or replace vectors, all-or-nothing; a vector whose dimension differs
        from its bank's raises :class:`ValidationError` (field ``vector``)."""
        self._check_open()
        units = check_vector_items(items)
        dims: dict[str, int] = {}
        for item, unit in zip(items, units, strict=True):
            expected = dims.get(item.bank_id)
            if expected is None:
                expected = self._dimension(item.bank_id) or unit.shape[0]
                dims[item.bank_id] = expected
            if unit.shape[0] != expected:
                raise ValidationError(
                    "vector",
                    f"dimension {unit.shape[0]} does not match bank {item.bank_id!r} "
                    f"dimension {expected}",
                )
        for item, unit in zip(items, units, strict=True):
            stored = replace(item, tags=tuple(item.tags), metadata=dict(item.metadata))
            self._banks.setdefault(item.bank_id, {})[item.id] = (unit, stored)

    async def search(
        self, bank_id: str, vector: Vector, *, limit: int, where: RecordFilter | None = None
    ) -> list[ScoredId]:
        """Exact top-``limit`` by cosine similarity among vectors passing ``where``."""
        self._check_open()
        check_limit(limit)
        check_filter(where)
        query = unit_vector(vector, "vector")
        dim = self._dimension(bank_id)
        if dim is None or limit == 0:
            return []
        if query.shape[0] != dim:
            raise ValidationError(
                "vector", f"query dimension {query.shape[0]} does not match bank dimension {dim}"
            )
        rows = [
            (mid, unit)
            for mid, (unit, item) in self._banks[bank_id].items()
            if filter_matches(where, item)
        ]
        if not rows:
            return []
        matrix = np.stack([unit for _, unit in rows])
        scores = matrix @ query
        order = np.argsort(-scores, kind="stable")[:limit]
        return [ScoredId(rows[i][0], float(scores[i])) for i in order]

    async def delete(self, bank_id: str, ids: Sequence[str]) -> int:
        """Delete these ids from the bank; returns how many existed."""
        self._check_open()
        bank = self._banks.get(bank_id)
        if bank is None:
            return 0
        return sum(1 for i in dict.fromkeys(ids) if bank.pop(i, None) is not None)

    async def close(self) -> None:
        """Drop all data; the store is unusable afterwards."""
        self._banks.clear()
        self._closed = True


# --------------------------------------------------------------------------------------
# Graph
# --------------------------------------------------------------------------------------


@dataclass
class _GraphBank:
    entities: dict[str, Entity] = field(default_factory=dict)
    by_entity: dict[str, set[str]] = field(default_factory=dict)
    by_memory: dict[str, set[str]] = field(default_factory=dict)
    relations: set[tuple[str, str, str]] = field(default_factory=set)

    def adjacent(self, entities: Collection[str]) -> dict[str, set[str]]:
        wanted = set(entities)
        out: dict[str, set[str]] = {}
        for source, target, _kind in self.relations:
            if source in wanted:
                out.setdefault(source, set()).add(target)
            if target in wanted:
                out.setdefault(target, set()).add(source)
        return out

    def links_of(self, entities: Collection[str]) -> list[tuple[str, str]]:
        return [(m, e) for e in entities for m in self.by_entity.get(e, ())]


class InMemoryGraphStore(_Closable):
    """Reference :class:`~astrocyte.spi.GraphStore`.

    Links and relations must name entities already upserted into the same bank
    (:class:`ValidationError` otherwise). ``neighbourhood`` follows
    :func:`expand_neighbourhood`.
    """

    def __init__(self) -> None:
        """An empty store."""
        self._banks: dict[str, _GraphBank] = {}

    def _known(self, bank_id: str, entity_id: str, field_name: str) -> _GraphBank:
        bank = self._banks.get(bank_id)
        if bank is None or entity_id not in bank.entities:
            raise ValidationError(field_name, f"unknown entity {entity_id!r} in bank {bank_id!r}")
        return bank

    async def upsert_entities(self, entities: Sequence[Entity]) -> None:
        """Insert or replace entities (keyed by bank and ``id``)."""
        self._check_open()
        check_entities(entities)
        for e in entities:
            self._banks.setdefault(e.bank_id, _GraphBank()).entities[e.id] = e

    async def link(self, links: Sequence[EntityLink]) -> None:
        """Record that memories mention entities (idempotent); the entities must exist."""
        self._check_open()
        check_links(links)
        for i, link in enumerate(links):
            self._known(link.bank_id, link.entity_id, f"links[{i}].entity_id")
        for link in links:
            bank = self._banks[link.bank_id]
            bank.by_entity.setdefault(link.entity_id, set()).add(link.memory_id)
            bank.by_memory.setdefault(link.memory_id, set()).add(link.entity_id)

    async def relate(self, relations: Sequence[Relation]) -> None:
        """Add entity→entity edges (idempotent); both entities must exist."""
        self._check_open()
        check_relations(relations)
        for i, rel in enumerate(relations):
            self._known(rel.bank_id, rel.source_entity_id, f"relations[{i}].source_entity_id")
            self._known(rel.bank_id, rel.target_entity_id, f"relations[{i}].target_entity_id")
        for rel in relations:
            self._banks[rel.bank_id].relations.add(
                (rel.source_entity_id, rel.target_entity_id, rel.kind)
            )

    async def find_entities(self, bank_id: str, normalized_names: Sequence[str]) -> list[Entity]:
        """Entities whose ``normalized`` name is one of the given names, ordered by
        normalized name then id."""
        self._check_open()
        bank = self._banks.get(bank_id)
        if bank is None:
            return []
        wanted = set(normalized_names)
        found = [
            replace(e, mentions=len(bank.by_entity.get(e.id, ())))
            for e in bank.entities.values()
            if e.normalized in wanted
        ]
        return sorted(found, key=lambda e: (e.normalized, e.id))

    async def neighbourhood(
        self, bank_id: str, entity_ids: Sequence[str], *, depth: int = 1, limit: int = 100
    ) -> list[GraphHit]:
        """Memories linked to the entities or to entities up to ``depth`` hops away;
        see :func:`expand_neighbourhood` for the ranking."""
        self._check_open()
        bank = self._banks.get(bank_id) or _GraphBank()
        return expand_neighbourhood(
            entity_ids, depth=depth, limit=limit, neighbours=bank.adjacent, links=bank.links_of
        )

    async def delete_memories(self, bank_id: str, memory_ids: Sequence[str]) -> int:
        """Remove the memories' links, then entities left with no link and their
        relations. Returns the number of links removed."""
        self._check_open()
        bank = self._banks.get(bank_id)
        if bank is None:
            return 0
        removed = 0
        touched: set[str] = set()
        for memory_id in dict.fromkeys(memory_ids):
            for entity_id in bank.by_memory.pop(memory_id, set()):
                bank.by_entity[entity_id].discard(memory_id)
                touched.add(entity_id)
                removed += 1
        orphans = {e for e in touched if not bank.by_entity.get(e)}
        for entity_id in orphans:
            bank.by_entity.pop(entity_id, None)
            bank.entities.pop(entity_id, None)
        if orphans:
            bank.relations = {
                r for r in bank.relations if r[0] not in orphans and r[1] not in orphans
            }
        return removed

    async def close(self) -> None:
        """Drop all data; the store is unusable afterwards."""
        self._banks.clear()
        self._closed = True
