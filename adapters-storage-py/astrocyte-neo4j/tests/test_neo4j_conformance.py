"""The core's GraphStore conformance suite against a real Neo4j."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from astrocyte.testing import GraphStoreConformance

from astrocyte_neo4j import Neo4jGraphStore
from tests.conftest import Server


class TestNeo4jGraphStoreConformance(GraphStoreConformance):
    """Every inherited test runs on a real server, each in fresh random banks."""

    @pytest.fixture
    async def graph_store(self, server: Server) -> AsyncIterator[Neo4jGraphStore]:
        store = server.store()
        yield store
        await store.close()
