"""Google ADK memory service backed by Astrocyte (``pip install "astrocyte[google-adk]"``).

:class:`AstrocyteMemoryService` is a ``google.adk.memory.BaseMemoryService``: pass it to a
``Runner(..., memory_service=AstrocyteMemoryService(brain))`` and ADK's own memory tools
(``load_memory``, ``PreloadMemoryTool``) and ``ToolContext.search_memory`` read Astrocyte.

**Mapping.** ADK scopes memory by ``(app_name, user_id)``; each scope is one bank, named by
``bank_template`` (default ``"{app_name}:{user_id}"``) or by a ``bank`` function of the
two. Bank ids must match Astrocyte's rule (1-128 letters, digits or ``. _ : @ -``, starting
with a letter or digit): a ``user_id`` outside it fails with Astrocyte's
``ValidationError`` — use a ``bank`` function that maps it if your ids are free-form.

- ``add_session_to_memory(session)`` retains every event of the session that has text
  (function calls and responses, thoughts and partial stream chunks are skipped) in one
  batch: one memory per event, ``occurred_at`` = the event's timestamp, ``source`` = the
  session id, and metadata ``adk_author``, ``adk_role``, ``adk_event_id``,
  ``adk_invocation_id``, ``adk_session_id``. Each event carries the idempotency key
  ``adk:<session id>:<event id>``, so adding a session again — ADK allows it any number
  of times — stores only its new events.
- ``add_events_to_memory(...)`` does the same for an explicit list of events (a delta);
  ``custom_metadata`` values that are JSON scalars are added to each memory's metadata.
- ``add_memory(...)`` retains explicit ``MemoryEntry`` items (their text, author,
  timestamp and scalar ``custom_metadata``); an entry's ``id``, if set, is its
  idempotency key.
- ``search_memory(...)`` is :meth:`Astrocyte.recall` on the scope's bank: each hit becomes
  a ``MemoryEntry`` with ``id`` = the memory id, the text as content (role from
  ``adk_role``, else ``"user"``), ``author``, ``timestamp`` (ISO 8601 ``occurred_at``) and
  ``custom_metadata`` = the hit's provenance (:func:`~astrocyte.integrations.common.hit_metadata`).
- ``delete_memory(memory_id=...)`` forgets that memory (``None`` is a no-op).

**Identity.** ``context`` is either one fixed :class:`AstrocyteContext` (a service acting
for every user) or a function ``(app_name, user_id) -> AstrocyteContext`` (e.g. the end
user, or an agent ``on_behalf_of`` the user); every brain call runs as it, so
``access_grants`` apply: adding needs ``write``, searching ``read``, deleting ``forget``.
A denied call raises :class:`~astrocyte.AccessDenied` from the service method.
ADK's ``PreloadMemoryTool`` catches search errors and only logs them, so a denied
preload means "no memories", while ``load_memory`` reports the error to the run.

**Limits.** Only text parts are stored (as ADK's own services do); a session's state and
artifacts are not. A recall returns at most ``max_results`` memories (default 10).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

try:
    from google.adk.memory import BaseMemoryService
    from google.adk.memory.base_memory_service import SearchMemoryResponse
    from google.adk.memory.memory_entry import MemoryEntry
    from google.genai import types
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        'astrocyte.integrations.google_adk needs google-adk: pip install "astrocyte[google-adk]"'
    ) from exc

from astrocyte.brain import Astrocyte
from astrocyte.identity.context import AstrocyteContext
from astrocyte.integrations.common import hit_metadata
from astrocyte.spi import MetadataValue
from astrocyte.types import RecallHit

if TYPE_CHECKING:
    from google.adk.events.event import Event
    from google.adk.sessions.session import Session

__all__ = ["DEFAULT_BANK_TEMPLATE", "AstrocyteMemoryService", "ContextFor"]

#: Default bank of an ADK memory scope.
DEFAULT_BANK_TEMPLATE = "{app_name}:{user_id}"

ContextFor = Callable[[str, str], AstrocyteContext | None]
"""A function of ``(app_name, user_id)`` giving the caller for that scope."""

_AUTHOR = "adk_author"
_ROLE = "adk_role"
_EVENT_ID = "adk_event_id"
_INVOCATION_ID = "adk_invocation_id"
_SESSION_ID = "adk_session_id"
_TIMESTAMP = "adk_timestamp"


def _parse_time(value: str | None) -> datetime | None:
    """An ISO 8601 ``MemoryEntry.timestamp`` as a datetime, else ``None``."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _event_text(event: Event) -> str:
    """The text an event says (thoughts and non-text parts left out)."""
    if event.partial or not event.content or not event.content.parts:
        return ""
    texts = [p.text for p in event.content.parts if p.text and not p.thought]
    return "\n".join(texts).strip()


def _scalars(custom: Mapping[str, object] | None) -> dict[str, MetadataValue]:
    """The JSON-scalar values of ADK ``custom_metadata`` (others have no place in
    Astrocyte's flat metadata and are left out)."""
    out: dict[str, MetadataValue] = {}
    for key, value in (custom or {}).items():
        if value is None or isinstance(value, str | int | float | bool):
            out[str(key)] = value
    return out


