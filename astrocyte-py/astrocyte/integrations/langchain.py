"""LangChain and LangGraph adapters (``pip install "astrocyte[langchain]"``).

- :class:`AstrocyteStore` — a LangGraph ``BaseStore`` (long-term memory of a graph:
  ``graph.compile(store=AstrocyteStore(brain))``).
- :class:`AstrocyteRetriever` — a LangChain ``BaseRetriever`` over ``recall``.
- :func:`make_memory_tools` — ``remember`` and ``recall`` as LangChain ``StructuredTool``\\ s
  for a tool-calling agent.

Every adapter wraps an :class:`astrocyte.Astrocyte` (the async facade) and an optional
``context``: each call runs as that caller and is checked against ``access_grants``
exactly as a direct call would be. The async entry points (``abatch``, ``ainvoke``, tool
``ainvoke``) await the facade on the caller's event loop; the sync ones run it on one
private background event loop (so they also work where a loop is already running, e.g.
a notebook). Within one process, prefer one of the two styles per ``Astrocyte``.

**Namespaces and banks.** A LangGraph namespace is a tuple of labels; the store keeps it
in the bank whose id is the labels joined with ``":"`` (``("users", "alice")`` →
``users:alice``). Labels must be 1+ letters, digits or ``_ @ -`` (no ``.`` — LangGraph
forbids it — and no ``:``, the separator), the first label must start with a letter or
digit, and the joined id must be at most 128 characters; anything else raises
LangGraph's ``InvalidNamespaceError``. Grants are therefore written on the joined id
(``users:*`` style patterns work as for any bank).

**Items.** ``put(namespace, key, value)`` forgets the memories holding ``key`` in that
bank, if any, and then retains one new item: its text (what recall embeds and searches) is
the JSON of the fields named by ``index`` (all of ``value`` by default), and its
metadata holds ``langgraph_key`` = the key plus the exact JSON of ``value`` (split in
parts of at most 4,000 characters, so values up to ~240 KB). A put of a new key needs
``write`` on the bank; replacing an existing key also needs ``forget`` (the old item is
forgotten), and so does ``delete``; ``get`` / ``search`` need ``read``;
``list_namespaces`` lists the banks the caller may read.

``get`` is exact: it looks the key up with a metadata filter through the document store
(after the same grant check and rate limit as a recall), never through ranking.
``search(prefix, query=...)`` is ``Astrocyte.recall`` over the readable banks under the
prefix (semantic + keyword fusion; ``SearchItem.score`` is the fused score); without a
query it lists the items, newest first. LangGraph's ``filter`` (equality and
``$eq/$ne/$gt/$gte/$lt/$lte`` on top-level value fields) is applied to the decoded
values. Memories retained into a bank by other means (without ``langgraph_key``) are
never returned as items.

Limits: ``created_at`` and ``updated_at`` are both the time of the latest put (a put
replaces the item); a put is forget-then-retain, not atomic, so two concurrent puts of
one key may both survive until the next put (``get`` returns the newest); TTLs are not
supported (``supports_ttl = False``); ``list_namespaces`` reports every readable bank,
including banks used without this store.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal, TypeVar

try:
    from langchain_core.callbacks import (
        AsyncCallbackManagerForRetrieverRun,
        CallbackManagerForRetrieverRun,
    )
    from langchain_core.documents import Document
    from langchain_core.retrievers import BaseRetriever
    from langchain_core.tools import BaseTool, StructuredTool
    from langgraph.store.base import (
        BaseStore,
        GetOp,
        InvalidNamespaceError,
        Item,
        ListNamespacesOp,
        MatchCondition,
        Op,
        PutOp,
        Result,
        SearchItem,
        SearchOp,
    )
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "astrocyte.integrations.langchain needs langchain-core and langgraph: "
        'pip install "astrocyte[langchain]"'
    ) from exc

from pydantic import ConfigDict, Field

from astrocyte.brain import Astrocyte
from astrocyte.errors import BankNotFound
from astrocyte.identity.access import storage_bank_id
from astrocyte.identity.context import LOCAL_CONTEXT, AstrocyteContext
from astrocyte.identity.patterns import Permission
from astrocyte.integrations.common import (
    RECALL_DESCRIPTION,
    REMEMBER_DESCRIPTION,
    MemoryTools,
    find_records,
    hit_metadata,
    recall_hits,
    run_sync,
)
from astrocyte.spi import MemoryRecord, MetadataValue, RecordFilter
from astrocyte.types import RecallHit

__all__ = [
    "KEY_FIELD",
    "AstrocyteRetriever",
    "AstrocyteStore",
    "bank_to_namespace",
    "make_memory_tools",
    "namespace_to_bank",
]

T = TypeVar("T")

#: Metadata field holding a LangGraph item's key.
KEY_FIELD = "langgraph_key"
_PARTS_FIELD = "langgraph_value_parts"
_PART_PREFIX = "langgraph_value_"
_PART_CHARS = 4000
_MAX_PARTS = 60
_SEPARATOR = ":"
_LABEL = re.compile(r"^[A-Za-z0-9_@-]+$")
_MAX_BANK_CHARS = 128


# --- namespaces ----------------------------------------------------------------------------


def namespace_to_bank(namespace: Sequence[str]) -> str:
    """The bank id of a LangGraph namespace: its labels joined with ``":"``.

    Raises ``InvalidNamespaceError`` for an empty namespace, a label that is not 1+
    letters, digits or ``_ @ -``, a first label not starting with a letter or digit, or
    a joined id over 128 characters."""
    labels = tuple(namespace)
    if not labels:
        raise InvalidNamespaceError("namespace cannot be empty")
    for label in labels:
        if not isinstance(label, str) or not _LABEL.match(label):
            raise InvalidNamespaceError(
                f"invalid namespace label {label!r} in {labels}: Astrocyte stores a "
                "namespace as a bank id, so labels must be 1+ letters, digits, '_', '@' or '-'"
            )
    if not labels[0][0].isalnum():
        raise InvalidNamespaceError(
            f"the first label of {labels} must start with a letter or digit (bank id rule)"
        )
    bank = _SEPARATOR.join(labels)
    if len(bank) > _MAX_BANK_CHARS:
        raise InvalidNamespaceError(
            f"namespace {labels} is {len(bank)} characters as a bank id, over {_MAX_BANK_CHARS}"
        )
    return bank


def bank_to_namespace(bank_id: str) -> tuple[str, ...]:
    """The namespace a bank id stands for (the inverse of :func:`namespace_to_bank`)."""
    return tuple(bank_id.split(_SEPARATOR))


def _matches_pattern(namespace: tuple[str, ...], condition: MatchCondition) -> bool:
    path = tuple(condition.path)
    if len(path) > len(namespace):
        return False
    part = namespace[: len(path)] if condition.match_type == "prefix" else namespace[-len(path) :]
    if not path:
        return True
    return all(p in ("*", n) for p, n in zip(path, part, strict=True))


# --- values --------------------------------------------------------------------------------


def _index_text(value: Mapping[str, Any], index: Literal[False] | list[str] | None) -> str:
    """The text recall searches for an item: the JSON of the indexed fields."""
    if isinstance(index, list) and index:
        picked = {field: value[field] for field in index if field in value}
        if picked:
            return json.dumps(picked, ensure_ascii=False, sort_keys=True, default=str)
    text = json.dumps(dict(value), ensure_ascii=False, sort_keys=True, default=str)
    return text if text.strip("{} ") else "{}"


def _value_metadata(key: str, value: Mapping[str, Any]) -> dict[str, MetadataValue]:
    encoded = json.dumps(dict(value), ensure_ascii=False, sort_keys=True)
    parts = [encoded[i : i + _PART_CHARS] for i in range(0, len(encoded), _PART_CHARS)] or [""]
    if len(parts) > _MAX_PARTS:
        raise ValueError(
            f"value of key {key!r} is {len(encoded)} characters of JSON, over the "
            f"{_MAX_PARTS * _PART_CHARS} this store keeps"
        )
    meta: dict[str, MetadataValue] = {KEY_FIELD: key, _PARTS_FIELD: len(parts)}
    for i, part in enumerate(parts):
        meta[f"{_PART_PREFIX}{i}"] = part
    return meta


def _decode_value(metadata: Mapping[str, MetadataValue]) -> dict[str, Any] | None:
    count = metadata.get(_PARTS_FIELD)
    if not isinstance(count, int) or isinstance(count, bool):
        return None
    text = "".join(str(metadata.get(f"{_PART_PREFIX}{i}", "")) for i in range(count))
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


_OPERATORS = {
    "$eq": lambda a, b: a == b,
    "$ne": lambda a, b: a != b,
    "$gt": lambda a, b: a > b,
    "$gte": lambda a, b: a >= b,
    "$lt": lambda a, b: a < b,
    "$lte": lambda a, b: a <= b,
}


def _passes(value: Mapping[str, Any], where: Mapping[str, Any] | None) -> bool:
    """LangGraph filter semantics on top-level fields of ``value``."""
    for field, condition in (where or {}).items():
        actual = value.get(field)
        if (
            isinstance(condition, Mapping)
            and condition
            and all(isinstance(k, str) and k.startswith("$") for k in condition)
        ):
            for op, expected in condition.items():
                test = _OPERATORS.get(op)
                if test is None:
                    raise ValueError(f"unsupported filter operator {op!r}")
                try:
                    if not test(actual, expected):
                        return False
                except TypeError:
                    return False
        elif actual != condition:
            return False
    return True


# --- LangGraph store -----------------------------------------------------------------------


class AstrocyteStore(BaseStore):
    """LangGraph long-term memory backed by Astrocyte banks (see the module docstring
    for the namespace → bank mapping and item layout).

    ``AstrocyteStore(brain, context=ctx)``: every operation runs as ``ctx`` (default: the
    local single user)."""

    supports_ttl = False

    def __init__(self, brain: Astrocyte, *, context: AstrocyteContext | None = None) -> None:
        self.brain = brain
        self.context = context

    @property
    def _caller(self) -> AstrocyteContext:
        return self.context if self.context is not None else LOCAL_CONTEXT

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Run ``ops`` in order on the shared background loop (see :meth:`abatch`)."""
        return run_sync(self.abatch(list(ops)))

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """Run ``ops`` in order; one result per op (``None`` for puts)."""
        results: list[Result] = []
        for op in ops:
            if isinstance(op, GetOp):
                results.append(await self._get(op.namespace, op.key))
            elif isinstance(op, SearchOp):
                results.append(await self._search(op))
            elif isinstance(op, PutOp):
                await self._put(op)
                results.append(None)
            elif isinstance(op, ListNamespacesOp):
                results.append(await self._list_namespaces(op))
            else:
                raise TypeError(f"unknown store operation {type(op).__name__}")
        return results

    async def _records(self, bank: str, where: RecordFilter) -> list[MemoryRecord]:
        # Reads go through the document store for exactness, authorised as a recall.
        return await find_records(self.brain, bank, where, context=self._caller, order="newest")

    async def _get(self, namespace: tuple[str, ...], key: str) -> Item | None:
        bank = namespace_to_bank(namespace)
        records = await self._records(bank, RecordFilter(metadata={KEY_FIELD: key}))
        for record in sorted(records, key=lambda r: r.created_at, reverse=True):
            value = _decode_value(record.metadata)
            if value is not None:
                return Item(
                    value=value,
                    key=key,
                    namespace=tuple(namespace),
                    created_at=record.created_at,
                    updated_at=record.created_at,
                )
        return None

    async def _put(self, op: PutOp) -> None:
        bank = namespace_to_bank(op.namespace)
        value = op.value
        meta = _value_metadata(op.key, value) if value is not None else None
        # A new key needs only write; replacing or deleting one needs forget as well.
        if value is None or await self._holds_key(bank, op.key):
            with contextlib.suppress(BankNotFound):  # nothing stored in the bank yet
                await self.brain.forget(bank, filters={KEY_FIELD: op.key}, context=self.context)
        if value is None or meta is None:
            return
        await self.brain.retain(
            _index_text(value, op.index), bank, metadata=meta, context=self.context
        )

    async def _holds_key(self, bank: str, key: str) -> bool:
        """Whether ``bank`` holds ``key``; asked only by a caller allowed to write there."""
        caller = self._caller
        self.brain.access.check(caller, bank, Permission.WRITE)
        storage = storage_bank_id(caller.tenant, bank)
        try:
            where = RecordFilter(metadata={KEY_FIELD: key})
            return bool(await self.brain.stores.documents.find(storage, where, limit=1))
        except BankNotFound:
            return False

    async def _banks_under(self, prefix: tuple[str, ...]) -> list[str]:
        banks = await self.brain.list_banks(context=self.context)
        return sorted(
            b.bank_id for b in banks if bank_to_namespace(b.bank_id)[: len(prefix)] == tuple(prefix)
        )

    async def _search(self, op: SearchOp) -> list[SearchItem]:
        banks = await self._banks_under(op.namespace_prefix)
        wanted = op.offset + op.limit
        if not banks or op.limit <= 0:
            return []
        found: list[SearchItem] = []
        seen: set[tuple[str, str]] = set()

        def add(
            bank: str,
            record_meta: Mapping[str, MetadataValue],
            created: datetime,
            score: float | None,
        ) -> None:
            key = record_meta.get(KEY_FIELD)
            if not isinstance(key, str) or (bank, key) in seen:
                return
            seen.add((bank, key))
            value = _decode_value(record_meta)
            if value is None or not _passes(value, op.filter):
                return
            found.append(
                SearchItem(
                    namespace=bank_to_namespace(bank),
                    key=key,
                    value=value,
                    created_at=created,
                    updated_at=created,
                    score=score,
                )
            )

        if op.query:
            limit = self.brain.config.limits.max_results
            fetch = limit if op.filter else min(limit, max(4 * wanted, 10))
            result = await self.brain.recall(
                op.query, banks=banks, max_results=fetch, context=self.context
            )
            hit: RecallHit
            for hit in result.hits:
                p = hit.provenance
                add(p.bank_id, p.metadata, p.created_at, hit.score)
        else:
            for bank in banks:
                for record in await self._records(bank, RecordFilter()):
                    add(bank, record.metadata, record.created_at, None)
            found.sort(key=lambda item: item.created_at, reverse=True)
        return found[op.offset : wanted]

    async def _list_namespaces(self, op: ListNamespacesOp) -> list[tuple[str, ...]]:
        banks = await self.brain.list_banks(context=self.context)
        out: set[tuple[str, ...]] = set()
        for b in banks:
            namespace = bank_to_namespace(b.bank_id)
            if op.match_conditions and not all(
                _matches_pattern(namespace, c) for c in op.match_conditions
            ):
                continue
            if op.max_depth is not None:
                namespace = namespace[: op.max_depth]
            out.add(namespace)
        return sorted(out)[op.offset : op.offset + op.limit]


