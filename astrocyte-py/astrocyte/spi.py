"""Service-provider interfaces: what a store, embedder or LLM must implement.

Adapters (in separate packages) implement these ``Protocol`` s and are found by entry
point or import path; the core never imports an adapter. Every implementation must
pass the matching suite in :mod:`astrocyte.testing`.

The records exchanged here are plain frozen dataclasses, not pydantic models: they
cross the store boundary thousands of times per recall and must be cheap.

Conventions every implementation follows:

* All datetimes are timezone-aware UTC.
* Vectors are ``float32`` and L2-normalised by the embedder, so cosine == dot product.
* ``bank_id`` scopes every read, write and delete: nothing ever crosses banks.
* A write call is all-or-nothing: if it raises, none of its items are visible.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

#: Bumped when a Protocol below changes incompatibly. Adapters declare the version
#: they implement as ``SPI_VERSION`` and the core refuses a mismatch at load time.
SPI_VERSION = 1

Vector = npt.NDArray[np.float32]
"""One embedding (1-D) or a batch of embeddings (2-D, one row per text)."""

MetadataValue = str | int | float | bool | None
"""Metadata values are JSON scalars so every store can filter on them."""


@dataclass(frozen=True, slots=True)
class MemoryRecord:
    """One stored memory: a chunk of retained content plus everything about it."""

    id: str
    bank_id: str
    text: str
    source_id: str
    chunk_index: int
    content_type: str
    created_at: datetime
    occurred_at: datetime | None = None
    tags: tuple[str, ...] = ()
    metadata: Mapping[str, MetadataValue] = field(default_factory=dict)
    content_hash: str = ""


@dataclass(frozen=True, slots=True)
class VectorItem:
    """A memory's embedding plus the payload a vector store needs to filter on."""

    id: str
    bank_id: str
    vector: Vector
    tags: tuple[str, ...] = ()
    occurred_at: datetime | None = None
    metadata: Mapping[str, MetadataValue] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RecordFilter:
    """Conditions a memory must meet; every set condition must hold (AND).

    ``tags``: the memory carries *all* of these tags.
    ``time_from`` / ``time_to``: ``occurred_at`` within ``[time_from, time_to)``;
    memories without ``occurred_at`` never match a time condition.
    ``metadata``: each key equals the given scalar (see :func:`metadata_equal`).
    ``ids``: the memory id is one of these.
    """

    tags: tuple[str, ...] = ()
    time_from: datetime | None = None
    time_to: datetime | None = None
    metadata: Mapping[str, MetadataValue] = field(default_factory=dict)
    ids: frozenset[str] | None = None

    def is_empty(self) -> bool:
        """True when the filter matches every memory."""
        return (
            not self.tags
            and self.time_from is None
            and self.time_to is None
            and not self.metadata
            and self.ids is None
        )

    def matches(self, record: MemoryRecord | VectorItem) -> bool:
        """Reference semantics of the filter, used by in-memory stores and tests."""
        if self.ids is not None and record.id not in self.ids:
            return False
        if self.tags and not set(self.tags).issubset(record.tags):
            return False
        if self.time_from is not None or self.time_to is not None:
            when = record.occurred_at
            if when is None:
                return False
            if self.time_from is not None and when < self.time_from:
                return False
            if self.time_to is not None and when >= self.time_to:
                return False
        for key, value in self.metadata.items():
            if key not in record.metadata or not metadata_equal(record.metadata[key], value):
                return False
        return True


def metadata_equal(a: MetadataValue, b: MetadataValue) -> bool:
    """JSON-typed equality: ``True`` equals only ``True`` (not ``1``), ``1`` equals
    ``1.0``, ``"1"`` equals only ``"1"``. Every store's metadata filter follows this."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b
    return a == b


@dataclass(frozen=True, slots=True)
class ScoredId:
    """A memory id with a strategy-specific score (higher is better)."""

    id: str
    score: float


@dataclass(frozen=True, slots=True)
class Entity:
    """A named thing mentioned by memories (person, place, handle, title...)."""

    id: str
    bank_id: str
    name: str
    normalized: str
    kind: str = "unknown"
    mentions: int = 0
    """How many memories link to the entity: filled in by ``find_entities``, ignored
    by ``upsert_entities``."""


@dataclass(frozen=True, slots=True)
class EntityLink:
    """Memory ``memory_id`` mentions entity ``entity_id``."""

    bank_id: str
    memory_id: str
    entity_id: str


@dataclass(frozen=True, slots=True)
class Relation:
    """A directed, typed edge between two entities of one bank."""

    bank_id: str
    source_entity_id: str
    target_entity_id: str
    kind: str = "related_to"


@dataclass(frozen=True, slots=True)
class GraphHit:
    """A memory reached from query entities; ``distance`` 0 means a direct mention."""

    memory_id: str
    entity_id: str
    distance: int
    score: float


@dataclass(frozen=True, slots=True)
class BankInfo:
    """A bank and how many memories it holds."""

    bank_id: str
    memory_count: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class HealthStatus:
    """Result of a store's or provider's health probe."""

    ok: bool
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One message of an OpenAI-style chat."""

    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True, slots=True)
class Completion:
    """A chat completion's text and the model that produced it."""

    text: str
    model: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


