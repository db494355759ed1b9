"""Option checking and loading through the core's config factory (no server needed)."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

import numpy as np
import pytest
from astrocyte.config.schema import AstrocyteConfig
from astrocyte.errors import ConfigError
from astrocyte.factory import build_stores
from astrocyte.spi import SPI_VERSION, VectorItem, VectorStore

from astrocyte_qdrant import QdrantVectorStore


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({}, "url"),
        ({"url": "http://127.0.0.1:6333", "path": "/tmp/q"}, "path"),
        ({"location": ":memory:", "path": "/tmp/q"}, "path"),
        ({"url": "http://127.0.0.1:6333", "location": ":memory:"}, "location"),
        ({"location": "/tmp/q"}, "location"),
        ({"url": "ftp://127.0.0.1:6333"}, "url"),
        ({"url": "http://"}, "url"),
        ({"url": "127.0.0.1:6333"}, "url"),
        ({"url": "http://127.0.0.1:port"}, "url"),
        ({"url": "http://127.0.0.1:6333/?x=1"}, "url"),
        ({"url": 6333}, "url"),
        ({"path": "/tmp/q", "api_key": "k"}, "api_key"),
        ({"location": ":memory:", "collection": "bad/name"}, "collection"),
        ({"location": ":memory:", "collection": "x" * 201}, "collection"),
        ({"location": ":memory:", "dimensions": 0}, "dimensions"),
        ({"location": ":memory:", "dimensions": 70000}, "dimensions"),
        ({"location": ":memory:", "dimensions": "four"}, "dimensions"),
        ({"location": ":memory:", "timeout_s": 0}, "timeout_s"),
        ({"location": ":memory:", "timeout_s": "soon"}, "timeout_s"),
        ({"location": ":memory:", "timeout_s": True}, "timeout_s"),
        ({"location": ":memory:", "batch_size": 0}, "batch_size"),
        ({"location": ":memory:", "batch_size": True}, "batch_size"),
        ({"location": ":memory:", "batch_size": 1.5}, "batch_size"),
        ({"location": ":memory:", "hnsw_m": -1}, "hnsw_m"),
        ({"location": ":memory:", "hnsw_ef_construct": 2}, "hnsw_ef_construct"),
        ({"location": ":memory:", "exact": "maybe"}, "exact"),
    ],
)
def test_bad_options_name_the_option(options: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        QdrantVectorStore(**options)
    assert err.value.key == key


def test_plain_string_options_are_converted() -> None:
    store = QdrantVectorStore(
        url=" http://127.0.0.1:6333 ",
        timeout_s="2.5",
        batch_size="100",
        dimensions="384",
        hnsw_m="0",
        hnsw_ef_construct="128",
        exact="true",
    )
    opts = store.options
    assert (opts.url, opts.timeout_s, opts.batch_size, opts.dimensions) == (
        "http://127.0.0.1:6333",
        2.5,
        100,
        384,
    )
    assert (opts.hnsw_m, opts.hnsw_ef_construct, opts.exact) == (0, 128, True)
    assert (opts.collection, QdrantVectorStore(location=":memory:").options.batch_size) == (
        "astrocyte_memories",
        256,
    )


def test_api_key_is_not_kept_in_the_options() -> None:
    store = QdrantVectorStore(url="https://q.example:6333", api_key="top-secret")
    assert "top-secret" not in repr(store)
    assert "top-secret" not in repr(store.options)


def test_entry_point_names_the_store() -> None:
    (ep,) = [ep for ep in entry_points(group="astrocyte.vector_stores") if ep.name == "qdrant"]
    assert ep.load() is QdrantVectorStore
    assert QdrantVectorStore.SPI_VERSION == SPI_VERSION


async def test_config_factory_builds_a_working_store() -> None:
    config = AstrocyteConfig.model_validate(
        {
            "storage": {
                "backend": "memory",
                "vector_store": {
                    "provider": "qdrant",
                    "location": ":memory:",
                    "timeout_s": "5",
                    "batch_size": 64,
                },
            }
        }
    )
    stores = build_stores(config)
    store = stores.vectors
    assert isinstance(store, QdrantVectorStore)
    assert isinstance(store, VectorStore)
    await store.upsert([VectorItem("m", "b", np.array([1, 0], np.float32))])
    hits = await store.search("b", np.array([1, 0], np.float32), limit=1)
    assert [h.id for h in hits] == ["m"]
    await store.close()


def test_config_factory_rejects_unknown_and_bad_options() -> None:
    for extra, key in (({"colection": "x"}, "storage.vector_store"), ({}, "url")):
        config = AstrocyteConfig.model_validate(
            {"storage": {"backend": "memory", "vector_store": {"provider": "qdrant", **extra}}}
        )
        with pytest.raises(ConfigError) as err:
            build_stores(config)
        assert err.value.key == key
