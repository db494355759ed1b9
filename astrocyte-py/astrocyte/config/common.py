"""Building blocks shared by the config section modules.

They live here, not in :mod:`astrocyte.config.schema`, because both the root schema
and :mod:`astrocyte.config.ingest_schema` (extraction profiles carry their own
chunking) need them, and the root schema imports the section modules.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ChunkingStrategy = Literal["sentence", "paragraph", "fixed"]


class Section(BaseModel):
    """Base of every config section: unknown keys are errors, never ignored."""

    model_config = ConfigDict(extra="forbid")


class ChunkingConfig(Section):
    """How retained content is split into memories.

    ``sentence`` packs whole sentences up to ``max_chars``; ``paragraph`` packs
    blank-line separated paragraphs; ``fixed`` cuts every ``max_chars`` characters
    (on a word boundary) and repeats ``overlap`` characters of the previous chunk.
    """

    strategy: ChunkingStrategy = Field(
        default="sentence", description="sentence | paragraph | fixed"
    )
    max_chars: int = Field(
        default=1000, ge=50, le=20_000, description="Upper bound of one chunk, in characters."
    )
    overlap: int = Field(
        default=0,
        ge=0,
        le=5_000,
        description="Characters repeated from the previous chunk (fixed only); < max_chars.",
    )
