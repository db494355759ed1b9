"""Conformance suite for stores implementing :class:`astrocyte.spi.AtomicMemoryWriter`.

Such a store is also the document, vector and graph store, so the suite checks that one
``write_memories`` call is visible through all three, or not at all.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from astrocyte.errors import AstrocyteError, BankNotFound
from astrocyte.spi import (
    AtomicMemoryWriter,
    DocumentStore,
    Entity,
    EntityLink,
    GraphStore,
    MemoryRecord,
    RecordFilter,
    VectorItem,
    VectorStore,
)
from astrocyte.testing._support import TIMES, new_bank, record


def _vector(
    bank: str, memory_id: str, values: list[float], tags: tuple[str, ...] = ()
) -> VectorItem:
    return VectorItem(memory_id, bank, np.asarray(values, dtype=np.float32), tags=tags)


def _batch(
    bank: str, prefix: str, n: int
) -> tuple[list[MemoryRecord], list[VectorItem], list[Entity], list[EntityLink]]:
    records = [
        record(
            bank,
            f"{prefix}{i}",
            f"pelican {prefix} number {i}",
            tags=("batch",),
            occurred_at=TIMES[i % len(TIMES)],
        )
        for i in range(n)
    ]
    vectors = [
        _vector(bank, r.id, [1.0, float(i + 1), 0.0, 0.0], ("batch",))
        for i, r in enumerate(records)
    ]
    entities = [Entity(f"{prefix}-ent", bank, f"{prefix} Entity", f"{prefix} entity", "thing")]
    links = [EntityLink(bank, r.id, f"{prefix}-ent") for r in records]
    return records, vectors, entities, links


class AtomicWriterConformance:
    """Behaviour of a store that is DocumentStore, VectorStore, GraphStore *and*
    AtomicMemoryWriter in one object.

    Subclass it and override the ``atomic_store`` fixture (see
    :class:`~astrocyte.testing.DocumentStoreConformance` for the pattern).
    """

    @pytest.fixture
    def atomic_store(self) -> Any:
        """Override in the subclass: yield the store under test."""
        pytest.fail(f"{type(self).__name__} must override the `atomic_store` fixture")

    async def test_implements_every_protocol(self, atomic_store: Any) -> None:
        """The object is a DocumentStore, VectorStore, GraphStore and AtomicMemoryWriter."""
        for protocol in (AtomicMemoryWriter, DocumentStore, VectorStore, GraphStore):
            assert isinstance(atomic_store, protocol), protocol.__name__

    async def test_write_is_visible_everywhere(self, atomic_store: Any) -> None:
        """One write_memories call shows up in get, count, keyword, vector and graph reads."""
        bank = new_bank()
        await atomic_store.create_bank(bank)
        records, vectors, entities, links = _batch(bank, "a", 5)
        await atomic_store.write_memories(records, vectors, entities, links)
        assert await atomic_store.count(bank) == 5
        assert await atomic_store.get(bank, [r.id for r in records]) == records
        keyword = await atomic_store.keyword_search(bank, "pelican", limit=10)
        assert {h.id for h in keyword} == {r.id for r in records}
        near = await atomic_store.search(bank, np.array([1, 5, 0, 0], np.float32), limit=2)
        assert near[0].id == "a4"
        filtered = await atomic_store.search(
            bank,
            np.array([1, 0, 0, 0], np.float32),
            limit=10,
            where=RecordFilter(tags=("batch",)),
        )
        assert len(filtered) == 5
        found = await atomic_store.find_entities(bank, ["a entity"])
        assert [replace(e, mentions=0) for e in found] == entities
        assert [e.mentions for e in found] == [len(links)]
        hits = await atomic_store.neighbourhood(bank, ["a-ent"], depth=0)
        assert {h.memory_id for h in hits} == {r.id for r in records}

    async def test_bad_vector_at_end_of_batch_leaves_nothing(self, atomic_store: Any) -> None:
        """A wrong-dimension vector last in the batch rolls back records, graph and all."""
        bank = new_bank()
        await atomic_store.create_bank(bank)
        await atomic_store.write_memories(*_batch(bank, "old", 2))
        records, vectors, entities, links = _batch(bank, "new", 6)
        vectors[-1] = _vector(bank, vectors[-1].id, [1.0, 2.0, 3.0, 4.0, 5.0])
        with pytest.raises(AstrocyteError):
            await atomic_store.write_memories(records, vectors, entities, links)
        await self._assert_only_old(atomic_store, bank)

    async def test_unknown_bank_in_batch_leaves_nothing(self, atomic_store: Any) -> None:
        """A record for a missing bank raises BankNotFound and nothing is written."""
        bank = new_bank()
        await atomic_store.create_bank(bank)
        await atomic_store.write_memories(*_batch(bank, "old", 2))
        records, vectors, entities, links = _batch(bank, "new", 6)
        records[-1] = record(new_bank("missing"), "stray")
        with pytest.raises(BankNotFound):
            await atomic_store.write_memories(records, vectors, entities, links)
        await self._assert_only_old(atomic_store, bank)

    async def test_rewrite_replaces_records_and_vectors(self, atomic_store: Any) -> None:
        """Writing an existing id again replaces its record and its vector."""
        bank = new_bank()
        await atomic_store.create_bank(bank)
        records, vectors, entities, links = _batch(bank, "a", 3)
        await atomic_store.write_memories(records, vectors, entities, links)
        changed = [record(bank, "a0", "flamingo instead")]
        moved = [_vector(bank, "a0", [0.0, 0.0, 0.0, 1.0])]
        await atomic_store.write_memories(changed, moved, [], [])
        assert await atomic_store.count(bank) == 3
        [got] = await atomic_store.get(bank, ["a0"])
        assert got.text == "flamingo instead"
        near = await atomic_store.search(bank, np.array([0, 0, 0, 1], np.float32), limit=1)
        assert near[0].id == "a0"
        assert near[0].score == pytest.approx(1.0, abs=1e-4)

    async def test_empty_write_is_a_no_op(self, atomic_store: Any) -> None:
        """An empty batch neither raises nor writes."""
        await atomic_store.write_memories([], [], [], [])

    @staticmethod
    async def _assert_only_old(store: Any, bank: str) -> None:
        new_ids = [f"new{i}" for i in range(6)]
        assert await store.count(bank) == 2
        assert await store.get(bank, new_ids) == []
        assert set(await store.find(bank, RecordFilter())) == {"old0", "old1"}
        keyword = await store.keyword_search(bank, "pelican", limit=20)
        assert {h.id for h in keyword} == {"old0", "old1"}
        near = await store.search(bank, np.array([1, 3, 0, 0], np.float32), limit=20)
        assert {h.id for h in near} == {"old0", "old1"}
        assert await store.find_entities(bank, ["new entity"]) == []
        assert await store.neighbourhood(bank, ["new-ent"], depth=1) == []
        assert {h.memory_id for h in await store.neighbourhood(bank, ["old-ent"], depth=0)} == {
            "old0",
            "old1",
        }
