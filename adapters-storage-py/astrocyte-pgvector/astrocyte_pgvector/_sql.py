"""Value codecs and the SQL of a :class:`~astrocyte.spi.RecordFilter`.

Every user value reaches PostgreSQL as a bind parameter; the only text spliced into
SQL is our own (column names, ``$n`` placeholders, validated integers).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
from astrocyte.spi import MetadataValue, RecordFilter

_VECTOR_HEADER = struct.Struct(">HH")


def encode_vector(vector: npt.NDArray[np.float32]) -> bytes:
    """pgvector's binary wire format: dimension, unused, big-endian float32s."""
    arr = np.asarray(vector, dtype=">f4")
    return _VECTOR_HEADER.pack(arr.shape[0], 0) + arr.tobytes()


def decode_vector(data: bytes) -> npt.NDArray[np.float32]:
    """Inverse of :func:`encode_vector`."""
    dim, _ = _VECTOR_HEADER.unpack_from(data)
    out: npt.NDArray[np.float32] = np.frombuffer(
        data, dtype=">f4", count=dim, offset=_VECTOR_HEADER.size
    ).astype(np.float32)
    return out


def dump_metadata(metadata: Mapping[str, MetadataValue]) -> str:
    """Metadata as JSON text; stored verbatim so ``1.0`` stays a float and ``1`` an int."""
    return json.dumps(dict(metadata), ensure_ascii=False, allow_nan=False)


def load_metadata(text: str) -> dict[str, MetadataValue]:
    """Inverse of :func:`dump_metadata`."""
    loaded: dict[str, MetadataValue] = json.loads(text)
    return loaded


class Params:
    """Bind parameters collected while building a statement."""

    def __init__(self, *initial: Any) -> None:
        self.values: list[Any] = list(initial)

    def add(self, value: Any) -> str:
        """Append ``value``; returns its placeholder (``$n``)."""
        self.values.append(value)
        return f"${len(self.values)}"


def filter_clauses(
    where: RecordFilter | None, params: Params, *, metadata_column: str
) -> list[str]:
    """SQL conditions (to AND together) for ``where``.

    Metadata uses jsonb containment, whose equality is JSON-typed exactly like
    :func:`astrocyte.spi.metadata_equal`: numbers compare numerically (``1`` = ``1.0``),
    ``true`` never equals ``1``, ``"1"`` never equals ``1``, ``null`` only ``null``.
    """
    if where is None or where.is_empty():
        return []
    clauses: list[str] = []
    if where.ids is not None:
        clauses.append(f"id = ANY({params.add(list(where.ids))}::text[])")
    if where.tags:
        clauses.append(f"tags @> {params.add(list(dict.fromkeys(where.tags)))}::text[]")
    if where.time_from is not None:
        clauses.append(f"occurred_at >= {params.add(where.time_from)}")
    if where.time_to is not None:
        clauses.append(f"occurred_at < {params.add(where.time_to)}")
    if where.metadata:
        clauses.append(f"{metadata_column} @> {params.add(dump_metadata(where.metadata))}::jsonb")
    return clauses
