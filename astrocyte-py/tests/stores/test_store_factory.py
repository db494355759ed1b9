"""build_stores: adapters by import path, SPI checks, one instance per identical spec."""

from __future__ import annotations

from typing import Any

import pytest

from astrocyte import load_config
from astrocyte.errors import ConfigError
from astrocyte.factory import build_stores
from astrocyte.stores.memory import InMemoryDocumentStore, InMemoryVectorStore


class DocsAndVectors(InMemoryDocumentStore):
    """One object serving two slots, like pgvector (records + vectors in one database)."""

    instances = 0

    def __init__(self, **options: Any) -> None:
        super().__init__()
        self.options = options
        self._vectors = InMemoryVectorStore()
        type(self).instances += 1
        # VectorStore methods delegate, so the object satisfies both protocols.
        self.upsert = self._vectors.upsert
        self.search = self._vectors.search


class WrongSpi(InMemoryDocumentStore):
    SPI_VERSION = 99


PATH = f"{__name__}:DocsAndVectors"


def _config(**storage: Any) -> Any:
    return load_config({"storage": {"backend": "memory", **storage}})


def test_identical_specs_share_one_instance() -> None:
    DocsAndVectors.instances = 0
    spec = {"provider": PATH, "dsn": "postgresql://x"}
    stores = build_stores(_config(document_store=spec, vector_store=dict(spec)))
    assert stores.documents is stores.vectors
    assert DocsAndVectors.instances == 1
    assert stores.documents.options == {"dsn": "postgresql://x"}  # type: ignore[attr-defined]


def test_different_options_give_separate_instances() -> None:
    DocsAndVectors.instances = 0
    stores = build_stores(
        _config(
            document_store={"provider": PATH, "dsn": "postgresql://a"},
            vector_store={"provider": PATH, "dsn": "postgresql://b"},
        )
    )
    assert stores.documents is not stores.vectors
    assert DocsAndVectors.instances == 2


def test_shared_instance_must_implement_the_second_slot() -> None:
    spec = {"provider": f"{__name__}:InMemoryDocumentStore"}
    with pytest.raises(ConfigError) as err:
        build_stores(_config(document_store=spec, vector_store=dict(spec)))
    assert err.value.key == "storage.vector_store.provider"
    assert "VectorStore" in str(err.value)


def test_spi_version_mismatch_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as err:
        build_stores(_config(document_store={"provider": f"{__name__}:WrongSpi"}))
    assert "SPI version 99" in str(err.value)


def test_unknown_entry_point_names_installed_ones() -> None:
    with pytest.raises(ConfigError) as err:
        build_stores(_config(graph_store={"provider": "no-such-store"}))
    assert err.value.key == "storage.graph_store.provider"
    assert "memory" in str(err.value)
