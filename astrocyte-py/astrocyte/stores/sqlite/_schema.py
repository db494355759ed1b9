"""Schema of the embedded store and its versioned, idempotent migration.

The schema version lives in ``PRAGMA user_version``. :func:`migrate` applies every
missing step inside one ``BEGIN IMMEDIATE`` transaction and re-reads the version after
taking the write lock, so two processes opening a new file at once cannot both migrate.

Timestamps are INTEGER microseconds since the Unix epoch (UTC): exact for every
``datetime`` (a REAL epoch loses microseconds far from 1970) and just as cheap to index
and compare.
"""

from __future__ import annotations

import sqlite3

from astrocyte.errors import StoreError

SCHEMA_VERSION = 2

#: FTS5 tokenizer of the keyword index. Queries are passed to FTS5 as quoted phrases,
#: so FTS5 tokenises them with this same tokenizer and index and query always agree.
FTS_TOKENIZER = "porter unicode61 remove_diacritics 2"

_V1 = [
    """
    CREATE TABLE IF NOT EXISTS banks (
        bank_id TEXT PRIMARY KEY,
        created_at INTEGER NOT NULL
    ) WITHOUT ROWID
    """,
    # `seq` gives FTS5 an integer rowid to point at; (bank_id, id) is the real key.
    """
    CREATE TABLE IF NOT EXISTS memories (
        seq INTEGER PRIMARY KEY,
        bank_id TEXT NOT NULL REFERENCES banks (bank_id),
        id TEXT NOT NULL,
        text TEXT NOT NULL,
        source_id TEXT NOT NULL,
        chunk_index INTEGER NOT NULL,
        content_type TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        occurred_at INTEGER,
        tags TEXT NOT NULL,
        metadata TEXT NOT NULL,
        content_hash TEXT NOT NULL,
        UNIQUE (bank_id, id)
    )
    """,
    "CREATE INDEX IF NOT EXISTS memories_occurred ON memories (bank_id, occurred_at)",
    "CREATE INDEX IF NOT EXISTS memories_source ON memories (bank_id, source_id)",
    """
    CREATE TABLE IF NOT EXISTS memory_tags (
        bank_id TEXT NOT NULL,
        tag TEXT NOT NULL,
        memory_id TEXT NOT NULL,
        PRIMARY KEY (bank_id, tag, memory_id),
        FOREIGN KEY (bank_id, memory_id) REFERENCES memories (bank_id, id) ON DELETE CASCADE
    ) WITHOUT ROWID
    """,
    # Without it every memory delete would scan memory_tags to cascade.
    "CREATE INDEX IF NOT EXISTS memory_tags_memory ON memory_tags (bank_id, memory_id)",
    # External-content FTS5 index over memories.text, maintained by the store with one
    # INSERT ... SELECT per batch rather than by triggers: FTS5 flushes its pending
    # index at every statement boundary, so a per-row trigger is ~8x slower.
    f"""
    CREATE VIRTUAL TABLE IF NOT EXISTS memories_fts USING fts5 (
        text, content='memories', content_rowid='seq', tokenize='{FTS_TOKENIZER}'
    )
    """,
    # Vectors carry their own filter payload: the vector SPI works without memory rows.
    # The vector is stored L2-normalised as little-endian float32.
    """
    CREATE TABLE IF NOT EXISTS vectors (
        seq INTEGER PRIMARY KEY,
        bank_id TEXT NOT NULL,
        memory_id TEXT NOT NULL,
        dim INTEGER NOT NULL,
        vec BLOB NOT NULL,
        occurred_at INTEGER,
        tags TEXT NOT NULL,
        metadata TEXT NOT NULL,
        UNIQUE (bank_id, memory_id)
    )
    """,
    # `dim` is fixed by a bank's first vector (NULL again once it has none); `version`
    # changes on every vector write so any process can tell its cache is stale.
    """
    CREATE TABLE IF NOT EXISTS vector_banks (
        bank_id TEXT PRIMARY KEY,
        dim INTEGER,
        version INTEGER NOT NULL
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE IF NOT EXISTS entities (
        bank_id TEXT NOT NULL,
        id TEXT NOT NULL,
        name TEXT NOT NULL,
        normalized TEXT NOT NULL,
        kind TEXT NOT NULL,
        PRIMARY KEY (bank_id, id)
    ) WITHOUT ROWID
    """,
    "CREATE INDEX IF NOT EXISTS entities_normalized ON entities (bank_id, normalized)",
    """
    CREATE TABLE IF NOT EXISTS entity_links (
        bank_id TEXT NOT NULL,
        memory_id TEXT NOT NULL,
        entity_id TEXT NOT NULL,
        PRIMARY KEY (bank_id, memory_id, entity_id),
        FOREIGN KEY (bank_id, entity_id) REFERENCES entities (bank_id, id) ON DELETE CASCADE
    ) WITHOUT ROWID
    """,
    "CREATE INDEX IF NOT EXISTS entity_links_entity ON entity_links (bank_id, entity_id)",
    """
    CREATE TABLE IF NOT EXISTS relations (
        bank_id TEXT NOT NULL,
        source_entity_id TEXT NOT NULL,
        target_entity_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        PRIMARY KEY (bank_id, source_entity_id, target_entity_id, kind),
        FOREIGN KEY (bank_id, source_entity_id)
            REFERENCES entities (bank_id, id) ON DELETE CASCADE,
        FOREIGN KEY (bank_id, target_entity_id)
            REFERENCES entities (bank_id, id) ON DELETE CASCADE
    ) WITHOUT ROWID
    """,
    "CREATE INDEX IF NOT EXISTS relations_target ON relations (bank_id, target_entity_id)",
    # How many of a bank's memories contain each normalised word (term '' counts the
    # memories themselves): lets keyword search tell a bank's common words from its
    # rare ones in one indexed lookup. FTS5's own statistics are file-wide.
    """
    CREATE TABLE IF NOT EXISTS bank_terms (
        bank_id TEXT NOT NULL,
        term TEXT NOT NULL,
        df INTEGER NOT NULL,
        PRIMARY KEY (bank_id, term)
    ) WITHOUT ROWID
    """,
]

# Version 2: duplicate detection on retain looks content hashes up within a bank
# (DocumentStore.find_by_content_hash); without this index that is a scan of the bank.
_V2 = [
    "CREATE INDEX IF NOT EXISTS memories_hash ON memories (bank_id, content_hash)",
]

#: Statements that bring a file from version ``n - 1`` to version ``n``.
MIGRATIONS: dict[int, list[str]] = {1: _V1, 2: _V2}


def user_version(conn: sqlite3.Connection) -> int:
    """The schema version recorded in the file (0 for a new file)."""
    row = conn.execute("PRAGMA user_version").fetchone()
    return int(row[0])


def migrate(conn: sqlite3.Connection) -> None:
    """Bring the file to :data:`SCHEMA_VERSION`; a no-op when it is already there.

    ``conn`` must be in autocommit mode (``isolation_level=None``).
    """
    if user_version(conn) == SCHEMA_VERSION:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        current = user_version(conn)
        if current > SCHEMA_VERSION:
            raise StoreError(
                f"database schema version {current} is newer than this Astrocyte "
                f"supports ({SCHEMA_VERSION})",
                fix="upgrade astrocyte, or point storage.path at another file",
            )
        for version in range(current + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[version]:
                conn.execute(statement)
        # PRAGMA takes no parameters; the value is our own integer constant.
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION:d}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
