"""Entity extraction by an LLM (``entity_extraction: llm`` in an extraction profile).

The configured :class:`~astrocyte.spi.LLMProvider` is asked for JSON
``{"entities": [{"name": ..., "kind": ...}]}``. The reply is validated against a
pydantic schema; an invalid reply is retried once with the validation error shown to
the model, and if that fails too — or the provider fails — the rule-based extractor
(:func:`astrocyte.pipeline.entities.extract_mentions`) answers instead, so a flaky
LLM degrades retain's entity quality but never fails a retain.

Names the model returns that do not occur in the text are dropped: an invented name
would link the memory into the graph under an entity it never mentions.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from astrocyte.errors import AstrocyteError
from astrocyte.pipeline.entities import (
    EntityMention,
    GazetteerLike,
    extract_mentions,
    normalise_name,
)
from astrocyte.spi import ChatMessage, LLMProvider

__all__ = ["ExtractedEntities", "ExtractedEntity", "LLMEntityExtractor", "LLMExtraction"]

log = logging.getLogger(__name__)

SYSTEM_PROMPT = """You extract named entities from text for a memory index.
Reply with JSON only, no prose, exactly in this shape:
{"entities": [{"name": "<as written in the text>", "kind": "<kind>"}]}
kind is one of: person, org, place, product, event, identifier, other.
List each entity once, with its name exactly as it appears in the text.
If there are none, reply {"entities": []}."""

_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


class ExtractedEntity(BaseModel):
    """One entity as the LLM must return it."""

    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=1, max_length=200)
    kind: str = Field(default="other", min_length=1, max_length=40)


class ExtractedEntities(BaseModel):
    """The whole reply the LLM must return."""

    model_config = ConfigDict(extra="ignore")

    entities: list[ExtractedEntity] = Field(max_length=200)


@dataclass(frozen=True, slots=True)
class LLMExtraction:
    """What extraction produced for one text, and how it got there."""

    mentions: list[EntityMention]
    method: Literal["llm", "rules"]
    """``"rules"`` when the LLM's answers were unusable and the fallback answered."""
    attempts: int
    """LLM calls made (0..2)."""
    error: str | None = None
    """Why the fallback was used."""


def parse_reply(text: str) -> ExtractedEntities:
    """The reply as :class:`ExtractedEntities`; models often wrap JSON in a code
    fence, which is tolerated. Raises ValueError (pydantic's or json's) if invalid."""
    fenced = _FENCE.match(text)
    return ExtractedEntities.model_validate_json(fenced.group(1) if fenced else text.strip())


def _mentions(parsed: ExtractedEntities, text: str) -> list[EntityMention]:
    haystack = text.casefold()
    out: dict[str, EntityMention] = {}
    for entity in parsed.entities:
        name = " ".join(entity.name.split())
        normalized = normalise_name(name)
        if not normalized or name.casefold() not in haystack:
            continue
        kind = entity.kind.strip().lower()
        out.setdefault(normalized, EntityMention(name, normalized, kind))
        # As the rule extractor does, a person's full name also links its single
        # words, so a later "Alice" reaches memories that said "Alice Smith".
        if kind == "person" and " " in normalized:
            for word in name.split():
                if word[:1].isupper() and len(word) >= 2:
                    norm = normalise_name(word)
                    out.setdefault(norm, EntityMention(word, norm, kind))
    return list(out.values())


class LLMEntityExtractor:
    """Extracts entities with ``llm``; see the module docstring for the protocol.

    ``gazetteers`` are passed to the rule-based fallback. ``concurrency`` bounds the
    LLM calls of one :meth:`extract_many` (a bulk retain must not open hundreds of
    connections at once).
    """

    def __init__(
        self,
        llm: LLMProvider,
        *,
        gazetteers: GazetteerLike | None = None,
        max_tokens: int = 512,
        concurrency: int = 4,
    ) -> None:
        self._llm = llm
        self._gazetteers = gazetteers
        self._max_tokens = max_tokens
        self._concurrency = max(1, concurrency)

    def _fallback(self, text: str, attempts: int, error: str) -> LLMExtraction:
        log.warning("LLM entity extraction fell back to rules: %s", error)
        return LLMExtraction(
            extract_mentions(text, gazetteers=self._gazetteers), "rules", attempts, error
        )

    async def extract(self, text: str) -> LLMExtraction:
        """Entities of ``text``: the LLM's, else (after one retry) the rules'."""
        messages = [
            ChatMessage(role="system", content=SYSTEM_PROMPT),
            ChatMessage(role="user", content=text),
        ]
        error = ""
        for attempt in (1, 2):
            try:
                completion = await self._llm.complete(
                    messages, max_tokens=self._max_tokens, temperature=0.0
                )
            except AstrocyteError as exc:
                # The provider already retried transport errors; asking again would
                # only double the wait.
                return self._fallback(text, attempt, f"LLM call failed: {exc}")
            try:
                parsed = parse_reply(completion.text)
            except (PydanticValidationError, json.JSONDecodeError, ValueError) as exc:
                error = f"invalid reply: {str(exc).splitlines()[0]}"
                # Show the model what was wrong: a second blind try tends to repeat it.
                messages = [
                    *messages,
                    ChatMessage(role="assistant", content=completion.text[:2000]),
                    ChatMessage(
                        role="user",
                        content=f"That reply was not valid ({error}). Reply again with "
                        'JSON only: {"entities": [{"name": ..., "kind": ...}]}',
                    ),
                ]
                continue
            return LLMExtraction(_mentions(parsed, text), "llm", attempt)
        return self._fallback(text, 2, error)

    async def extract_many(self, texts: Sequence[str]) -> list[LLMExtraction]:
        """:meth:`extract` of each text, at most ``concurrency`` at a time, in order."""
        gate = asyncio.Semaphore(self._concurrency)

        async def one(text: str) -> LLMExtraction:
            async with gate:
                return await self.extract(text)

        return list(await asyncio.gather(*(one(t) for t in texts)))
