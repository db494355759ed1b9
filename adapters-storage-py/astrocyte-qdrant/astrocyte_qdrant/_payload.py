"""How a :class:`~astrocyte.spi.VectorItem` becomes a Qdrant point, and a
:class:`~astrocyte.spi.RecordFilter` a Qdrant filter.

Layout (version :data:`LAYOUT_VERSION`), one point per (bank, memory):

=================== ========================= ================================================
payload field        index                     holds
=================== ========================= ================================================
``bank_id``          keyword, ``is_tenant``    the bank; every request filters on it
``memory_id``        none                      our id, since the point id is a hash of it
``tags``             keyword                   the tags (a "has all" filter is one match each)
``occurred_at_us``   integer (range)           ``occurred_at`` in microseconds since the epoch
``meta``             keyword                   one type-tagged ``[key, value]`` string per key
``v``                none                      the layout version, for future migrations
=================== ========================= ================================================
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from astrocyte.spi import MetadataValue, RecordFilter, VectorItem
from qdrant_client.http import models as qm

LAYOUT_VERSION = 1

BANK = "bank_id"
MEMORY_ID = "memory_id"
TAGS = "tags"
OCCURRED = "occurred_at_us"
META = "meta"
VERSION = "v"

#: The payload indexes every collection gets (field -> (type, index parameters)),
#: checked and created idempotently. ``is_tenant`` makes the server keep each bank's
#: points together on disk, the layout Qdrant recommends for many tenants in one
#: collection; only ranges are asked of ``occurred_at_us``, never exact lookups.
INDEXES: dict[str, tuple[qm.PayloadSchemaType, qm.PayloadSchemaParams]] = {
    BANK: (
        qm.PayloadSchemaType.KEYWORD,
        qm.KeywordIndexParams(type=qm.KeywordIndexType.KEYWORD, is_tenant=True),
    ),
    TAGS: (qm.PayloadSchemaType.KEYWORD, qm.KeywordIndexParams(type=qm.KeywordIndexType.KEYWORD)),
    META: (qm.PayloadSchemaType.KEYWORD, qm.KeywordIndexParams(type=qm.KeywordIndexType.KEYWORD)),
    OCCURRED: (
        qm.PayloadSchemaType.INTEGER,
        qm.IntegerIndexParams(type=qm.IntegerIndexType.INTEGER, lookup=False, range=True),
    ),
}

# Fixed forever: changing it would orphan every stored point.
_POINT_NAMESPACE = uuid.UUID("5b0f5c1e-6d55-4f0e-9a43-4a2f2d0c1a77")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def point_id(bank_id: str, memory_id: str) -> str:
    """The point id of a memory: Qdrant only takes UUIDs or integers, and the same
    memory id may live in several banks of the one collection, so the bank is part of
    the hash. The length prefix keeps ``("a:b", "c")`` and ``("a", "b:c")`` apart."""
    return str(uuid.uuid5(_POINT_NAMESPACE, f"{len(bank_id)}:{bank_id}:{memory_id}"))


def micros(when: datetime) -> int:
    """Whole microseconds since the Unix epoch; exact, unlike a float timestamp."""
    delta = when - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def typed_value(value: MetadataValue) -> str:
    """A string equal for two values exactly when :func:`astrocyte.spi.metadata_equal`
    says they are equal: booleans, numbers, strings and null get distinct prefixes, and
    an integral float is written as the integer it equals (so ``1 == 1.0``, while
    ``True``, ``1`` and ``"1"`` stay three different strings)."""
    if value is None:
        return "z:"
    if isinstance(value, bool):
        return "b:true" if value else "b:false"
    if isinstance(value, int):
        return f"n:{value}"
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer():
            return f"n:{int(value)}"
        return f"n:{value!r}"
    return f"s:{value}"


def meta_entry(key: str, value: MetadataValue) -> str:
    """One element of the ``meta`` keyword array; JSON keeps any key unambiguous."""
    return json.dumps([key, typed_value(value)], ensure_ascii=False, separators=(",", ":"))


def payload(item: VectorItem) -> dict[str, object]:
    """The payload stored with ``item``'s point."""
    body: dict[str, object] = {
        BANK: item.bank_id,
        MEMORY_ID: item.id,
        TAGS: list(dict.fromkeys(item.tags)),
        META: [meta_entry(k, v) for k, v in item.metadata.items()],
        VERSION: LAYOUT_VERSION,
    }
    if item.occurred_at is not None:
        body[OCCURRED] = micros(item.occurred_at)
    return body


def bank_filter(bank_id: str) -> qm.Filter:
    """Only the points of one bank."""
    return qm.Filter(must=[_match(BANK, bank_id)])


def search_filter(bank_id: str, where: RecordFilter | None) -> qm.Filter:
    """The bank plus every condition of ``where`` (all must hold)."""
    must: list[qm.Condition] = [_match(BANK, bank_id)]
    if where is None:
        return qm.Filter(must=must)
    must.extend(_match(TAGS, tag) for tag in dict.fromkeys(where.tags))
    if where.time_from is not None or where.time_to is not None:
        # A point without occurred_at_us fails a range condition, as the SPI requires.
        must.append(
            qm.FieldCondition(
                key=OCCURRED,
                range=qm.Range(
                    gte=micros(where.time_from) if where.time_from is not None else None,
                    lt=micros(where.time_to) if where.time_to is not None else None,
                ),
            )
        )
    must.extend(_match(META, meta_entry(k, v)) for k, v in where.metadata.items())
    if where.ids is not None:
        must.append(qm.HasIdCondition(has_id=point_ids(bank_id, sorted(where.ids))))
    return qm.Filter(must=must)


def point_ids(bank_id: str, memory_ids: Sequence[str]) -> list[qm.ExtendedPointId]:
    """Point ids of ``memory_ids`` in the bank, in the given order."""
    return [point_id(bank_id, m) for m in memory_ids]


def memory_id_of(body: Mapping[str, object] | None) -> str:
    """Our id back from a point's payload."""
    value = (body or {}).get(MEMORY_ID)
    if not isinstance(value, str):
        raise ValueError("point payload has no memory_id")
    return value


def _match(key: str, value: str) -> qm.FieldCondition:
    return qm.FieldCondition(key=key, match=qm.MatchValue(value=value))
