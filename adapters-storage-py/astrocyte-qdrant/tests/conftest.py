"""Fixtures shared by the adapter's tests.

Local-mode tests (qdrant-client's in-process engine) always run. Server tests read
the server's URL from ``ASTROCYTE_TEST_QDRANT_URL`` (and an api key, if the server
wants one, from ``ASTROCYTE_TEST_QDRANT_API_KEY``) and are skipped when it is unset.
Unlike the other adapters' servers, that skip is not turned into a failure by
``ASTROCYTE_REQUIRE_SERVICES=1``: no Qdrant server can be installed from the package
registries CI reaches, so CI has none to require.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator

import pytest

from astrocyte_qdrant import QdrantVectorStore

URL_ENV = "ASTROCYTE_TEST_QDRANT_URL"
API_KEY_ENV = "ASTROCYTE_TEST_QDRANT_API_KEY"


def server_url() -> str:
    """The test server's URL, or skip the test."""
    url = os.environ.get(URL_ENV, "").strip()
    if not url:
        pytest.skip(f"{URL_ENV} is not set: no Qdrant server to test against")
    return url


def server_api_key() -> str | None:
    """The test server's api key, if it needs one."""
    return os.environ.get(API_KEY_ENV, "").strip() or None


def fresh_collection(prefix: str = "astrocyte_test") -> str:
    """A collection name no other test uses, so tests can share one server."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def drop_collections(store: QdrantVectorStore) -> None:
    """Delete every collection a server test created (the main one and siblings)."""
    from qdrant_client import AsyncQdrantClient

    client = AsyncQdrantClient(
        url=server_url(), port=None, api_key=server_api_key(), check_compatibility=False
    )
    try:
        listing = await client.get_collections()
        main = store.options.collection
        for c in listing.collections:
            if c.name == main or c.name.startswith(f"{main}__dim"):
                await client.delete_collection(c.name)
    finally:
        await client.close()


@pytest.fixture
async def local_store() -> AsyncIterator[QdrantVectorStore]:
    """A store on qdrant-client's in-memory local mode."""
    store = QdrantVectorStore(location=":memory:")
    yield store
    await store.close()


@pytest.fixture
async def server_store() -> AsyncIterator[QdrantVectorStore]:
    """A store on the test server, in a collection of its own (dropped afterwards)."""
    store = QdrantVectorStore(
        url=server_url(), api_key=server_api_key(), collection=fresh_collection(), timeout_s=10
    )
    yield store
    await store.close()
    await drop_collections(store)
