"""Test servers: a real Elasticsearch and/or OpenSearch node, named by env vars.

``ASTROCYTE_TEST_ES_URL`` (+ ``ASTROCYTE_TEST_ES_USERNAME`` / ``_PASSWORD``) comes from
``scripts/services/elasticsearch.sh env``; ``ASTROCYTE_TEST_OPENSEARCH_URL`` from
``scripts/services/opensearch.sh env``. Every server test runs once per configured
server. A server whose variable is unset is skipped, except that with
``ASTROCYTE_REQUIRE_SERVICES=1`` (CI, which starts both) a missing server fails the run.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from astrocyte_elasticsearch import ElasticsearchDocumentStore

#: Faster than the 1s default so refresh=wait_for writes return quickly in tests.
TEST_REFRESH_INTERVAL = "100ms"


@dataclass(frozen=True)
class Server:
    """One configured test node."""

    name: str
    url: str
    username: str | None
    password: str | None

    @property
    def host_port(self) -> tuple[str, int]:
        """Host and port of the node (for a TcpProxy in front of it)."""
        hostport = self.url.split("://", 1)[1].rstrip("/")
        host, _, port = hostport.rpartition(":")
        return host, int(port)

    def options(self) -> dict[str, Any]:
        """Store options reaching this node."""
        opts: dict[str, Any] = {"url": self.url, "refresh_interval": TEST_REFRESH_INTERVAL}
        if self.username is not None:
            opts["username"] = self.username
            opts["password"] = self.password
        return opts


_SERVERS = {
    "elasticsearch": (
        "ASTROCYTE_TEST_ES_URL",
        "ASTROCYTE_TEST_ES_USERNAME",
        "ASTROCYTE_TEST_ES_PASSWORD",
    ),
    "opensearch": (
        "ASTROCYTE_TEST_OPENSEARCH_URL",
        "ASTROCYTE_TEST_OPENSEARCH_USERNAME",
        "ASTROCYTE_TEST_OPENSEARCH_PASSWORD",
    ),
}


def _require_services() -> bool:
    return os.environ.get("ASTROCYTE_REQUIRE_SERVICES") == "1"


def server_from_env(name: str) -> Server:
    """The named server, or skip (fail in CI) when it is not configured."""
    url_var, user_var, password_var = _SERVERS[name]
    url = os.environ.get(url_var)
    if not url:
        reason = f"{url_var} is not set (start it with scripts/services/{name}.sh start)"
        if _require_services():
            pytest.fail(f"ASTROCYTE_REQUIRE_SERVICES=1 but {reason}")
        pytest.skip(reason)
    return Server(name, url, os.environ.get(user_var), os.environ.get(password_var))


@pytest.fixture(params=sorted(_SERVERS))
def server(request: pytest.FixtureRequest) -> Server:
    """Each configured server in turn."""
    return server_from_env(str(request.param))


@pytest.fixture
def es_server() -> Server:
    """The Elasticsearch node only (it has security on: real credential checks)."""
    return server_from_env("elasticsearch")


StoreFactory = Callable[..., ElasticsearchDocumentStore]


@pytest.fixture
async def make_store(server: Server) -> AsyncIterator[StoreFactory]:
    """Builds stores on the current server (options override the defaults); all are
    closed after the test."""
    stores: list[ElasticsearchDocumentStore] = []

    def make(**overrides: Any) -> ElasticsearchDocumentStore:
        store = ElasticsearchDocumentStore(**{**server.options(), **overrides})
        stores.append(store)
        return store

    yield make
    for store in stores:
        await store.close()


def fresh_prefix() -> str:
    """An index prefix no other test uses (for tests that need their own indices)."""
    return f"astrocyte-test-{uuid.uuid4().hex[:10]}"
