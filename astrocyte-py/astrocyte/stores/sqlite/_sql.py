"""SQL building blocks of the embedded store: value encoding, filters, FTS queries."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from astrocyte.spi import MetadataValue, RecordFilter
from astrocyte.stores.text import keyword_terms

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def to_micros(when: datetime) -> int:
    """Exact microseconds since the Unix epoch of an aware datetime."""
    return (when - _EPOCH) // _MICROSECOND


def from_micros(micros: int) -> datetime:
    """The aware UTC datetime of :func:`to_micros` output."""
    return _EPOCH + timedelta(microseconds=micros)


def opt_micros(when: datetime | None) -> int | None:
    """:func:`to_micros`, passing ``None`` through."""
    return None if when is None else to_micros(when)


# One encoder for every call: json.dumps with options builds a new encoder each time,
# which is measurable when a retain batch writes tens of thousands of rows.
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


def dump_tags(tags: Iterable[str]) -> str:
    """Tags as a compact JSON array."""
    listed = list(tags)
    return _encode(listed) if listed else "[]"


def dump_metadata(metadata: Mapping[str, MetadataValue]) -> str:
    """Metadata as a compact JSON object (values are already validated scalars)."""
    if not metadata:
        return "{}"
    return _encode(metadata if isinstance(metadata, dict) else dict(metadata))


def load_tags(raw: str) -> tuple[str, ...]:
    """Inverse of :func:`dump_tags`."""
    return () if raw == "[]" else tuple(json.loads(raw))


def load_metadata(raw: str) -> dict[str, MetadataValue]:
    """Inverse of :func:`dump_metadata`."""
    if raw == "{}":
        return {}
    loaded: dict[str, MetadataValue] = json.loads(raw)
    return loaded


def load_many(raws: list[str]) -> list[Any]:
    """Parse many JSON documents with one parser call (far faster than one call each)."""
    if not raws:
        return []
    parsed: list[Any] = json.loads("[" + ",".join(raws) + "]")
    return parsed


def id_list(ids: Iterable[str]) -> str:
    """A JSON array for ``IN (SELECT value FROM json_each(?))``.

    One parameter whatever the length, so large id lists never hit SQLite's
    bound-parameter limit and statements stay cacheable.
    """
    return json.dumps(list(ids), ensure_ascii=False)


def fts_phrases(query: str) -> list[str]:
    """The words of free text ``query`` as FTS5 phrases (stopwords dropped).

    Every word becomes a double-quoted phrase, so no FTS5 syntax in the user's text
    (``AND``, ``NEAR(``, ``*``, ``-``, ``:``, parentheses, quotes) is ever interpreted.
    FTS5 tokenises the inside of each phrase with the index's own tokenizer.
    """
    return ['"' + term.replace('"', '""') + '"' for term in keyword_terms(query)]


def fts_query(query: str) -> str | None:
    """A safe FTS5 MATCH expression for free text, or ``None`` if nothing is left.

    The phrases of :func:`fts_phrases` are OR-ed, so any of them may match and BM25
    does the ranking.
    """
    phrases = fts_phrases(query)
    return " OR ".join(phrases) if phrases else None


def _metadata_clause(column: str, key: str, value: MetadataValue, params: list[object]) -> str:
    # json_type tells true/false apart from 1/0 and text from numbers, which
    # json_extract alone cannot (it returns 1 for both true and 1).
    if '"' in key or "\\" in key:
        # A quoted JSON path cannot express these keys; json_each can, more slowly.
        params.append(key)
        source = f"(SELECT type, value FROM json_each({column}) WHERE key = ?)"
        type_expr, value_expr = "j.type", "j.value"
        wrap = f"EXISTS (SELECT 1 FROM {source} AS j WHERE {{cond}})"
    else:
        path = f'$."{key}"'
        params_path = [path]
        type_expr = f"json_type({column}, ?)"
        value_expr = f"json_extract({column}, ?)"
        wrap = "({cond})"
        if value is None or isinstance(value, bool):
            params.extend(params_path)
        else:
            params.extend(params_path * 2)
    if value is None:
        cond = f"{type_expr} = 'null'"
    elif isinstance(value, bool):
        cond = f"{type_expr} = '{'true' if value else 'false'}'"
    elif isinstance(value, str):
        cond = f"{type_expr} = 'text' AND {value_expr} = ?"
        params.append(value)
    else:
        cond = f"{type_expr} IN ('integer', 'real') AND {value_expr} = ?"
        params.append(value)
    return wrap.format(cond=cond)


def filter_sql(
    where: RecordFilter | None, bank_id: str, *, alias: str = "m"
) -> tuple[str, list[object]]:
    """``AND ...`` conditions (possibly empty) restricting ``memories`` rows to ``where``.

    Semantics match :func:`astrocyte.stores.memory.filter_matches`: tags AND-ed,
    ``occurred_at`` in ``[time_from, time_to)`` (NULL never matches), JSON-typed
    metadata equality, id membership.
    """
    if where is None or where.is_empty():
        return "", []
    clauses: list[str] = []
    params: list[object] = []
    if where.ids is not None:
        clauses.append(f"{alias}.id IN (SELECT value FROM json_each(?))")
        params.append(id_list(where.ids))
    for tag in dict.fromkeys(where.tags):
        # Uncorrelated, so SQLite can drive the lookup from the (bank, tag) index.
        clauses.append(
            f"{alias}.id IN (SELECT memory_id FROM memory_tags WHERE bank_id = ? AND tag = ?)"
        )
        params.extend((bank_id, tag))
    if where.time_from is not None:
        clauses.append(f"{alias}.occurred_at >= ?")
        params.append(to_micros(where.time_from))
    if where.time_to is not None:
        clauses.append(f"{alias}.occurred_at < ?")
        params.append(to_micros(where.time_to))
    for key, value in where.metadata.items():
        clauses.append(_metadata_clause(f"{alias}.metadata", key, value, params))
    return "".join(f" AND {c}" for c in clauses), params
