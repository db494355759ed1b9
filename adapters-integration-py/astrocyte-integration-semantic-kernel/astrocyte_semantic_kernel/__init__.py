"""Semantic Kernel integration for Astrocyte.

Install: ``pip install astrocyte-integration-semantic-kernel`` (semantic-kernel 1.45+).

- :class:`AstrocyteMemoryPlugin` — a Semantic Kernel plugin with two ``@kernel_function``\\ s,
  ``remember(content)`` and ``recall(query)``, on one bank:
  ``kernel.add_plugin(AstrocyteMemoryPlugin(brain, "alice"), plugin_name="memory")``. With
  ``FunctionChoiceBehavior.Auto()`` the model calls them like any other tool.
- :class:`AstrocyteTextSearch` — Semantic Kernel's ``TextSearch`` over
  :meth:`Astrocyte.recall`; ``create_search_function()`` (Semantic Kernel's own) turns it
  into a kernel function, e.g. for retrieval-augmented prompts.

**Mapping.** A plugin or a search is bound to one bank (``bank_id``) or, for the search,
several (``banks=[...]``). ``remember`` retains its argument as one memory (optionally with
fixed ``tags`` / ``metadata``) and answers with the memory id; ``recall`` answers with the
best ``max_results`` memories as numbered lines (the same tool descriptions and answer text
as every Astrocyte framework adapter, see :mod:`astrocyte.integrations.common`). A search
returns, per ``output_type``: the memory texts (``str``), ``TextSearchResult``\\ s
(``name`` = memory id, ``value`` = text, ``link`` = the memory's ``source_id``, if any), or
the :class:`~astrocyte.types.RecallHit`\\ s themselves (``"Any"``). Whatever the output
type, ``KernelSearchResults.metadata["hits"]`` holds every returned hit's provenance as flat
metadata (``memory_id``, ``bank_id``, ``score``, ``source_id``, ``tags``, the retained
``metadata``, ...) and ``metadata["skipped_banks"]`` the banks the caller may not read.

**Filters.** Semantic Kernel expresses search filters as lambdas. A *string* filter (what
``create_search_function``'s parameters produce) is translated, never evaluated: it must be
``lambda x: <clause> and <clause> ...`` where a clause is ``x.<field> == <literal>``
(metadata equality, pushed down to recall) or ``<literal> in x.tags`` (a required tag).
Anything else raises ``TextSearchException``. A *callable* filter is applied to each
:class:`~astrocyte.types.RecallHit` after recall (so it may return fewer than ``top``).

**Identity.** Every call runs as the ``context`` given at construction (default: the local
single user) and is checked against ``access_grants`` like a direct call: ``remember``
needs ``write``, ``recall`` and searches ``read``. A denied call raises
:class:`~astrocyte.AccessDenied`; under automatic function calling Semantic Kernel catches
it and sends the model "An error occurred while invoking the function ..." as the tool
result, while ``kernel.invoke`` raises it (wrapped in ``KernelInvokeException``) and a
search function wraps it in ``TextSearchException``.

**Limits.** Everything is async (Semantic Kernel awaits kernel functions on its own loop);
the plugin holds no per-conversation state. ``include_total_count`` reports the number of
hits recall returned for ``skip + top`` (recall ranks; it does not count all matches).
``skip + top`` is bounded by the config's ``limits.max_results``. The deprecated
``SemanticTextMemory`` / ``MemoryStoreBase`` memory API is not implemented.
"""

from __future__ import annotations

import ast
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Annotated, Any, Literal

try:
    from semantic_kernel.data.text_search import (
        KernelSearchResults,
        TextSearch,
        TextSearchResult,
    )
    from semantic_kernel.exceptions import TextSearchException
    from semantic_kernel.functions import kernel_function
except ImportError as exc:  # pragma: no cover - exercised only without the dependency
    raise ImportError(
        "astrocyte_semantic_kernel needs semantic-kernel: "
        "pip install astrocyte-integration-semantic-kernel"
    ) from exc

from astrocyte.brain import Astrocyte
from astrocyte.identity.context import AstrocyteContext
from astrocyte.integrations.common import (
    RECALL_DESCRIPTION,
    REMEMBER_DESCRIPTION,
    MemoryTools,
    hit_metadata,
)
from astrocyte.spi import MetadataValue
from astrocyte.types import RecallHit

__all__ = [
    "AstrocyteMemoryPlugin",
    "AstrocyteTextSearch",
    "parse_filter",
]

