"""Shared fixtures: the server address comes from ``ASTROCYTE_TEST_PG_DSN``.

Start the server with ``scripts/services/postgres.sh start`` and
``eval "$(scripts/services/postgres.sh env)"``. Without the variable the tests skip,
unless ``ASTROCYTE_REQUIRE_SERVICES=1`` (as in CI), where they fail instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest

from astrocyte_pgvector import PgVectorStore

DSN_VAR = "ASTROCYTE_TEST_PG_DSN"


def _dsn() -> str:
    dsn = os.environ.get(DSN_VAR, "")
    if dsn:
        return dsn
    reason = f"{DSN_VAR} is not set (run scripts/services/postgres.sh start, then its env)"
    if os.environ.get("ASTROCYTE_REQUIRE_SERVICES") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture
def dsn() -> str:
    """DSN of the test server."""
    return _dsn()


@pytest.fixture
def fresh_schema() -> str:
    """A schema name no other test uses."""
    return f"t_{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def store(dsn: str) -> AsyncIterator[PgVectorStore]:
    """A store on the shared test schema, accepting any vector dimension."""
    s = PgVectorStore(dsn, schema="astrocyte_test", allow_other_dimensions=True)
    yield s
    await s.close()