@runtime_checkable
class DocumentStore(Protocol):
    """System of record for memories, with keyword (BM25-style) search."""

    async def create_bank(self, bank_id: str) -> None:
        """Create the bank if it does not exist (idempotent)."""
        ...

    async def list_banks(self) -> list[BankInfo]:
        """Every bank with its memory count, ordered by bank id."""
        ...

    async def bank_exists(self, bank_id: str) -> bool:
        """Whether ``create_bank`` was called for this bank."""
        ...

    async def put(self, records: Sequence[MemoryRecord]) -> None:
        """Insert or replace records, all-or-nothing. Their banks must exist."""
        ...

    async def get(self, bank_id: str, ids: Sequence[str]) -> list[MemoryRecord]:
        """The records of ``ids`` that exist in the bank, in the order asked."""
        ...

    async def keyword_search(
        self, bank_id: str, query: str, *, limit: int, where: RecordFilter | None = None
    ) -> list[ScoredId]:
        """Best keyword matches for free text ``query`` (the store tokenises it;
        query syntax characters are never interpreted). Higher score is better.

        Query words found in more than 30% of the bank's memories are ignored while
        the query has a rarer word (see :func:`astrocyte.stores.text.informative`),
        so a memory matching only such a word is not returned."""
        ...

    async def find(
        self,
        bank_id: str,
        where: RecordFilter,
        *,
        limit: int | None = None,
        order: Literal["newest", "oldest"] | None = None,
    ) -> list[str]:
        """Ids matching ``where``; ``order`` sorts by ``occurred_at`` (memories
        without one last)."""
        ...

    async def delete(self, bank_id: str, ids: Sequence[str]) -> int:
        """Delete these ids from the bank; returns how many existed."""
        ...

    async def count(self, bank_id: str) -> int:
        """Number of memories in the bank."""
        ...

    async def find_by_content_hash(self, bank_id: str, hashes: Sequence[str]) -> dict[str, str]:
        """For each of ``hashes`` that a memory of the bank has as ``content_hash``, the
        id of one such memory (the earliest stored, where the store can tell). Hashes
        no memory has, and the empty hash, are left out of the result.

        Retain calls this on every write when duplicate detection is on, so it must be
        an indexed lookup (e.g. on ``(bank_id, content_hash)``), never a bank scan."""
        ...

    async def health(self) -> HealthStatus:
        """Cheap liveness probe."""
        ...

    async def close(self) -> None:
        """Release connections; the store is unusable afterwards."""
        ...


@runtime_checkable
class VectorStore(Protocol):
    """Nearest-neighbour search over memory embeddings."""

    async def upsert(self, items: Sequence[VectorItem]) -> None:
        """Insert or replace vectors, all-or-nothing."""
        ...

    async def search(
        self, bank_id: str, vector: Vector, *, limit: int, where: RecordFilter | None = None
    ) -> list[ScoredId]:
        """Most similar vectors by cosine similarity (score in [-1, 1])."""
        ...

    async def delete(self, bank_id: str, ids: Sequence[str]) -> int:
        """Delete these ids from the bank; returns how many existed."""
        ...

    async def health(self) -> HealthStatus:
        """Cheap liveness probe."""
        ...

    async def close(self) -> None:
        """Release resources."""
        ...


@runtime_checkable
class GraphStore(Protocol):
    """Entities, memory↔entity links and entity relations, per bank."""

    async def upsert_entities(self, entities: Sequence[Entity]) -> None:
        """Insert or replace entities (keyed by ``id``)."""
        ...

    async def link(self, links: Sequence[EntityLink]) -> None:
        """Record that memories mention entities (idempotent)."""
        ...

    async def relate(self, relations: Sequence[Relation]) -> None:
        """Add entity→entity edges (idempotent)."""
        ...

    async def find_entities(self, bank_id: str, normalized_names: Sequence[str]) -> list[Entity]:
        """Entities whose ``normalized`` name is one of the given names, each with its
        ``mentions`` count."""
        ...

    async def neighbourhood(
        self, bank_id: str, entity_ids: Sequence[str], *, depth: int = 1, limit: int = 100
    ) -> list[GraphHit]:
        """Memories linked to the entities, or to entities up to ``depth`` relation
        hops away; best (closest, most-connected) first, at most ``limit``."""
        ...

    async def delete_memories(self, bank_id: str, memory_ids: Sequence[str]) -> int:
        """Remove the memories' links; entities left with no link are removed too.
        Returns the number of links removed."""
        ...

    async def health(self) -> HealthStatus:
        """Cheap liveness probe."""
        ...

    async def close(self) -> None:
        """Release resources."""
        ...


@runtime_checkable
class AtomicMemoryWriter(Protocol):
    """Optional: a store that holds records, vectors and graph in one transaction.

    When the document, vector and graph stores are the same object implementing this,
    the core writes a retain batch with one call, so a crash can never leave a memory
    with a record but no vector. Otherwise the core writes store by store and removes
    what it wrote if a later store fails.
    """

    async def write_memories(
        self,
        records: Sequence[MemoryRecord],
        vectors: Sequence[VectorItem],
        entities: Sequence[Entity],
        links: Sequence[EntityLink],
    ) -> None:
        """Write everything or nothing."""
        ...


@runtime_checkable
class Embedder(Protocol):
    """Turns text into L2-normalised float32 vectors."""

    @property
    def model_id(self) -> str:
        """Stable id of the model; stored vectors are only comparable within one."""
        ...

    @property
    def dimensions(self) -> int:
        """Length of every vector this embedder returns."""
        ...

    async def embed(
        self, texts: Sequence[str], *, kind: Literal["document", "query"] = "document"
    ) -> Vector:
        """Embed a batch; returns shape ``(len(texts), dimensions)``. ``kind`` lets
        asymmetric models add their query/document prefixes."""
        ...

    async def close(self) -> None:
        """Release threads, sessions or HTTP clients."""
        ...


@runtime_checkable
class LLMProvider(Protocol):
    """Chat completion, used by reflect."""

    @property
    def model_id(self) -> str:
        """Model name sent to the provider."""
        ...

    async def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int | None = None,
        temperature: float = 0.0,
    ) -> Completion:
        """One non-streaming completion."""
        ...

    async def close(self) -> None:
        """Release the HTTP client."""
        ...
