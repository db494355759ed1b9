"""LlamaIndex adapters (``pip install "astrocyte[llamaindex]"``).

- :class:`AstrocyteRetriever` — a LlamaIndex ``BaseRetriever`` over ``recall``, usable
  wherever LlamaIndex takes a retriever (``RetrieverQueryEngine``,
  ``ContextChatEngine``, ...).
- :class:`AstrocyteMemoryBlock` — a long-term memory block for LlamaIndex's ``Memory``
  (``Memory.from_defaults(memory_blocks=[AstrocyteMemoryBlock(brain=brain, ...)])``), the
  memory that chat engines and agents (``FunctionAgent``, ``AgentWorkflow``) use.

Every adapter wraps an :class:`astrocyte.Astrocyte` (the async facade) and an optional
``context``: each call runs as that caller and is checked against ``access_grants``
exactly as a direct call would be; a refused call raises Astrocyte's ``AccessDenied``
through the LlamaIndex call that made it.

**Retriever mapping.** Each recall hit becomes a ``NodeWithScore`` holding a
``TextNode`` whose ``id_`` is the memory id, whose text is the memory text and whose
score is the fused recall score. The node metadata is the hit's provenance
(:func:`node_metadata`), flattened to what LlamaIndex's vector stores accept
(``str``/``int``/``float``/``None`` values): ``memory_id``, ``bank_id``, ``score``,
``origin``, ``source_id``, ``chunk_index``, ``content_type``, ``occurred_at``,
``created_at``, ``tags`` (a JSON array, since tags may contain commas) and one
``metadata.<key>`` entry per metadata key given at retain. LlamaIndex writes node
metadata into the LLM prompt and the embedding text by default; these keys are excluded
from both, so the model sees the memory text only.

**Memory block mapping.** ``Memory`` keeps recent messages in its short-term queue;
when the queue outgrows its token budget, the oldest messages are flushed to the memory
blocks. :class:`AstrocyteMemoryBlock` retains each flushed message with text (by default
only ``user`` and ``assistant`` messages) as one memory ``"<role>: <text>"`` in the bank,
with metadata ``role`` and, when ``Memory`` gives one, ``session_id``. On every
``Memory.get``, the block recalls for the text of the latest messages and returns the
hits as numbered lines, which ``Memory`` renders into the system message (or the latest
user message) inside ``<memory><name>...</name></memory>``. Recall covers the whole bank,
not only the current session: the bank is the scope of long-term memory (pass
``filters={"session_id": ...}`` to narrow it).

Identity: reading the block needs ``read`` on the bank, a flush needs ``write``.

Only flushed messages are retained, and ``Memory`` flushes only when its queue passes
``token_limit * chat_history_token_ratio`` (about 21,000 tokens with the defaults): lower
``token_limit`` to retain sooner, or call ``block.aput(messages)`` yourself.

Limits: image, audio and other non-text blocks of a message are not retained; the block
content is not truncated piecemeal (with ``priority`` > 0 ``Memory`` drops the whole
block when over budget, with the default 0 it never does); a flush is retained after
``Memory`` has archived the messages, so a refused or failed retain leaves them archived
but not in the bank. ``Memory``'s sync methods (used by sync ``chat()``) run the
block on an event loop of LlamaIndex's choosing — a new one per call — so with stores
bound to one event loop prefer the async entry points (``achat``, ``aget``, ``aput``).
The retriever's sync ``retrieve`` runs on Astrocyte's private background loop, like the
other integrations.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

try:
    from llama_index.core.base.llms.types import ChatMessage, TextBlock
    from llama_index.core.callbacks import CallbackManager
    from llama_index.core.memory.memory import BaseMemoryBlock
    from llama_index.core.retrievers import BaseRetriever
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "astrocyte.integrations.llamaindex needs llama-index-core: "
        'pip install "astrocyte[llamaindex]"'
    ) from exc

from pydantic import ConfigDict, Field

from astrocyte.brain import Astrocyte
from astrocyte.errors import BankNotFound
from astrocyte.identity.context import AstrocyteContext
from astrocyte.integrations.common import format_hits, hit_metadata, recall_hits, run_sync
from astrocyte.spi import MetadataValue
from astrocyte.types import RecallHit

__all__ = [
    "METADATA_PREFIX",
    "AstrocyteMemoryBlock",
    "AstrocyteRetriever",
    "node_metadata",
]

#: Prefix of the node metadata keys holding the metadata given at retain.
METADATA_PREFIX = "metadata."

LlamaMetadataValue = str | int | float | None


# --- provenance as LlamaIndex node metadata ------------------------------------------------


def node_metadata(hit: RecallHit) -> dict[str, LlamaMetadataValue]:
    """A hit's provenance (:func:`~astrocyte.integrations.common.hit_metadata`) as flat
    LlamaIndex node metadata: every value a ``str``, ``int``, ``float`` or ``None``.

    ``tags`` becomes a JSON array string and each retained metadata key ``k`` becomes
    ``"metadata.k"``; the other provenance keys are kept as they are."""
    flat: dict[str, LlamaMetadataValue] = {}
    for key, value in hit_metadata(hit).items():
        if key == "tags":
            # JSON, not a comma-joined string: a tag may itself contain a comma.
            flat[key] = json.dumps(value, ensure_ascii=False)
        elif key == "metadata":
            for meta_key, meta_value in value.items():
                flat[f"{METADATA_PREFIX}{meta_key}"] = meta_value
        else:
            flat[key] = value
    return flat


def _node(hit: RecallHit) -> NodeWithScore:
    metadata = node_metadata(hit)
    hidden = list(metadata)  # provenance is for the program, not the prompt or embedding
    node = TextNode(
        id_=hit.memory_id,
        text=hit.text,
        metadata=metadata,
        excluded_llm_metadata_keys=hidden,
        excluded_embed_metadata_keys=hidden,
    )
    return NodeWithScore(node=node, score=hit.score)


# --- retriever -----------------------------------------------------------------------------


class AstrocyteRetriever(BaseRetriever):
    """A LlamaIndex retriever over :meth:`Astrocyte.recall`.

    ``AstrocyteRetriever(brain, "alice", max_results=5, context=ctx)``; ``banks=[...]``
    recalls over several banks instead of one, and with neither the context's default
    bank is used. ``tags`` (all must match) and ``filters`` (metadata equality) restrict
    the recall. Each hit becomes a ``NodeWithScore`` (see the module docstring for the
    node mapping)."""

    def __init__(
        self,
        brain: Astrocyte,
        bank_id: str | None = None,
        *,
        banks: Sequence[str] | None = None,
        max_results: int | None = None,
        tags: Sequence[str] | None = None,
        filters: dict[str, MetadataValue] | None = None,
        context: AstrocyteContext | None = None,
        callback_manager: CallbackManager | None = None,
        verbose: bool = False,
    ) -> None:
        if max_results is not None and max_results < 1:
            raise ValueError(f"max_results must be at least 1, got {max_results}")
        self.brain = brain
        self.bank_id = bank_id
        self.banks = list(banks) if banks is not None else None
        self.max_results = max_results
        self.tags = list(tags) if tags is not None else None
        self.filters = dict(filters) if filters is not None else None
        self.context = context
        super().__init__(callback_manager=callback_manager, verbose=verbose)

    async def _recall(self, query: str) -> list[NodeWithScore]:
        hits = await recall_hits(
            self.brain,
            query,
            self.bank_id,
            banks=self.banks,
            max_results=self.max_results,
            tags=self.tags,
            filters=self.filters,
            context=self.context,
        )
        return [_node(hit) for hit in hits]

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        """Recall for the query text (blocking; see :func:`run_sync`)."""
        return run_sync(self._recall(query_bundle.query_str))

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        """Recall for the query text."""
        return await self._recall(query_bundle.query_str)


# --- long-term chat memory -----------------------------------------------------------------


def _text(message: ChatMessage) -> str:
    return "\n".join(b.text for b in message.blocks if isinstance(b, TextBlock)).strip()


class AstrocyteMemoryBlock(BaseMemoryBlock[str]):
    """Long-term memory block for LlamaIndex's ``Memory``, backed by one Astrocyte bank.

    ``AstrocyteMemoryBlock(brain=brain, bank_id="alice", context=ctx)``. Messages that
    ``Memory`` flushes from its short-term queue are retained in the bank (one memory per
    message whose role is in ``roles``); each ``Memory.get`` recalls up to ``max_results``
    memories for the text of the latest ``query_messages`` messages. ``tags`` are given
    to every retained message, ``filters`` restrict the recall. See the module docstring
    for the mapping and limits."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    name: str = Field(default="astrocyte_memory", description="The block's name in the prompt.")
    brain: Astrocyte = Field(description="The Astrocyte instance holding the bank.")
    bank_id: str | None = Field(
        default=None, description="The bank; None uses the context's default bank."
    )
    context: AstrocyteContext | None = Field(
        default=None, description="The caller every retain and recall runs as."
    )
    max_results: int = Field(default=5, ge=1, description="Memories recalled per get.")
    query_messages: int = Field(
        default=1, ge=1, description="How many of the latest messages form the recall query."
    )
    roles: tuple[str, ...] = Field(
        default=("user", "assistant"), description="Roles of the flushed messages retained."
    )
    tags: list[str] | None = Field(default=None, description="Tags of every retained message.")
    filters: dict[str, MetadataValue] | None = Field(
        default=None, description="Metadata equality filters applied to the recall."
    )

    async def _aget(self, messages: list[ChatMessage] | None = None, **block_kwargs: Any) -> str:
        """The memories recalled for the latest messages as numbered lines, or ``""``
        (which ``Memory`` leaves out of the prompt) when there is nothing to show."""
        texts = [t for t in (_text(m) for m in messages or []) if t]
        query = "\n".join(texts[-self.query_messages :])
        if not query:
            return ""
        try:
            result = await self.brain.recall(
                query,
                self.bank_id,
                max_results=self.max_results,
                filters=self.filters,
                context=self.context,
            )
        except BankNotFound:
            # Normal at the start: the bank is created by the first flush. Grants are
            # checked before existence, so a refused caller still gets AccessDenied.
            return ""
        return format_hits(result) if result.hits else ""

    async def _aput(self, messages: list[ChatMessage]) -> None:
        """Retain the flushed messages, in one all-or-nothing batch."""
        items = list(self._items(messages))
        if items:
            await self.brain.retain_many(items, self.bank_id, context=self.context)

    def _items(self, messages: Iterable[ChatMessage]) -> Iterable[dict[str, Any]]:
        for message in messages:
            role = message.role.value
            text = _text(message)
            if role not in self.roles or not text:
                continue  # tool-call stubs and tool outputs are not conversation to recall
            metadata: dict[str, MetadataValue] = {"role": role}
            session_id = message.additional_kwargs.get("session_id")
            if isinstance(session_id, str):
                metadata["session_id"] = session_id
            yield {"content": f"{role}: {text}", "metadata": metadata, "tags": self.tags}
