"""Conformance suite for :class:`astrocyte.spi.VectorStore` implementations."""

from __future__ import annotations

import itertools

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from astrocyte.errors import StoreError, ValidationError
from astrocyte.spi import RecordFilter, ScoredId, VectorItem, VectorStore
from astrocyte.testing._support import (
    SUITE_SETTINGS,
    TIMES,
    Payload,
    filters,
    new_bank,
    payloads,
    reference_matches,
)

#: Scores are float32 dot products; allow for rounding.
ATOL = 1e-4

DimensionError = (ValidationError, StoreError)
"""What a store may raise for a vector of the wrong dimension or with NaN/inf."""


def _unit(v: npt.ArrayLike) -> npt.NDArray[np.float64]:
    a = np.asarray(v, dtype=np.float64)
    out: npt.NDArray[np.float64] = a / np.linalg.norm(a)
    return out


def _item(bank: str, memory_id: str, vector: npt.ArrayLike, **payload: object) -> VectorItem:
    return VectorItem(
        id=memory_id,
        bank_id=bank,
        vector=np.asarray(vector, dtype=np.float32),
        **payload,  # type: ignore[arg-type]
    )


def _random_vectors(rng: np.random.Generator, n: int, dim: int) -> npt.NDArray[np.float32]:
    # Deliberately not normalised, with varied norms: the store must rank by cosine.
    vectors = rng.normal(size=(n, dim)) * rng.uniform(0.1, 10.0, size=(n, 1))
    return vectors.astype(np.float32)


def assert_exact_top(
    hits: list[ScoredId],
    expected: dict[str, float],
    limit: int,
) -> None:
    """``hits`` are the top ``limit`` of ``expected`` (id -> true cosine), ties allowed."""
    best = sorted(expected.values(), reverse=True)[:limit]
    assert len(hits) == len(best)
    ids = [h.id for h in hits]
    assert len(set(ids)) == len(ids), "duplicate ids in hits"
    for h in hits:
        assert h.id in expected, f"{h.id} should not be returned"
        assert h.score == pytest.approx(expected[h.id], abs=ATOL)
    scores = [h.score for h in hits]
    assert all(a >= b - 1e-6 for a, b in itertools.pairwise(scores))
    np.testing.assert_allclose(scores, best, atol=ATOL)


