"""Conformance suites every store implementation must pass.

Each suite is a plain class of async pytest tests; an adapter's test module subclasses
it and provides the store through a fixture::

    import pytest
    from astrocyte.testing import DocumentStoreConformance

    class TestMyDocumentStore(DocumentStoreConformance):
        @pytest.fixture
        async def document_store(self):
            store = MyDocumentStore(...)
            yield store
            await store.close()

=========================== ===================== ===========================================
suite                       fixture               for
=========================== ===================== ===========================================
``DocumentStoreConformance`` ``document_store``    :class:`~astrocyte.spi.DocumentStore`
``VectorStoreConformance``   ``vector_store``      :class:`~astrocyte.spi.VectorStore`
``GraphStoreConformance``    ``graph_store``       :class:`~astrocyte.spi.GraphStore`
``AtomicWriterConformance``  ``atomic_store``      one object implementing all three plus
                                                   :class:`~astrocyte.spi.AtomicMemoryWriter`
=========================== ===================== ===========================================

:class:`TcpProxy` sits between an adapter and its real server so a test can make the
server look gone, hung or restarted (reconnect and timeout tests); :func:`service_env`
reads the real servers' addresses (skip without them, fail in CI).

The suites need ``pytest``, ``pytest-asyncio`` (``asyncio_mode = "auto"``),
``hypothesis`` and ``numpy``. Tests use fresh random bank ids, so the fixture may hand
out one shared store. The suites are imported lazily: importing this package alone
does not import pytest or hypothesis.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from astrocyte.testing.atomic_writer import AtomicWriterConformance
    from astrocyte.testing.document_store import DocumentStoreConformance
    from astrocyte.testing.graph_store import GraphStoreConformance
    from astrocyte.testing.services import service_env
    from astrocyte.testing.tcp_proxy import TcpProxy
    from astrocyte.testing.vector_store import VectorStoreConformance

__all__ = [
    "AtomicWriterConformance",
    "DocumentStoreConformance",
    "GraphStoreConformance",
    "TcpProxy",
    "VectorStoreConformance",
    "service_env",
]

_MODULES = {
    "AtomicWriterConformance": "astrocyte.testing.atomic_writer",
    "DocumentStoreConformance": "astrocyte.testing.document_store",
    "GraphStoreConformance": "astrocyte.testing.graph_store",
    "TcpProxy": "astrocyte.testing.tcp_proxy",
    "VectorStoreConformance": "astrocyte.testing.vector_store",
    "service_env": "astrocyte.testing.services",
}


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