# --- LangChain retriever -------------------------------------------------------------------


class AstrocyteRetriever(BaseRetriever):
    """A LangChain retriever over :meth:`Astrocyte.recall`.

    ``AstrocyteRetriever(brain=brain, bank_id="alice", max_results=5, context=ctx)``;
    ``banks=[...]`` recalls over several banks instead. ``max_results`` can also be
    passed per call: ``retriever.invoke("q", max_results=3)``. Each hit becomes a
    ``Document`` whose ``page_content`` is the memory text and whose metadata holds the
    hit's provenance (``source_id``, ``tags``, the retained metadata, ...) plus
    ``memory_id``, ``bank_id``, ``score`` and ``origin``."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    brain: Astrocyte
    bank_id: str | None = None
    banks: list[str] | None = None
    max_results: int | None = Field(default=None, ge=1)
    tags: list[str] | None = None
    filters: dict[str, MetadataValue] | None = None
    context: AstrocyteContext | None = None

    async def _recall(self, query: str, max_results: int | None) -> list[Document]:
        hits = await recall_hits(
            self.brain,
            query,
            self.bank_id,
            banks=self.banks,
            max_results=max_results if max_results is not None else self.max_results,
            tags=self.tags,
            filters=self.filters,
            context=self.context,
        )
        return [_document(hit) for hit in hits]

    def _get_relevant_documents(
        self,
        query: str,
        *,
        run_manager: CallbackManagerForRetrieverRun,
        max_results: int | None = None,
    ) -> list[Document]:
        return run_sync(self._recall(query, max_results))

    async def _aget_relevant_documents(
        self,
        query: str,
        *,
        run_manager: AsyncCallbackManagerForRetrieverRun,
        max_results: int | None = None,
    ) -> list[Document]:
        return await self._recall(query, max_results)


def _document(hit: RecallHit) -> Document:
    return Document(page_content=hit.text, metadata=hit_metadata(hit), id=hit.memory_id)


# --- agent tools ---------------------------------------------------------------------------


def make_memory_tools(
    brain: Astrocyte,
    bank_id: str,
    context: AstrocyteContext | None = None,
    *,
    max_results: int = 5,
) -> list[BaseTool]:
    """``remember(content)`` and ``recall(query)`` tools on ``bank_id``, running as
    ``context``. ``recall`` returns up to ``max_results`` memories as numbered lines;
    a denied or invalid call raises (Astrocyte's error) like any tool error."""

    tools = MemoryTools(brain, bank_id, context, max_results=max_results)
    return [
        StructuredTool.from_function(
            func=tools.remember_sync,
            coroutine=tools.remember,
            name="remember",
            description=REMEMBER_DESCRIPTION,
        ),
        StructuredTool.from_function(
            func=tools.recall_sync,
            coroutine=tools.recall,
            name="recall",
            description=RECALL_DESCRIPTION,
        ),
    ]
