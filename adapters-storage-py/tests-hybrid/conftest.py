"""Servers for the hybrid-stack tests: pgvector (vectors), Elasticsearch (keywords) and
Neo4j (graph), all real, addressed by the same environment variables as the adapters'
own suites (``scripts/services.sh env`` prints them)."""

from __future__ import annotations

import os
import uuid
from typing import Any

import pytest

NEEDED = (
    "ASTROCYTE_TEST_PG_DSN",
    "ASTROCYTE_TEST_ES_URL",
    "ASTROCYTE_TEST_NEO4J_URI",
    "ASTROCYTE_TEST_NEO4J_PASSWORD",
)


@pytest.fixture(scope="session")
def servers() -> dict[str, str]:
    """The server addresses; skip (or fail in CI) when any is missing."""
    missing = [name for name in NEEDED if not os.environ.get(name)]
    if missing:
        reason = f"hybrid stack needs {', '.join(missing)} (run scripts/services.sh start)"
        if os.environ.get("ASTROCYTE_REQUIRE_SERVICES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return {name: os.environ[name] for name in NEEDED}


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
