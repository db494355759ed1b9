"""The core's conformance suites, unchanged, against a real PostgreSQL + pgvector."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from astrocyte.testing import DocumentStoreConformance, VectorStoreConformance

from astrocyte_pgvector import PgVectorStore


class TestPgVectorDocumentStore(DocumentStoreConformance):
    """DocumentStore conformance."""

    @pytest.fixture
    async def document_store(self, store: PgVectorStore) -> AsyncIterator[PgVectorStore]:
        """The shared test store."""
        yield store


class TestPgVectorVectorStore(VectorStoreConformance):
    """VectorStore conformance. The suite uses dimensions 2-32 in fresh banks, so the
    store accepts other dimensions than the indexed one (those are searched exactly);
    the indexed 384-d path is covered by test_backend."""

    @pytest.fixture
    async def vector_store(self, store: PgVectorStore) -> AsyncIterator[PgVectorStore]:
        """The shared test store."""
        yield store
