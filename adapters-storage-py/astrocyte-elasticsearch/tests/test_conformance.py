"""The core's DocumentStore conformance suite, unchanged, against each real server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from astrocyte.testing import DocumentStoreConformance

from astrocyte_elasticsearch import ElasticsearchDocumentStore
from tests.conftest import Server


class TestElasticsearchDocumentStore(DocumentStoreConformance):
    """Shared default index prefix: the suite uses fresh random banks."""

    @pytest.fixture
    async def document_store(self, server: Server) -> AsyncIterator[ElasticsearchDocumentStore]:
        store = ElasticsearchDocumentStore(**server.options())
        yield store
        await store.close()
