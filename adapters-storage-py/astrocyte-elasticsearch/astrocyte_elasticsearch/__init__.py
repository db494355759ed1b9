"""Elasticsearch / OpenSearch document store for Astrocyte.

:class:`ElasticsearchDocumentStore` implements :class:`astrocyte.spi.DocumentStore`
(SPI version 1) on Elasticsearch 8 or OpenSearch 2 with the official ``elasticsearch``
async client. It registers as the ``elasticsearch`` and ``opensearch`` providers of
the ``astrocyte.document_stores`` entry-point group.
"""

from astrocyte_elasticsearch._store import ElasticsearchDocumentStore, OpenSearchDocumentStore

__all__ = ["ElasticsearchDocumentStore", "OpenSearchDocumentStore"]
