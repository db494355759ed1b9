"""Qdrant :class:`~astrocyte.spi.VectorStore` for Astrocyte.

Load it from config as ``storage.vector_store.provider: qdrant`` (entry point group
``astrocyte.vector_stores``) or use :class:`QdrantVectorStore` directly.
"""

from __future__ import annotations

from astrocyte_qdrant._payload import LAYOUT_VERSION
from astrocyte_qdrant._store import QdrantVectorStore

__all__ = ["LAYOUT_VERSION", "QdrantVectorStore"]
__version__ = "0.1.0"
