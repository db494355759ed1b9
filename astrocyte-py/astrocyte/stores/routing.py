"""Per-bank storage routes: some banks in one set of stores, others elsewhere.

``storage.routes`` sends the banks matching a route's patterns to that route's own
document, vector and graph stores (e.g. ``canonical-*`` in PostgreSQL while
conversational banks stay in the embedded file); banks matching no route use the
top-level stores. The rest of the core keeps seeing one :class:`StoreSet`:
:func:`routed_store_set` returns a :class:`RoutedStoreSet` whose ``documents`` /
``vectors`` / ``graph`` are routing proxies implementing the SPI protocols by
dispatching on ``bank_id``.

* **Matching.** Patterns (fnmatch) apply to the bank id as callers name it: the part of
  a storage id after the tenant separator (``"acme/notes"`` matches ``notes``). The
  first matching route wins. A bank's route is computed once and cached.
* **Writes.** :meth:`RoutedStoreSet.write` and :meth:`RoutedStoreSet.delete` hand the
  whole call to the route's own plain :class:`StoreSet`, so a retain batch stays
  all-or-nothing within its route (one SQLite transaction for an embedded route). A
  proxy call whose items span several stores (never issued by the core, whose writes
  are per bank) is validated as a whole first, then written store by store; if a later
  store fails, records written to earlier ones are restored to their previous state and
  vectors that did not exist before are removed (a replaced vector, entity or link of
  an earlier store cannot be restored through the SPI and stays replaced).
* **Listing.** :meth:`RoutingDocumentStore.list_banks` merges the banks of every
  distinct document store but reports a bank only from the store that serves it now:
  a bank written to the top-level file before a route for it was added stays in that
  file, unlisted and unread, until it is moved or the route is removed.
* **Health and close.** Each distinct store instance is probed and closed once, however
  many routes share it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Literal, TypeVar

from astrocyte.errors import BankNotFound
from astrocyte.identity.access import TENANT_SEPARATOR
from astrocyte.spi import (
    BankInfo,
    DocumentStore,
    Entity,
    EntityLink,
    GraphHit,
    GraphStore,
    HealthStatus,
    MemoryRecord,
    RecordFilter,
    Relation,
    ScoredId,
    Vector,
    VectorItem,
    VectorStore,
)
from astrocyte.stores.memory import (
    check_entities,
    check_links,
    check_records,
    check_relations,
    check_vector_items,
)
from astrocyte.stores.storeset import StoreSet

__all__ = [
    "Route",
    "RoutedStoreSet",
    "Router",
    "RoutingDocumentStore",
    "RoutingGraphStore",
    "RoutingVectorStore",
    "routed_store_set",
]

T = TypeVar("T")
S = TypeVar("S")

# Bank → store set lookups are cached; past this many distinct banks the cache starts
# over rather than growing without bound (a lookup is a few fnmatch calls).
_CACHE_LIMIT = 65536


@dataclass(frozen=True)
class Route:
    """The stores of the banks matching ``patterns`` (fnmatch, tenant prefix excluded)."""

    patterns: tuple[str, ...]
    stores: StoreSet


class Router:
    """Which :class:`StoreSet` serves a bank: the first route whose patterns match, or
    the default set."""

    def __init__(self, default: StoreSet, routes: Sequence[Route]) -> None:
        """Route banks over ``routes`` (first match wins), falling back to ``default``."""
        self.default = default
        self.routes = tuple(routes)
        self._cache: dict[str, StoreSet] = {}

    def stores_for(self, bank_id: str) -> StoreSet:
        """The store set serving ``bank_id`` (a storage id, tenant prefix included)."""
        if not isinstance(bank_id, str):
            # Not a bank id at all: the default store rejects it with its own error.
            return self.default
        found = self._cache.get(bank_id)
        if found is not None:
            return found
        found = self._match(bank_id.rpartition(TENANT_SEPARATOR)[2])
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[bank_id] = found
        return found

    def _match(self, bank: str) -> StoreSet:
        for route in self.routes:
            if any(fnmatchcase(bank, pattern) for pattern in route.patterns):
                return route.stores
        return self.default

    def named_sets(self) -> list[tuple[str, StoreSet]]:
        """Every store set with its health-key prefix: ``""`` for the default set,
        ``"routes[i]."`` for route ``i``."""
        return [("", self.default)] + [
            (f"routes[{i}].", route.stores) for i, route in enumerate(self.routes)
        ]

    def distinct(self, pick: Callable[[StoreSet], S]) -> list[S]:
        """The distinct store instances of one slot (``pick``) over all sets, in order."""
        out: list[S] = []
        for _, stores in self.named_sets():
            store = pick(stores)
            if not any(store is seen for seen in out):
                out.append(store)
        return out


def routed_store_set(default: StoreSet, routes: Sequence[Route]) -> StoreSet:
    """``default`` itself when there are no routes (no proxies, no overhead), else a
    :class:`RoutedStoreSet` dispatching banks over ``routes``."""
    if not routes:
        return default
    router = Router(default, routes)
    return RoutedStoreSet(
        documents=RoutingDocumentStore(router),
        vectors=RoutingVectorStore(router),
        graph=RoutingGraphStore(router),
        router=router,
    )


@dataclass(frozen=True)
class RoutedStoreSet(StoreSet):
    """A :class:`StoreSet` over several routes; each bank's writes and deletes go to its
    route's own store set, so they keep that set's all-or-nothing guarantee."""

    router: Router

    async def write(
        self,
        records: Sequence[MemoryRecord],
        vectors: Sequence[VectorItem],
        entities: Sequence[Entity],
        links: Sequence[EntityLink],
    ) -> None:
        """Write a retain batch all-or-nothing within each route it touches (a batch
        of one bank — every batch the core writes — touches one route)."""
        banks = [r.bank_id for r in records] + [v.bank_id for v in vectors]
        banks += [e.bank_id for e in entities] + [link.bank_id for link in links]
        groups = _group(banks, self.router.stores_for)
        if len(groups) <= 1:
            target = groups[0][0] if groups else self.router.default
            await target.write(records, vectors, entities, links)
            return
        written: list[tuple[StoreSet, list[MemoryRecord]]] = []
        try:
            for stores, _ in groups:

                def mine(bank_id: str, stores: StoreSet = stores) -> bool:
                    return self.router.stores_for(bank_id) is stores

                part = [r for r in records if mine(r.bank_id)]
                await stores.write(
                    part,
                    [v for v in vectors if mine(v.bank_id)],
                    [e for e in entities if mine(e.bank_id)],
                    [link for link in links if mine(link.bank_id)],
                )
                written.append((stores, part))
        except BaseException:
            # Best effort, like StoreSet.write's own compensation: the caller sees the
            # original error; the records of earlier routes are new ids, so deleting
            # them undoes those routes.
            for stores, part in written:
                for bank_id, ids in _ids_by_bank(part).items():
                    with contextlib.suppress(Exception):
                        await stores.delete(bank_id, ids)
            raise

    async def delete(self, bank_id: str, ids: Sequence[str]) -> int:
        """Remove memories from every store of the bank's route."""
        return await self.router.stores_for(bank_id).delete(bank_id, ids)

    async def health(self) -> dict[str, HealthStatus]:
        """Health of each distinct store: ``documents`` / ``vectors`` / ``graph`` for
        the top-level stores (as without routes), ``routes[i].documents`` and so on for
        route ``i``; a store shared with an earlier set is reported there only."""
        out: dict[str, HealthStatus] = {}
        probed: list[object] = []
        for prefix, stores in self.router.named_sets():
            for slot, store in _slots(stores):
                if any(store is seen for seen in probed):
                    continue
                probed.append(store)
                out[f"{prefix}{slot}"] = await store.health()
        return out

    async def close(self) -> None:
        """Close each distinct store of every route once."""
        closed: list[object] = []
        for _, stores in self.router.named_sets():
            for _, store in reversed(_slots(stores)):
                if any(store is seen for seen in closed):
                    continue
                closed.append(store)
                await store.close()


