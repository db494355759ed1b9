"""OpenAI Agents SDK adapters (``pip install "astrocyte[openai-agents]"``).

- :func:`memory_tools` — ``remember`` and ``recall`` as the SDK's ``FunctionTool``\\ s.
- :class:`AstrocyteSession` — an implementation of the SDK's ``Session`` protocol that
  keeps a conversation's items in an Astrocyte bank:
  ``Runner.run(agent, "hi", session=AstrocyteSession(brain, "chat-42", bank_id="users:alice"))``.

Both take an :class:`astrocyte.Astrocyte` and an optional ``context``: every call runs as
that caller and is checked against ``access_grants``. Everything here is async and awaits
the facade on the run's event loop (``Runner.run_sync`` runs its own loop, which is fine).

**Tools.** ``remember(content)`` retains ``content`` in the bank (needs ``write``);
``recall(query)`` answers with up to ``max_results`` memories as numbered lines (needs
``read``) and attaches each hit's provenance
(:func:`astrocyte.integrations.common.hit_metadata`) to the run's
``ToolCallOutputItem.custom_data["astrocyte_hits"]`` — SDK-side only, never sent to the
model. A failing call (e.g. :class:`astrocyte.AccessDenied`) is handled by the SDK's
``failure_error_function``: by default the model gets the SDK's generic error message and
nothing is stored; pass ``failure_error_function=None`` to make the run fail instead (the
SDK raises its ``UserError``, whose ``__cause__`` is Astrocyte's error).

**Session.** Each item the SDK adds is retained as one memory (more if its text is long
enough to be chunked) in ``bank_id``. Its text — what recall searches — is the item's
readable text (a message's content, a tool call's ``name(arguments)``, a tool output),
or its JSON when it has none. Its metadata holds ``agents_session_id`` = the session id,
``agents_session_seq`` = the item's sequence number in the session (0, 1, 2, ...) and the
exact JSON of the item (split in parts of at most 4,000 characters: items up to ~240 KB).
``get_items`` reads the items back exactly — through the document store with a metadata
filter, after the same grant check and rate limit as a recall, never through ranking —
in sequence order. Several sessions may share a bank, and the conversation is also
ordinary memory there: ``recall`` over the bank finds what was said.

Semantics and grants: ``get_items(limit)`` returns the latest ``limit`` items (default
``session_settings.limit``, else all) oldest first and needs ``read``; ``add_items``
appends with one ``retain_many`` per batch and needs ``write`` only (a write-only caller
can append to a conversation it cannot read); ``pop_item`` returns the newest item and
**forgets** it (needs ``read`` and ``forget``); ``clear_session`` forgets every item of
the session (needs ``forget``) and leaves the bank's other memories alone.

Limits: sequence numbers are allocated by one session object (under a lock); two
processes appending to one session at the same moment may both take a number, and
``get_items`` then returns both items in an arbitrary order between them. Each
``add_items`` and ``get_items`` reads the session's records, so a session is meant for
conversation-sized histories, not unbounded logs. The bank must not suppress duplicates
(``policy.dedup``: off by default) or a repeated message would not be stored;
``add_items`` raises ``RuntimeError`` if that happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Mapping
from typing import Any

try:
    from agents import FunctionTool, SessionSettings, TResponseInputItem, function_tool
    from agents.tool import (
        FunctionToolCustomDataContext,
        ToolErrorFunction,
        default_tool_error_function,
    )
    from agents.tool_context import ToolContext
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "astrocyte.integrations.openai_agents needs openai-agents: "
        'pip install "astrocyte[openai-agents]"'
    ) from exc

from astrocyte.brain import Astrocyte
from astrocyte.errors import BankNotFound
from astrocyte.identity.access import storage_bank_id
from astrocyte.identity.context import LOCAL_CONTEXT, AstrocyteContext
from astrocyte.identity.patterns import Permission
from astrocyte.integrations.common import (
    RECALL_DESCRIPTION,
    REMEMBER_DESCRIPTION,
    MemoryTools,
    format_hits,
    hit_metadata,
)
from astrocyte.pipeline.normalise import normalise_text
from astrocyte.spi import MemoryRecord, MetadataValue, RecordFilter

__all__ = [
    "HITS_KEY",
    "SEQ_FIELD",
    "SESSION_FIELD",
    "AstrocyteSession",
    "memory_tools",
]

#: ``custom_data`` key of a ``recall`` output item holding the hits' provenance.
HITS_KEY = "astrocyte_hits"
#: Metadata field holding the session id of a session item.
SESSION_FIELD = "agents_session_id"
#: Metadata field holding a session item's sequence number.
SEQ_FIELD = "agents_session_seq"
_PARTS_FIELD = "agents_item_parts"
_PART_PREFIX = "agents_item_"
_PART_CHARS = 4000
_MAX_PARTS = 60


# --- tools ---------------------------------------------------------------------------------


def memory_tools(
    brain: Astrocyte,
    bank_id: str,
    *,
    context: AstrocyteContext | None = None,
    max_results: int = 5,
    failure_error_function: ToolErrorFunction | None = default_tool_error_function,
) -> list[FunctionTool]:
    """``remember(content)`` and ``recall(query)`` as ``FunctionTool``\\ s on ``bank_id``,
    running as ``context``.

    ``failure_error_function`` is the SDK's: what the model is told when a call fails
    (default: the SDK's generic message); ``None`` makes the run fail with the SDK's
    ``UserError`` caused by Astrocyte's error."""
    tools = MemoryTools(brain, bank_id, context, max_results=max_results)
    # Hits of a recall, kept from the tool call until the SDK asks for its custom data.
    pending: dict[tuple[int, str], list[dict[str, Any]]] = {}

    async def remember(content: str) -> str:
        """Store a fact.

        Args:
            content: the fact, as a self-contained sentence.
        """
        return await tools.remember(content)

    async def recall(ctx: ToolContext[Any], query: str) -> str:
        """Search memory.

        Args:
            query: what to look for.
        """
        # The facade is called directly (not MemoryTools.recall) to keep the hits.
        result = await brain.recall(query, bank_id, max_results=max_results, context=context)
        pending[(id(ctx), ctx.tool_call_id)] = [hit_metadata(hit) for hit in result.hits]
        return format_hits(result)

    def provenance(data: FunctionToolCustomDataContext) -> Mapping[str, Any] | None:
        ctx = data.tool_context
        hits = pending.pop((id(ctx), ctx.tool_call_id), None)
        return None if hits is None else {HITS_KEY: hits}

    return [
        function_tool(
            remember,
            name_override="remember",
            description_override=REMEMBER_DESCRIPTION,
            failure_error_function=failure_error_function,
        ),
        function_tool(
            recall,
            name_override="recall",
            description_override=RECALL_DESCRIPTION,
            failure_error_function=failure_error_function,
            custom_data_extractor=provenance,
        ),
    ]


# --- session -------------------------------------------------------------------------------


def _item_text(item: Mapping[str, Any]) -> str:
    """The readable text of a session item (what recall embeds and searches)."""
    content = item.get("content")
    text = ""
    if isinstance(content, str):
        text = content
    elif isinstance(content, list):
        pieces = [
            str(part.get("text") or part.get("refusal") or "")
            for part in content
            if isinstance(part, Mapping)
        ]
        text = "\n".join(p for p in pieces if p)
    elif item.get("type") == "function_call":
        text = f"{item.get('name', '')}({item.get('arguments', '')})"
    elif isinstance(item.get("output"), str):
        text = str(item["output"])
    # Retain refuses text that normalises to nothing (only spaces or control characters).
    if normalise_text(text):
        return text
    return json.dumps(item, ensure_ascii=False, sort_keys=True)


def _item_metadata(session_id: str, seq: int, item: Mapping[str, Any]) -> dict[str, MetadataValue]:
    encoded = json.dumps(item, ensure_ascii=False, separators=(",", ":"))
    parts = [encoded[i : i + _PART_CHARS] for i in range(0, len(encoded), _PART_CHARS)]
    if len(parts) > _MAX_PARTS:
        raise ValueError(
            f"session item is {len(encoded)} characters of JSON, over the "
            f"{_MAX_PARTS * _PART_CHARS} an AstrocyteSession keeps"
        )
    meta: dict[str, MetadataValue] = {
        SESSION_FIELD: session_id,
        SEQ_FIELD: seq,
        _PARTS_FIELD: len(parts),
    }
    for i, part in enumerate(parts):
        meta[f"{_PART_PREFIX}{i}"] = part
    return meta


def _seq(metadata: Mapping[str, MetadataValue]) -> int | None:
    seq = metadata.get(SEQ_FIELD)
    return seq if isinstance(seq, int) and not isinstance(seq, bool) else None


def _decode_item(metadata: Mapping[str, MetadataValue]) -> TResponseInputItem | None:
    count = metadata.get(_PARTS_FIELD)
    if not isinstance(count, int) or isinstance(count, bool):
        return None
    text = "".join(str(metadata.get(f"{_PART_PREFIX}{i}", "")) for i in range(count))
    try:
        item = json.loads(text)
    except ValueError:
        return None
    return item if isinstance(item, dict) else None  # type: ignore[return-value]  # a TypedDict union


class AstrocyteSession:
    """An OpenAI Agents SDK ``Session`` (the protocol) over an Astrocyte bank.

    ``AstrocyteSession(brain, session_id, bank_id="users:alice", context=ctx)``; see the
    module docstring for the layout and the semantics of each method.
    ``session_settings`` is the SDK's (its ``limit`` is the default of
    :meth:`get_items`)."""

    def __init__(
        self,
        brain: Astrocyte,
        session_id: str,
        *,
        bank_id: str,
        context: AstrocyteContext | None = None,
        session_settings: SessionSettings | None = None,
    ) -> None:
        if not isinstance(session_id, str) or not session_id:
            raise ValueError("session_id must be a non-empty string")
        self.brain = brain
        self.session_id = session_id
        self.bank_id = bank_id
        self.context = context
        self.session_settings: SessionSettings | None = session_settings or SessionSettings()
        # Sequence numbers are read-then-allocated: one writer at a time per object.
        self._lock = asyncio.Lock()

    @property
    def _caller(self) -> AstrocyteContext:
        return self.context if self.context is not None else LOCAL_CONTEXT

    def _storage(self, permission: Permission, operation: str | None) -> str:
        """Check the caller may ``permission`` the bank (and is admitted by the rate
        limit, for reads) and return its storage id: the facade's own rules, applied
        here because reads go to the document store directly for exactness."""
        caller = self._caller
        self.brain.access.check(caller, self.bank_id, permission)
        storage = storage_bank_id(caller.tenant, self.bank_id)
        if operation == "recall":
            self.brain.policy.admit(caller.principal, storage, "recall")
        return storage

    async def _records(self, storage: str) -> list[MemoryRecord]:
        documents = self.brain.stores.documents
        where = RecordFilter(metadata={SESSION_FIELD: self.session_id})
        try:
            ids = await documents.find(storage, where)
            return await documents.get(storage, ids) if ids else []
        except BankNotFound:
            return []

    async def _entries(self) -> list[tuple[int, TResponseInputItem]]:
        """The session's items with their sequence numbers, in order (needs read)."""
        records = await self._records(self._storage(Permission.READ, "recall"))
        by_seq: dict[int, TResponseInputItem] = {}
        for record in records:
            seq = _seq(record.metadata)
            # Every chunk of a long item carries the whole item: keep one per number.
            if seq is None or seq in by_seq:
                continue
            item = _decode_item(record.metadata)
            if item is not None:
                by_seq[seq] = item
        return sorted(by_seq.items(), key=lambda entry: entry[0])

    async def get_items(self, limit: int | None = None) -> list[TResponseInputItem]:
        """The latest ``limit`` items (default ``session_settings.limit``; ``None``:
        all), oldest first. Needs ``read``."""
        if limit is None and self.session_settings is not None:
            limit = self.session_settings.limit
        items = [item for _, item in await self._entries()]
        if limit is None:
            return items
        return items[-limit:] if limit > 0 else []

    async def add_items(self, items: list[TResponseInputItem]) -> None:
        """Append ``items`` in order. Needs ``write``."""
        if not items:
            return
        async with self._lock:
            # Numbering needs the session's records; a write-only caller may append,
            # so this internal lookup is authorised by the write grant.
            storage = self._storage(Permission.WRITE, None)
            seqs = [s for r in await self._records(storage) if (s := _seq(r.metadata)) is not None]
            first = max(seqs) + 1 if seqs else 0
            batch = [
                {
                    "content": _item_text(item),
                    "metadata": _item_metadata(self.session_id, first + i, item),
                }
                for i, item in enumerate(items)
            ]
            size = self.brain.config.limits.max_batch_items
            for start in range(0, len(batch), size):
                result = await self.brain.retain_many(
                    batch[start : start + size], self.bank_id, context=self.context
                )
                if any(r.deduplicated for r in result.results):
                    raise RuntimeError(
                        f"bank {self.bank_id!r} suppressed a duplicate session item; "
                        "AstrocyteSession needs a bank without policy.dedup"
                    )

    async def pop_item(self) -> TResponseInputItem | None:
        """Remove (forget) and return the newest item, or ``None`` when the session is
        empty. Needs ``read`` and ``forget``."""
        async with self._lock:
            entries = await self._entries()
            if not entries:
                return None
            seq, item = entries[-1]
            await self.brain.forget(
                self.bank_id,
                filters={SESSION_FIELD: self.session_id, SEQ_FIELD: seq},
                context=self.context,
            )
            return item

    async def clear_session(self) -> None:
        """Forget every item of this session (other memories of the bank stay). Needs
        ``forget``."""
        async with self._lock:
            with contextlib.suppress(BankNotFound):  # nothing was ever stored
                await self.brain.forget(
                    self.bank_id, filters={SESSION_FIELD: self.session_id}, context=self.context
                )
