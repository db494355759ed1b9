"""How a memory becomes an index document and a RecordFilter becomes query DSL.

The document keeps the exact record as one JSON string (``payload``, stored, never
indexed) so every field round-trips bit for bit, and indexes derived fields for
filtering: ``tags``, ``meta`` (type-tagged key/value keywords), ``occurred_us``
(microseconds since the epoch: Elasticsearch dates stop at milliseconds, the filters
need microseconds) and ``content_hash``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

from astrocyte.spi import MemoryRecord, MetadataValue, RecordFilter

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)

#: Keyword values longer than this (UTF-8 bytes) are indexed as a digest: Lucene
#: refuses terms over 32,766 bytes, and equality on a digest is still exact.
MAX_KEYWORD_BYTES = 512

Query = dict[str, Any]


def doc_id(bank_id: str, memory_id: str) -> str:
    """The ``_id`` of a memory: a digest of (bank, id), so any id fits the 512-byte
    ``_id`` limit and the same memory id in two banks never collides."""
    raw = hashlib.sha256(f"{bank_id}\x00{memory_id}".encode()).digest()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def bank_doc_id(bank_id: str) -> str:
    """The ``_id`` of a bank's registry document."""
    return doc_id("\x00bank", bank_id)


def keyword(value: str) -> str:
    """An indexable keyword for ``value``: itself, or a digest when too long."""
    raw = value.encode()
    if len(raw) <= MAX_KEYWORD_BYTES:
        return value
    return "\x00sha256:" + hashlib.sha256(raw).hexdigest()


def tagged(value: MetadataValue) -> str:
    """``value`` with its JSON type, so the keyword equality is :func:`metadata_equal`:
    ``True`` -> ``b:true``, ``1`` and ``1.0`` -> ``n:1``, ``"1"`` -> ``s:1``."""
    if isinstance(value, bool):
        return "b:true" if value else "b:false"
    if value is None:
        return "null"
    if isinstance(value, str):
        return "s:" + value
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer():
            # 1.0 must meet 1; int() is exact for every integral float.
            return f"n:{int(value)}"
        return f"n:{value!r}"
    return f"n:{int(value)}"


def meta_term(key: str, value: MetadataValue) -> str:
    """The ``meta`` keyword of one metadata entry. The key's length prefix keeps any
    key/value split unambiguous whatever characters the key holds."""
    return keyword(f"{len(key)}:{key}={tagged(value)}")


def micros(when: datetime) -> int:
    """Exact microseconds since the epoch (integer arithmetic, no float rounding)."""
    return (when - _EPOCH) // _MICRO


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.astimezone(UTC).isoformat()


def _from_iso(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text).astimezone(UTC)


def to_payload(record: MemoryRecord) -> str:
    """The record as the JSON string kept in ``payload`` (the source of truth)."""
    return json.dumps(
        {
            "id": record.id,
            "bank_id": record.bank_id,
            "text": record.text,
            "source_id": record.source_id,
            "chunk_index": record.chunk_index,
            "content_type": record.content_type,
            "created_at": _iso(record.created_at),
            "occurred_at": _iso(record.occurred_at),
            "tags": list(record.tags),
            "metadata": dict(record.metadata),
            "content_hash": record.content_hash,
        },
        ensure_ascii=False,
        allow_nan=False,
    )


def from_payload(payload: str) -> MemoryRecord:
    """Rebuild the record from its ``payload``; datetimes come back in UTC."""
    data = json.loads(payload)
    created = _from_iso(data["created_at"])
    assert created is not None
    return MemoryRecord(
        id=data["id"],
        bank_id=data["bank_id"],
        text=data["text"],
        source_id=data["source_id"],
        chunk_index=data["chunk_index"],
        content_type=data["content_type"],
        created_at=created,
        occurred_at=_from_iso(data["occurred_at"]),
        tags=tuple(data["tags"]),
        metadata=data["metadata"],
        content_hash=data["content_hash"],
    )


def to_document(record: MemoryRecord, indexed_text: str, stored_us: int) -> dict[str, Any]:
    """The index document of ``record``; ``indexed_text`` is what the ``text`` field
    analyses (the text itself, or its client-side tokens)."""
    return {
        "bank_id": record.bank_id,
        "memory_id": record.id,
        "doc_key": doc_id(record.bank_id, record.id),
        "text": indexed_text,
        "tags": [keyword(t) for t in dict.fromkeys(record.tags)],
        "meta": [meta_term(k, v) for k, v in record.metadata.items()],
        "occurred_us": None if record.occurred_at is None else micros(record.occurred_at),
        "content_hash": keyword(record.content_hash) if record.content_hash else None,
        "stored_us": stored_us,
        "payload": to_payload(record),
    }


def bank_filter(bank_id: str) -> Query:
    """The clause every memory query carries: nothing ever crosses banks."""
    return {"term": {"bank_id": bank_id}}


def filter_clauses(bank_id: str, where: RecordFilter | None) -> list[Query]:
    """Filter-context clauses (no scoring) for the bank plus ``where``, ANDed."""
    clauses: list[Query] = [bank_filter(bank_id)]
    if where is None:
        return clauses
    if where.ids is not None:
        clauses.append({"ids": {"values": sorted(doc_id(bank_id, i) for i in where.ids)}})
    clauses.extend({"term": {"tags": keyword(tag)}} for tag in dict.fromkeys(where.tags))
    if where.time_from is not None or where.time_to is not None:
        bounds: dict[str, int] = {}
        if where.time_from is not None:
            bounds["gte"] = micros(where.time_from)
        if where.time_to is not None:
            bounds["lt"] = micros(where.time_to)
        # A range on the field also excludes memories without occurred_at.
        clauses.append({"range": {"occurred_us": bounds}})
    clauses.extend({"term": {"meta": meta_term(k, v)}} for k, v in where.metadata.items())
    return clauses
