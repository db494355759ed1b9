"""Per-bank storage routes against a real server: ``canonical-*`` banks in PostgreSQL
(pgvector serving records and vectors), every other bank in the embedded file, one
recall over both, and a forget that reaches the right store.

Needs only ``ASTROCYTE_TEST_PG_DSN`` (``scripts/services.sh start postgres`` then
``eval "$(scripts/services.sh env postgres)"``); skips without it unless
``ASTROCYTE_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from astrocyte import Astrocyte, AstrocyteContext, load_config
from astrocyte.stores.routing import RoutedStoreSet
from astrocyte_pgvector import PgVectorStore

DIMENSIONS = 256  # the hashing embedder's default


@pytest.fixture
async def brain(tmp_path: Path, dsn: str, schema: str) -> AsyncIterator[Astrocyte]:
    """Embedded default file; ``canonical-*`` records and vectors in PostgreSQL, the
    route's graph in an embedded file of its own."""
    pg: dict[str, Any] = {
        "provider": "pgvector",
        "dsn": dsn,
        "schema": schema,
        "dimensions": DIMENSIONS,
    }
    config = load_config(
        {
            "embedder": {"provider": "hashing"},
            "storage": {
                "path": str(tmp_path / "main.db"),
                "routes": [
                    {
                        "banks": ["canonical-*"],
                        "document_store": pg,
                        "vector_store": dict(pg),
                        "path": str(tmp_path / "canonical-graph.db"),
                    }
                ],
            },
        }
    )
    async with Astrocyte(config) as b:
        yield b


def _embedded_banks(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT bank_id, count(*) FROM memories GROUP BY bank_id")
        return {str(bank): int(n) for bank, n in rows}


async def _pg_banks(dsn: str, schema: str) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            f'SELECT bank_id, count(*) AS n FROM "{schema}".memories GROUP BY bank_id'
        )
        return {str(r["bank_id"]): int(r["n"]) for r in rows}
    finally:
        await conn.close()


async def test_recall_spans_postgres_and_the_embedded_file(
    brain: Astrocyte, tmp_path: Path, dsn: str, schema: str
) -> None:
    assert isinstance(brain.stores, RoutedStoreSet)
    route = brain.stores.router.routes[0].stores
    # One PgVectorStore serves both slots of the route: one pool, one-transaction deletes.
    assert isinstance(route.documents, PgVectorStore) and route.documents is route.vectors

    canon = await brain.retain(
        "Refunds are accepted within 30 days of purchase with a receipt.",
        "canonical-policies",
        tags=["refunds"],
    )
    await brain.retain(
        "Maya asked whether the refund window is 30 days for the blue kettle.", "chat-42"
    )
    tenant = AstrocyteContext(principal="user:alice", tenant="acme")
    await brain.retain("Acme's refund policy: 14 days.", "canonical-policies", context=tenant)

    assert await _pg_banks(dsn, schema) == {"canonical-policies": 1, "acme/canonical-policies": 1}
    assert _embedded_banks(tmp_path / "main.db") == {"chat-42": 1}
    assert not (tmp_path / "canonical-graph.db").exists() or not _embedded_banks(
        tmp_path / "canonical-graph.db"
    )

    result = await brain.recall("refund window 30 days", banks=["canonical-policies", "chat-42"])
    assert {h.provenance.bank_id for h in result.hits} == {"canonical-policies", "chat-42"}
    assert {h.memory_id for h in result.hits if h.provenance.bank_id == "canonical-policies"} == (
        set(canon.memory_ids)
    )

    listed = {b.bank_id: b.memory_count for b in await brain.list_banks()}
    assert listed == {"canonical-policies": 1, "chat-42": 1}
    health = await brain.health()
    assert all(status.ok for status in health.values()), health
    assert {"documents", "routes[0].documents", "routes[0].graph"} <= set(health)

    forgotten = await brain.forget("canonical-policies", tags=["refunds"])
    assert forgotten.deleted_ids == canon.memory_ids
    assert await _pg_banks(dsn, schema) == {"acme/canonical-policies": 1}
    assert _embedded_banks(tmp_path / "main.db") == {"chat-42": 1}
    again = await brain.recall("refund window 30 days", banks=["canonical-policies", "chat-42"])
    assert {h.provenance.bank_id for h in again.hits} == {"chat-42"}
