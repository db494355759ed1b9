"""Relative dates in recall queries: a soft signal through the temporal strategy."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from astrocyte import Astrocyte, load_config
from astrocyte.embedders import HashingEmbedder

# A Wednesday: "last week" is Monday 6 May to Sunday 12 May 2024.
NOW = datetime(2024, 5, 15, 10, 0, tzinfo=UTC)
IN_RANGE = "Maya went hiking in the Gerês mountains."
QUERY = "what did Maya do last week?"


async def _brain(tmp_path: Path, backend: str, **recall: object) -> Astrocyte:
    config = load_config(
        {
            "storage": {"backend": backend, "path": str(tmp_path / "a.db")},
            "recall": recall,
        }
    )
    brain = Astrocyte(config, embedder=HashingEmbedder())
    # The out-of-range memories share more words with the query than the in-range
    # one: without the time signal, they rank first.
    await brain.retain(
        "What did Maya do? Maya did a pottery class.",
        "maya",
        occurred_at=datetime(2024, 4, 20, tzinfo=UTC),
    )
    await brain.retain(IN_RANGE, "maya", occurred_at=datetime(2024, 5, 8, 17, tzinfo=UTC))
    await brain.retain(
        "Maya did the weekly shopping, as she always does.",
        "maya",
        occurred_at=datetime(2024, 5, 14, tzinfo=UTC),
    )
    return brain


@pytest.fixture(params=["memory", "embedded"])
async def brain(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Astrocyte]:
    b = await _brain(tmp_path, str(request.param))
    yield b
    await b.close()


async def test_last_week_ranks_the_in_range_memory_first(brain: Astrocyte) -> None:
    result = await brain.recall(QUERY, "maya", now=NOW)
    assert result.hits[0].text == IN_RANGE
    assert result.hits[0].ranks.get("temporal") == 1
    parsed = result.query_time_range
    assert parsed is not None
    assert parsed.text == "last week"
    assert (parsed.start, parsed.end) == (
        datetime(2024, 5, 6, tzinfo=UTC),
        datetime(2024, 5, 13, tzinfo=UTC),
    )
    assert parsed.keyword_query == "what did Maya do ?"
    temporal = next(s for s in result.strategies if s.name == "temporal")
    assert temporal.skipped is None and temporal.candidates == 1


async def test_parsed_range_is_not_a_hard_filter(brain: Astrocyte) -> None:
    result = await brain.recall(QUERY, "maya", now=NOW)
    # Memories outside last week still come back, ranked lower.
    assert len(result.hits) == 3
    assert all("temporal" not in h.ranks for h in result.hits[1:])


async def test_clock_is_injectable(brain: Astrocyte) -> None:
    brain._recaller.clock = lambda: NOW
    result = await brain.recall(QUERY, "maya")
    assert result.hits[0].text == IN_RANGE


async def test_now_as_iso_string(brain: Astrocyte) -> None:
    result = await brain.recall(QUERY, "maya", now="2024-05-15T10:00:00Z")
    assert result.hits[0].text == IN_RANGE


async def test_explicit_time_range_wins_and_nothing_is_parsed(brain: Astrocyte) -> None:
    window = (datetime(2024, 4, 1, tzinfo=UTC), datetime(2024, 5, 1, tzinfo=UTC))
    result = await brain.recall(QUERY, "maya", now=NOW, time_range=window)
    assert result.query_time_range is None
    assert [h.text for h in result.hits] == ["What did Maya do? Maya did a pottery class."]


async def test_query_without_dates_is_unchanged(brain: Astrocyte) -> None:
    result = await brain.recall("what did Maya do?", "maya", now=NOW)
    assert result.query_time_range is None
    temporal = next(s for s in result.strategies if s.name == "temporal")
    assert temporal.skipped == "no time range"


async def test_query_that_is_only_a_date_skips_keyword(brain: Astrocyte) -> None:
    result = await brain.recall("last week", "maya", now=NOW)
    keyword = next(s for s in result.strategies if s.name == "keyword")
    assert keyword.skipped == "query is only a time expression"
    assert result.hits[0].text == IN_RANGE


async def test_parse_dates_off(tmp_path: Path) -> None:
    brain = await _brain(tmp_path, "memory", parse_dates=False)
    try:
        result = await brain.recall(QUERY, "maya", now=NOW)
        assert result.query_time_range is None
        assert result.hits[0].text != IN_RANGE
        temporal = next(s for s in result.strategies if s.name == "temporal")
        assert temporal.skipped == "no time range"
    finally:
        await brain.close()


async def test_no_parsing_without_the_temporal_strategy(tmp_path: Path) -> None:
    brain = await _brain(tmp_path, "memory", strategies=["semantic", "keyword"])
    try:
        result = await brain.recall(QUERY, "maya", now=NOW)
        assert result.query_time_range is None
    finally:
        await brain.close()
