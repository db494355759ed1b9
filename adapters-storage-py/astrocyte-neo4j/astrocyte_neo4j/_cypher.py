"""Every Cypher statement of the store: constant text, all values passed as parameters.

Batches arrive as ``$rows`` lists consumed with ``UNWIND``, so one statement writes a
whole chunk. Keys are computed by :func:`astrocyte_neo4j._schema.node_key` in Python
or as ``$prefix + id`` in Cypher.
"""

from __future__ import annotations

__all__ = [
    "DELETE_MEMORIES",
    "DELETE_ORPHANS",
    "FIND_ENTITIES",
    "LINKS_OF",
    "MISSING_ENTITIES",
    "NEIGHBOURS",
    "PING",
    "READ_SCHEMA_VERSION",
    "RELATE",
    "TOUCHED_BY_MEMORIES",
    "UPSERT_ENTITIES",
    "UPSERT_LINKS",
    "WRITE_SCHEMA_VERSION",
]

PING = "RETURN 1 AS ok"

READ_SCHEMA_VERSION = (
    "OPTIONAL MATCH (s:AstrocyteSchema {component: $component}) RETURN s.version AS version"
)

# max() keeps a newer marker written concurrently by a newer adapter.
WRITE_SCHEMA_VERSION = """
MERGE (s:AstrocyteSchema {component: $component})
SET s.version = CASE WHEN s.version IS NULL OR s.version < $version
                     THEN $version ELSE s.version END
RETURN s.version AS version
"""

# Keys stay fixed; names and kind are replaced, links and relations kept.
UPSERT_ENTITIES = """
UNWIND $rows AS row
MERGE (e:AstrocyteEntity {key: row.key})
ON CREATE SET e.bank_id = row.bank_id, e.id = row.id
SET e.name = row.name, e.normalized = row.normalized, e.kind = row.kind
"""

MISSING_ENTITIES = """
UNWIND $keys AS k
OPTIONAL MATCH (e:AstrocyteEntity {key: k})
WITH k, e WHERE e IS NULL
RETURN collect(k) AS missing
"""

UPSERT_LINKS = """
UNWIND $rows AS row
MATCH (e:AstrocyteEntity {key: row.entity_key})
MERGE (m:AstrocyteMemory {key: row.memory_key})
ON CREATE SET m.bank_id = row.bank_id, m.id = row.memory_id
MERGE (m)-[:MENTIONS]->(e)
"""

RELATE = """
UNWIND $rows AS row
MATCH (s:AstrocyteEntity {key: row.source_key})
MATCH (t:AstrocyteEntity {key: row.target_key})
MERGE (s)-[:RELATES_TO {kind: row.kind}]->(t)
"""

FIND_ENTITIES = """
MATCH (e:AstrocyteEntity)
WHERE e.bank_id = $bank_id AND e.normalized IN $names
RETURN e.id AS id, e.name AS name, e.normalized AS normalized, e.kind AS kind,
       COUNT { (e)<-[:MENTIONS]-(:AstrocyteMemory) } AS mentions
ORDER BY normalized, id
"""

# Both directions: a relation is a hop whichever way it points.
NEIGHBOURS = """
UNWIND $ids AS id
MATCH (:AstrocyteEntity {key: $prefix + id})-[:RELATES_TO]-(o:AstrocyteEntity)
WHERE o.bank_id = $bank_id
RETURN DISTINCT id AS entity, o.id AS other
"""

LINKS_OF = """
UNWIND $ids AS id
MATCH (:AstrocyteEntity {key: $prefix + id})<-[:MENTIONS]-(m:AstrocyteMemory)
RETURN id AS entity, m.id AS memory
"""

TOUCHED_BY_MEMORIES = """
UNWIND $keys AS k
MATCH (:AstrocyteMemory {key: k})-[r:MENTIONS]->(e:AstrocyteEntity)
RETURN count(r) AS links, collect(DISTINCT e.key) AS touched
"""

DELETE_MEMORIES = """
UNWIND $keys AS k
MATCH (m:AstrocyteMemory {key: k})
DETACH DELETE m
"""

# DETACH: an orphan's relations go with it.
DELETE_ORPHANS = """
UNWIND $keys AS k
MATCH (e:AstrocyteEntity {key: k})
WHERE NOT (e)<-[:MENTIONS]-(:AstrocyteMemory)
DETACH DELETE e
"""
