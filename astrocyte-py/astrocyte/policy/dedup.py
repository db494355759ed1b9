"""Duplicate detection on retain: exact (content hash) and near (vector similarity).

Both work per *item* (one retained piece of content): an item is a duplicate when every
one of its chunks already exists in the bank, and then nothing of it is written and
its result points at the existing memories. An item that only shares some chunks with
stored memories is stored whole, so a source is never left with holes in it.

Exact matching asks the document store for the hashes of the item's chunks
(:meth:`~astrocyte.spi.DocumentStore.find_by_content_hash`, an indexed lookup; the bank
is never scanned). Near matching asks the vector store for each chunk's single nearest
neighbour and compares its cosine similarity with the threshold.
"""

from __future__ import annotations

from collections.abc import Sequence

from astrocyte.config.policy_schema import DedupConfig
from astrocyte.errors import ConfigError
from astrocyte.spi import DocumentStore, Vector, VectorStore


class Deduplicator:
    """Finds stored memories that duplicate new chunks."""

    def __init__(
        self, config: DedupConfig, documents: DocumentStore | None, vectors: VectorStore | None
    ) -> None:
        self.exact = config.exact and documents is not None
        if self.exact and not callable(getattr(documents, "find_by_content_hash", None)):
            # An adapter written before the method joined the SPI.
            raise ConfigError(
                "policy.dedup.exact",
                f"the document store {type(documents).__name__} cannot look up content "
                "hashes (DocumentStore.find_by_content_hash)",
                fix="upgrade the store adapter or turn policy.dedup.exact off",
            )
        self.near_threshold = config.near_threshold if vectors is not None else None
        self._documents = documents
        self._vectors = vectors

    @property
    def active(self) -> bool:
        """Whether any duplicate detection is configured."""
        return self.exact or self.near_threshold is not None

    async def existing(self, bank_id: str, hashes: Sequence[str]) -> dict[str, str]:
        """Content hash → id of a stored memory with it, for hashes present in the bank."""
        if not self.exact or self._documents is None:
            return {}
        wanted = list(dict.fromkeys(h for h in hashes if h))
        if not wanted:
            return {}
        return await self._documents.find_by_content_hash(bank_id, wanted)

    async def nearest(self, bank_id: str, vector: Vector) -> str | None:
        """Id of the stored memory at least ``near_threshold`` similar to ``vector``."""
        if self.near_threshold is None or self._vectors is None:
            return None
        hits = await self._vectors.search(bank_id, vector, limit=1)
        if hits and hits[0].score >= self.near_threshold:
            return hits[0].id
        return None
