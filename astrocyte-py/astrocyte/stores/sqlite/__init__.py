"""The embedded default store (documents, vectors and graph in one SQLite file).

See :class:`SQLiteStore`.
"""

from __future__ import annotations

from astrocyte.stores.sqlite._schema import FTS_TOKENIZER, SCHEMA_VERSION
from astrocyte.stores.sqlite._store import SQLiteStore

__all__ = ["FTS_TOKENIZER", "SCHEMA_VERSION", "SQLiteStore"]
