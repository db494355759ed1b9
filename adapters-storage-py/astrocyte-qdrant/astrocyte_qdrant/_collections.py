"""Which Qdrant collection holds vectors of which size, and making sure it exists.

All banks share one collection and are told apart by the indexed ``bank_id`` payload
(see the README for why). A Qdrant collection has one vector size, but the SPI lets
each bank have its own dimension, so vectors of a size other than the main
collection's go to a sibling collection ``<collection>__dim<size>``. With the
``dimensions`` option set there is only the main collection and other sizes are
rejected. Creation is idempotent and safe against other processes creating the same
collection at the same time; an existing collection is checked, never changed.
"""

from __future__ import annotations

import asyncio
import re
import warnings

from astrocyte.errors import ConfigError, ProviderUnavailable, StoreError
from qdrant_client import AsyncQdrantClient
from qdrant_client.http import models as qm

from astrocyte_qdrant._connection import CollectionMissing, Connection
from astrocyte_qdrant._payload import INDEXES


class Collections:
    """The collections of one store: looked up, created and checked on demand."""

    def __init__(self, connection: Connection) -> None:
        """Nothing is known until the first :meth:`refresh`."""
        self._conn = connection
        opts = connection.options
        self.main = opts.collection
        self._strict = opts.dimensions
        self._sibling = re.compile(re.escape(opts.collection) + r"__dim([1-9][0-9]*)")
        self._known: dict[int, str] = {}
        self._checked: set[str] = set()
        self._lock = asyncio.Lock()

    def name_for(self, dimension: int) -> str | None:
        """The collection known to hold vectors of ``dimension``, if any (no I/O)."""
        return self._known.get(dimension)

    def known(self) -> dict[int, str]:
        """Every known collection of this store by vector size (no I/O)."""
        return dict(self._known)

    def forget(self, name: str) -> None:
        """Drop a collection that turned out to be gone."""
        self._known = {d: n for d, n in self._known.items() if n != name}
        self._checked.discard(name)

    async def refresh(self) -> dict[int, str]:
        """List the server's collections again; returns :meth:`known`."""
        async with self._lock:
            await self._refresh()
            return dict(self._known)

    async def ensure(self, dimension: int) -> str:
        """The collection for vectors of ``dimension``, created (with its payload
        indexes) if missing; an existing one is checked once per store."""
        name = self._known.get(dimension)
        if name is not None and name in self._checked:
            return name
        async with self._lock:
            await self._refresh()
            name = self._known.get(dimension)
            if name is None:
                name = await self._create(dimension)
            if name not in self._checked:
                info = await self._check(name, dimension)
                await self._ensure_indexes(name, info)
                self._checked.add(name)
            return name

    async def _refresh(self) -> None:
        listing = await self._conn.call("list collections", lambda c: c.get_collections())
        names = {c.name for c in listing.collections}
        known: dict[int, str] = {}
        if self.main in names:
            size = self._size_of_known(self.main)
            if size is None:
                size = await self._size(self.main)
            if size is not None:
                known[size] = self.main
        if self._strict is None:
            for name in names:
                match = self._sibling.fullmatch(name)
                if match is not None:
                    size = int(match.group(1))
                    # The main collection wins if it happens to have this size too.
                    known.setdefault(size, name)
        self._known = known
        self._checked &= set(known.values())

    def _size_of_known(self, name: str) -> int | None:
        return next((d for d, n in self._known.items() if n == name), None)

    async def _size(self, name: str) -> int | None:
        try:
            info = await self._conn.call(
                "read collection", lambda c: c.get_collection(collection_name=name)
            )
        except CollectionMissing:
            return None  # dropped meanwhile: treated as absent
        return _vector_params(info, name).size

    async def _create(self, dimension: int) -> str:
        main_size = self._size_of_known(self.main)
        if self._strict is not None and main_size is not None:
            raise ConfigError(
                "dimensions",
                f"collection {self.main!r} holds vectors of size {main_size}, "
                f"but dimensions is {self._strict}",
                fix="set dimensions to the collection's size or use another collection",
            )
        name = self.main if main_size is None else f"{self.main}__dim{dimension}"
        opts = self._conn.options
        hnsw = (
            qm.HnswConfigDiff(m=opts.hnsw_m, ef_construct=opts.hnsw_ef_construct)
            if opts.hnsw_m is not None or opts.hnsw_ef_construct is not None
            else None
        )

        async def create(client: AsyncQdrantClient) -> bool:
            if await client.collection_exists(collection_name=name):
                return False
            return await client.create_collection(
                collection_name=name,
                vectors_config=qm.VectorParams(size=dimension, distance=qm.Distance.COSINE),
                hnsw_config=hnsw,
            )

        try:
            await self._conn.call("create collection", create)
        except ProviderUnavailable:
            raise
        except StoreError:
            # Another process may have created it first; if it now exists we use it
            # (and check it), otherwise the failure stands.
            listing = await self._conn.call("list collections", lambda c: c.get_collections())
            if name not in {c.name for c in listing.collections}:
                raise
        self._known[dimension] = name
        return name

    async def _check(self, name: str, dimension: int) -> qm.CollectionInfo:
        info = await self._conn.call(
            "read collection", lambda c: c.get_collection(collection_name=name)
        )
        params = _vector_params(info, name)
        if params.distance != qm.Distance.COSINE:
            raise ConfigError(
                "collection",
                f"collection {name!r} uses {params.distance} distance; this adapter needs Cosine",
                fix="choose another collection name, or drop the collection",
            )
        if params.size != dimension:
            key = "dimensions" if self._strict is not None else "collection"
            raise ConfigError(
                key,
                f"collection {name!r} holds vectors of size {params.size}, not {dimension}",
                fix="set dimensions to the embedder's size or use another collection",
            )
        for field, (wanted, _params) in INDEXES.items():
            have = info.payload_schema.get(field)
            if have is not None and have.data_type != wanted:
                raise ConfigError(
                    "collection",
                    f"payload field {field!r} of collection {name!r} is indexed as "
                    f"{have.data_type}, this adapter needs {wanted}",
                    fix="use another collection name",
                )
        return info

    async def _ensure_indexes(self, name: str, info: qm.CollectionInfo) -> None:
        for field, (_wanted, params) in INDEXES.items():
            if field in info.payload_schema:
                continue

            async def create(
                client: AsyncQdrantClient,
                field: str = field,
                params: qm.PayloadSchemaParams = params,
            ) -> qm.UpdateResult:
                with warnings.catch_warnings():
                    # Local mode warns that indexes do nothing there; it still records them.
                    warnings.simplefilter("ignore", UserWarning)
                    return await client.create_payload_index(
                        collection_name=name, field_name=field, field_schema=params, wait=True
                    )

            await self._conn.call("create payload index", create)


def _vector_params(info: qm.CollectionInfo, name: str) -> qm.VectorParams:
    vectors = info.config.params.vectors
    if not isinstance(vectors, qm.VectorParams):
        raise ConfigError(
            "collection",
            f"collection {name!r} uses named vectors; this adapter needs one unnamed vector",
            fix="choose another collection name",
        )
    return vectors