def _slots(
    stores: StoreSet,
) -> list[tuple[str, DocumentStore | VectorStore | GraphStore]]:
    return [("documents", stores.documents), ("vectors", stores.vectors), ("graph", stores.graph)]


def _group(banks: Iterable[str], route: Callable[[str], T]) -> list[tuple[T, list[str]]]:
    """The distinct targets of ``banks`` (by identity, first seen first), each with the
    banks it serves."""
    groups: list[tuple[T, list[str]]] = []
    for bank in dict.fromkeys(banks):
        target = route(bank)
        for seen, members in groups:
            if seen is target:
                members.append(bank)
                break
        else:
            groups.append((target, [bank]))
    return groups


def _ids_by_bank(items: Iterable[MemoryRecord | VectorItem]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for item in items:
        out.setdefault(item.bank_id, []).append(item.id)
    return out


class _Proxy:
    def __init__(self, router: Router) -> None:
        """A proxy dispatching on ``bank_id`` through ``router``."""
        self.router = router

    async def _health(
        self, stores: Sequence[DocumentStore | VectorStore | GraphStore]
    ) -> HealthStatus:
        failed = []
        for i, store in enumerate(stores):
            status = await store.health()
            if not status.ok:
                failed.append(f"store {i}: {status.detail}")
        return HealthStatus(ok=not failed, detail="; ".join(failed))


class RoutingDocumentStore(_Proxy):
    """A :class:`~astrocyte.spi.DocumentStore` sending each bank to its route's store."""

    def _for(self, bank_id: str) -> DocumentStore:
        return self.router.stores_for(bank_id).documents

    def _distinct(self) -> list[DocumentStore]:
        return self.router.distinct(lambda s: s.documents)

    async def create_bank(self, bank_id: str) -> None:
        """Create the bank in its route's document store."""
        await self._for(bank_id).create_bank(bank_id)

    async def list_banks(self) -> list[BankInfo]:
        """Every bank of every document store that serves it, ordered by bank id (see
        the module docstring for banks left behind by a new route)."""
        out: list[BankInfo] = []
        for store in self._distinct():
            out += [b for b in await store.list_banks() if self._for(b.bank_id) is store]
        return sorted(out, key=lambda b: b.bank_id)

    async def bank_exists(self, bank_id: str) -> bool:
        """Whether the bank exists in its route's document store."""
        return await self._for(bank_id).bank_exists(bank_id)

    async def put(self, records: Sequence[MemoryRecord]) -> None:
        """Insert or replace records in their routes' stores (see the module docstring
        for a batch spanning several stores)."""
        groups = _group((r.bank_id for r in records), self._for)
        if len(groups) <= 1:
            await (groups[0][0] if groups else self.router.default.documents).put(records)
            return
        check_records(records)
        for store, banks in groups:
            for bank in banks:
                if not await store.bank_exists(bank):
                    raise BankNotFound(bank)
        parts = [(store, [r for r in records if r.bank_id in banks]) for store, banks in groups]
        # What the batch replaces, so a failure can put the earlier stores back.
        previous: list[list[MemoryRecord]] = []
        for store, part in parts:
            old: list[MemoryRecord] = []
            for bank_id, ids in _ids_by_bank(part).items():
                old += await store.get(bank_id, ids)
            previous.append(old)
        done = 0
        try:
            for store, part in parts:
                await store.put(part)
                done += 1
        except BaseException:
            for (store, part), old in zip(parts[:done], previous, strict=False):
                # Replaced records are put back rather than deleted first: an embedded
                # store's delete would take their vectors with them.
                kept = {(r.bank_id, r.id) for r in old}
                with contextlib.suppress(Exception):
                    for bank_id, ids in _ids_by_bank(part).items():
                        await store.delete(bank_id, [i for i in ids if (bank_id, i) not in kept])
                    await store.put(old)
            raise

    async def get(self, bank_id: str, ids: Sequence[str]) -> list[MemoryRecord]:
        """The records of ``ids`` in the bank, from its route's store."""
        return await self._for(bank_id).get(bank_id, ids)

    async def keyword_search(
        self, bank_id: str, query: str, *, limit: int, where: RecordFilter | None = None
    ) -> list[ScoredId]:
        """Keyword search in the bank's route's store."""
        return await self._for(bank_id).keyword_search(bank_id, query, limit=limit, where=where)

    async def find(
        self,
        bank_id: str,
        where: RecordFilter,
        *,
        limit: int | None = None,
        order: Literal["newest", "oldest"] | None = None,
    ) -> list[str]:
        """Ids matching ``where`` in the bank's route's store."""
        return await self._for(bank_id).find(bank_id, where, limit=limit, order=order)

    async def delete(self, bank_id: str, ids: Sequence[str]) -> int:
        """Delete ids from the bank's route's store."""
        return await self._for(bank_id).delete(bank_id, ids)

    async def count(self, bank_id: str) -> int:
        """Number of memories of the bank in its route's store."""
        return await self._for(bank_id).count(bank_id)

    async def find_by_content_hash(self, bank_id: str, hashes: Sequence[str]) -> dict[str, str]:
        """Content-hash lookup in the bank's route's store."""
        return await self._for(bank_id).find_by_content_hash(bank_id, hashes)

    async def health(self) -> HealthStatus:
        """Healthy when every distinct document store is."""
        return await self._health(self._distinct())

    async def close(self) -> None:
        """Close every distinct document store."""
        for store in self._distinct():
            await store.close()


class RoutingVectorStore(_Proxy):
    """A :class:`~astrocyte.spi.VectorStore` sending each bank to its route's store."""

    def _for(self, bank_id: str) -> VectorStore:
        return self.router.stores_for(bank_id).vectors

    def _distinct(self) -> list[VectorStore]:
        return self.router.distinct(lambda s: s.vectors)

    async def upsert(self, items: Sequence[VectorItem]) -> None:
        """Insert or replace vectors in their routes' stores (see the module docstring
        for a batch spanning several stores)."""
        groups = _group((i.bank_id for i in items), self._for)
        if len(groups) <= 1:
            await (groups[0][0] if groups else self.router.default.vectors).upsert(items)
            return
        check_vector_items(items)
        parts = [(store, [i for i in items if i.bank_id in banks]) for store, banks in groups]
        # Which ids already exist, so a failure undoes only what this call created. The
        # probe also fails (before anything is written) on a vector whose dimension does
        # not fit its bank.
        existing = [await _existing_vectors(store, part) for store, part in parts]
        done = 0
        try:
            for store, part in parts:
                await store.upsert(part)
                done += 1
        except BaseException:
            for (store, part), old in zip(parts[:done], existing, strict=False):
                for bank_id, ids in _ids_by_bank(part).items():
                    new = [i for i in ids if i not in old]
                    with contextlib.suppress(Exception):
                        await store.delete(bank_id, new)
            raise

    async def search(
        self, bank_id: str, vector: Vector, *, limit: int, where: RecordFilter | None = None
    ) -> list[ScoredId]:
        """Nearest neighbours in the bank's route's store."""
        return await self._for(bank_id).search(bank_id, vector, limit=limit, where=where)

    async def delete(self, bank_id: str, ids: Sequence[str]) -> int:
        """Delete ids from the bank's route's store."""
        return await self._for(bank_id).delete(bank_id, ids)

    async def health(self) -> HealthStatus:
        """Healthy when every distinct vector store is."""
        return await self._health(self._distinct())

    async def close(self) -> None:
        """Close every distinct vector store."""
        for store in self._distinct():
            await store.close()


async def _existing_vectors(store: VectorStore, items: Sequence[VectorItem]) -> set[str]:
    found: set[str] = set()
    for bank_id, ids in _ids_by_bank(items).items():
        probe = next(i.vector for i in items if i.bank_id == bank_id)
        hits = await store.search(
            bank_id, probe, limit=len(ids), where=RecordFilter(ids=frozenset(ids))
        )
        found.update(h.id for h in hits)
    return found


class RoutingGraphStore(_Proxy):
    """A :class:`~astrocyte.spi.GraphStore` sending each bank to its route's store.

    A call spanning several stores is validated as a whole, then written store by
    store without compensation: entity ids are derived from their bank and name and
    links and relations are idempotent, so a retry converges.
    """

    def _for(self, bank_id: str) -> GraphStore:
        return self.router.stores_for(bank_id).graph

    def _distinct(self) -> list[GraphStore]:
        return self.router.distinct(lambda s: s.graph)

    async def _spread(
        self,
        items: Sequence[T],
        bank_of: Callable[[T], str],
        check: Callable[[Sequence[T]], None],
        write: Callable[[GraphStore, Sequence[T]], Awaitable[None]],
    ) -> None:
        groups = _group((bank_of(i) for i in items), self._for)
        if len(groups) <= 1:
            await write(groups[0][0] if groups else self.router.default.graph, items)
            return
        check(items)
        for store, banks in groups:
            await write(store, [i for i in items if bank_of(i) in banks])

    async def upsert_entities(self, entities: Sequence[Entity]) -> None:
        """Insert or replace entities in their routes' stores."""
        await self._spread(
            entities, lambda e: e.bank_id, check_entities, lambda s, p: s.upsert_entities(p)
        )

    async def link(self, links: Sequence[EntityLink]) -> None:
        """Record memory→entity links in their routes' stores."""
        await self._spread(links, lambda k: k.bank_id, check_links, lambda s, p: s.link(p))

    async def relate(self, relations: Sequence[Relation]) -> None:
        """Add entity→entity edges in their routes' stores."""
        await self._spread(
            relations, lambda r: r.bank_id, check_relations, lambda s, p: s.relate(p)
        )

    async def find_entities(self, bank_id: str, normalized_names: Sequence[str]) -> list[Entity]:
        """Entities by normalised name in the bank's route's store."""
        return await self._for(bank_id).find_entities(bank_id, normalized_names)

    async def neighbourhood(
        self, bank_id: str, entity_ids: Sequence[str], *, depth: int = 1, limit: int = 100
    ) -> list[GraphHit]:
        """Memories near the entities, from the bank's route's store."""
        return await self._for(bank_id).neighbourhood(bank_id, entity_ids, depth=depth, limit=limit)

    async def delete_memories(self, bank_id: str, memory_ids: Sequence[str]) -> int:
        """Remove the memories' links in the bank's route's store."""
        return await self._for(bank_id).delete_memories(bank_id, memory_ids)

    async def health(self) -> HealthStatus:
        """Healthy when every distinct graph store is."""
        return await self._health(self._distinct())

    async def close(self) -> None:
        """Close every distinct graph store."""
        for store in self._distinct():
            await store.close()
