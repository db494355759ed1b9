"""The wrapper's settings, validated once when the wrapper is built."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from astrocyte_llm_wrapper.prompt import DEFAULT_TEMPLATE, PLACEHOLDER, Position

__all__ = ["MemoryOptions"]

_POSITIONS = ("first", "before_last_user")


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryOptions:
    """How memories are recalled, injected and retained.

    Defaults of the prompt fields match the API-gateway plugins (``position``,
    ``template``, ``max_chars``, ``max_results``, ``max_query_chars``). ``max_chars``
    and ``max_query_chars`` count UTF-8 bytes, as the plugins do.
    """

    position: Position = "first"
    """``first`` (before all messages) or ``before_last_user``."""
    template: str = DEFAULT_TEMPLATE
    """Must contain ``{memories}``, replaced by one ``- <memory>`` line per hit."""
    max_chars: int = 2000
    """Budget of the whole injected system message, in UTF-8 bytes."""
    max_tokens: int | None = None
    """Optional budget in approximate tokens (4 bytes each); the smaller budget wins.
    Also passed to recall."""
    max_results: int = 5
    """Hits asked for and injected at most."""
    max_query_chars: int = 2000
    """The user message is cut to this many UTF-8 bytes before recall."""
    recall_timeout: float = 1.0
    """Seconds the call waits for recall; past it the call goes on without memories."""
    retain_timeout: float = 10.0
    """Seconds one background retain may take before it is abandoned (and logged)."""
    retain: bool = True
    """Retain each exchange (user message + assistant reply) after the call."""
    retain_tags: Sequence[str] = field(default=())
    """Tags added to retained memories."""

    def __post_init__(self) -> None:
        if self.position not in _POSITIONS:
            raise ValueError(
                f"position must be 'first' or 'before_last_user', not {self.position!r}"
            )
        if not isinstance(self.template, str) or PLACEHOLDER not in self.template:
            raise ValueError(f"template must be a string containing {PLACEHOLDER}")
        for name in ("max_chars", "max_results", "max_query_chars"):
            _positive_int(name, getattr(self, name))
        if self.max_tokens is not None:
            _positive_int("max_tokens", self.max_tokens)
        for name in ("recall_timeout", "retain_timeout"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or value <= 0
            ):
                raise ValueError(f"{name} must be a positive number of seconds, not {value!r}")
        if not isinstance(self.retain, bool):
            raise ValueError(f"retain must be a boolean, not {self.retain!r}")
        tags: Any = self.retain_tags
        if isinstance(tags, str) or not isinstance(tags, Sequence):
            raise ValueError("retain_tags must be a list of strings")
        if not all(isinstance(tag, str) and tag for tag in tags):
            raise ValueError("retain_tags must be a list of non-empty strings")
        # Frozen: a list passed in must not change the options afterwards.
        object.__setattr__(self, "retain_tags", tuple(tags))


def _positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, not {value!r}")