class AstrocyteMemoryService(BaseMemoryService):
    """ADK long-term memory in Astrocyte banks (see the module docstring).

    ``AstrocyteMemoryService(brain, context=ctx, bank_template="{app_name}:{user_id}",
    max_results=10)``; ``bank=lambda app, user: ...`` replaces the template and
    ``context`` may be a function of ``(app_name, user_id)``."""

    def __init__(
        self,
        brain: Astrocyte,
        *,
        context: AstrocyteContext | ContextFor | None = None,
        bank_template: str = DEFAULT_BANK_TEMPLATE,
        bank: Callable[[str, str], str] | None = None,
        max_results: int = 10,
    ) -> None:
        self.brain = brain
        self.context = context
        self.bank_template = bank_template
        self._bank = bank
        self.max_results = max_results

    def bank_for(self, app_name: str, user_id: str) -> str:
        """The bank of the scope ``(app_name, user_id)``."""
        if self._bank is not None:
            return self._bank(app_name, user_id)
        return self.bank_template.format(app_name=app_name, user_id=user_id)

    def context_for(self, app_name: str, user_id: str) -> AstrocyteContext | None:
        """The caller for the scope (the fixed ``context``, or the function's answer)."""
        if callable(self.context) and not isinstance(self.context, AstrocyteContext):
            return self.context(app_name, user_id)
        return self.context

    async def _retain_events(
        self,
        app_name: str,
        user_id: str,
        events: Sequence[Event],
        session_id: str | None,
        extra: dict[str, MetadataValue],
    ) -> None:
        items: list[dict[str, Any]] = []
        for event in events:
            text = _event_text(event)
            if not text:
                continue
            meta: dict[str, MetadataValue] = {
                **extra,
                _AUTHOR: event.author,
                _ROLE: event.content.role if event.content else None,
                _EVENT_ID: event.id,
                _INVOCATION_ID: event.invocation_id or None,
                _SESSION_ID: session_id,
            }
            items.append(
                {
                    "content": text,
                    "occurred_at": datetime.fromtimestamp(event.timestamp, UTC),
                    "source": session_id,
                    "metadata": meta,
                    # Re-adding a session (ADK does so freely) must not duplicate it.
                    "idempotency_key": f"adk:{session_id or '-'}:{event.id}",
                }
            )
        if items:
            await self.brain.retain_many(
                items,
                self.bank_for(app_name, user_id),
                context=self.context_for(app_name, user_id),
            )

    async def add_session_to_memory(self, session: Session) -> None:
        """Retain the session's text events (only those not stored yet)."""
        await self._retain_events(session.app_name, session.user_id, session.events, session.id, {})

    async def add_events_to_memory(
        self,
        *,
        app_name: str,
        user_id: str,
        events: Sequence[Event],
        session_id: str | None = None,
        custom_metadata: Mapping[str, object] | None = None,
    ) -> None:
        """Retain ``events`` (a delta), with the scalar ``custom_metadata`` values."""
        await self._retain_events(app_name, user_id, events, session_id, _scalars(custom_metadata))

    async def add_memory(
        self,
        *,
        app_name: str,
        user_id: str,
        memories: Sequence[MemoryEntry],
        custom_metadata: Mapping[str, object] | None = None,
    ) -> None:
        """Retain explicit memory entries (text parts only)."""
        shared = _scalars(custom_metadata)
        items: list[dict[str, Any]] = []
        for entry in memories:
            text = "\n".join(p.text for p in entry.content.parts or [] if p.text).strip()
            if not text:
                continue
            meta = {**shared, **_scalars(entry.custom_metadata)}
            meta[_AUTHOR] = entry.author
            meta[_ROLE] = entry.content.role
            occurred = _parse_time(entry.timestamp)
            if entry.timestamp and occurred is None:
                meta[_TIMESTAMP] = entry.timestamp  # free text ADK allows; kept verbatim
            items.append(
                {
                    "content": text,
                    "occurred_at": occurred,
                    "metadata": meta,
                    "idempotency_key": f"adk-entry:{entry.id}" if entry.id else None,
                }
            )
        if items:
            await self.brain.retain_many(
                items,
                self.bank_for(app_name, user_id),
                context=self.context_for(app_name, user_id),
            )

    async def search_memory(
        self, *, app_name: str, user_id: str, query: str
    ) -> SearchMemoryResponse:
        """Recall ``query`` in the scope's bank, as ADK memory entries."""
        result = await self.brain.recall(
            query,
            self.bank_for(app_name, user_id),
            max_results=self.max_results,
            context=self.context_for(app_name, user_id),
        )
        return SearchMemoryResponse(memories=[_entry(hit) for hit in result.hits])

    async def delete_memory(
        self, *, app_name: str, user_id: str, memory_id: str | None = None
    ) -> None:
        """Forget the memory ``memory_id`` (a ``MemoryEntry.id`` from a search)."""
        if not memory_id:
            return
        await self.brain.forget(
            self.bank_for(app_name, user_id),
            memory_ids=[memory_id],
            context=self.context_for(app_name, user_id),
        )


def _text_or_none(value: MetadataValue) -> str | None:
    return value if isinstance(value, str) else None


def _entry(hit: RecallHit) -> MemoryEntry:
    meta = hit.provenance.metadata
    author = meta.get(_AUTHOR)
    role = meta.get(_ROLE)
    occurred = hit.provenance.occurred_at
    return MemoryEntry(
        id=hit.memory_id,
        content=types.Content(
            role=role if isinstance(role, str) and role else "user",
            parts=[types.Part.from_text(text=hit.text)],
        ),
        author=author if isinstance(author, str) else None,
        timestamp=occurred.isoformat() if occurred else _text_or_none(meta.get(_TIMESTAMP)),
        custom_metadata=hit_metadata(hit),
    )
