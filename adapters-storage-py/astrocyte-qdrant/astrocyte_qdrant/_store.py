"""The :class:`~astrocyte.spi.VectorStore` on Qdrant."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import ClassVar, TypeVar

import numpy as np
from astrocyte.errors import AstrocyteError, StoreError, ValidationError
from astrocyte.spi import SPI_VERSION, HealthStatus, RecordFilter, ScoredId, Vector, VectorItem
from astrocyte.stores.memory import check_filter, check_limit, check_vector_items, unit_vector
from qdrant_client import AsyncQdrantClient
from qdrant_client.http import models as qm

from astrocyte_qdrant._collections import Collections
from astrocyte_qdrant._connection import CollectionMissing, Connection
from astrocyte_qdrant._options import QdrantOptions, parse_options
from astrocyte_qdrant._payload import bank_filter, memory_id_of, payload, point_id, search_filter

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _Point:
    id: str
    vector: list[float]
    payload: dict[str, object]


class QdrantVectorStore:
    """:class:`~astrocyte.spi.VectorStore` on a Qdrant server or on qdrant-client's
    local mode.

    Exactly one of ``url`` (a server), ``location=":memory:"`` or ``path`` (the
    client's in-process local mode, in memory or on disk) must be given. The
    constructor only checks the options; the connection opens on first use.

    All banks share the collection ``collection`` (created on first upsert with
    cosine distance and the first vector's size, or ``dimensions``); every request
    filters on the indexed ``bank_id`` payload. Writes use ``wait=True``, so a search
    right after an upsert or delete sees it. ``timeout_s`` bounds every request
    (:class:`~astrocyte.errors.ProviderUnavailable` past it); ``batch_size`` points go
    in one request. ``hnsw_m`` / ``hnsw_ef_construct`` set the HNSW graph of a
    collection this store creates (server only; local mode searches exhaustively), and
    ``exact=True`` makes the server search exhaustively too.
    """

    SPI_VERSION: ClassVar[int] = SPI_VERSION

    def __init__(
        self,
        *,
        url: str | None = None,
        api_key: str | None = None,
        location: str | None = None,
        path: str | None = None,
        collection: str | None = None,
        dimensions: int | str | None = None,
        timeout_s: float | str | None = None,
        batch_size: int | str | None = None,
        hnsw_m: int | str | None = None,
        hnsw_ef_construct: int | str | None = None,
        exact: bool | str | None = None,
    ) -> None:
        """Check the options (:class:`~astrocyte.errors.ConfigError` naming the bad
        one); no I/O happens here."""
        options, key = parse_options(
            url=url,
            api_key=api_key,
            location=location,
            path=path,
            collection=collection,
            dimensions=dimensions,
            timeout_s=timeout_s,
            batch_size=batch_size,
            hnsw_m=hnsw_m,
            hnsw_ef_construct=hnsw_ef_construct,
            exact=exact,
        )
        self.options: QdrantOptions = options
        self._conn = Connection(options, key)
        self._collections = Collections(self._conn)

    def __repr__(self) -> str:
        return f"QdrantVectorStore({self._conn.target}, collection={self.options.collection!r})"

    # ----------------------------------------------------------------------------------
    # VectorStore
    # ----------------------------------------------------------------------------------

    async def upsert(self, items: Sequence[VectorItem]) -> None:
        """Insert or replace vectors, all-or-nothing.

        A vector whose size differs from its bank's (or from ``dimensions``) raises
        :class:`~astrocyte.errors.ValidationError` (field ``vector``) before anything
        is written. Points go in ``batch_size`` chunks; if a later chunk fails, the
        points earlier chunks wrote are put back as they were and the error is raised.
        """
        self._conn.check_open()
        units = check_vector_items(items)
        if not items:
            return
        dims = self._bank_dimensions(items, units)
        await self._reject_other_dimensions(dims)
        # A later duplicate of an id replaces an earlier one, as separate upserts would.
        latest: dict[str, tuple[VectorItem, Vector]] = {}
        for item, unit in zip(items, units, strict=True):
            latest[point_id(item.bank_id, item.id)] = (item, unit)
        names = {size: await self._collections.ensure(size) for size in set(dims.values())}
        by_collection: dict[str, list[_Point]] = {}
        for pid, (item, unit) in latest.items():
            by_collection.setdefault(names[int(unit.shape[0])], []).append(
                _Point(pid, unit.astype(np.float64).tolist(), payload(item))
            )
        batches = [
            (name, chunk)
            for name, points in by_collection.items()
            for chunk in _chunks(points, self.options.batch_size)
        ]
        before: dict[str, list[_Point]] = {}
        if len(batches) > 1:
            before = await self._snapshot(by_collection)
        written: list[tuple[str, list[_Point]]] = []
        try:
            for name, chunk in batches:
                await self._write(name, chunk)
                written.append((name, chunk))
        except AstrocyteError as exc:
            if written:
                await self._undo(written, before, exc)
            raise

    async def search(
        self, bank_id: str, vector: Vector, *, limit: int, where: RecordFilter | None = None
    ) -> list[ScoredId]:
        """The ``limit`` most cosine-similar vectors of the bank that pass ``where``.

        A query whose size differs from the bank's vectors raises
        :class:`~astrocyte.errors.ValidationError` (field ``vector``); an unknown or
        empty bank gives no hits.
        """
        self._conn.check_open()
        check_limit(limit)
        check_filter(where)
        query = unit_vector(vector, "vector")
        size = int(query.shape[0])
        strict = self.options.dimensions
        if strict is not None and size != strict:
            raise ValidationError("vector", f"query dimension {size} is not dimensions={strict}")
        if limit == 0:
            return []
        tried: set[str] = set()
        name = self._collections.name_for(size)
        if name is not None:
            tried.add(name)
            hits = await self._query(name, bank_id, query, limit, where)
            if hits:
                return hits
        # Nothing found: the collection may be new to us, or the bank may hold vectors
        # of another size, which is the caller's error rather than an empty answer.
        known = await self._collections.refresh()
        name = known.get(size)
        if name is not None and name not in tried:
            hits = await self._query(name, bank_id, query, limit, where)
            if hits:
                return hits
        for other_size, other in known.items():
            if other_size != size and await self._bank_has_points(other, bank_id):
                raise ValidationError(
                    "vector",
                    f"query dimension {size} does not match bank {bank_id!r} "
                    f"dimension {other_size}",
                )
        return []

    async def delete(self, bank_id: str, ids: Sequence[str]) -> int:
        """Delete these ids from the bank; returns how many existed."""
        self._conn.check_open()
        wanted = [point_id(bank_id, i) for i in dict.fromkeys(ids)]
        if not wanted:
            return 0
        removed = 0
        for name in (await self._collections.refresh()).values():
            existing: list[qm.ExtendedPointId] = []
            try:
                for chunk in _chunks(wanted, self.options.batch_size):
                    found = await self._conn.call(
                        "look up points",
                        lambda c, chunk=chunk, name=name: c.retrieve(  # type: ignore[misc]
                            collection_name=name,
                            ids=chunk,
                            with_payload=False,
                            with_vectors=False,
                        ),
                    )
                    existing.extend(p.id for p in found)
                if existing:
                    await self._conn.call(
                        "delete points",
                        lambda c, name=name, existing=existing: c.delete(  # type: ignore[misc]
                            collection_name=name,
                            points_selector=qm.PointIdsList(points=existing),
                            wait=True,
                        ),
                    )
            except CollectionMissing:
                self._collections.forget(name)
                continue
            removed += len(existing)
        return removed

    async def health(self) -> HealthStatus:
        """One cheap authenticated request (listing collections); never raises."""
        try:
            self._conn.check_open()
            await self._conn.call("health check", lambda c: c.get_collections())
        except AstrocyteError as exc:
            return HealthStatus(ok=False, detail=str(exc))
        return HealthStatus(ok=True, detail=self._conn.target)

    async def close(self) -> None:
        """Close the client (and release local mode's folder lock); the store is
        unusable afterwards."""
        await self._conn.close()

    # ----------------------------------------------------------------------------------
    # Helpers
    # ----------------------------------------------------------------------------------

    def _bank_dimensions(self, items: Sequence[VectorItem], units: list[Vector]) -> dict[str, int]:
        strict = self.options.dimensions
        dims: dict[str, int] = {}
        for i, (item, unit) in enumerate(zip(items, units, strict=True)):
            size = int(unit.shape[0])
            if strict is not None and size != strict:
                raise ValidationError(
                    "vector", f"items[{i}] has dimension {size}, but dimensions={strict}"
                )
            first = dims.setdefault(item.bank_id, size)
            if size != first:
                raise ValidationError(
                    "vector",
                    f"items[{i}] has dimension {size}, other vectors of bank "
                    f"{item.bank_id!r} in this call have {first}",
                )
        return dims

    async def _reject_other_dimensions(self, dims: dict[str, int]) -> None:
        known = await self._collections.refresh()
        if len(known) < 2 and all(size in known for size in dims.values()):
            return  # one collection, and every vector fits it: nothing can conflict
        for bank_id, size in dims.items():
            for other_size, name in known.items():
                if other_size != size and await self._bank_has_points(name, bank_id):
                    raise ValidationError(
                        "vector",
                        f"dimension {size} does not match bank {bank_id!r} dimension {other_size}",
                    )

    async def _bank_has_points(self, name: str, bank_id: str) -> bool:
        try:
            points, _next = await self._conn.call(
                "look up bank",
                lambda c: c.scroll(
                    collection_name=name,
                    scroll_filter=bank_filter(bank_id),
                    limit=1,
                    with_payload=False,
                    with_vectors=False,
                ),
            )
        except CollectionMissing:
            self._collections.forget(name)
            return False
        return bool(points)

    async def _query(
        self,
        name: str,
        bank_id: str,
        query: Vector,
        limit: int,
        where: RecordFilter | None,
    ) -> list[ScoredId]:
        params = qm.SearchParams(exact=True) if self.options.exact else None

        async def run(client: AsyncQdrantClient) -> qm.QueryResponse:
            return await client.query_points(
                collection_name=name,
                query=query.astype(np.float64).tolist(),
                query_filter=search_filter(bank_id, where),
                search_params=params,
                limit=limit,
                with_payload=["memory_id"],
                with_vectors=False,
            )

        try:
            response = await self._conn.call("search", run)
        except CollectionMissing:
            self._collections.forget(name)
            return []
        return [ScoredId(memory_id_of(p.payload), float(p.score)) for p in response.points]

    async def _write(self, name: str, points: list[_Point]) -> None:
        batch = qm.Batch(
            ids=[p.id for p in points],
            vectors=[p.vector for p in points],
            payloads=[p.payload for p in points],
        )
        try:
            await self._conn.call(
                "upsert",
                lambda c: c.upsert(collection_name=name, points=batch, wait=True),
            )
        except CollectionMissing:
            self._collections.forget(name)
            raise StoreError(
                f"qdrant: collection {name!r} was dropped during the upsert; retry it"
            ) from None

    async def _snapshot(self, by_collection: dict[str, list[_Point]]) -> dict[str, list[_Point]]:
        """The current versions of the points about to be written, for :meth:`_undo`."""
        before: dict[str, list[_Point]] = {}
        for name, points in by_collection.items():
            for chunk in _chunks([p.id for p in points], self.options.batch_size):
                found = await self._conn.call(
                    "read points before upsert",
                    lambda c, name=name, chunk=chunk: c.retrieve(  # type: ignore[misc]
                        collection_name=name, ids=chunk, with_payload=True, with_vectors=True
                    ),
                )
                before.setdefault(name, []).extend(
                    _Point(str(r.id), _as_floats(r.vector), dict(r.payload or {})) for r in found
                )
        return before

    async def _undo(
        self,
        written: list[tuple[str, list[_Point]]],
        before: dict[str, list[_Point]],
        cause: AstrocyteError,
    ) -> None:
        """Delete the points that earlier batches added and restore those they replaced.
        If that fails too (the server is gone), say so on ``cause``."""
        try:
            for name in dict.fromkeys(n for n, _ in written):
                old = {p.id for p in before.get(name, [])}
                added: list[qm.ExtendedPointId] = [
                    p.id for n, chunk in written if n == name for p in chunk if p.id not in old
                ]
                if added:
                    await self._conn.call(
                        "undo upsert",
                        lambda c, name=name, added=added: c.delete(  # type: ignore[misc]
                            collection_name=name,
                            points_selector=qm.PointIdsList(points=added),
                            wait=True,
                        ),
                    )
                for chunk in _chunks(before.get(name, []), self.options.batch_size):
                    await self._write(name, chunk)
        except AstrocyteError as exc:
            cause.add_note(
                f"undoing the earlier batches failed too ({exc}); some points of this "
                "upsert may be stored: retry the upsert once the server is back"
            )


def _chunks(values: Sequence[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(values), size):
        yield list(values[start : start + size])


def _as_floats(vector: object) -> list[float]:
    if isinstance(vector, list) and all(isinstance(x, float | int) for x in vector):
        return [float(x) for x in vector]
    raise StoreError("qdrant: a stored point has no plain dense vector")
