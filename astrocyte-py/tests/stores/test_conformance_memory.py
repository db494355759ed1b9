"""The conformance suites against the in-memory reference stores."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from astrocyte.stores.memory import InMemoryDocumentStore, InMemoryGraphStore, InMemoryVectorStore
from astrocyte.testing import (
    DocumentStoreConformance,
    GraphStoreConformance,
    VectorStoreConformance,
)


class TestInMemoryDocumentStore(DocumentStoreConformance):
    @pytest.fixture
    async def document_store(self) -> AsyncIterator[InMemoryDocumentStore]:
        store = InMemoryDocumentStore()
        yield store
        await store.close()


class TestInMemoryVectorStore(VectorStoreConformance):
    @pytest.fixture
    async def vector_store(self) -> AsyncIterator[InMemoryVectorStore]:
        store = InMemoryVectorStore()
        yield store
        await store.close()


class TestInMemoryGraphStore(GraphStoreConformance):
    @pytest.fixture
    async def graph_store(self) -> AsyncIterator[InMemoryGraphStore]:
        store = InMemoryGraphStore()
        yield store
        await store.close()
