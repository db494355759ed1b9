"""Bulk staging: COPY a batch into a transaction-local temp table.

Writes of any size go the same way: one binary COPY into ``pg_temp`` (dropped at
commit), then set-based SQL from there into the real tables. That keeps a 10,000-row
upsert to a handful of round trips and makes the whole batch one transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import asyncpg

RECORD_COLUMNS = (
    "bank_id",
    "id",
    "text",
    "source_id",
    "chunk_index",
    "content_type",
    "created_at",
    "occurred_at",
    "tags",
    "metadata",
    "content_hash",
)

VECTOR_COLUMNS = ("bank_id", "id", "dims", "embedding", "tags", "occurred_at", "metadata")


async def stage_records(conn: asyncpg.Connection, rows: Iterable[Sequence[Any]]) -> None:
    """COPY record rows (in :data:`RECORD_COLUMNS` order) into ``pg_temp.astro_in_rec``."""
    await conn.execute(
        """CREATE TEMP TABLE astro_in_rec (
            bank_id text, id text, text text, source_id text, chunk_index bigint,
            content_type text, created_at timestamptz, occurred_at timestamptz,
            tags text[], metadata text, content_hash text
        ) ON COMMIT DROP"""
    )
    await conn.copy_records_to_table("astro_in_rec", records=rows, columns=RECORD_COLUMNS)


async def stage_vectors(conn: asyncpg.Connection, rows: Iterable[Sequence[Any]]) -> None:
    """COPY vector rows (in :data:`VECTOR_COLUMNS` order) into ``pg_temp.astro_in_vec``."""
    await conn.execute(
        """CREATE TEMP TABLE astro_in_vec (
            bank_id text, id text, dims integer, embedding vector, tags text[],
            occurred_at timestamptz, metadata jsonb
        ) ON COMMIT DROP"""
    )
    await conn.copy_records_to_table("astro_in_vec", records=rows, columns=VECTOR_COLUMNS)
