"""The ingest payload: how one pushed or consumed event becomes retain items.

Every ingest path (signed webhooks, stream consumers, pollers) accepts the same JSON
object, so a producer can switch transport without changing what it sends:

* ``content`` (a non-empty string, with optional ``content_type``) **or** ``turns``
  (a list of ``{speaker, text, turn_id?, timestamp?}``);
* optional ``metadata`` (an object of scalars), ``tags`` (strings), ``occurred_at`` /
  ``timestamp`` (ISO 8601), and ``bank_id`` when the source has no
  ``target_bank_template``.

Reserved metadata keys (:data:`SOURCE_METADATA_KEY`, :data:`IDEMPOTENCY_METADATA_KEY`)
are set here and cannot be forged by the sender. Every problem is a
:class:`PayloadError` naming what is wrong, raised before anything is stored.
"""

from __future__ import annotations

import json
import string
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from astrocyte.errors import ValidationError
from astrocyte.pipeline.dialogue import chunk_dialogue, turns_from_records
from astrocyte.spi import MetadataValue
from astrocyte.validation import bank_id as valid_bank_id

__all__ = [
    "IDEMPOTENCY_METADATA_KEY",
    "SOURCE_METADATA_KEY",
    "PayloadError",
    "PayloadSettings",
    "parse_payload",
    "retain_items",
    "target_bank",
]

IDEMPOTENCY_METADATA_KEY = "idempotency_key"
"""Metadata key under which every memory of an event records ``<source>:<key>``."""
SOURCE_METADATA_KEY = "ingest_source"
"""Metadata key naming the source a memory arrived through."""


class PayloadError(ValueError):
    """The payload is not JSON, not a known shape, or names no valid bank."""


class PayloadSettings(Protocol):
    """What the mapping needs to know about the source (a webhook's or a stream's
    settings both qualify)."""

    @property
    def source_id(self) -> str: ...

    @property
    def target_bank_template(self) -> str | None: ...

    @property
    def max_chunk_chars(self) -> int: ...

    @property
    def tags(self) -> tuple[str, ...]: ...


def parse_payload(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PayloadError(f"body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise PayloadError("body must be a JSON object")
    return payload


def _lookup(payload: Mapping[str, Any], dotted: str) -> object:
    value: object = payload
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def target_bank(settings: PayloadSettings, payload: Mapping[str, Any]) -> str:
    """The bank: the template filled from the payload, else the payload's
    ``bank_id`` (allowed because the payload is signed by the source's secret)."""
    template = settings.target_bank_template
    if template is None:
        bank = payload.get("bank_id")
        if bank is None:
            raise PayloadError(
                "no target bank: the source has no target_bank_template and the "
                "payload has no bank_id"
            )
    else:
        bank = ""
        for literal, name, _spec, _conv in string.Formatter().parse(template):
            bank += literal
            if name is None:
                continue
            if name == "source":
                value: object = settings.source_id
            elif name == "date":
                value = datetime.now(UTC).date().isoformat()
            elif name.startswith("payload."):
                value = _lookup(payload, name.removeprefix("payload."))
            else:  # principal, agent, user, tenant, metadata.<key>: payload fields
                value = _lookup(payload, name)
            if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
                raise PayloadError(
                    f"target bank template {template!r} needs payload field {name!r} "
                    "(a non-empty string or integer)"
                )
            bank += str(value)
    try:
        return valid_bank_id(bank)
    except ValidationError as exc:
        raise PayloadError(str(exc)) from None


def _scalar_metadata(payload: Mapping[str, Any]) -> dict[str, MetadataValue]:
    meta = payload.get("metadata")
    if meta is None:
        return {}
    if not isinstance(meta, Mapping):
        raise PayloadError("metadata must be an object of scalar values")
    out: dict[str, MetadataValue] = {}
    for k, val in meta.items():
        if val is not None and not isinstance(val, str | int | float | bool):
            raise PayloadError(f"metadata.{k} must be a string, number, boolean or null")
        out[str(k)] = val
    return out


def retain_items(
    settings: PayloadSettings, payload: Mapping[str, Any], key: str | None
) -> list[dict[str, Any]]:
    """Retain items for a transcript (``turns``: one item per turn-preserving chunk) or a
    document (``content``: one item). ``key`` (namespaced by source) becomes every
    item's ``source`` and the ``idempotency_key`` metadata."""
    base_meta = _scalar_metadata(payload)
    for reserved in (IDEMPOTENCY_METADATA_KEY, SOURCE_METADATA_KEY):
        base_meta.pop(reserved, None)  # the sender must not forge these
    base_meta[SOURCE_METADATA_KEY] = settings.source_id
    if key is not None:
        base_meta[IDEMPOTENCY_METADATA_KEY] = key
    tags = payload.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise PayloadError("tags must be a list of strings")
    all_tags = list(dict.fromkeys([*settings.tags, *tags]))
    occurred_at = payload.get("occurred_at", payload.get("timestamp"))
    source = key  # every chunk of one event shares the event as its source_id

    if "turns" in payload:
        try:
            turns = turns_from_records(payload["turns"])
        except ValidationError as exc:
            raise PayloadError(str(exc)) from None
        if not turns:
            raise PayloadError("turns has no turn with text")
        items: list[dict[str, Any]] = []
        for chunk in chunk_dialogue(turns, max_chars=settings.max_chunk_chars):
            # Metadata values must be scalars so every store can filter on them:
            # lists of speakers and turn ids are comma-joined.
            meta: dict[str, MetadataValue] = {
                **base_meta,
                "speakers": ",".join(chunk.speakers),
                "turn_ids": ",".join(chunk.turn_ids),
            }
            if chunk.partial:
                meta["partial_turn"] = True
            items.append(
                {
                    "content": chunk.text,
                    "metadata": meta,
                    "tags": all_tags or None,
                    "occurred_at": chunk.first_timestamp or occurred_at,
                    "source": source,
                    "content_type": "text",
                }
            )
        return items
    content = payload.get("content")
    if isinstance(content, str) and content.strip():
        content_type = payload.get("content_type", "text")
        if not isinstance(content_type, str):
            raise PayloadError("content_type must be a string")
        return [
            {
                "content": content,
                "metadata": base_meta,
                "tags": all_tags or None,
                "occurred_at": occurred_at,
                "source": source,
                "content_type": content_type,
            }
        ]
    raise PayloadError(
        "payload needs 'turns' (a list of {speaker, text}) or a non-empty 'content' string"
    )
