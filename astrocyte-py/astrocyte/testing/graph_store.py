"""Conformance suite for :class:`astrocyte.spi.GraphStore` implementations."""

from __future__ import annotations

import itertools

import pytest

from astrocyte.spi import Entity, EntityLink, GraphHit, GraphStore, Relation
from astrocyte.testing._support import new_bank


def _entity(bank: str, entity_id: str, name: str | None = None, kind: str = "person") -> Entity:
    name = name or entity_id.upper()
    return Entity(id=entity_id, bank_id=bank, name=name, normalized=name.lower(), kind=kind)


def _triples(hits: list[GraphHit]) -> set[tuple[str, str, int]]:
    return {(h.memory_id, h.entity_id, h.distance) for h in hits}


def _assert_ranked(hits: list[GraphHit]) -> None:
    """Closer first, scores never increasing, strictly lower at a greater distance."""
    for a, b in itertools.pairwise(hits):
        assert a.distance <= b.distance
        assert a.score >= b.score
        if a.distance < b.distance:
            assert a.score > b.score


async def _chain(store: GraphStore, bank: str) -> None:
    """e1 -> e2 <- e3 -> e4 (mixed directions), memory mN linked to eN."""
    await store.upsert_entities([_entity(bank, f"e{i}") for i in range(1, 5)])
    await store.link([EntityLink(bank, f"m{i}", f"e{i}") for i in range(1, 5)])
    await store.relate(
        [
            Relation(bank, "e1", "e2", "knows"),
            Relation(bank, "e3", "e2", "knows"),
            Relation(bank, "e3", "e4", "works_with"),
        ]
    )


