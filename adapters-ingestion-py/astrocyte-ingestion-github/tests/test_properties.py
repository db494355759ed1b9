"""Property tests: record mapping for any issue text, and exactly-once over random
histories (ties in ``updated_at``, tiny pages, edits between polls) on the real server."""

from __future__ import annotations

import json
import uuid
from typing import Any

from astrocyte import Astrocyte
from astrocyte.ingest import StreamIngestor
from astrocyte.ingest.payload import parse_payload
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from astrocyte_ingestion_github import GitHubIssuesDriver, issue_record
from tests.conftest import brain_config, source_config
from tests.helpers import keys

_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=200)


@given(
    number=st.integers(1, 10**9),
    title=_text,
    body=st.none() | _text,
    labels=st.lists(st.text(min_size=1, max_size=50), max_size=5),
    second=st.integers(0, 86_399),
)
def test_issue_record_for_any_text(
    number: int, title: str, body: str | None, labels: list[str], second: int
) -> None:
    stamp = f"2024-01-01T{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}Z"
    item = {
        "number": number,
        "title": title,
        "body": body,
        "updated_at": stamp,
        "labels": [{"name": n} for n in labels],
        "user": {"login": "u"},
        "state": "open",
    }
    parsed = issue_record("Octo/Widgets", item)
    assert parsed.key == f"octo/widgets#{number}@{stamp}"
    assert parsed.record is not None
    payload = parse_payload(parsed.record.value)
    parts = [p for p in (title, body or "") if p.strip()]
    if len(parts) == 2:
        assert payload["content"] == f"{title}\n\n{body}"
    elif parts:
        assert payload["content"] == parts[0]
    else:
        assert payload["content"] == ""
    assert payload["metadata"]["number"] == number and payload["occurred_at"] == stamp
    names = list(dict.fromkeys(n.strip() for n in labels if n.strip()))
    assert payload.get("tags", []) == names
    assert all(not isinstance(v, list | dict) for v in payload["metadata"].values())
    # Same item, same record: the key and value are stable across redeliveries.
    again = issue_record("Octo/Widgets", json.loads(json.dumps(item)))
    assert again.record == parsed.record


# A history: rounds of changes, each followed by a poll. A change creates or edits an
# issue at a time offset of 0 (same second as the previous change) or 1-2 s later.
_change = st.tuples(
    st.sampled_from(["new", "edit"]), st.integers(0, 50), st.sampled_from([0, 0, 1, 2])
)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    rounds=st.lists(st.lists(_change, min_size=1, max_size=8), min_size=1, max_size=3),
    per_page=st.integers(1, 4),
)
async def test_every_visible_version_is_stored_exactly_once(
    github: Any, rounds: list[list[tuple[str, int, int]]], per_page: int
) -> None:
    repo = f"octo/r{uuid.uuid4().hex[:8]}"
    github.add_repo(repo)
    sources = {"gh": source_config(github.url, repos=[repo], per_page=per_page)}
    expected: set[str] = set()
    every_version: set[str] = set()
    numbers: list[int] = []
    async with Astrocyte(brain_config(sources)) as brain:
        driver = GitHubIssuesDriver("gh", brain.config.sources["gh"])
        ingestor = StreamIngestor.from_config(brain, "gh")
        for changes in rounds:
            for action, pick, delay in changes:
                at = github.at(delay)
                if action == "new" or not numbers:
                    numbers.append(github.add_issue(repo, f"Issue {len(numbers)}", "b", at=at))
                else:
                    n = numbers[pick % len(numbers)]
                    github.edit_issue(repo, n, body=f"edit at {at.isoformat()}", at=at)
                for n in numbers:
                    every_version.add(
                        f"gh:{repo.lower()}#{n}@{github.issue(repo, n)['updated_at']}"
                    )
            await driver.poll_once(ingestor)
            for n in numbers:  # what GitHub shows now must be stored
                expected.add(f"gh:{repo.lower()}#{n}@{github.issue(repo, n)['updated_at']}")
        await driver.close()
        stored = await keys(brain, "github")
    assert len(stored) == len(set(stored))  # no version twice
    # Every version visible at some poll is stored; an issue edited twice within the
    # same second keeps one version (its key names only the second).
    assert expected <= set(stored) <= every_version
    assert ingestor.stats.duplicates == 0
