"""Level-by-level neighbourhood expansion with the core's ranking contract.

Same semantics as :func:`astrocyte.stores.memory.expand_neighbourhood` (which takes
synchronous callbacks; here each level is a round trip to the server): a memory's
distance is the fewest relation hops from any query entity to an entity it is linked
to; hits are ordered by distance, then by how many query entities reach the memory at
that distance, then by memory id; scores come from the core's ``graph_score`` so every
store ranks identically.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field

from astrocyte.spi import GraphHit
from astrocyte.stores.memory import graph_score

__all__ = ["expand"]

Neighbours = Callable[[list[str]], Awaitable[Iterable[tuple[str, str]]]]
"""``(entity, other)`` pairs one relation away (either direction) from the entities."""

Links = Callable[[list[str]], Awaitable[Iterable[tuple[str, str]]]]
"""``(entity, memory)`` pairs: memories linked to the entities."""


@dataclass
class _Hit:
    distance: int
    entity_id: str
    origins: set[str] = field(default_factory=set)


async def expand(
    entity_ids: Sequence[str],
    *,
    depth: int,
    limit: int,
    neighbours: Neighbours,
    links: Links,
) -> list[GraphHit]:
    """Ranked hits up to ``depth`` hops from ``entity_ids``, at most ``limit``.

    Stops after the first level at which ``limit`` memories are known: anything found
    later is farther away and can never outrank them. ``depth`` and ``limit`` must
    already be validated.
    """
    origins = list(dict.fromkeys(entity_ids))
    if limit == 0 or not origins:
        return []
    # Each query entity keeps its own visited set, so a memory reached from two query
    # entities at the same distance counts both.
    reached: dict[str, set[str]] = {o: {o} for o in origins}
    frontier: dict[str, set[str]] = {o: {o} for o in origins}
    found: dict[str, _Hit] = {}
    for level in range(depth + 1):
        if level > 0:
            following: dict[str, set[str]] = {}
            for entity, other in await neighbours(sorted(frontier)):
                for origin in frontier.get(entity, ()):
                    if other not in reached[origin]:
                        reached[origin].add(other)
                        following.setdefault(other, set()).add(origin)
            frontier = following
            if not frontier:
                break
        for entity, memory in await links(sorted(frontier)):
            via = frontier.get(entity)
            if via is None:
                continue
            hit = found.get(memory)
            if hit is None:
                found[memory] = _Hit(level, entity, set(via))
            elif hit.distance == level:
                hit.entity_id = min(hit.entity_id, entity)
                hit.origins.update(via)
        if len(found) >= limit:
            break
    ranked = sorted(found.items(), key=lambda kv: (kv[1].distance, -len(kv[1].origins), kv[0]))
    return [
        GraphHit(memory, hit.entity_id, hit.distance, graph_score(hit.distance, len(hit.origins)))
        for memory, hit in ranked[:limit]
    ]