class VectorStoreConformance:
    """Behaviour every :class:`~astrocyte.spi.VectorStore` must show.

    Subclass it and override the ``vector_store`` fixture (see
    :class:`~astrocyte.testing.DocumentStoreConformance` for the pattern). Vectors are
    given unnormalised on purpose: search is by cosine similarity.
    """

    @pytest.fixture
    def vector_store(self) -> VectorStore:
        """Override in the subclass: yield the store under test."""
        pytest.fail(f"{type(self).__name__} must override the `vector_store` fixture")

    @SUITE_SETTINGS
    @given(
        seed=st.integers(min_value=0, max_value=2**32 - 1),
        n=st.integers(min_value=1, max_value=60),
        dim=st.sampled_from([2, 3, 8, 32]),
        limit=st.integers(min_value=1, max_value=70),
    )
    async def test_search_is_exact_cosine_nearest(
        self, vector_store: VectorStore, seed: int, n: int, dim: int, limit: int
    ) -> None:
        """search returns exactly the top-k by cosine similarity (numpy brute force)."""
        rng = np.random.default_rng(seed)
        bank = new_bank()
        vectors = _random_vectors(rng, n, dim)
        await vector_store.upsert([_item(bank, f"v{i}", vectors[i]) for i in range(n)])
        query = rng.normal(size=dim).astype(np.float32)
        cosines = np.array([_unit(v) @ _unit(query) for v in vectors])
        hits = await vector_store.search(bank, query, limit=limit)
        assert_exact_top(hits, {f"v{i}": float(cosines[i]) for i in range(n)}, limit)

    @SUITE_SETTINGS
    @given(
        data=st.data(),
        seed=st.integers(min_value=0, max_value=2**32 - 1),
        specs=st.lists(payloads, min_size=1, max_size=25),
        limit=st.integers(min_value=1, max_value=30),
    )
    async def test_filtered_search_matches_brute_force(
        self,
        vector_store: VectorStore,
        data: st.DataObject,
        seed: int,
        specs: list[Payload],
        limit: int,
    ) -> None:
        """Filtered search is the exact top-k among vectors passing the filter."""
        rng = np.random.default_rng(seed)
        bank = new_bank()
        vectors = _random_vectors(rng, len(specs), 8)
        items = [
            _item(
                bank,
                f"v{i}",
                vectors[i],
                tags=p.tags,
                occurred_at=p.occurred_at,
                metadata=p.metadata,
            )
            for i, p in enumerate(specs)
        ]
        await vector_store.upsert(items)
        where = data.draw(filters([it.id for it in items]), label="where")
        query = rng.normal(size=8).astype(np.float32)
        expected = {
            it.id: float(_unit(it.vector) @ _unit(query))
            for it in items
            if reference_matches(where, it)
        }
        hits = await vector_store.search(bank, query, limit=limit, where=where)
        assert_exact_top(hits, expected, limit)

    @SUITE_SETTINGS
    @given(
        data=st.data(),
        seed=st.integers(min_value=0, max_value=2**32 - 1),
        specs=st.lists(payloads, min_size=2, max_size=25),
    )
    async def test_filtered_search_after_replacements_and_deletes(
        self,
        vector_store: VectorStore,
        data: st.DataObject,
        seed: int,
        specs: list[Payload],
    ) -> None:
        """Exact filtered search still holds after deletes and replacements."""
        rng = np.random.default_rng(seed)
        bank = new_bank()
        vectors = _random_vectors(rng, len(specs), 6)
        live = {
            f"v{i}": _item(
                bank,
                f"v{i}",
                vectors[i],
                tags=p.tags,
                occurred_at=p.occurred_at,
                metadata=p.metadata,
            )
            for i, p in enumerate(specs)
        }
        await vector_store.upsert(list(live.values()))
        # Search first, so stores that cache or index lazily must maintain what they built.
        warm = await vector_store.search(bank, vectors[0], limit=len(specs))
        assert len(warm) == len(specs)
        ids = sorted(live)
        doomed = data.draw(st.lists(st.sampled_from(ids), unique=True), label="deleted")
        assert await vector_store.delete(bank, doomed) == len(doomed)
        for memory_id in doomed:
            del live[memory_id]
        replaced = data.draw(st.lists(st.sampled_from(ids), unique=True), label="replaced")
        fresh = []
        for memory_id in replaced:
            p = data.draw(payloads, label=f"payload {memory_id}")
            item = _item(
                bank,
                memory_id,
                rng.normal(size=6),
                tags=p.tags,
                occurred_at=p.occurred_at,
                metadata=p.metadata,
            )
            live[memory_id] = item
            fresh.append(item)
        if fresh:
            await vector_store.upsert(fresh)
        where = data.draw(filters(ids), label="where")
        query = rng.normal(size=6).astype(np.float32)
        expected = {
            it.id: float(_unit(it.vector) @ _unit(query))
            for it in live.values()
            if reference_matches(where, it)
        }
        hits = await vector_store.search(bank, query, limit=len(specs), where=where)
        assert_exact_top(hits, expected, len(specs))

    async def test_filters_stay_correct_after_deletes_and_replacements(
        self, vector_store: VectorStore
    ) -> None:
        """Every kind of filter stays exact after a search, deletes and payload changes."""
        bank = new_bank()
        rng = np.random.default_rng(7)
        vectors = _random_vectors(rng, 12, 5)
        items = {
            f"v{i}": _item(
                bank,
                f"v{i}",
                vectors[i],
                tags=("even",) if i % 2 == 0 else ("odd",),
                occurred_at=TIMES[i % 3],
                metadata={"i": i, "third": i % 3 == 0},
            )
            for i in range(12)
        }
        await vector_store.upsert(list(items.values()))
        query = rng.normal(size=5).astype(np.float32)
        assert len(await vector_store.search(bank, query, limit=12)) == 12
        # Delete from the front and the middle, then move two items to the other tag.
        assert await vector_store.delete(bank, ["v0", "v5", "v6"]) == 3
        for memory_id in ("v0", "v5", "v6"):
            del items[memory_id]
        for memory_id in ("v2", "v11"):
            old = items[memory_id]
            items[memory_id] = _item(
                bank,
                memory_id,
                old.vector,
                tags=("odd",) if "even" in old.tags else ("even",),
                occurred_at=TIMES[5],
                metadata={"i": -1, "third": False},
            )
            await vector_store.upsert([items[memory_id]])
        for where in (
            RecordFilter(tags=("even",)),
            RecordFilter(tags=("odd",)),
            RecordFilter(time_from=TIMES[1], time_to=TIMES[3]),
            RecordFilter(time_from=TIMES[5]),
            RecordFilter(metadata={"third": True}),
            RecordFilter(metadata={"i": 9}),
            RecordFilter(ids=frozenset({"v1", "v5", "v11"})),
            RecordFilter(tags=("odd",), time_to=TIMES[2]),
        ):
            expected = {
                it.id: float(_unit(it.vector) @ _unit(query))
                for it in items.values()
                if reference_matches(where, it)
            }
            hits = await vector_store.search(bank, query, limit=12, where=where)
            assert_exact_top(hits, expected, 12)

    async def test_identical_and_opposite_vectors_score_one_and_minus_one(
        self, vector_store: VectorStore
    ) -> None:
        """Scores are cosines: 1 for the same direction, 0 orthogonal, -1 opposite."""
        bank = new_bank()
        await vector_store.upsert(
            [
                _item(bank, "same", [3.0, 4.0, 0.0]),
                _item(bank, "opposite", [-0.3, -0.4, 0.0]),
                _item(bank, "orthogonal", [0.0, 0.0, 2.0]),
            ]
        )
        hits = await vector_store.search(bank, np.array([0.6, 0.8, 0.0], np.float32), limit=10)
        assert [h.id for h in hits] == ["same", "orthogonal", "opposite"]
        assert hits[0].score == pytest.approx(1.0, abs=ATOL)
        assert hits[1].score == pytest.approx(0.0, abs=ATOL)
        assert hits[2].score == pytest.approx(-1.0, abs=ATOL)

    async def test_upsert_replaces_vector_and_payload(self, vector_store: VectorStore) -> None:
        """Upserting an id again replaces its vector and its filter payload."""
        bank = new_bank()
        await vector_store.upsert(
            [
                _item(
                    bank, "x", [1, 0, 0, 0], tags=("a",), occurred_at=TIMES[0], metadata={"v": 1}
                ),
                _item(bank, "y", [0, 1, 0, 0]),
            ]
        )
        await vector_store.upsert(
            [_item(bank, "x", [0, 0, 1, 0], tags=("b",), occurred_at=TIMES[3], metadata={"v": 2})]
        )
        hits = await vector_store.search(bank, np.array([0, 0, 1, 0], np.float32), limit=5)
        assert hits[0].id == "x"
        assert hits[0].score == pytest.approx(1.0, abs=ATOL)
        assert len(hits) == 2
        probe = np.array([1, 0, 0, 0], np.float32)
        assert (
            await vector_store.search(bank, probe, limit=5, where=RecordFilter(tags=("a",))) == []
        )
        assert [
            h.id
            for h in await vector_store.search(
                bank, probe, limit=5, where=RecordFilter(tags=("b",))
            )
        ] == ["x"]
        assert (
            await vector_store.search(bank, probe, limit=5, where=RecordFilter(metadata={"v": 1}))
            == []
        )
        assert (
            await vector_store.search(bank, probe, limit=5, where=RecordFilter(time_to=TIMES[1]))
            == []
        )

    async def test_banks_are_isolated(self, vector_store: VectorStore) -> None:
        """Search and delete never see another bank's vectors."""
        a, b = new_bank("a"), new_bank("b")
        await vector_store.upsert([_item(a, "shared", [1, 0, 0]), _item(a, "only-a", [0, 1, 0])])
        await vector_store.upsert([_item(b, "shared", [0, 0, 1]), _item(b, "only-b", [1, 0.1, 0])])
        hits = await vector_store.search(a, np.array([1, 0, 0], np.float32), limit=10)
        assert {h.id for h in hits} == {"shared", "only-a"}
        assert hits[0].id == "shared"
        assert hits[0].score == pytest.approx(1.0, abs=ATOL)
        assert (
            await vector_store.search(
                a,
                np.array([1, 0, 0], np.float32),
                limit=10,
                where=RecordFilter(ids=frozenset({"only-b"})),
            )
            == []
        )
        assert await vector_store.delete(a, ["shared", "only-b"]) == 1
        hits_b = await vector_store.search(b, np.array([0, 0, 1], np.float32), limit=10)
        assert {h.id for h in hits_b} == {"shared", "only-b"}
        assert hits_b[0].id == "shared"
        assert hits_b[0].score == pytest.approx(1.0, abs=ATOL)

    async def test_dimension_mismatch_in_upsert_raises_and_writes_nothing(
        self, vector_store: VectorStore
    ) -> None:
        """A vector of another dimension raises and nothing of the batch is stored."""
        bank = new_bank()
        await vector_store.upsert([_item(bank, "first", [1, 0, 0, 0])])
        with pytest.raises(DimensionError):
            await vector_store.upsert(
                [_item(bank, "fits", [0, 1, 0, 0]), _item(bank, "too-long", [0, 0, 1, 0, 0])]
            )
        hits = await vector_store.search(bank, np.array([0, 1, 0, 0], np.float32), limit=10)
        assert [h.id for h in hits] == ["first"]

    async def test_mixed_dimensions_in_new_bank_raise(self, vector_store: VectorStore) -> None:
        """A batch mixing dimensions in a new bank raises and stores nothing."""
        bank = new_bank()
        with pytest.raises(DimensionError):
            await vector_store.upsert(
                [_item(bank, "four", [1, 0, 0, 0]), _item(bank, "three", [1, 0, 0])]
            )
        assert await vector_store.search(bank, np.array([1, 0, 0, 0], np.float32), limit=5) == []

    async def test_query_of_wrong_dimension_raises(self, vector_store: VectorStore) -> None:
        """A query of the wrong dimension raises a typed error."""
        bank = new_bank()
        await vector_store.upsert([_item(bank, "v", [1, 0, 0, 0])])
        with pytest.raises(DimensionError):
            await vector_store.search(bank, np.array([1, 0, 0], np.float32), limit=5)

    @pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
    async def test_non_finite_vectors_are_rejected(
        self, vector_store: VectorStore, bad: float
    ) -> None:
        """NaN or infinite components raise and nothing of the batch is stored."""
        bank = new_bank()
        with pytest.raises(DimensionError):
            await vector_store.upsert(
                [_item(bank, "ok", [1, 0, 0]), _item(bank, "bad", [1, bad, 0])]
            )
        assert await vector_store.search(bank, np.array([1, 0, 0], np.float32), limit=5) == []

    async def test_delete_counts_and_is_idempotent(self, vector_store: VectorStore) -> None:
        """delete counts the ids that existed, is idempotent, and ids can be reused."""
        bank = new_bank()
        await vector_store.upsert([_item(bank, f"v{i}", [1, i, 0]) for i in range(4)])
        assert await vector_store.delete(bank, ["v0", "v1", "nope", "v0"]) == 2
        assert await vector_store.delete(bank, ["v0", "v1"]) == 0
        assert await vector_store.delete(bank, []) == 0
        assert await vector_store.delete(new_bank("unknown"), ["v2"]) == 0
        hits = await vector_store.search(bank, np.array([1, 0, 0], np.float32), limit=10)
        assert {h.id for h in hits} == {"v2", "v3"}
        await vector_store.upsert([_item(bank, "v0", [1, 0, 0])])
        hits = await vector_store.search(bank, np.array([1, 0, 0], np.float32), limit=10)
        assert hits[0].id == "v0"
        assert len(hits) == 3

    async def test_unknown_or_empty_bank_returns_nothing(self, vector_store: VectorStore) -> None:
        """Searching an unknown or emptied bank returns no hits."""
        assert (
            await vector_store.search(new_bank("unknown"), np.array([1, 0], np.float32), limit=5)
            == []
        )
        bank = new_bank()
        await vector_store.upsert([_item(bank, "v", [1, 0])])
        await vector_store.delete(bank, ["v"])
        assert await vector_store.search(bank, np.array([1, 0], np.float32), limit=5) == []

    async def test_limit(self, vector_store: VectorStore) -> None:
        """search returns at most limit hits, best first."""
        bank = new_bank()
        await vector_store.upsert([_item(bank, f"v{i}", [1, i / 10, 0]) for i in range(6)])
        probe = np.array([1, 0, 0], np.float32)
        assert [h.id for h in await vector_store.search(bank, probe, limit=2)] == ["v0", "v1"]
        assert len(await vector_store.search(bank, probe, limit=100)) == 6

    async def test_health_is_ok(self, vector_store: VectorStore) -> None:
        """A working store reports healthy."""
        status = await vector_store.health()
        assert status.ok, status.detail
