"""Fixtures: the real Neo4j server named by ``ASTROCYTE_TEST_NEO4J_URI``.

Start one with ``scripts/services/neo4j.sh start`` and load its variables with
``eval "$(scripts/services/neo4j.sh env)"``. Without the variable the tests skip, unless
``ASTROCYTE_REQUIRE_SERVICES=1`` (CI), where they fail instead: a server that did not
start must never pass as a skipped run.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
from neo4j import AsyncDriver, AsyncGraphDatabase

from astrocyte_neo4j import Neo4jGraphStore

URI_VAR = "ASTROCYTE_TEST_NEO4J_URI"


@dataclass(frozen=True)
class Server:
    """Where the test server listens and how to log in."""

    uri: str
    user: str
    password: str | None

    @property
    def host(self) -> str:
        return urlsplit(self.uri).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        return urlsplit(self.uri).port or 7687

    def store(self, **options: object) -> Neo4jGraphStore:
        """A store on this server; ``options`` override the connection defaults."""
        settings: dict[str, object] = {
            "uri": self.uri,
            "user": self.user,
            "password": self.password,
            "timeout_s": 20.0,
            "connect_timeout_s": 5.0,
        }
        settings.update(options)
        return Neo4jGraphStore(**settings)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def server() -> Server:
    """The server under test, or skip (fail when services are required)."""
    uri = os.environ.get(URI_VAR)
    if not uri:
        reason = f"{URI_VAR} is not set; run scripts/services/neo4j.sh start and its env"
        if os.environ.get("ASTROCYTE_REQUIRE_SERVICES") == "1":
            pytest.fail(f"ASTROCYTE_REQUIRE_SERVICES=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    return Server(
        uri=uri,
        user=os.environ.get("ASTROCYTE_TEST_NEO4J_USER", "neo4j"),
        password=os.environ.get("ASTROCYTE_TEST_NEO4J_PASSWORD"),
    )


@pytest.fixture
async def store(server: Server) -> AsyncIterator[Neo4jGraphStore]:
    """A connected store, closed after the test."""
    s = server.store()
    yield s
    await s.close()


@pytest.fixture
async def raw(server: Server) -> AsyncIterator[AsyncDriver]:
    """A plain driver on the test server, to inspect what the store wrote."""
    auth = (server.user, server.password) if server.password is not None else None
    driver = AsyncGraphDatabase.driver(server.uri, auth=auth)
    yield driver
    await driver.close()
