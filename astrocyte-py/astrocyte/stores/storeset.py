"""The document, vector and graph stores of one Astrocyte, written and deleted together.

This is the only place that knows how a memory is spread over stores:

* **write**: one call when a single object implements all three and
  :class:`~astrocyte.spi.AtomicMemoryWriter` (the embedded store — one transaction);
  otherwise vectors and graph first and the document store (the system of record)
  last, removing what was written if a later step fails. Recall hydrates hits from the
  document store, so a crash between steps leaves nothing visible.
* **delete**: graph and vectors first, documents last, so a retried forget still finds
  (through the document store) whatever a crash left behind.

With ``storage.routes`` the set the core sees is a
:class:`~astrocyte.stores.routing.RoutedStoreSet`: it hands each bank's writes and
deletes to that route's own plain ``StoreSet``, so the rules above hold per route.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

from astrocyte.spi import (
    AtomicMemoryWriter,
    DocumentStore,
    Entity,
    EntityLink,
    GraphStore,
    HealthStatus,
    MemoryRecord,
    VectorItem,
    VectorStore,
)


@dataclass(frozen=True)
class StoreSet:
    """The three stores behind the facade."""

    documents: DocumentStore
    vectors: VectorStore
    graph: GraphStore

    def _single_atomic(self) -> AtomicMemoryWriter | None:
        docs: object = self.documents
        if _same(docs, self.vectors) and _same(docs, self.graph):
            return docs if isinstance(docs, AtomicMemoryWriter) else None
        return None

    async def write(
        self,
        records: Sequence[MemoryRecord],
        vectors: Sequence[VectorItem],
        entities: Sequence[Entity],
        links: Sequence[EntityLink],
    ) -> None:
        """Write a retain batch all-or-nothing (see module docstring)."""
        atomic = self._single_atomic()
        if atomic is not None:
            await atomic.write_memories(records, vectors, entities, links)
            return
        by_bank: dict[str, list[str]] = {}
        for record in records:
            by_bank.setdefault(record.bank_id, []).append(record.id)
        done: list[str] = []
        try:
            await self.vectors.upsert(vectors)
            done.append("vectors")
            if entities or links:
                await self.graph.upsert_entities(entities)
                await self.graph.link(links)
                done.append("graph")
            await self.documents.put(records)
        except BaseException:
            # Best-effort compensation; the original error is what the caller sees.
            for bank_id, ids in by_bank.items():
                if "graph" in done:
                    with contextlib.suppress(Exception):
                        await self.graph.delete_memories(bank_id, ids)
                if "vectors" in done:
                    with contextlib.suppress(Exception):
                        await self.vectors.delete(bank_id, ids)
            raise

    async def delete(self, bank_id: str, ids: Sequence[str]) -> int:
        """Remove memories from every store; returns how many records existed."""
        if not ids:
            return 0
        await self.graph.delete_memories(bank_id, ids)
        if not _same(self.vectors, self.documents):
            await self.vectors.delete(bank_id, ids)
        return await self.documents.delete(bank_id, ids)

    async def health(self) -> dict[str, HealthStatus]:
        """Health of each distinct store."""
        out: dict[str, HealthStatus] = {"documents": await self.documents.health()}
        if not _same(self.vectors, self.documents):
            out["vectors"] = await self.vectors.health()
        if not _same(self.graph, self.documents) and not _same(self.graph, self.vectors):
            out["graph"] = await self.graph.health()
        return out

    async def close(self) -> None:
        """Close each distinct store once."""
        closed: list[object] = []
        for store in (self.graph, self.vectors, self.documents):
            if any(store is c for c in closed):
                continue
            closed.append(store)
            await store.close()


def _same(a: object, b: object) -> bool:
    """Whether two store slots hold one object (the embedded store fills all three)."""
    return a is b
