"""AutoGen adapter (``pip install "astrocyte[autogen]"``).

:class:`AstrocyteMemory` implements AutoGen's ``autogen_core.memory.Memory`` protocol on
one Astrocyte bank, so an agent gets long-term memory with
``AssistantAgent(..., memory=[AstrocyteMemory(brain, "alice")])``.

**Mapping.** The memory is one bank. ``add(MemoryContent)`` retains the content as one
memory (several if it is long enough to be chunked): text (``str``, or UTF-8 ``bytes``
with a ``text/*`` MIME type) is stored verbatim, a ``dict`` as its JSON. The MIME type is
kept in the memory's metadata under ``mime_type``, next to the ``MemoryContent``'s own
metadata (flat JSON scalars only, as for any retain). ``query`` is ``Astrocyte.recall``:
each hit comes back as a ``MemoryContent`` with the memory text (a ``dict`` again for
``application/json`` memories that still parse as one), the stored MIME type and the hit's
provenance as metadata (``memory_id``, ``bank_id``, ``score``, ``source_id``, ``tags``,
``metadata`` = the metadata given at add, ...); before the first ``add`` (the bank does
not exist yet) it finds nothing. ``update_context`` recalls for the text
of the last message in the model context and, when anything is found, appends one
``SystemMessage`` listing the memories; AssistantAgent reports them in a
``MemoryQueryEvent``. ``clear`` forgets every memory in the bank (with ``tags``: every
memory carrying them). ``close`` does nothing:
the ``Astrocyte`` instance belongs to the caller, who closes it.

**Identity.** Every call runs as ``context`` (default: the local single user) and is
checked against ``access_grants``: ``add`` needs ``write``; ``query`` and
``update_context`` need ``read``; ``clear`` needs ``forget``. A denied call raises
:class:`~astrocyte.AccessDenied`, which AutoGen propagates out of the agent's run.

**Limits.** Images and binary content are refused (``ValueError``): Astrocyte stores text.
The memory is not an AutoGen *component*: ``dump_component()`` raises
``NotImplementedError``, because the ``Astrocyte`` instance it wraps (live stores,
possibly credentials in its config) cannot be written to a component config; build it
in code. ``cancellation_token`` is accepted and not consulted (calls are short).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

try:
    from autogen_core import CancellationToken, Image
    from autogen_core.memory import (
        Memory,
        MemoryContent,
        MemoryMimeType,
        MemoryQueryResult,
        UpdateContextResult,
    )
    from autogen_core.model_context import ChatCompletionContext
    from autogen_core.models import (
        AssistantMessage,
        FunctionExecutionResultMessage,
        LLMMessage,
        SystemMessage,
        UserMessage,
    )
    from pydantic import BaseModel
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        'astrocyte.integrations.autogen needs autogen-core: pip install "astrocyte[autogen]"'
    ) from exc

from astrocyte.brain import Astrocyte
from astrocyte.errors import BankNotFound
from astrocyte.identity.context import AstrocyteContext
from astrocyte.integrations.common import format_hits, hit_metadata
from astrocyte.spi import MetadataValue
from astrocyte.types import RecallHit, RecallResult

__all__ = ["MIME_TYPE_FIELD", "AstrocyteMemory"]

#: Metadata field holding the MIME type an item was added with.
MIME_TYPE_FIELD = "mime_type"

_TEXT = MemoryMimeType.TEXT.value
_JSON = MemoryMimeType.JSON.value
# A time after any memory's occurred_at: forget(before=...) then selects the whole bank.
_END_OF_TIME = datetime.max.replace(tzinfo=UTC)


def _mime(content: MemoryContent) -> str:
    mime = content.mime_type
    return mime.value if isinstance(mime, MemoryMimeType) else str(mime)


def _text_of(content: MemoryContent, mime: str) -> str:
    """The text to retain for ``content``, or ``ValueError`` for non-text content."""
    value = content.content
    if isinstance(value, Image):
        raise ValueError("AstrocyteMemory stores text: image content is not supported")
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    if isinstance(value, bytes):
        if not (mime.startswith("text/") or mime == _JSON):
            raise ValueError(
                f"AstrocyteMemory stores text: bytes with MIME type {mime!r} are not supported"
            )
        return value.decode("utf-8")
    return value


def _message_text(message: LLMMessage) -> str:
    """The text of a model-context message (empty when it carries none)."""
    if isinstance(message, UserMessage | SystemMessage | AssistantMessage):
        content = message.content
        if isinstance(content, str):
            return content
        # User messages mix text and images; assistant messages may be function calls.
        return "\n".join(part for part in content if isinstance(part, str))
    if isinstance(message, FunctionExecutionResultMessage):
        return "\n".join(result.content for result in message.content)
    return ""


def _memory_content(hit: RecallHit) -> MemoryContent:
    mime = hit.provenance.metadata.get(MIME_TYPE_FIELD)
    mime_type = mime if isinstance(mime, str) else _TEXT
    content: str | dict[str, Any] = hit.text
    if mime_type == _JSON:
        # A chunk of a long JSON document is not JSON on its own: keep it as text then.
        with contextlib.suppress(ValueError):
            decoded = json.loads(hit.text)
            if isinstance(decoded, dict):
                content = decoded
    return MemoryContent(content=content, mime_type=mime_type, metadata=hit_metadata(hit))


class AstrocyteMemory(Memory):
    """AutoGen memory on one Astrocyte bank (see the module docstring for the mapping).

    ``AstrocyteMemory(brain, "alice", context=ctx, max_results=5)``: every call runs as
    ``ctx``; ``query`` and ``update_context`` return at most ``max_results`` memories;
    ``tags`` are added to every memory this instance adds and, when given, also restrict
    its recalls to memories carrying all of them."""

    component_type = "memory"

    def __init__(
        self,
        brain: Astrocyte,
        bank_id: str,
        *,
        context: AstrocyteContext | None = None,
        max_results: int = 5,
        tags: Sequence[str] | None = None,
        name: str | None = None,
    ) -> None:
        if max_results < 1:
            raise ValueError("max_results must be at least 1")
        self.brain = brain
        self.bank_id = bank_id
        self.context = context
        self.max_results = max_results
        self.tags = list(tags) if tags is not None else None
        self._name = name or f"astrocyte:{bank_id}"

    @property
    def name(self) -> str:
        """This memory's name (default ``astrocyte:<bank_id>``)."""
        return self._name

    async def add(
        self, content: MemoryContent, cancellation_token: CancellationToken | None = None
    ) -> None:
        """Retain ``content`` in the bank, with its MIME type and metadata. Needs ``write``."""
        mime = _mime(content)
        metadata: dict[str, MetadataValue] = {**(content.metadata or {}), MIME_TYPE_FIELD: mime}
        await self.brain.retain(
            _text_of(content, mime),
            self.bank_id,
            metadata=metadata,
            tags=self.tags,
            context=self.context,
        )

    async def query(
        self,
        query: str | MemoryContent,
        cancellation_token: CancellationToken | None = None,
        **kwargs: Any,
    ) -> MemoryQueryResult:
        """Recall memories for ``query`` (text, or a text ``MemoryContent``), best first.

        ``max_results=`` overrides the instance's limit for this call. Needs ``read``."""
        text = query if isinstance(query, str) else _text_of(query, _mime(query))
        result = await self._recall(text, int(kwargs.get("max_results", self.max_results)))
        hits = result.hits if result is not None else []
        return MemoryQueryResult(results=[_memory_content(hit) for hit in hits])

    async def _recall(self, query: str, max_results: int) -> RecallResult | None:
        try:
            result = await self.brain.recall(
                query,
                self.bank_id,
                max_results=max_results,
                tags=self.tags,
                context=self.context,
            )
        except BankNotFound:
            # Nothing added yet (the bank is created by the first add). Raised only after
            # the read check, so a caller without read is still refused.
            return None
        return result

    async def update_context(self, model_context: ChatCompletionContext) -> UpdateContextResult:
        """Recall for the last message of ``model_context`` and, if anything is found,
        append a ``SystemMessage`` listing the memories. Needs ``read``."""
        messages = await model_context.get_messages()
        query = _message_text(messages[-1]).strip() if messages else ""
        if not query:
            return UpdateContextResult(memories=MemoryQueryResult(results=[]))
        result = await self._recall(query, self.max_results)
        hits = result.hits if result is not None else []
        if result is not None and hits:
            await model_context.add_message(
                SystemMessage(content=f"Relevant memories:\n{format_hits(result)}")
            )
        return UpdateContextResult(
            memories=MemoryQueryResult(results=[_memory_content(hit) for hit in hits])
        )

    async def clear(self) -> None:
        """Forget every memory in the bank (not only those this instance added), or,
        with ``tags``, every memory carrying all of them. Needs ``forget``."""
        with contextlib.suppress(BankNotFound):  # nothing was ever stored: already clear
            await self.brain.forget(
                self.bank_id, before=_END_OF_TIME, tags=self.tags, context=self.context
            )

    async def close(self) -> None:
        """Nothing to release: the ``Astrocyte`` instance is the caller's to close."""

    def _to_config(self) -> BaseModel:
        raise NotImplementedError(
            "AstrocyteMemory cannot be dumped as an AutoGen component: it wraps a live "
            "Astrocyte instance; build it in code"
        )
