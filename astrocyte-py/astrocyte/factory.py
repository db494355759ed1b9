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

from astrocyte.config.schema import AstrocyteConfig, ProviderSpec, StorageConfig, StorageRoute
from astrocyte.errors import ConfigError
from astrocyte.spi import SPI_VERSION, DocumentStore, GraphStore, LLMProvider, VectorStore
from astrocyte.stores.storeset import StoreSet

_GROUPS = {
    "document_store": "astrocyte.document_stores",
    "vector_store": "astrocyte.vector_stores",
    "graph_store": "astrocyte.graph_stores",
}


def build_stores(config: AstrocyteConfig) -> StoreSet:
    """The document, vector and graph stores the config asks for.

    Without ``storage.routes`` this is one plain :class:`StoreSet`. With routes it is a
    :class:`~astrocyte.stores.routing.RoutedStoreSet` sending each bank to its route's
    stores; identical specs (same provider and options, or the same embedded file)
    share one instance across the top level and every route.
    """
    storage = config.storage
    built = _Built()
    default = _build_set(storage, storage.backend, storage.path, "storage", built, eager=True)
    if not storage.routes:
        return default
    from astrocyte.stores.routing import Route, routed_store_set

    routes = [
        Route(
            tuple(route.banks),
            _build_set(route, route.backend, route.path, f"storage.routes[{i}]", built),
        )
        for i, route in enumerate(storage.routes)
    ]
    return routed_store_set(default, routes)


_PROTOCOLS: dict[str, type] = {
    "document_store": DocumentStore,
    "vector_store": VectorStore,
    "graph_store": GraphStore,
}


class _Built:
    """Stores built so far, so identical specs and embedded files get one instance: one
    connection pool instead of several, and a store set can then see that records and
    vectors live in one place (e.g. pgvector serving both)."""

    def __init__(self) -> None:
        self.specs: list[tuple[Any, dict[str, Any], Any]] = []
        self.files: dict[Path, Any] = {}

    def embedded(self, path: str) -> Any:
        from astrocyte.stores.sqlite import SQLiteStore

        expanded = Path(path).expanduser()
        if path == ":memory:":
            return SQLiteStore(expanded)  # private by definition: never shared
        key = expanded.resolve()
        if key not in self.files:
            expanded.parent.mkdir(parents=True, exist_ok=True)
            self.files[key] = SQLiteStore(expanded)
        return self.files[key]

    def provider(self, kind: str, spec: ProviderSpec, key: str) -> Any:
        protocol = _PROTOCOLS[kind]
        factory = _factory(kind, spec, key)
        # Compared by what the name resolves to: an entry-point name may mean one class
        # in every group (pgvector) or a different class per group (memory).
        options = spec.options()
        shared = next((s for f, o, s in self.specs if f is factory and o == options), None)
        if shared is None:
            shared = _construct(kind, spec, protocol, key, factory)
            self.specs.append((factory, options, shared))
        elif not isinstance(shared, protocol):
            raise ConfigError(
                f"{key}.{kind}.provider",
                f"{spec.provider!r} does not implement {protocol.__name__}",
            )
        return shared


def _build_set(
    section: StorageConfig | StorageRoute,
    backend: str,
    path: str | None,
    key: str,
    built: _Built,
    *,
    eager: bool = False,
) -> StoreSet:
    """The stores of the top level or of one route; slots without a provider spec come
    from ``backend``. ``eager`` opens the backend even when every slot has a spec (the
    top level always did; a route opens its file only when it uses it)."""
    specs: dict[str, ProviderSpec | None] = {kind: getattr(section, kind) for kind in _PROTOCOLS}
    slots: dict[str, Any] = {}
    if eager or any(spec is None for spec in specs.values()):
        if backend == "embedded":
            if path is None:
                raise ConfigError(
                    f"{key}.path",
                    "is required: the route keeps some stores in an embedded file",
                    fix="set path to the route's own SQLite file, or give the route a "
                    "provider for every store",
                )
            embedded = built.embedded(path)
            slots = dict.fromkeys(_PROTOCOLS, embedded)
        else:
            from astrocyte.stores.memory import (
                InMemoryDocumentStore,
                InMemoryGraphStore,
                InMemoryVectorStore,
            )

            slots = {
                "document_store": InMemoryDocumentStore(),
                "vector_store": InMemoryVectorStore(),
                "graph_store": InMemoryGraphStore(),
            }
    for kind, spec in specs.items():
        if spec is not None:
            slots[kind] = built.provider(kind, spec, key)
    return StoreSet(
        documents=slots["document_store"], vectors=slots["vector_store"], graph=slots["graph_store"]
    )


def _factory(kind: str, spec: ProviderSpec, prefix: str) -> Any:
    key = f"{prefix}.{kind}.provider"
    factory = _resolve(spec.provider, _GROUPS[kind], key)
    declared = getattr(factory, "SPI_VERSION", SPI_VERSION)
    if declared != SPI_VERSION:
        raise ConfigError(
            key,
            f"{spec.provider!r} implements SPI version {declared}, this core needs {SPI_VERSION}",
            fix="upgrade the adapter package or astrocyte so their SPI versions match",
        )
    return factory


def _construct(kind: str, spec: ProviderSpec, protocol: type, prefix: str, factory: Any) -> Any:
    try:
        store = factory(**spec.options())
    except TypeError as exc:
        raise ConfigError(f"{prefix}.{kind}", f"bad options for {spec.provider!r}: {exc}") from None
    if not isinstance(store, protocol):
        raise ConfigError(
            f"{prefix}.{kind}.provider", f"{spec.provider!r} does not implement {protocol.__name__}"
        )
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
