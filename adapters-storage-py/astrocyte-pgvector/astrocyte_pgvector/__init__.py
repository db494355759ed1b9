"""PostgreSQL + pgvector storage adapter for Astrocyte.

:class:`PgVectorStore` implements both :class:`~astrocyte.spi.DocumentStore` and
:class:`~astrocyte.spi.VectorStore`; it is registered under the entry point name
``pgvector`` in ``astrocyte.document_stores`` and ``astrocyte.vector_stores``.
"""

from __future__ import annotations

from astrocyte_pgvector._schema import SCHEMA_VERSION
from astrocyte_pgvector._store import PgVectorStore

__all__ = ["SCHEMA_VERSION", "PgVectorStore"]
