"""How the server path fails, tested here without a Qdrant server.

Refused ports, hangs and dropped connections (through the core's ``TcpProxy``) and
HTTP error answers all fail before any Qdrant logic runs, so they are real tests of
this adapter's error handling even on a machine without a Qdrant server.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from astrocyte.errors import ConfigError, ProviderUnavailable
from astrocyte.spi import VectorItem
from astrocyte.testing import TcpProxy

from astrocyte_qdrant import QdrantVectorStore

from ._http_standin import HttpStandIn
from .conftest import closed_port

QUERY = np.array([1.0, 0.0, 0.0], np.float32)
ITEM = VectorItem(id="m1", bank_id="bank", vector=np.array([1.0, 0.0, 0.0], np.float32))


async def test_refused_port_is_provider_unavailable() -> None:
    store = QdrantVectorStore(url=f"http://127.0.0.1:{closed_port()}", timeout_s=5)
    try:
        started = time.monotonic()
        with pytest.raises(ProviderUnavailable) as err:
            await store.upsert([ITEM])
        assert err.value.provider == "qdrant"
        assert time.monotonic() - started < 3
        with pytest.raises(ProviderUnavailable):
            await store.search("bank", QUERY, limit=3)
        with pytest.raises(ProviderUnavailable):
            await store.delete("bank", ["m1"])
        health = await store.health()
        assert not health.ok
        assert "cannot reach" in health.detail
    finally:
        await store.close()


@pytest.mark.parametrize("operation", ["upsert", "search", "delete"])
async def test_hung_server_times_out_within_timeout_s(operation: str) -> None:
    async with TcpProxy("127.0.0.1", closed_port()) as proxy:
        proxy.hang()
        store = QdrantVectorStore(url=f"http://127.0.0.1:{proxy.port}", timeout_s=0.5)
        try:
            started = time.monotonic()
            with pytest.raises(ProviderUnavailable, match=r"timed out after 0\.5s"):
                if operation == "upsert":
                    await store.upsert([ITEM])
                elif operation == "search":
                    await store.search("bank", QUERY, limit=3)
                else:
                    await store.delete("bank", ["m1"])
            elapsed = time.monotonic() - started
            assert 0.4 <= elapsed < 1.5, elapsed
        finally:
            await store.close()


async def test_cut_connection_is_provider_unavailable() -> None:
    async with TcpProxy("127.0.0.1", closed_port()) as proxy:
        proxy.cut()
        store = QdrantVectorStore(url=f"http://127.0.0.1:{proxy.port}", timeout_s=5)
        try:
            with pytest.raises(ProviderUnavailable):
                await store.search("bank", QUERY, limit=3)
        finally:
            await store.close()


# The loopback stand-in speaks plain HTTP; the client rightly warns about sending a key.
@pytest.mark.filterwarnings("ignore:Api key is used with an insecure connection")
@pytest.mark.parametrize("status", [401, 403])
async def test_rejected_api_key_is_config_error_without_the_key(status: int) -> None:
    # Qdrant answers 401/403 like this when the api-key header is missing or wrong.
    body = b'{"status":{"error":"Must provide an API key or an Authorization bearer token"}}'
    async with HttpStandIn(status, body) as http:
        store = QdrantVectorStore(url=http.url, api_key="s3cret-key-value", timeout_s=5)
        try:
            with pytest.raises(ConfigError) as err:
                await store.upsert([ITEM])
            assert err.value.key == "api_key"
            assert "s3cret" not in str(err.value)
            assert "s3cret" not in repr(store)
            health = await store.health()
            assert not health.ok
            assert "api_key" in health.detail
            assert "s3cret" not in health.detail
        finally:
            await store.close()
        assert http.requests, "the client never reached the endpoint"


@pytest.mark.parametrize("status", [502, 503, 429])
async def test_overloaded_or_failing_server_is_provider_unavailable(status: int) -> None:
    async with HttpStandIn(status, b'{"status":{"error":"busy"}}') as http:
        store = QdrantVectorStore(url=http.url, timeout_s=5)
        try:
            with pytest.raises(ProviderUnavailable):
                await store.search("bank", QUERY, limit=3)
        finally:
            await store.close()


@pytest.mark.parametrize(
    ("status", "body", "content_type"),
    [
        (404, b"<html>Not Found</html>", "text/html"),
        (200, b"<html>a web page</html>", "text/html"),
        (200, b'{"unexpected": true}', "application/json"),
    ],
)
async def test_something_else_than_qdrant_at_url_is_config_error(
    status: int, body: bytes, content_type: str
) -> None:
    async with HttpStandIn(status, body, content_type) as http:
        store = QdrantVectorStore(url=http.url, timeout_s=5)
        try:
            with pytest.raises(ConfigError) as err:
                await store.search("bank", QUERY, limit=3)
            assert err.value.key == "url"
        finally:
            await store.close()


async def test_credentials_in_url_never_reach_messages() -> None:
    store = QdrantVectorStore(url=f"http://user:pa55word@127.0.0.1:{closed_port()}", timeout_s=5)
    try:
        with pytest.raises(ProviderUnavailable) as err:
            await store.search("bank", QUERY, limit=3)
        assert "pa55word" not in str(err.value)
        assert "pa55word" not in repr(store)
    finally:
        await store.close()
