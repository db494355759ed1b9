"""LLM providers for reflect (see :class:`astrocyte.spi.LLMProvider`).

* :class:`OpenAIChatProvider` (``"openai"``): any OpenAI-compatible
  ``/v1/chat/completions`` (OpenAI, vLLM, Ollama, LiteLLM...).

:func:`create_llm` builds one from a config mapping.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from astrocyte._providers import build_provider
from astrocyte.llm.openai_chat import OpenAIChatProvider
from astrocyte.spi import LLMProvider

__all__ = ["LLM_PROVIDERS", "OpenAIChatProvider", "create_llm"]

LLM_PROVIDERS: Mapping[str, type[Any]] = {"openai": OpenAIChatProvider}
"""Built-in LLM providers by config name."""


def create_llm(spec: Mapping[str, Any], *, key: str = "llm") -> LLMProvider:
    """Build an LLM provider from a config mapping.

    ``spec["provider"]`` is ``"openai"`` (the default when absent) or an import path
    ``"package.module:ClassName"``; the other entries are keyword arguments, e.g.
    ``{"provider": "openai", "base_url": "http://localhost:11434/v1",
    "model": "llama3.1"}``. ``key`` is the spec's dotted config path.

    Raises:
        ConfigError: unknown provider or option, missing or invalid option (the
            error's ``key`` names it, e.g. ``"llm.model"``).
    """
    instance = build_provider(
        spec,
        key=key,
        builtins=LLM_PROVIDERS,
        default="openai",
        required_members=("model_id", "complete", "close"),
        protocol="LLMProvider",
    )
    return cast(LLMProvider, instance)