# --- plugin --------------------------------------------------------------------------------


class AstrocyteMemoryPlugin:
    """``remember`` / ``recall`` kernel functions on one bank, running as ``context``.

    ``AstrocyteMemoryPlugin(brain, "alice", context=ctx, max_results=5, tags=["chat"],
    metadata={"source": "sk"})``; add it with ``kernel.add_plugin(plugin, "memory")`` (the
    model then sees ``memory-remember`` and ``memory-recall``). ``tags`` and ``metadata`` are
    attached to every remembered memory. A denied or invalid call raises Astrocyte's typed
    error (see the module docstring for how Semantic Kernel reports it)."""

    def __init__(
        self,
        brain: Astrocyte,
        bank_id: str,
        *,
        context: AstrocyteContext | None = None,
        max_results: int = 5,
        tags: Sequence[str] | None = None,
        metadata: dict[str, MetadataValue] | None = None,
    ) -> None:
        if max_results < 1:
            raise ValueError("max_results must be at least 1")
        self.tools = MemoryTools(
            brain,
            bank_id,
            context,
            max_results=max_results,
            tags=tags,
            metadata=dict(metadata or {}),
        )

    @kernel_function(name="remember", description=REMEMBER_DESCRIPTION)
    async def remember(
        self,
        content: Annotated[str, "The fact to store, as a self-contained sentence."],
    ) -> Annotated[str, "Confirmation with the stored memory id."]:
        """Retain ``content`` in the bank; answers with the memory id."""
        return await self.tools.remember(content)

    @kernel_function(name="recall", description=RECALL_DESCRIPTION)
    async def recall(
        self,
        query: Annotated[str, "What to look for in long-term memory."],
    ) -> Annotated[str, "The best matching memories, one per line."]:
        """Recall the best memories for ``query`` as numbered lines."""
        return await self.tools.recall(query)


# --- filters -------------------------------------------------------------------------------


def parse_filter(expression: str) -> tuple[dict[str, MetadataValue], list[str]]:
    """Translate a Semantic Kernel string filter into recall's ``filters`` and ``tags``.

    ``"lambda x: x.source == 'chat' and 'work' in x.tags"`` →
    ``({"source": "chat"}, ["work"])``. The expression is parsed, never evaluated; any
    other shape raises ``TextSearchException``."""
    try:
        tree = ast.parse(expression.strip(), mode="eval").body
    except SyntaxError as exc:
        raise TextSearchException(f"filter is not a valid lambda: {expression!r}") from exc
    if not isinstance(tree, ast.Lambda) or len(tree.args.args) != 1 or _has_extra_args(tree):
        raise TextSearchException(f"filter must be a one-argument lambda: {expression!r}")
    arg = tree.args.args[0].arg
    body = tree.body
    clauses = (
        body.values if isinstance(body, ast.BoolOp) and isinstance(body.op, ast.And) else [body]
    )
    filters: dict[str, MetadataValue] = {}
    tags: list[str] = []
    for clause in clauses:
        field, value = _clause(clause, arg, expression)
        if field is None:
            if not isinstance(value, str):
                raise TextSearchException(f"a tag must be a string in filter {expression!r}")
            tags.append(value)
        elif field in filters and filters[field] != value:
            raise TextSearchException(f"conflicting values for {field!r} in filter {expression!r}")
        else:
            filters[field] = value
    return filters, tags


def _has_extra_args(node: ast.Lambda) -> bool:
    a = node.args
    return bool(a.posonlyargs or a.kwonlyargs or a.vararg or a.kwarg or a.defaults)


def _literal(node: ast.expr, expression: str) -> MetadataValue:
    try:
        value = ast.literal_eval(node)
    except ValueError as exc:
        raise TextSearchException(f"filter values must be literals: {expression!r}") from exc
    if value is not None and not isinstance(value, str | int | float | bool):
        raise TextSearchException(
            f"filter values must be str, int, float, bool or None: {expression!r}"
        )
    return value


def _attribute_of(node: ast.expr, arg: str) -> str | None:
    if (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == arg
    ):
        return node.attr
    return None


