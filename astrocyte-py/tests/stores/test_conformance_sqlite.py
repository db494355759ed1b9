"""The conformance suites against the embedded SQLite store, on a file and in memory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from astrocyte.stores.sqlite import SQLiteStore
from astrocyte.testing import (
    AtomicWriterConformance,
    DocumentStoreConformance,
    GraphStoreConformance,
    VectorStoreConformance,
)


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    store = SQLiteStore(tmp_path / "astrocyte.db")
    yield store
    await store.close()


class TestSQLiteDocumentStore(DocumentStoreConformance):
    @pytest.fixture
    def document_store(self, sqlite_store: SQLiteStore) -> SQLiteStore:
        return sqlite_store


class TestSQLiteVectorStore(VectorStoreConformance):
    @pytest.fixture
    def vector_store(self, sqlite_store: SQLiteStore) -> SQLiteStore:
        return sqlite_store


class TestSQLiteGraphStore(GraphStoreConformance):
    @pytest.fixture
    def graph_store(self, sqlite_store: SQLiteStore) -> SQLiteStore:
        return sqlite_store


class TestSQLiteAtomicWriter(AtomicWriterConformance):
    @pytest.fixture
    def atomic_store(self, sqlite_store: SQLiteStore) -> SQLiteStore:
        return sqlite_store


@pytest.fixture
async def memory_sqlite_store() -> AsyncIterator[SQLiteStore]:
    store = SQLiteStore(":memory:")
    yield store
    await store.close()


class TestSQLiteInMemoryDocumentStore(DocumentStoreConformance):
    @pytest.fixture
    def document_store(self, memory_sqlite_store: SQLiteStore) -> SQLiteStore:
        return memory_sqlite_store


class TestSQLiteInMemoryAtomicWriter(AtomicWriterConformance):
    @pytest.fixture
    def atomic_store(self, memory_sqlite_store: SQLiteStore) -> SQLiteStore:
        return memory_sqlite_store
