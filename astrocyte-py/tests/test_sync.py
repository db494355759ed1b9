"""The blocking wrapper for scripts: same operations, no asyncio in sight."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from astrocyte import Astrocyte as AsyncAstrocyte
from astrocyte import BankNotFound, load_config
from astrocyte.embedders import HashingEmbedder
from astrocyte.sync import Astrocyte, run_sync


def _brain(tmp_path: Path) -> Astrocyte:
    config = load_config({"storage": {"backend": "embedded", "path": str(tmp_path / "s.db")}})
    return Astrocyte(AsyncAstrocyte(config, embedder=HashingEmbedder()))


def test_blocking_roundtrip(tmp_path: Path) -> None:
    with _brain(tmp_path) as brain:
        kept = brain.retain("Alice prefers green tea", "alice", tags=["prefs"])
        brain.retain_many([{"content": "Alice cycles to work"}], "alice")
        hits = brain.recall("green tea", "alice").hits
        assert hits[0].memory_id == kept.memory_ids[0]
        assert brain.reflect("green tea", "alice").mode == "extractive"
        assert [b.memory_count for b in brain.list_banks()] == [2]
        assert brain.forget("alice", tags=["prefs"]).deleted_ids == kept.memory_ids
        assert all(h.ok for h in brain.health().values())
        with pytest.raises(BankNotFound):
            brain.recall("anything", "nobody")
    with pytest.raises(RuntimeError, match="closed"):
        brain.recall("after close", "alice")
    brain.close()  # idempotent


def test_works_while_an_event_loop_is_running(tmp_path: Path) -> None:
    """Notebook case: a loop is already running in this thread."""

    async def inside_a_loop() -> int:
        with _brain(tmp_path) as brain:
            brain.retain("remembered from inside a loop", "nb")
            return len(brain.recall("remembered", "nb").hits)

    assert asyncio.run(inside_a_loop()) == 1


def test_data_persists_across_instances(tmp_path: Path) -> None:
    with _brain(tmp_path) as brain:
        brain.retain("durable fact", "d")
    with _brain(tmp_path) as again:
        assert again.recall("durable", "d").hits[0].text == "durable fact"


def test_run_sync_runs_one_coroutine() -> None:
    async def answer() -> int:
        return 42

    assert run_sync(answer()) == 42