def _clause(node: ast.expr, arg: str, expression: str) -> tuple[str | None, MetadataValue]:
    """One ``x.field == literal`` (→ field, value) or ``literal in x.tags`` (→ None, tag)."""
    if isinstance(node, ast.Compare) and len(node.ops) == 1:
        left, op, right = node.left, node.ops[0], node.comparators[0]
        if isinstance(op, ast.Eq):
            for attr_node, value_node in ((left, right), (right, left)):
                field = _attribute_of(attr_node, arg)
                if field is not None and _attribute_of(value_node, arg) is None:
                    return field, _literal(value_node, expression)
        if isinstance(op, ast.In) and _attribute_of(right, arg) == "tags":
            return None, _literal(left, expression)
    raise TextSearchException(
        f"unsupported filter clause {ast.unparse(node)!r} in {expression!r}: use "
        "x.<field> == <literal> or <literal> in x.tags, joined with 'and'"
    )


# --- text search ---------------------------------------------------------------------------


class AstrocyteTextSearch(TextSearch):
    """Semantic Kernel ``TextSearch`` over :meth:`Astrocyte.recall`.

    ``AstrocyteTextSearch(brain, "alice", context=ctx)`` or ``banks=[...]`` to search
    several banks; ``tags`` / ``filters`` restrict every search (per-call filters add to
    them). See the module docstring for the result types, provenance and filters."""

    def __init__(
        self,
        brain: Astrocyte,
        bank_id: str | None = None,
        *,
        banks: Sequence[str] | None = None,
        context: AstrocyteContext | None = None,
        tags: Sequence[str] | None = None,
        filters: dict[str, MetadataValue] | None = None,
    ) -> None:
        self.brain = brain
        self.bank_id = bank_id
        self.banks = list(banks) if banks is not None else None
        self.context = context
        self.tags = list(tags or [])
        self.filters = dict(filters or {})

    async def search(  # type: ignore[override]  # the base's TypeVar-typed signature is untyped
        self,
        query: str,
        output_type: type[str] | type[TextSearchResult] | Literal["Any"] = str,
        *,
        filter: Callable[..., Any] | str | list[Callable[..., Any] | str] | None = None,
        skip: int = 0,
        top: int = 5,
        include_total_count: bool = False,
        **kwargs: Any,
    ) -> KernelSearchResults[Any]:
        """Recall ``skip + top`` hits for ``query`` and return the last ``top`` of them as
        ``output_type`` (``str``, ``TextSearchResult`` or ``"Any"`` for the hits), with
        their provenance in ``metadata["hits"]``."""
        if skip < 0 or top < 1:
            raise TextSearchException("skip must be >= 0 and top >= 1")
        filters = dict(self.filters)
        tags = list(self.tags)
        predicates: list[Callable[..., Any]] = []
        for item in filter if isinstance(filter, list) else [filter]:
            if item is None:
                continue
            if isinstance(item, str):
                more_filters, more_tags = parse_filter(item)
                for field, value in more_filters.items():
                    if field in filters and filters[field] != value:
                        # Two different required values for one field: nothing can match.
                        return _results([], output_type, None, [])
                    filters[field] = value
                tags.extend(more_tags)
            elif callable(item):
                predicates.append(item)
            else:
                raise TextSearchException(f"unsupported filter {item!r}")
        result = await self.brain.recall(
            query,
            self.bank_id,
            banks=self.banks,
            max_results=skip + top,
            tags=tags or None,
            filters=filters or None,
            context=self.context,
        )
        hits = [hit for hit in result.hits if all(p(hit) for p in predicates)]
        total = len(hits) if include_total_count else None
        return _results(hits[skip : skip + top], output_type, total, result.skipped_banks)


def _results(
    hits: list[RecallHit],
    output_type: type[str] | type[TextSearchResult] | Literal["Any"],
    total: int | None,
    skipped_banks: Sequence[str],
) -> KernelSearchResults[Any]:
    if output_type is str:
        items: list[Any] = [hit.text for hit in hits]
    elif output_type is TextSearchResult:
        items = [
            TextSearchResult(name=hit.memory_id, value=hit.text, link=hit.provenance.source_id)
            for hit in hits
        ]
    elif output_type == "Any":
        items = list(hits)
    else:
        raise TextSearchException(
            f"unknown output type {output_type!r}: use str, TextSearchResult or 'Any'"
        )
    return KernelSearchResults(
        results=_iterate(items),
        total_count=total,
        metadata={
            "hits": [hit_metadata(hit) for hit in hits],
            "skipped_banks": list(skipped_banks),
        },
    )


async def _iterate(items: list[Any]) -> AsyncIterator[Any]:
    for item in items:
        yield item
