"""Haystack adapters (``pip install "astrocyte[haystack]"``).

- :class:`AstrocyteRetriever` — a Haystack ``@component`` retriever over
  ``Astrocyte.recall`` (it follows Haystack's ``TextRetriever`` protocol:
  ``run(query, filters=None, top_k=None)`` → ``{"documents": [...]}``).
- :class:`AstrocyteWriter` — a ``@component`` that retains documents
  (``run(documents)`` → ``{"documents_written": n}``), so a pipeline can write memory.

Both have ``run`` and ``run_async``, so they work in ``Pipeline`` and ``AsyncPipeline``:
``run_async`` awaits the facade on the pipeline's loop; ``run`` uses the shared private
background loop. Prefer one style per ``Astrocyte`` instance.

**Mapping.** A component works on one bank (the retriever may also search several:
``banks=[...]``). The writer retains each document's ``content`` as one memory (chunked
if long) with the document's ``meta`` as its metadata (flat JSON scalars, as for any
retain), and the document ``id`` as both the source id and the idempotency key: writing
the same document again stores nothing (counted as not written). Each recall hit comes
back as a ``Document`` whose ``id`` is the memory id, ``content`` the memory text,
``score`` the fused recall score and ``meta`` the hit's provenance: ``memory_id``,
``bank_id``, ``score``, ``origin``, ``source_id`` (the written document's id),
``chunk_index``, ``content_type``, ``occurred_at``, ``created_at``, ``tags`` and
``metadata`` (the written document's ``meta``).

**Filters.** Haystack filters are translated to recall's hard metadata filters. Supported:
``{"field": "meta.metadata.<key>", "operator": "==", "value": <scalar>}`` (the layout of
the documents the retriever returns) and ``AND`` of such conditions. Values compare as
JSON values (``True`` does not equal ``1``; ``1`` equals ``1.0``). Anything else raises
Haystack's ``FilterError`` rather than being silently ignored.

**Identity.** Each component runs every call as its ``context`` (default: the local
single user), checked against ``access_grants``: the retriever needs ``read``, the writer
``write``. A denied call raises :class:`~astrocyte.AccessDenied`, which the pipeline
reports as a failure of that component.

**Limits.** Documents without text content are refused (``ValueError``); ``embedding``
and ``blob`` are not stored (Astrocyte embeds the text itself). The writer has no
``DuplicatePolicy``: duplicates by id are always skipped, never overwritten. The
components cannot be serialised (``to_dict`` raises ``SerializationError``): they wrap a
live ``Astrocyte`` instance (open stores, perhaps credentials in its config), so a
pipeline using them is built in code, not loaded from YAML.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

try:
    from haystack import Document, component
    from haystack.core.errors import DeserializationError, SerializationError
    from haystack.errors import FilterError
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        'astrocyte.integrations.haystack needs haystack-ai: pip install "astrocyte[haystack]"'
    ) from exc

from astrocyte.brain import Astrocyte
from astrocyte.errors import BankNotFound
from astrocyte.identity.context import AstrocyteContext
from astrocyte.integrations.common import hit_metadata, run_sync
from astrocyte.spi import MetadataValue
from astrocyte.types import RecallHit

__all__ = ["AstrocyteRetriever", "AstrocyteWriter", "to_recall_filters"]

_META_PREFIX = "meta.metadata."
_NOT_SERIALISABLE = (
    "{name} wraps a live Astrocyte instance and cannot be serialised; build the pipeline "
    "in code and pass the instance"
)


def to_recall_filters(filters: dict[str, Any] | None) -> dict[str, MetadataValue] | None:
    """Haystack ``filters`` as recall's metadata equality filters (``None``: no filter).

    Accepts ``==`` on ``meta.metadata.<key>`` with a scalar value and ``AND`` of such
    conditions (nested ``AND`` too). Raises ``FilterError`` for anything else, and when
    one key must equal two different values (no memory could match: say so rather than
    quietly returning nothing)."""
    if not filters:
        return None
    out: dict[str, MetadataValue] = {}

    def visit(condition: Any) -> None:
        if not isinstance(condition, dict):
            raise FilterError(f"a filter condition must be a dict, got {condition!r}")
        operator = condition.get("operator")
        if "conditions" in condition:
            if operator != "AND" or not isinstance(condition["conditions"], list):
                raise FilterError(
                    f"AstrocyteRetriever supports only AND of conditions, got {operator!r}"
                )
            for sub in condition["conditions"]:
                visit(sub)
            return
        field, value = condition.get("field"), condition.get("value")
        if (
            operator != "=="
            or not isinstance(field, str)
            or not field.startswith(_META_PREFIX)
            or len(field) == len(_META_PREFIX)
        ):
            raise FilterError(
                "AstrocyteRetriever supports only '==' on 'meta.metadata.<key>' (and AND of "
                f"such conditions), got {condition!r}"
            )
        if value is not None and not isinstance(value, str | int | float | bool):
            raise FilterError(f"filter value of {field!r} must be a JSON scalar, got {value!r}")
        key = field[len(_META_PREFIX) :]
        if key in out and out[key] != value:
            raise FilterError(f"{field!r} cannot equal both {out[key]!r} and {value!r}")
        out[key] = value

    visit(filters)
    return out


def _document(hit: RecallHit) -> Document:
    return Document(id=hit.memory_id, content=hit.text, meta=hit_metadata(hit), score=hit.score)


@component
class AstrocyteRetriever:
    """Retrieves memories from Astrocyte as Haystack ``Document``\\ s.

    ``AstrocyteRetriever(brain, "alice", top_k=5, context=ctx)``; ``banks=[...]`` searches
    several banks instead of one; ``tags`` restricts every recall to memories carrying
    all of them. See the module docstring for the document layout and filters."""

    def __init__(
        self,
        brain: Astrocyte,
        bank_id: str | None = None,
        *,
        banks: Sequence[str] | None = None,
        top_k: int = 5,
        tags: Sequence[str] | None = None,
        context: AstrocyteContext | None = None,
    ) -> None:
        if top_k < 0:
            raise ValueError(f"top_k must be at least 0, got {top_k}")
        self.brain = brain
        self.bank_id = bank_id
        self.banks = list(banks) if banks is not None else None
        self.top_k = top_k
        self.tags = list(tags) if tags is not None else None
        self.context = context

    @component.output_types(documents=list[Document])
    def run(
        self, query: str, filters: dict[str, Any] | None = None, top_k: int | None = None
    ) -> dict[str, list[Document]]:
        """Recall up to ``top_k`` (default: the instance's) memories for ``query``, best
        first, as documents. Needs ``read``."""
        return {"documents": run_sync(self._retrieve(query, filters, top_k))}

    @component.output_types(documents=list[Document])
    async def run_async(
        self, query: str, filters: dict[str, Any] | None = None, top_k: int | None = None
    ) -> dict[str, list[Document]]:
        """Asynchronous :meth:`run`."""
        return {"documents": await self._retrieve(query, filters, top_k)}

    async def _retrieve(
        self, query: str, filters: dict[str, Any] | None, top_k: int | None
    ) -> list[Document]:
        limit = self.top_k if top_k is None else top_k
        if limit < 0:
            raise ValueError(f"top_k must be at least 0, got {limit}")
        where = to_recall_filters(filters)  # invalid filters fail even when top_k is 0
        if limit == 0:
            return []
        try:
            result = await self.brain.recall(
                query,
                self.bank_id,
                banks=self.banks,
                max_results=limit,
                tags=self.tags,
                filters=where,
                context=self.context,
            )
        except BankNotFound:
            # Nothing written yet; raised only after the read check, so denials still raise.
            return []
        return [_document(hit) for hit in result.hits]

    def to_dict(self) -> dict[str, Any]:
        """Not supported: raises ``SerializationError`` (see the module docstring)."""
        raise SerializationError(_NOT_SERIALISABLE.format(name=type(self).__name__))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AstrocyteRetriever:
        """Not supported: raises ``DeserializationError`` (see the module docstring)."""
        raise DeserializationError(_NOT_SERIALISABLE.format(name=cls.__name__))


@component
class AstrocyteWriter:
    """Writes Haystack ``Document``\\ s into an Astrocyte bank.

    ``AstrocyteWriter(brain, "alice", context=ctx)``; ``tags`` are added to every memory
    written. Idempotent by document id (see the module docstring)."""

    def __init__(
        self,
        brain: Astrocyte,
        bank_id: str | None = None,
        *,
        tags: Sequence[str] | None = None,
        context: AstrocyteContext | None = None,
    ) -> None:
        self.brain = brain
        self.bank_id = bank_id
        self.tags = list(tags) if tags is not None else None
        self.context = context

    @component.output_types(documents_written=int)
    def run(self, documents: list[Document]) -> dict[str, int]:
        """Retain ``documents`` in one all-or-nothing batch; answers how many were new.
        Needs ``write``."""
        return {"documents_written": run_sync(self._write(documents))}

    @component.output_types(documents_written=int)
    async def run_async(self, documents: list[Document]) -> dict[str, int]:
        """Asynchronous :meth:`run`."""
        return {"documents_written": await self._write(documents)}

    async def _write(self, documents: list[Document]) -> int:
        # Mappings, not RetainItem: the facade validates them and names the bad field.
        items: list[dict[str, Any]] = []
        for doc in documents:
            if not isinstance(doc, Document):
                raise TypeError(f"AstrocyteWriter expects Documents, got {type(doc).__name__}")
            if not doc.content:
                raise ValueError(f"document {doc.id!r} has no text content to retain")
            items.append(
                {
                    "content": doc.content,
                    "metadata": dict(doc.meta) or None,
                    "tags": self.tags,
                    "source": doc.id,
                    "idempotency_key": doc.id,
                }
            )
        if not items:
            return 0
        batch = await self.brain.retain_many(items, self.bank_id, context=self.context)
        return sum(1 for result in batch.results if not result.deduplicated)

    def to_dict(self) -> dict[str, Any]:
        """Not supported: raises ``SerializationError`` (see the module docstring)."""
        raise SerializationError(_NOT_SERIALISABLE.format(name=type(self).__name__))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AstrocyteWriter:
        """Not supported: raises ``DeserializationError`` (see the module docstring)."""
        raise DeserializationError(_NOT_SERIALISABLE.format(name=cls.__name__))
