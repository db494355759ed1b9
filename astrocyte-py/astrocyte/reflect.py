"""Reflect: answer a question from a bank's memories, citing them.

With an LLM configured, the top evidence is numbered in the prompt and the model is
asked to cite ``[n]``; the cited numbers become :class:`Citation` s. With no LLM, the
answer is *extractive*: for each top memory, its sentence that best matches the
question, verbatim, under a label saying so — nothing is invented.

Given an :class:`~astrocyte.types.AuthorityContext` (``recall_authority`` with
``apply_to_reflect``), the evidence is that context instead — grouped by tier, highest
first, with the precedence rules — and every citation names its tier.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from astrocyte.pipeline.chunking import chunk_text
from astrocyte.spi import ChatMessage, LLMProvider
from astrocyte.stores.text import tokenize
from astrocyte.types import (
    AuthorityContext,
    AuthorityEntry,
    Citation,
    RecallHit,
    RecallResult,
    ReflectResult,
)

EXTRACTIVE_LABEL = (
    "Extractive answer (no LLM configured): the most relevant stored memories, quoted verbatim."
)
NO_EVIDENCE = "No relevant memories found."

_SYSTEM_PROMPT = (
    "You answer questions using only the numbered memories provided. Cite every claim "
    "with the memory number in square brackets, like [2]. If the memories do not "
    "contain the answer, say that you do not know. Be concise."
)
_AUTHORITY_SYSTEM_PROMPT = (
    "You answer questions using only the numbered memories provided. They are grouped "
    "by authority tier, most authoritative first. When memories disagree, follow the "
    "precedence rules given (by default: prefer the higher tier) and say which tier "
    "your answer relies on. Cite every claim with the memory number in square "
    "brackets, like [2]. If the memories do not contain the answer, say that you do "
    "not know. Be concise."
)
_CITATION = re.compile(r"\[(\d{1,4})\]")
_EXCERPT_CHARS = 300


async def reflect_with_llm(
    query: str,
    recall: RecallResult,
    llm: LLMProvider,
    *,
    max_tokens: int | None = None,
    authority: AuthorityContext | None = None,
) -> ReflectResult:
    """Ask the LLM to answer from the evidence and map its ``[n]`` citations back."""
    hits = recall.hits
    if authority is not None:
        return await _reflect_with_authority(query, recall, llm, authority, max_tokens)
    if not hits:
        return ReflectResult(
            query=query,
            answer=NO_EVIDENCE,
            mode="llm",
            citations=[],
            evidence=[],
            model=llm.model_id,
        )
    evidence = "\n".join(_evidence_line(n, hit) for n, hit in enumerate(hits, 1))
    completion = await llm.complete(
        [
            ChatMessage("system", _SYSTEM_PROMPT),
            ChatMessage("user", f"Memories:\n{evidence}\n\nQuestion: {query}"),
        ],
        max_tokens=max_tokens,
    )
    cited: dict[int, None] = {}
    for match in _CITATION.finditer(completion.text):
        number = int(match.group(1))
        if 1 <= number <= len(hits):
            cited[number] = None
    return ReflectResult(
        query=query,
        answer=completion.text.strip(),
        mode="llm",
        citations=[_citation(hits[n - 1]) for n in cited],
        evidence=hits,
        model=completion.model,
    )


async def _reflect_with_authority(
    query: str,
    recall: RecallResult,
    llm: LLMProvider,
    authority: AuthorityContext,
    max_tokens: int | None,
) -> ReflectResult:
    entries = _entries(authority)
    if not entries:
        return ReflectResult(
            query=query,
            answer=NO_EVIDENCE,
            mode="llm",
            citations=[],
            evidence=recall.hits,
            model=llm.model_id,
        )
    completion = await llm.complete(
        [
            ChatMessage("system", _AUTHORITY_SYSTEM_PROMPT),
            ChatMessage("user", f"{authority.text}\n\nQuestion: {query}"),
        ],
        max_tokens=max_tokens,
    )
    by_number = {e.number: e for e in entries}
    cited = dict.fromkeys(
        int(m.group(1)) for m in _CITATION.finditer(completion.text) if int(m.group(1)) in by_number
    )
    return ReflectResult(
        query=query,
        answer=completion.text.strip(),
        mode="llm",
        citations=[_tiered_citation(recall, by_number[n]) for n in cited],
        evidence=recall.hits,
        model=completion.model,
    )


def reflect_extractive(
    query: str,
    recall: RecallResult,
    *,
    max_points: int = 5,
    authority: AuthorityContext | None = None,
) -> ReflectResult:
    """Quote the best-matching sentence of each top memory, labelled as extractive.

    With ``authority``, the quotes follow its tier order and name each tier."""
    if authority is not None:
        entries = _entries(authority)[:max_points]
        if not entries:
            return ReflectResult(
                query=query, answer=NO_EVIDENCE, mode="extractive", citations=[], evidence=[]
            )
        terms = set(tokenize(query))
        lines = [EXTRACTIVE_LABEL]
        for e in entries:
            tier = e.tier or "untiered"
            lines.append(f"[{e.number}] ({tier}) {best_sentence(e.text, terms)}")
        return ReflectResult(
            query=query,
            answer="\n".join(lines),
            mode="extractive",
            citations=[_tiered_citation(recall, e) for e in entries],
            evidence=recall.hits,
        )
    hits = recall.hits[:max_points]
    if not hits:
        return ReflectResult(
            query=query, answer=NO_EVIDENCE, mode="extractive", citations=[], evidence=[]
        )
    terms = set(tokenize(query))
    lines = [EXTRACTIVE_LABEL]
    for n, hit in enumerate(hits, 1):
        lines.append(f"[{n}] {best_sentence(hit.text, terms)}")
    return ReflectResult(
        query=query,
        answer="\n".join(lines),
        mode="extractive",
        citations=[_citation(h) for h in hits],
        evidence=recall.hits,
    )


def best_sentence(text: str, terms: set[str]) -> str:
    """The sentence of ``text`` sharing most terms with the query (first on ties)."""
    sentences = [c.text for c in chunk_text(text, "sentence", max_chars=_EXCERPT_CHARS)]
    if not sentences:
        return text[:_EXCERPT_CHARS]
    return max(sentences, key=lambda s: len(terms.intersection(tokenize(s))))


def _evidence_line(number: int, hit: RecallHit) -> str:
    when = hit.provenance.occurred_at
    stamp = f" ({when.date().isoformat()})" if when else ""
    return f"[{number}]{stamp} {hit.text}"


def _citation(hit: RecallHit) -> Citation:
    return Citation(
        memory_id=hit.memory_id, bank_id=hit.provenance.bank_id, excerpt=hit.text[:_EXCERPT_CHARS]
    )


def _entries(authority: AuthorityContext) -> list[AuthorityEntry]:
    """The context's entries in their [n] order (tier order)."""
    return [e for group in authority.tiers for e in group.entries]


def _tiered_citation(recall: RecallResult, entry: AuthorityEntry) -> Citation:
    citation = _citation(recall.hits[entry.hit_index])
    return citation.model_copy(update={"authority_tier": entry.tier})


def cited_ids(result: ReflectResult) -> Sequence[str]:
    """Memory ids the answer cites, in citation order."""
    return [c.memory_id for c in result.citations]
