"""AstrocyteStorage as CrewAI's Memory storage, driven through crewai's Memory API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from astrocyte import AccessDenied, Astrocyte, AstrocyteContext
from astrocyte.integrations.common import MemoryTools, run_sync
from crewai.memory.types import MemoryRecord
from hypothesis import given, settings
from hypothesis import strategies as st

from astrocyte_crewai import AstrocyteStorage, RecallTool, RememberTool, astrocyte_memory
from astrocyte_crewai.storage import _in_scope

CONFIG = {
    "storage": {"backend": "memory"},
    "embedder": {"provider": "hashing"},
    "access_grants": [
        {"principals": ["agent:crew"], "banks": ["crew:*"], "permissions": ["admin"]},
        {"principals": ["user:eve"], "banks": ["crew:*"], "permissions": ["read", "write"]},
    ],
}
CREW = AstrocyteContext(principal="agent:crew")
EVE = AstrocyteContext(principal="user:eve")


@pytest.fixture
def brain() -> Iterator[Astrocyte]:
    b = Astrocyte.from_config(CONFIG)
    yield b
    run_sync(b.close())


def test_memory_remember_recall_forget(brain: Astrocyte) -> None:
    memory = astrocyte_memory(brain, "crew:a", context=CREW, read_only=False)
    memory.remember(
        "Alice likes green tea.",
        scope="/team/alice",
        categories=["tea"],
        importance=0.7,
        metadata={"k": 1},
    )
    memory.remember("Bob drives a red car.", scope="/team/bob", categories=["car"], importance=0.4)
    matches = memory.recall("green tea", depth="shallow", limit=1)
    assert [m.record.content for m in matches] == ["Alice likes green tea."]
    assert matches[0].record.metadata == {"k": 1} and matches[0].record.categories == ["tea"]
    assert memory.list_scopes("/team") == ["/team/alice", "/team/bob"]
    assert memory.list_categories() == {"tea": 1, "car": 1}
    in_bob = memory.recall("green tea red car", scope="/team/bob", depth="shallow")
    assert [m.record.content for m in in_bob] == ["Bob drives a red car."]
    assert memory.forget(scope="/team/alice") == 1
    assert [r.content for r in memory.list_records()] == ["Bob drives a red car."]
    memory.reset()
    assert memory.list_records() == []


def test_forget_needs_the_forget_permission(brain: Astrocyte) -> None:
    storage = AstrocyteStorage(brain, "crew:a", context=EVE)
    storage.save([MemoryRecord(content="x", scope="/s")])
    with pytest.raises(AccessDenied):
        storage.reset()
    assert storage.count() == 1


def test_tools(brain: Astrocyte) -> None:
    tools = MemoryTools(brain, "crew:t", CREW)
    assert "Remembered" in RememberTool(tools=tools).run(content="Tea is at 4pm.")
    assert "Tea is at 4pm." in RecallTool(tools=tools).run(query="tea time")


_label = st.text("abc", min_size=1, max_size=3)


@settings(max_examples=200, deadline=None)
@given(st.lists(_label, max_size=3), st.lists(_label, max_size=3))
def test_scope_prefix_is_per_segment(scope: list[str], prefix: list[str]) -> None:
    path, pre = "/" + "/".join(scope), "/" + "/".join(prefix)
    assert _in_scope(path, pre) == (scope[: len(prefix)] == prefix)
