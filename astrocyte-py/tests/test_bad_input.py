"""Bad input gets a typed error naming the field, and nothing is stored."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from astrocyte import Astrocyte, BankNotFound, PayloadTooLarge, ValidationError


async def _stored(brain: Astrocyte) -> dict[str, int]:
    return {b.bank_id: b.memory_count for b in await brain.list_banks()}


@pytest.mark.parametrize(
    ("content", "kwargs", "field"),
    [
        ("", {}, "content"),
        ("   \n\t ", {}, "content"),
        (123, {}, "content"),
        (None, {}, "content"),
        (b"\xff\xfe not utf8", {}, "content"),
        ("bad \udcff surrogate", {}, "content"),
        ("ok", {"tags": "single-string"}, "tags"),
        ("ok", {"tags": ["fine", ""]}, "tags[1]"),
        ("ok", {"tags": [1]}, "tags[0]"),
        ("ok", {"metadata": {"nested": {"a": 1}}}, "metadata.nested"),
        ("ok", {"metadata": {"x": float("nan")}}, "metadata.x"),
        ("ok", {"metadata": ["not", "a", "map"]}, "metadata"),
        ("ok", {"occurred_at": "yesterday"}, "occurred_at"),
        ("ok", {"occurred_at": 1700000000}, "occurred_at"),
        ("ok", {"content_type": "hologram"}, "content_type"),
        ("ok", {"source": ""}, "source"),
    ],
)
async def test_bad_retain_arguments(
    brain: Astrocyte, content: Any, kwargs: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as err:
        await brain.retain(content, "bank", **kwargs)
    assert err.value.field == field
    assert await _stored(brain) == {}


@pytest.mark.parametrize("bank", ["", " lead", "a/b", "x" * 200, 5, None, "bad bank"])
async def test_bad_bank_ids(brain: Astrocyte, bank: Any) -> None:
    with pytest.raises(ValidationError) as err:
        await brain.retain("text", bank)
    assert err.value.field == "bank_id"
    assert await _stored(brain) == {}


async def test_fifty_megabyte_string_is_rejected_without_storing(brain: Astrocyte) -> None:
    huge = "a" * (50 * 1024 * 1024)
    with pytest.raises(PayloadTooLarge) as err:
        await brain.retain(huge, "bank")
    assert err.value.field == "content" and "limit" in str(err.value)
    assert await _stored(brain) == {}


async def test_multibyte_content_is_measured_in_bytes(brain: Astrocyte) -> None:
    limit = brain.config.limits.max_content_bytes
    with pytest.raises(PayloadTooLarge):
        await brain.retain("é" * (limit // 2 + 1), "bank")


async def test_a_bad_item_fails_the_whole_batch(brain: Astrocyte) -> None:
    await brain.retain("existing", "bank")
    items: list[Any] = [{"content": f"good {i}"} for i in range(5)]
    items.insert(3, {"content": "fine", "tags": [None]})
    with pytest.raises(ValidationError) as err:
        await brain.retain_many(items, "bank")
    assert err.value.field == "items[3].tags[0]"
    assert await _stored(brain) == {"bank": 1}


@pytest.mark.parametrize(
    ("items", "field"),
    [
        ([], "items"),
        ("not a list", "items"),
        ([{"content": "x", "colour": "red"}], "items[0].colour"),
        ([{"tags": ["a"]}], "items[0].content"),
        ([42], "items[0]"),
    ],
)
async def test_bad_batches(brain: Astrocyte, items: Any, field: str) -> None:
    with pytest.raises(ValidationError) as err:
        await brain.retain_many(items, "bank")
    assert err.value.field == field
    assert await _stored(brain) == {}


async def test_store_failure_mid_batch_leaves_nothing(brain: Astrocyte, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    await brain.retain("before", "bank")

    async def broken_embed(texts: Any, kind: str = "document") -> Any:
        raise RuntimeError("embedder exploded")

    monkeypatch.setattr(brain.embedder, "embed", broken_embed)
    with pytest.raises(RuntimeError):
        await brain.retain_many([{"content": f"item {i}"} for i in range(10)], "bank")
    assert await _stored(brain) == {"bank": 1}


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_results": 0}, "max_results"),
        ({"max_results": -3}, "max_results"),
        ({"max_results": 10**9}, "max_results"),
        ({"max_results": True}, "max_results"),
        ({"max_results": "5"}, "max_results"),
        ({"max_tokens": -5}, "max_tokens"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"tags": "x"}, "tags"),
        ({"time_range": ("2024-05-01", "2024-01-01")}, "time_range"),
        ({"time_range": {"from": "2024-01-01"}}, "time_range"),
        ({"filters": {"a": [1]}}, "filters.a"),
        ({"banks": ["bank"]}, "bank_id"),
    ],
)
async def test_bad_recall_arguments(brain: Astrocyte, kwargs: dict[str, Any], field: str) -> None:
    await brain.retain("something", "bank")
    with pytest.raises(ValidationError) as err:
        await brain.recall("query", "bank", **kwargs)
    assert err.value.field == field


@pytest.mark.parametrize("query", ["", "   ", None, 7, "q" * 9000])
async def test_bad_queries(brain: Astrocyte, query: Any) -> None:
    await brain.retain("something", "bank")
    with pytest.raises(ValidationError) as err:
        await brain.recall(query, "bank")
    assert err.value.field == "query"


async def test_recall_on_unknown_bank_in_a_list(brain: Astrocyte) -> None:
    await brain.retain("something", "bank")
    with pytest.raises(BankNotFound):
        await brain.recall("q", banks=["bank", "ghost"])


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(query=st.text(min_size=1, max_size=200).filter(lambda s: s.strip()))
async def test_any_query_text_is_safe(brain: Astrocyte, query: str) -> None:
    """Arbitrary text (FTS syntax, emoji, control chars) never breaks recall."""
    if not await brain.stores.documents.bank_exists("fuzz"):
        await brain.retain('AND OR NOT NEAR( "quoted" * - : ünïcödé 🎉', "fuzz")
    result = await brain.recall(query, "fuzz")
    assert all(s.error is None for s in result.strategies)
