"""Embedders: text to L2-normalised ``float32`` vectors (see :class:`astrocyte.spi.Embedder`).

* :class:`LocalOnnxEmbedder` (``"local"``, the default): all-MiniLM-L6-v2, offline.
* :class:`OpenAIEmbedder` (``"openai"``): any OpenAI-compatible ``/v1/embeddings``.
* :class:`HashingEmbedder` (``"hashing"``): deterministic, NOT semantic; unit tests only.

:func:`create_embedder` builds one from a config mapping.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from astrocyte._providers import build_provider
from astrocyte.embedders.hashing import HashingEmbedder
from astrocyte.embedders.local_onnx import LocalOnnxEmbedder
from astrocyte.embedders.openai_http import OpenAIEmbedder
from astrocyte.spi import Embedder

__all__ = [
    "EMBEDDER_PROVIDERS",
    "HashingEmbedder",
    "LocalOnnxEmbedder",
    "OpenAIEmbedder",
    "create_embedder",
]

EMBEDDER_PROVIDERS: Mapping[str, type[Any]] = {
    "local": LocalOnnxEmbedder,
    "openai": OpenAIEmbedder,
    "hashing": HashingEmbedder,
}
"""Built-in embedder providers by config name."""


def create_embedder(spec: Mapping[str, Any], *, key: str = "embedder") -> Embedder:
    """Build an embedder from a config mapping.

    ``spec["provider"]`` is ``"local"`` (the default when absent), ``"openai"``,
    ``"hashing"`` or an import path ``"package.module:ClassName"``; the other
    entries are passed to the class as keyword arguments, e.g.
    ``{"provider": "openai", "model": "text-embedding-3-small",
    "api_key_env": "OPENAI_API_KEY"}``. ``key`` is the spec's dotted config path,
    used in error messages.

    Raises:
        ConfigError: unknown provider or option, missing or invalid option (the
            error's ``key`` names it, e.g. ``"embedder.batch_size"``).
        EmbedderError: the local model file is missing.
    """
    instance = build_provider(
        spec,
        key=key,
        builtins=EMBEDDER_PROVIDERS,
        default="local",
        required_members=("model_id", "dimensions", "embed", "close"),
        protocol="Embedder",
    )
    return cast(Embedder, instance)
