"""Graph layout, constraints and the schema version marker.

Layout (all labels and types prefixed so the store can share a database)::

    (:AstrocyteMemory {key, bank_id, id})
        -[:MENTIONS]->
    (:AstrocyteEntity {key, bank_id, id, name, normalized, kind})
        -[:RELATES_TO {kind}]->
    (:AstrocyteEntity)

``key`` is :func:`node_key` of ``(bank_id, id)``: Community edition has no composite
node-key constraint, so one string property carries the uniqueness across banks.
Relation kinds are data (a property), never part of a query's text.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "COMPONENT",
    "SCHEMA_STATEMENTS",
    "SCHEMA_VERSION",
    "key_prefix",
    "node_key",
]

#: Bumped when the layout changes incompatibly; a database marked with a newer version
#: is refused rather than silently misread.
SCHEMA_VERSION = 1

#: Name of the marker node that records :data:`SCHEMA_VERSION` in the database.
COMPONENT = "astrocyte_neo4j"

#: Idempotent DDL, run in order on first use when the marker is missing or older.
#: Uniqueness constraints also give the index every key lookup seeks on.
SCHEMA_STATEMENTS: Sequence[str] = (
    "CREATE CONSTRAINT astrocyte_entity_key IF NOT EXISTS"
    " FOR (e:AstrocyteEntity) REQUIRE e.key IS UNIQUE",
    "CREATE CONSTRAINT astrocyte_memory_key IF NOT EXISTS"
    " FOR (m:AstrocyteMemory) REQUIRE m.key IS UNIQUE",
    "CREATE CONSTRAINT astrocyte_schema_component IF NOT EXISTS"
    " FOR (s:AstrocyteSchema) REQUIRE s.component IS UNIQUE",
    # find_entities: equality on bank and normalized name.
    "CREATE INDEX astrocyte_entity_bank_normalized IF NOT EXISTS"
    " FOR (e:AstrocyteEntity) ON (e.bank_id, e.normalized)",
)


def key_prefix(bank_id: str) -> str:
    """The part of every :func:`node_key` of a bank, so Cypher can form keys from ids
    with ``$prefix + id``. Length-prefixed, so no ``(bank, id)`` pair can collide."""
    return f"{len(bank_id)}:{bank_id}:"


def node_key(bank_id: str, item_id: str) -> str:
    """Unique key of a bank's entity or memory node."""
    return key_prefix(bank_id) + item_id
