"""Shared fixtures: an Astrocyte on each built-in store, with a test or the real embedder."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from astrocyte import Astrocyte, load_config
from astrocyte.embedders import HashingEmbedder, LocalOnnxEmbedder


def make_config(backend: str, tmp_path: Path, **sections: object) -> object:
    """A config for ``backend`` ('memory' or 'embedded') storing under tmp_path."""
    storage = {"backend": backend, "path": str(tmp_path / "astrocyte.db")}
    return load_config({"storage": storage, **sections})


@pytest.fixture(params=["memory", "embedded"])
def backend(request: pytest.FixtureRequest) -> str:
    """Each built-in storage backend."""
    return str(request.param)


@pytest.fixture
async def brain(backend: str, tmp_path: Path) -> AsyncIterator[Astrocyte]:
    """Astrocyte on each built-in store with the hashing embedder (fast, not semantic)."""
    async with Astrocyte(make_config(backend, tmp_path), embedder=HashingEmbedder()) as b:  # type: ignore[arg-type]
        yield b


@pytest.fixture(scope="session")
def local_embedder() -> Iterator[LocalOnnxEmbedder]:
    """The real local sentence-embedding model, loaded once per test session."""
    embedder = LocalOnnxEmbedder()
    yield embedder
    asyncio.run(embedder.close())


@pytest.fixture
async def model_brain(
    tmp_path: Path, local_embedder: LocalOnnxEmbedder
) -> AsyncIterator[Astrocyte]:
    """Astrocyte on the embedded store with the real local embedder."""
    async with Astrocyte(make_config("embedded", tmp_path), embedder=local_embedder) as b:  # type: ignore[arg-type]
        yield b
