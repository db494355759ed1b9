"""Agno adapters (``pip install "astrocyte[agno]"``).

- :class:`AstrocyteTools` — an Agno ``Toolkit`` with ``remember`` and ``recall`` tools
  (sync for ``agent.run``, async for ``agent.arun``).
- :class:`AstrocyteMemoryManager` — an Agno ``MemoryManager`` whose user memories live
  in Astrocyte banks, one bank per Agno ``user_id``::

      agent = Agent(
          model=model,
          memory_manager=AstrocyteMemoryManager(brain, context=ctx),
          update_memory_on_run=True,   # each user message is retained
          tools=[AstrocyteTools(brain, context=ctx)],
      )
      agent.run("I drink green tea.", user_id="alice")   # memory in bank "users:alice"

**Banks.** An Agno ``user_id`` maps to a bank through ``bank_for_user`` (default
:func:`default_bank_for_user`: ``"users:" + user_id``; Agno's own default user id is
``"default"``). Bank ids allow letters, digits and ``. _ : @ -`` (so e-mail addresses
work); a user id with other characters is refused with
:class:`astrocyte.ValidationError` unless ``bank_for_user`` maps it. Grants are written
on the mapped ids (``users:*``-style patterns work). :class:`AstrocyteTools` uses a
fixed ``bank_id`` when given, else the same mapping on the run's ``user_id``.

**Memory manager mapping.** Agno's database interface (``BaseDb``) is large — sessions,
metrics, evals, knowledge, traces, components... 80-odd abstract methods — so this
adapter does not implement it; it replaces the memory manager, which is the object an
``Agent`` asks for user memories. What an Agent calls, and what it does here:

- ``get_user_memories`` / ``aget_user_memories`` (``add_memories_to_context``): the
  newest ``max_memories`` memories of the user's bank, oldest first, as ``UserMemory``
  (``memory_id`` = Astrocyte's id, ``topics`` = the memory's tags, ``created_at``,
  and ``agent_id`` / ``team_id`` when retained through this manager). Needs ``read``.
- ``create_user_memories`` / ``acreate_user_memories`` (``update_memory_on_run``): each
  user message of the run is retained verbatim (Astrocyte normalises, chunks, embeds and,
  when configured to, skips duplicates; Agno's own manager would instead ask the model to
  rewrite the message into facts — no model call is made here). Metadata ``agno_agent_id`` /
  ``agno_team_id`` and the manager's ``tags`` are added. Needs ``write``.
- ``search_user_memories``: ``retrieval_method="agentic"`` (which in Agno asks the model
  to pick relevant memories) is :meth:`astrocyte.Astrocyte.recall` on the query;
  ``"last_n"`` (Agno's default) and ``"first_n"`` list the newest / oldest memories.
- ``add_user_memory``, ``get_user_memory``, ``delete_user_memory`` work on the bank
  (``delete`` needs ``forget``); ``replace_user_memory`` is a delete plus an add (the
  memory gets a new id). ``update_memory_task`` (``enable_agentic_memory``) and
  ``clear_user_memories`` are not supported and raise ``NotImplementedError``: give the
  agent :class:`AstrocyteTools` instead.

**Identity.** Both adapters run every call as their ``context`` (default: the local
single user), checked against ``access_grants``. A denied tool call raises
:class:`astrocyte.AccessDenied`, which Agno reports to the model as the tool's error
(the run continues); a denied memory-manager call fails the run step that made it.

Limits: Agno calls ``get_user_memories`` synchronously even inside ``arun`` (unless its
own ``db`` is async), so the memory manager runs every facade call on the shared
background loop of :func:`astrocyte.integrations.common.run_sync` (its async methods
await that loop from a worker thread, without blocking the caller's loop). The toolkit's
async tools await the facade on the caller's loop; within one process prefer one of the
two styles per :class:`astrocyte.Astrocyte` (see ``run_sync``). Tool results are text:
Agno passes a tool's ``ToolResult.metadata`` to no model or run output, so recall
provenance is carried by the memory manager's ``UserMemory`` objects, not by the tools.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Literal, TypeVar

try:
    from agno.db.schemas.memory import UserMemory
    from agno.memory import MemoryManager
    from agno.models.message import Message
    from agno.run.base import RunContext
    from agno.tools.toolkit import Toolkit
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        'astrocyte.integrations.agno needs agno: pip install "astrocyte[agno]"'
    ) from exc

from astrocyte.brain import Astrocyte
from astrocyte.errors import BankNotFound
from astrocyte.identity.context import AstrocyteContext
from astrocyte.integrations.common import (
    RECALL_DESCRIPTION,
    REMEMBER_DESCRIPTION,
    MemoryTools,
    find_records,
    readable_storage,
    run_sync,
)
from astrocyte.spi import MemoryRecord, MetadataValue

__all__ = [
    "AGENT_ID_FIELD",
    "TEAM_ID_FIELD",
    "AstrocyteMemoryManager",
    "AstrocyteTools",
    "default_bank_for_user",
]

T = TypeVar("T")

#: Metadata field holding the Agno agent id a memory was created by.
AGENT_ID_FIELD = "agno_agent_id"
#: Metadata field holding the Agno team id a memory was created by.
TEAM_ID_FIELD = "agno_team_id"
_DEFAULT_USER = "default"  # what Agno itself uses when a run names no user


def default_bank_for_user(user_id: str) -> str:
    """The bank of an Agno ``user_id``: ``"users:" + user_id``."""
    return f"users:{user_id}"


# --- toolkit -------------------------------------------------------------------------------


class AstrocyteTools(Toolkit):
    """``remember`` and ``recall`` as an Agno toolkit.

    ``AstrocyteTools(brain, "users:alice", context=ctx)`` works on one bank; without a
    ``bank_id`` each run uses ``bank_for_user(run.user_id)`` (``"default"`` when the run
    names no user). Other keyword arguments (``requires_confirmation_tools``,
    ``include_tools``, ...) go to ``Toolkit``."""

    def __init__(
        self,
        brain: Astrocyte,
        bank_id: str | None = None,
        *,
        context: AstrocyteContext | None = None,
        max_results: int = 5,
        bank_for_user: Callable[[str], str] = default_bank_for_user,
        name: str = "astrocyte_memory",
        **kwargs: Any,
    ) -> None:
        self.brain = brain
        self.bank_id = bank_id
        self.context = context
        self.max_results = max_results
        self.bank_for_user = bank_for_user
        super().__init__(
            name=name,
            tools=[self.remember, self.recall],
            # Agno picks these for arun(): same tool names, awaited on the run's loop.
            async_tools=[(self.aremember, "remember"), (self.arecall, "recall")],
            **kwargs,
        )

    def _tools(self, run_context: RunContext | None) -> MemoryTools:
        bank = self.bank_id
        if bank is None:
            user = run_context.user_id if run_context is not None else None
            bank = self.bank_for_user(user or _DEFAULT_USER)
        return MemoryTools(self.brain, bank, self.context, max_results=self.max_results)

    # Agno builds each tool's description and parameter schema from the docstring and
    # signature; ``run_context`` is injected by Agno and hidden from the model.
    def remember(self, content: str, run_context: RunContext | None = None) -> str:
        return self._tools(run_context).remember_sync(content)

    async def aremember(self, content: str, run_context: RunContext | None = None) -> str:
        return await self._tools(run_context).remember(content)

    def recall(self, query: str, run_context: RunContext | None = None) -> str:
        return self._tools(run_context).recall_sync(query)

    async def arecall(self, query: str, run_context: RunContext | None = None) -> str:
        return await self._tools(run_context).recall(query)

    _REMEMBER_DOC = f"{REMEMBER_DESCRIPTION}\n\nArgs:\n    content: The fact to remember.\n"
    _RECALL_DOC = f"{RECALL_DESCRIPTION}\n\nArgs:\n    query: What to look for in memory.\n"
    # Shared wording with every other framework's tools; the docstring is the tool text.
    remember.__doc__ = aremember.__doc__ = _REMEMBER_DOC
    recall.__doc__ = arecall.__doc__ = _RECALL_DOC
    del _REMEMBER_DOC, _RECALL_DOC


# --- memory manager ------------------------------------------------------------------------


def _user_memory(record: MemoryRecord, user_id: str) -> UserMemory:
    meta = record.metadata
    agent_id = meta.get(AGENT_ID_FIELD)
    team_id = meta.get(TEAM_ID_FIELD)
    return UserMemory(
        memory=record.text,
        memory_id=record.id,
        topics=list(record.tags) or None,
        user_id=user_id,
        created_at=int(record.created_at.timestamp()),
        agent_id=agent_id if isinstance(agent_id, str) else None,
        team_id=team_id if isinstance(team_id, str) else None,
    )


class AstrocyteMemoryManager(MemoryManager):
    """An Agno memory manager backed by Astrocyte banks (see the module docstring for
    what each method does and what is not supported).

    ``AstrocyteMemoryManager(brain, context=ctx, bank_for_user=..., max_memories=50,
    tags=[...])``: every call runs as ``ctx``; ``max_memories`` bounds what
    ``get_user_memories`` puts into the agent's context; ``tags`` are added to every
    memory it stores."""

    def __init__(
        self,
        brain: Astrocyte,
        *,
        context: AstrocyteContext | None = None,
        bank_for_user: Callable[[str], str] = default_bank_for_user,
        max_memories: int = 50,
        tags: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.brain = brain
        self.context = context
        self.bank_for_user = bank_for_user
        self.max_memories = max_memories
        self.tags = list(tags) if tags is not None else None

    def bank_of(self, user_id: str | None) -> str:
        """The bank holding ``user_id``'s memories (``"default"`` when ``None``)."""
        return self.bank_for_user(user_id or _DEFAULT_USER)

    # Agno calls some of these from inside a running loop without awaiting, so all of
    # them use the one background loop; the async ones wait for it off the caller's loop.
    @staticmethod
    def _sync(coro: Coroutine[Any, Any, T]) -> T:
        return run_sync(coro)

    @staticmethod
    async def _async(coro: Coroutine[Any, Any, T]) -> T:
        return await asyncio.to_thread(run_sync, coro)

    # -- reading --------------------------------------------------------------------

    async def _list(
        self, user_id: str | None, limit: int | None, order: Literal["newest", "oldest"]
    ) -> list[UserMemory]:
        """Memories of the user's bank, the ``limit`` newest or oldest, oldest first.
        Listing is not a recall: it reads the document store, authorised as a recall."""
        user = user_id or _DEFAULT_USER
        records = await find_records(
            self.brain, self.bank_of(user), context=self.context, limit=limit, order=order
        )
        memories = [_user_memory(r, user) for r in records]
        return memories[::-1] if order == "newest" else memories

    def get_user_memories(self, user_id: str | None = None) -> list[UserMemory] | None:
        """The newest ``max_memories`` memories of the user, oldest first."""
        return self._sync(self._list(user_id, self.max_memories, "newest"))

    async def aget_user_memories(self, user_id: str | None = None) -> list[UserMemory] | None:
        """Async :meth:`get_user_memories`."""
        return await self._async(self._list(user_id, self.max_memories, "newest"))

    def get_user_memory(self, memory_id: str, user_id: str | None = None) -> UserMemory | None:
        """One memory of the user by id, or ``None``."""

        async def get() -> UserMemory | None:
            user = user_id or _DEFAULT_USER
            storage = readable_storage(self.brain, self.bank_of(user), self.context)
            try:
                records = await self.brain.stores.documents.get(storage, [memory_id])
            except BankNotFound:
                return None
            return _user_memory(records[0], user) if records else None

        return self._sync(get())

    def search_user_memories(
        self,
        query: str | None = None,
        limit: int | None = None,
        retrieval_method: Literal["last_n", "first_n", "agentic"] | None = None,
        user_id: str | None = None,
    ) -> list[UserMemory]:
        """``"agentic"``: recall on ``query`` (best first); ``"last_n"`` (default) /
        ``"first_n"``: the newest / oldest ``limit`` memories, oldest first."""
        if retrieval_method == "agentic":
            if not query:
                raise ValueError("query is required for agentic search")
            return self._sync(self._recall(query, limit, user_id))
        order: Literal["newest", "oldest"] = "oldest" if retrieval_method == "first_n" else "newest"
        return self._sync(self._list(user_id, limit, order))

    async def _recall(self, query: str, limit: int | None, user_id: str | None) -> list[UserMemory]:
        user = user_id or _DEFAULT_USER
        result = await self.brain.recall(
            query, self.bank_of(user), max_results=limit, context=self.context
        )
        memories = []
        for hit in result.hits:
            p = hit.provenance
            agent_id = p.metadata.get(AGENT_ID_FIELD)
            team_id = p.metadata.get(TEAM_ID_FIELD)
            memories.append(
                UserMemory(
                    memory=hit.text,
                    memory_id=hit.memory_id,
                    topics=list(p.tags) or None,
                    user_id=user,
                    created_at=int(p.created_at.timestamp()),
                    agent_id=agent_id if isinstance(agent_id, str) else None,
                    team_id=team_id if isinstance(team_id, str) else None,
                )
            )
        return memories

    # -- writing --------------------------------------------------------------------

    async def _retain(
        self,
        texts: Sequence[str],
        user_id: str | None,
        agent_id: str | None,
        team_id: str | None,
        topics: Sequence[str] | None = None,
    ) -> list[str]:
        meta: dict[str, MetadataValue] = {}
        if agent_id:
            meta[AGENT_ID_FIELD] = agent_id
        if team_id:
            meta[TEAM_ID_FIELD] = team_id
        tags = [*(self.tags or []), *(topics or [])] or None
        items = [{"content": t, "metadata": meta or None, "tags": tags} for t in texts]
        batch = await self.brain.retain_many(items, self.bank_of(user_id), context=self.context)
        return [memory_id for r in batch.results for memory_id in r.memory_ids]

    @staticmethod
    def _texts(message: str | None, messages: list[Message] | None) -> list[str]:
        if message:
            return [message] if message.strip() else []
        # Only what the user said: assistant and tool turns are not facts about the user.
        return [
            text
            for m in messages or []
            if m.role == "user" and (text := m.get_content_string()).strip()
        ]

    def create_user_memories(
        self,
        message: str | None = None,
        messages: list[Message] | None = None,
        agent_id: str | None = None,
        team_id: str | None = None,
        user_id: str | None = None,
        run_metrics: Any = None,
    ) -> str:
        """Retain the user message(s) in the user's bank (verbatim; no model call)."""
        texts = self._texts(message, messages)
        if not texts:
            return "No user message to remember."
        ids = self._sync(self._retain(texts, user_id, agent_id, team_id))
        self.memories_updated = True
        return f"Remembered {len(ids)} memories."

    async def acreate_user_memories(
        self,
        message: str | None = None,
        messages: list[Message] | None = None,
        agent_id: str | None = None,
        team_id: str | None = None,
        user_id: str | None = None,
        run_metrics: Any = None,
    ) -> str:
        """Async :meth:`create_user_memories`."""
        texts = self._texts(message, messages)
        if not texts:
            return "No user message to remember."
        ids = await self._async(self._retain(texts, user_id, agent_id, team_id))
        self.memories_updated = True
        return f"Remembered {len(ids)} memories."

    def add_user_memory(self, memory: UserMemory, user_id: str | None = None) -> str | None:
        """Retain ``memory.memory`` (its ``topics`` become tags); returns the first new id."""
        user = user_id or memory.user_id
        ids = self._sync(
            self._retain([memory.memory], user, memory.agent_id, memory.team_id, memory.topics)
        )
        return ids[0] if ids else None

    def replace_user_memory(
        self, memory_id: str, memory: UserMemory, user_id: str | None = None
    ) -> str | None:
        """Forget ``memory_id`` and add ``memory``; returns the new id."""
        self.delete_user_memory(memory_id, user_id)
        return self.add_user_memory(memory, user_id)

    def delete_user_memory(self, memory_id: str, user_id: str | None = None) -> None:
        """Forget one memory of the user (needs ``forget``)."""
        self._sync(
            self.brain.forget(self.bank_of(user_id), memory_ids=[memory_id], context=self.context)
        )

    def clear_user_memories(self, user_id: str | None = None) -> None:
        """Not supported: use :meth:`astrocyte.Astrocyte.forget` on the user's bank."""
        raise NotImplementedError(
            "AstrocyteMemoryManager does not clear a bank; call Astrocyte.forget on "
            f"{self.bank_of(user_id)!r}"
        )

    async def aclear_user_memories(self, user_id: str | None = None) -> None:
        """Not supported (see :meth:`clear_user_memories`)."""
        self.clear_user_memories(user_id)

    def update_memory_task(self, task: str, user_id: str | None = None) -> str:
        """Not supported: Agno's agentic memory edits memories through its own db; give
        the agent :class:`AstrocyteTools` instead."""
        raise NotImplementedError(
            "agentic memory (enable_agentic_memory) is not supported by "
            "AstrocyteMemoryManager; add AstrocyteTools to the agent instead"
        )

    async def aupdate_memory_task(self, task: str, user_id: str | None = None) -> str:
        """Not supported (see :meth:`update_memory_task`)."""
        return self.update_memory_task(task, user_id)
