"""The core's VectorStore conformance suite, unchanged, on every way to reach Qdrant.

Local mode is qdrant-client's own exhaustive search in Python, not the server's
engine: passing it checks this adapter's layout, filters and error handling; the
server classes (run when ``ASTROCYTE_TEST_QDRANT_URL`` is set) check the engine too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from astrocyte.testing import VectorStoreConformance

from astrocyte_qdrant import QdrantVectorStore


class TestQdrantLocalModeInMemoryConformance(VectorStoreConformance):
    """Local mode, in memory (``location=":memory:"``)."""

    @pytest.fixture
    async def vector_store(
        self, local_store: QdrantVectorStore
    ) -> AsyncIterator[QdrantVectorStore]:
        yield local_store


class TestQdrantLocalModeOnDiskConformance(VectorStoreConformance):
    """Local mode, persisted to a folder (``path``), with small batches so that
    multi-batch upserts (and their snapshots) are exercised too."""

    @pytest.fixture
    async def vector_store(self, tmp_path: Path) -> AsyncIterator[QdrantVectorStore]:
        store = QdrantVectorStore(path=str(tmp_path / "qdrant"), batch_size=7)
        yield store
        await store.close()


class TestQdrantServerConformance(VectorStoreConformance):
    """A real Qdrant server (skipped unless ``ASTROCYTE_TEST_QDRANT_URL`` is set)."""

    @pytest.fixture
    async def vector_store(
        self, server_store: QdrantVectorStore
    ) -> AsyncIterator[QdrantVectorStore]:
        yield server_store
