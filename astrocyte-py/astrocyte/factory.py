"""Building the configured stores, embedder, LLM and reranker.

Pluggable components are named by a built-in name, an entry-point name in the groups
``astrocyte.document_stores`` / ``astrocyte.vector_stores`` / ``astrocyte.graph_stores``,
or an import path ``module:Class``. The core never imports an adapter by name.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from astrocyte.config.schema import AstrocyteConfig, ProviderSpec
from astrocyte.errors import ConfigError
from astrocyte.spi import SPI_VERSION, DocumentStore, GraphStore, LLMProvider, VectorStore
from astrocyte.stores.storeset import StoreSet

_GROUPS = {
    "document_store": "astrocyte.document_stores",
    "vector_store": "astrocyte.vector_stores",
    "graph_store": "astrocyte.graph_stores",
}


def build_stores(config: AstrocyteConfig) -> StoreSet:
    """The document, vector and graph stores the config asks for."""
    storage = config.storage
    if storage.backend == "embedded":
        from astrocyte.stores.sqlite import SQLiteStore

        path = Path(storage.path).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        embedded = SQLiteStore(path)
        base: tuple[Any, Any, Any] = (embedded, embedded, embedded)
    else:
        from astrocyte.stores.memory import (
            InMemoryDocumentStore,
            InMemoryGraphStore,
            InMemoryVectorStore,
        )

        base = (InMemoryDocumentStore(), InMemoryVectorStore(), InMemoryGraphStore())
    slots = dict(zip(("document_store", "vector_store", "graph_store"), base, strict=True))
    protocols = {
        "document_store": DocumentStore,
        "vector_store": VectorStore,
        "graph_store": GraphStore,
    }
    # Slots with the same provider and options get one shared instance: one connection
    # pool instead of several, and the store set can then see that records and vectors
    # live in one place (e.g. pgvector serving both).
    built: list[tuple[ProviderSpec, Any]] = []
    for kind, protocol in protocols.items():
        spec: ProviderSpec | None = getattr(storage, kind)
        if spec is None:
            continue
        shared = next((store for seen, store in built if _same_spec(seen, spec)), None)
        if shared is None:
            shared = _load_store(kind, spec, protocol)
            built.append((spec, shared))
        elif not isinstance(shared, protocol):
            raise ConfigError(
                f"storage.{kind}.provider",
                f"{spec.provider!r} does not implement {protocol.__name__}",
            )
        slots[kind] = shared
    return StoreSet(
        documents=slots["document_store"], vectors=slots["vector_store"], graph=slots["graph_store"]
    )


def _same_spec(a: ProviderSpec, b: ProviderSpec) -> bool:
    return a.provider == b.provider and a.options() == b.options()


def _load_store(kind: str, spec: ProviderSpec, protocol: type) -> Any:
    key = f"storage.{kind}.provider"
    factory = _resolve(spec.provider, _GROUPS[kind], key)
    declared = getattr(factory, "SPI_VERSION", SPI_VERSION)
    if declared != SPI_VERSION:
        raise ConfigError(
            key,
            f"{spec.provider!r} implements SPI version {declared}, this core needs {SPI_VERSION}",
            fix="upgrade the adapter package or astrocyte so their SPI versions match",
        )
    try:
        store = factory(**spec.options())
    except TypeError as exc:
        raise ConfigError(f"storage.{kind}", f"bad options for {spec.provider!r}: {exc}") from None
    if not isinstance(store, protocol):
        raise ConfigError(key, f"{spec.provider!r} does not implement {protocol.__name__}")
    return store


def _resolve(name: str, group: str, key: str) -> Any:
    if ":" in name:
        module_name, _, attr = name.partition(":")
        try:
            return getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(key, f"cannot import {name!r}: {exc}") from None
    found = {ep.name: ep for ep in entry_points(group=group)}
    if name not in found:
        raise ConfigError(
            key,
            f"no provider named {name!r}",
            fix=f"install its adapter package or use one of {sorted(found)} or module:Class",
        )
    return found[name].load()


def build_embedder(config: AstrocyteConfig) -> Any:
    """The configured embedder (default: the local ONNX model)."""
    from astrocyte.embedders import create_embedder

    return create_embedder({"provider": config.embedder.provider, **config.embedder.options()})


def build_llm(config: AstrocyteConfig) -> LLMProvider | None:
    """The configured LLM, or None (reflect is then extractive)."""
    if config.llm is None:
        return None
    from astrocyte.llm import create_llm

    llm: LLMProvider = create_llm({"provider": config.llm.provider, **config.llm.options()})
    return llm
