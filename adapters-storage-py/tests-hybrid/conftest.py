"""Servers for the hybrid-stack tests: pgvector (vectors), Elasticsearch (keywords) and
Neo4j (graph), all real, addressed by the same environment variables as the adapters'
own suites (``scripts/services.sh env`` prints them)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from astrocyte.testing import service_env

PG_DSN = "ASTROCYTE_TEST_PG_DSN"
NEEDED = (
    PG_DSN,
    "ASTROCYTE_TEST_ES_URL",
    "ASTROCYTE_TEST_NEO4J_URI",
    "ASTROCYTE_TEST_NEO4J_PASSWORD",
)


@pytest.fixture(scope="session")
def servers() -> dict[str, str]:
    """The server addresses; skip (or fail in CI) when any is missing."""
    return service_env(*NEEDED, hint="run scripts/services.sh start")


@pytest.fixture
def hybrid_storage(servers: dict[str, str]) -> dict[str, Any]:
    """A ``storage:`` section with the three adapters, in namespaces no other test uses."""
    run = uuid.uuid4().hex[:8]
    return {
        "backend": "memory",
        "vector_store": {
            "provider": "pgvector",
            "dsn": servers["ASTROCYTE_TEST_PG_DSN"],
            "schema": f"hybrid_{run}",
        },
        "document_store": {
            "provider": "elasticsearch",
            "url": servers["ASTROCYTE_TEST_ES_URL"],
            "index_prefix": f"hybrid-{run}",
            **_es_credentials(),
        },
        "graph_store": {
            "provider": "neo4j",
            "uri": servers["ASTROCYTE_TEST_NEO4J_URI"],
            "user": os.environ.get("ASTROCYTE_TEST_NEO4J_USER", "neo4j"),
            "password": servers["ASTROCYTE_TEST_NEO4J_PASSWORD"],
        },
    }


def _es_credentials() -> dict[str, str]:
    username = os.environ.get("ASTROCYTE_TEST_ES_USERNAME")
    password = os.environ.get("ASTROCYTE_TEST_ES_PASSWORD")
    return {"username": username, "password": password or ""} if username else {}


@pytest.fixture
def dsn() -> str:
    """The PostgreSQL test server's DSN alone (for tests that need only pgvector)."""
    return service_env(PG_DSN, hint="run scripts/services.sh start postgres")[PG_DSN]


@pytest.fixture
async def schema(dsn: str) -> AsyncIterator[str]:
    """A PostgreSQL schema no other test uses, dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    yield name
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    finally:
        await conn.close()
