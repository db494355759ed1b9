"""Fixtures for identity tests: Astrocyte instances with access-control config."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from astrocyte import Astrocyte, load_config
from astrocyte.embedders import HashingEmbedder

BrainFactory = Callable[..., Astrocyte]


@pytest.fixture
async def make_brain(tmp_path: Path) -> AsyncIterator[BrainFactory]:
    """Build Astrocyte instances from config sections (``access_grants=[...]``,
    ``agents={...}``, ``identity={...}``); on the in-memory store unless
    ``backend="embedded"``. All are closed at teardown."""
    built: list[Astrocyte] = []

    def factory(backend: str = "memory", **sections: Any) -> Astrocyte:
        path = tmp_path / f"astrocyte-{len(built)}.db"
        config = load_config({"storage": {"backend": backend, "path": str(path)}, **sections})
        brain = Astrocyte(config, embedder=HashingEmbedder())
        built.append(brain)
        return brain

    yield factory
    for brain in built:
        await brain.close()
