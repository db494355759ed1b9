"""Neo4j graph store for Astrocyte.

:class:`Neo4jGraphStore` implements :class:`astrocyte.spi.GraphStore` (entities,
memory↔entity links, entity relations, neighbourhood traversal) on a Neo4j 5 server
through the official async driver. It is registered as the ``neo4j`` entry point of
the ``astrocyte.graph_stores`` group::

    storage:
      graph_store:
        provider: neo4j
        uri: bolt://localhost:7687
        password: ${NEO4J_PASSWORD}
"""

from __future__ import annotations

from astrocyte_neo4j._schema import SCHEMA_VERSION
from astrocyte_neo4j._store import Neo4jGraphStore

__all__ = ["SCHEMA_VERSION", "Neo4jGraphStore", "__version__"]

__version__ = "0.1.0"
"""Version of this package."""