class GraphStoreConformance:
    """Behaviour every :class:`~astrocyte.spi.GraphStore` must show.

    Subclass it and override the ``graph_store`` fixture (see
    :class:`~astrocyte.testing.DocumentStoreConformance` for the pattern).

    Neighbourhood semantics: depth 0 returns memories linked to the query entities;
    depth ``n`` adds memories linked to entities up to ``n`` relation hops away,
    following relations in both directions. A hit's ``distance`` is the fewest hops,
    and its ``entity_id`` an entity at that distance the memory is linked to. Hits
    are ordered by distance, then by how many query entities reach the memory.
    """

    @pytest.fixture
    def graph_store(self) -> GraphStore:
        """Override in the subclass: yield the store under test."""
        pytest.fail(f"{type(self).__name__} must override the `graph_store` fixture")

    async def test_find_entities_by_normalized_name(self, graph_store: GraphStore) -> None:
        """find_entities matches the normalized name exactly, within the bank."""
        bank = new_bank()
        await graph_store.upsert_entities(
            [
                _entity(bank, "alice", "Alice"),
                _entity(bank, "bob", "Bob"),
                Entity("alice-2", bank, "ALICE", "alice", "handle"),
            ]
        )
        found = await graph_store.find_entities(bank, ["alice", "nobody"])
        assert sorted(found, key=lambda e: e.id) == [
            Entity("alice", bank, "Alice", "alice", "person"),
            Entity("alice-2", bank, "ALICE", "alice", "handle"),
        ]
        assert await graph_store.find_entities(bank, []) == []
        assert await graph_store.find_entities(bank, ["Alice"]) == []

    async def test_find_entities_counts_mentions(self, graph_store: GraphStore) -> None:
        """Each found entity carries how many memories link to it, in its own bank."""
        bank, other = new_bank(), new_bank()
        await graph_store.upsert_entities([_entity(bank, "a", "Ann"), _entity(bank, "b", "Ben")])
        await graph_store.upsert_entities([_entity(other, "a", "Ann")])
        await graph_store.link([EntityLink(bank, f"m{i}", "a") for i in range(3)])
        await graph_store.link([EntityLink(bank, "m0", "b"), EntityLink(bank, "m0", "a")])
        await graph_store.link([EntityLink(other, "x", "a")])
        found = {e.id: e.mentions for e in await graph_store.find_entities(bank, ["ann", "ben"])}
        assert found == {"a": 3, "b": 1}
        await graph_store.delete_memories(bank, ["m1"])
        found = {e.id: e.mentions for e in await graph_store.find_entities(bank, ["ann"])}
        assert found == {"a": 2}

    async def test_upsert_entities_replaces_by_id(self, graph_store: GraphStore) -> None:
        """Upserting an entity id replaces its names and kind and keeps its links."""
        bank = new_bank()
        await graph_store.upsert_entities([Entity("e", bank, "Bob", "bob", "person")])
        await graph_store.link([EntityLink(bank, "m", "e")])
        await graph_store.upsert_entities([Entity("e", bank, "Robert", "robert", "alias")])
        assert await graph_store.find_entities(bank, ["bob"]) == []
        assert await graph_store.find_entities(bank, ["robert"]) == [
            Entity("e", bank, "Robert", "robert", "alias", mentions=1)
        ]
        hits = await graph_store.neighbourhood(bank, ["e"], depth=0)
        assert _triples(hits) == {("m", "e", 0)}

    async def test_depth_zero_is_direct_mentions_only(self, graph_store: GraphStore) -> None:
        """depth=0 returns only memories linked to the query entities."""
        bank = new_bank()
        await _chain(graph_store, bank)
        hits = await graph_store.neighbourhood(bank, ["e1"], depth=0)
        assert _triples(hits) == {("m1", "e1", 0)}

    async def test_depth_follows_relations_both_ways(self, graph_store: GraphStore) -> None:
        """Each depth adds one relation hop, in either direction, with exact distances."""
        bank = new_bank()
        await _chain(graph_store, bank)
        one = await graph_store.neighbourhood(bank, ["e1"], depth=1)
        assert _triples(one) == {("m1", "e1", 0), ("m2", "e2", 1)}
        two = await graph_store.neighbourhood(bank, ["e1"], depth=2)
        assert _triples(two) == {("m1", "e1", 0), ("m2", "e2", 1), ("m3", "e3", 2)}
        three = await graph_store.neighbourhood(bank, ["e1"], depth=3)
        assert _triples(three) == {
            ("m1", "e1", 0),
            ("m2", "e2", 1),
            ("m3", "e3", 2),
            ("m4", "e4", 3),
        }
        for hits in (one, two, three):
            _assert_ranked(hits)
            assert hits[0].memory_id == "m1"
        middle = await graph_store.neighbourhood(bank, ["e3"], depth=1)
        assert _triples(middle) == {("m3", "e3", 0), ("m2", "e2", 1), ("m4", "e4", 1)}
        assert middle[0].memory_id == "m3"

    async def test_cycles_do_not_inflate_distance_or_duplicate(
        self, graph_store: GraphStore
    ) -> None:
        """Cycles and parallel relations give each memory once, at its shortest distance."""
        bank = new_bank()
        await graph_store.upsert_entities([_entity(bank, e) for e in ("a", "b", "c")])
        await graph_store.relate(
            [
                Relation(bank, "a", "b"),
                Relation(bank, "b", "c"),
                Relation(bank, "c", "a"),
                Relation(bank, "b", "a", "other_kind"),
            ]
        )
        await graph_store.link([EntityLink(bank, "mb", "b"), EntityLink(bank, "mc", "c")])
        hits = await graph_store.neighbourhood(bank, ["a"], depth=3)
        assert _triples(hits) == {("mb", "b", 1), ("mc", "c", 1)}

    async def test_memories_reached_by_more_query_entities_rank_higher(
        self, graph_store: GraphStore
    ) -> None:
        """Closer hits rank first; at equal distance, more query entities rank higher."""
        bank = new_bank()
        await graph_store.upsert_entities([_entity(bank, e) for e in ("a", "b", "x", "y")])
        await graph_store.relate([Relation(bank, "a", "x"), Relation(bank, "b", "y")])
        await graph_store.link(
            [
                EntityLink(bank, "m-a", "a"),
                EntityLink(bank, "m-ab", "a"),
                EntityLink(bank, "m-ab", "b"),
                EntityLink(bank, "m-b", "b"),
                # At distance 1 from both query entities: still below every direct hit.
                EntityLink(bank, "m-xy", "x"),
                EntityLink(bank, "m-xy", "y"),
                EntityLink(bank, "m-x", "x"),
            ]
        )
        hits = await graph_store.neighbourhood(bank, ["a", "b"], depth=1)
        _assert_ranked(hits)
        ids = [h.memory_id for h in hits]
        assert ids[0] == "m-ab"
        assert set(ids[1:3]) == {"m-a", "m-b"}
        assert ids[3] == "m-xy"
        assert ids[4] == "m-x"
        by_id = {h.memory_id: h for h in hits}
        assert by_id["m-ab"].score > by_id["m-a"].score
        assert by_id["m-xy"].score > by_id["m-x"].score
        assert by_id["m-ab"].entity_id in {"a", "b"}
        assert by_id["m-xy"].distance == 1

    async def test_limit(self, graph_store: GraphStore) -> None:
        """limit caps the hits and keeps the closest ones."""
        bank = new_bank()
        await graph_store.upsert_entities([_entity(bank, "hub"), _entity(bank, "far")])
        await graph_store.relate([Relation(bank, "hub", "far")])
        await graph_store.link([EntityLink(bank, f"m{i}", "hub") for i in range(10)])
        await graph_store.link([EntityLink(bank, f"f{i}", "far") for i in range(5)])
        assert len(await graph_store.neighbourhood(bank, ["hub"], depth=1, limit=3)) == 3
        hits = await graph_store.neighbourhood(bank, ["hub"], depth=1, limit=12)
        assert len(hits) == 12
        assert {h.memory_id for h in hits[:10]} == {f"m{i}" for i in range(10)}
        assert all(h.distance == 1 for h in hits[10:])
        assert len(await graph_store.neighbourhood(bank, ["hub"], depth=1, limit=100)) == 15

    async def test_duplicate_and_unknown_query_entities(self, graph_store: GraphStore) -> None:
        """Repeated query entities count once; unknown ones contribute nothing."""
        bank = new_bank()
        await _chain(graph_store, bank)
        once = await graph_store.neighbourhood(bank, ["e1"], depth=1)
        twice = await graph_store.neighbourhood(bank, ["e1", "e1", "nobody"], depth=1)
        assert [(h.memory_id, h.distance) for h in twice] == [
            (h.memory_id, h.distance) for h in once
        ]
        assert [h.score for h in twice] == pytest.approx([h.score for h in once])
        assert await graph_store.neighbourhood(bank, ["nobody"], depth=2) == []
        assert await graph_store.neighbourhood(bank, [], depth=2) == []

    async def test_link_and_relate_are_idempotent(self, graph_store: GraphStore) -> None:
        """Linking or relating twice stores one link or edge."""
        bank = new_bank()
        await graph_store.upsert_entities([_entity(bank, "a"), _entity(bank, "b")])
        for _ in range(2):
            await graph_store.link([EntityLink(bank, "m", "a"), EntityLink(bank, "m", "a")])
            await graph_store.relate([Relation(bank, "a", "b")])
        await graph_store.link([EntityLink(bank, "n", "b")])
        hits = await graph_store.neighbourhood(bank, ["a"], depth=1)
        assert [(h.memory_id, h.distance) for h in hits] == [("m", 0), ("n", 1)]
        assert await graph_store.delete_memories(bank, ["m"]) == 1

    async def test_delete_memories_removes_links_and_orphans(self, graph_store: GraphStore) -> None:
        """delete_memories removes links, then entities left unlinked and their relations."""
        bank = new_bank()
        await graph_store.upsert_entities(
            [_entity(bank, "only"), _entity(bank, "shared"), _entity(bank, "other")]
        )
        await graph_store.link(
            [
                EntityLink(bank, "m1", "only"),
                EntityLink(bank, "m1", "shared"),
                EntityLink(bank, "m2", "shared"),
                EntityLink(bank, "m3", "other"),
            ]
        )
        await graph_store.relate(
            [Relation(bank, "shared", "only"), Relation(bank, "other", "only")]
        )
        assert await graph_store.delete_memories(bank, ["m1", "never-linked"]) == 2
        assert await graph_store.delete_memories(bank, ["m1"]) == 0
        assert await graph_store.delete_memories(bank, []) == 0
        assert await graph_store.find_entities(bank, ["only"]) == []
        survivors = await graph_store.find_entities(bank, ["shared", "other"])
        assert sorted(e.id for e in survivors) == ["other", "shared"]
        assert _triples(await graph_store.neighbourhood(bank, ["shared"], depth=2)) == {
            ("m2", "shared", 0)
        }
        # The orphan's relations went with it: a new entity under the same id is not
        # connected to anything.
        await graph_store.upsert_entities([_entity(bank, "only")])
        await graph_store.link([EntityLink(bank, "m9", "only")])
        assert _triples(await graph_store.neighbourhood(bank, ["shared"], depth=2)) == {
            ("m2", "shared", 0)
        }
        assert _triples(await graph_store.neighbourhood(bank, ["other"], depth=1)) == {
            ("m3", "other", 0)
        }

    async def test_banks_are_isolated(self, graph_store: GraphStore) -> None:
        """Entities, links and relations never cross banks."""
        a, b = new_bank("a"), new_bank("b")
        for bank in (a, b):
            await graph_store.upsert_entities([_entity(bank, "e"), _entity(bank, "f")])
        await graph_store.link([EntityLink(a, "ma", "e")])
        await graph_store.link([EntityLink(b, "mb", "e"), EntityLink(b, "mf", "f")])
        await graph_store.relate([Relation(b, "e", "f")])
        assert _triples(await graph_store.neighbourhood(a, ["e"], depth=2)) == {("ma", "e", 0)}
        assert [e.bank_id for e in await graph_store.find_entities(a, ["e"])] == [a]
        assert await graph_store.delete_memories(a, ["mb", "mf"]) == 0
        assert await graph_store.delete_memories(a, ["ma"]) == 1
        assert await graph_store.find_entities(a, ["e"]) == []
        assert [e.bank_id for e in await graph_store.find_entities(b, ["e"])] == [b]
        assert _triples(await graph_store.neighbourhood(b, ["e"], depth=1)) == {
            ("mb", "e", 0),
            ("mf", "f", 1),
        }

    async def test_health_is_ok(self, graph_store: GraphStore) -> None:
        """A working store reports healthy."""
        status = await graph_store.health()
        assert status.ok, status.detail
