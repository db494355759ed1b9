"""The github driver against a real local HTTP server speaking the GitHub REST API."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from astrocyte import Astrocyte
from astrocyte.errors import ConfigError
from astrocyte.ingest import IngestSupervisor, IngestUnavailable, StreamIngestor
from astrocyte.testing import TcpProxy

from astrocyte_ingestion_github import CursorFileError, GitHubAPIError, GitHubIssuesDriver
from tests.conftest import TOKEN, TOKEN_ENV, source_config
from tests.helpers import keys, memories, wait_until

REPO = "octo/widgets"


def _driver(brain: Astrocyte, name: str = "gh") -> tuple[GitHubIssuesDriver, StreamIngestor]:
    return (
        GitHubIssuesDriver(name, brain.config.sources[name]),
        StreamIngestor.from_config(brain, name),
    )


async def test_end_to_end_through_the_supervisor(
    github: Any, make_brain: Callable[..., Astrocyte]
) -> None:
    login = github.add_issue(
        REPO,
        "Login page crashes on Safari",
        "Steps: open /login in Safari 17; it reloads forever.",
        labels=("bug", "ui"),
        user="alice",
    )
    pr = github.add_issue(REPO, "Fix the Safari crash", "patch", pull_request=True)
    github.add_issue(REPO, "Add a dark mode", None, user="bob", state="closed")
    github.add_comment(REPO, login, "Reproduced on an iPad as well.", user="carol")
    github.add_comment(REPO, pr, "LGTM")  # a pull-request comment: skipped
    async with make_brain({"gh": source_config(github.url)}) as brain:
        supervisor = IngestSupervisor.from_config(brain)
        async with supervisor:
            source = supervisor.sources["gh"]
            driver = source.driver
            assert isinstance(driver, GitHubIssuesDriver)  # found through the entry point
            await wait_until(lambda: driver.polls_completed >= 1, what="first poll")
            health = supervisor.health()["gh"]
            assert (await source.health_check()).ok
        stored = await memories(brain, "github")
        by_key = {str(m.metadata["idempotency_key"]): m for m in stored}
        assert len(stored) == 3
        issue = next(
            m for m in stored if m.metadata.get("number") == login and m.metadata["kind"] == "issue"
        )
        assert issue.text == (
            "Login page crashes on Safari\n\nSteps: open /login in Safari 17; it reloads forever."
        )
        wanted = {
            "repo": REPO,
            "kind": "issue",
            "author": "alice",
            "state": "open",
            "labels": "bug,ui",
            "url": f"https://github.com/{REPO}/issues/{login}",
        }
        assert {k: issue.metadata.get(k) for k in wanted} == wanted
        assert set(issue.tags) == {"bug", "ui"}
        updated = issue.metadata["updated_at"]
        assert f"gh:{REPO}#{login}@{updated}" in by_key
        assert (
            issue.occurred_at is not None
            and issue.occurred_at.strftime("%Y-%m-%dT%H:%M:%SZ") == updated
        )
        dark = next(m for m in stored if m.text == "Add a dark mode")  # empty body: title only
        assert dark.metadata["state"] == "closed" and dark.metadata["author"] == "bob"
        comment = next(m for m in stored if m.metadata["kind"] == "comment")
        assert comment.text == "Reproduced on an iPad as well."
        assert comment.metadata["number"] == login and comment.metadata["author"] == "carol"
        assert str(comment.metadata["idempotency_key"]).startswith(f"gh:{REPO}#c")
        assert not any("patch" in m.text or "LGTM" in m.text for m in stored)  # PRs skipped

        hits = (await brain.recall("Safari login page crashes", "github")).hits
        assert hits and "Safari" in hits[0].text

    counters = health["counters"]
    assert counters["processed"] == 3 and counters["stored"] == 3
    assert counters["duplicates"] == 0 and counters["dead_lettered"] == 0
    assert counters["failed_batches"] == 0 and health["state"] == "healthy"
    for request in github.requests:
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
        assert request.headers["user-agent"].startswith("astrocyte-ingestion-github/")
        assert request.query["sort"] == "updated" and request.query["direction"] == "asc"
        assert request.query["per_page"] == "100"
    issue_queries = [r.query for r in github.requests if r.path.endswith("/issues")]
    assert issue_queries[0]["state"] == "all" and "since" not in issue_queries[0]


async def test_etag_304_and_edits_make_new_versions(
    github: Any, make_brain: Callable[..., Astrocyte]
) -> None:
    one = github.add_issue(REPO, "Crash on save", "Saving a large file crashes the editor.")
    github.add_issue(REPO, "Typo in README", "Installation is misspelled.")
    cid = github.add_comment(REPO, one, "Happens with files over 2 GB.")
    async with make_brain({"gh": source_config(github.url)}) as brain:
        driver, ingestor = _driver(brain)
        await driver.poll_once(ingestor)
        assert ingestor.stats.stored == 3
        # Second poll: the cursor moved, so one plain request per stream that returns
        # only the already-committed boundary item; its ETag is kept.
        await driver.poll_once(ingestor)
        assert ingestor.stats.processed == 3
        # Third poll: conditional requests, answered 304, which cost no rate limit.
        github.clear_requests()
        remaining = github.remaining
        await driver.poll_once(ingestor)
        assert [r.status for r in github.requests] == [304, 304]
        assert all(r.headers.get("if-none-match") for r in github.requests)
        assert github.remaining == remaining and driver.not_modified == 2
        assert ingestor.stats.processed == 3

        before = await keys(brain, "github")
        new_stamp = github.edit_issue(REPO, one, body="Saving any file over 2 GB crashes.")
        github.edit_comment(REPO, cid, "Happens with files over 2 GB, on Linux only.")
        await driver.poll_once(ingestor)
        after = await keys(brain, "github")
        # Decision: an edit stores the new version; the old version is kept.
        assert set(before) < set(after) and len(after) == len(before) + 2
        assert f"gh:{REPO}#{one}@{new_stamp}" in after
        texts = {m.text for m in await memories(brain, "github")}
        assert "Crash on save\n\nSaving any file over 2 GB crashes." in texts
        assert "Crash on save\n\nSaving a large file crashes the editor." in texts
        assert ingestor.stats.stored == 5

        # A replay of the same versions (a driver that lost its cursor) stores nothing.
        fresh, fresh_ingestor = _driver(brain)
        await fresh.poll_once(fresh_ingestor)
        assert fresh_ingestor.stats.stored == 0 and fresh_ingestor.stats.duplicates == 3
        assert await keys(brain, "github") == after


async def test_pagination_with_many_items_in_one_second(
    github: Any, make_brain: Callable[..., Astrocyte]
) -> None:
    same = github.at(10)
    for i in range(7):  # more than a page share one updated_at: Link next is followed
        github.add_issue(REPO, f"Bulk-labelled issue {i}", f"body {i}", at=same)
    for i in range(4):
        github.add_issue(REPO, f"Later issue {i}", f"later body {i}")
    sources = {"gh": source_config(github.url, per_page=3, include_comments=False)}
    async with make_brain(sources) as brain:
        driver, ingestor = _driver(brain)
        await driver.poll_once(ingestor)
        stored = await keys(brain, "github")
        assert len(stored) == 11 and len(set(stored)) == 11
        pages = [r.query.get("page") for r in github.requests]
        assert "2" in pages and "3" in pages  # rel="next" followed inside the group
        assert any("since" in r.query for r in github.requests)  # keyset steps after it
        # More items in the cursor's second: picked up, nothing re-stored.
        last = driver.cursor(REPO, "issue").since
        assert last is not None
        github.add_issue(REPO, "Same second as the last", "x", at=github.at(0))
        await driver.poll_once(ingestor)
        assert len(await keys(brain, "github")) == 12
        assert ingestor.stats.duplicates == 0


async def test_rate_limit_exhaustion_waits_for_the_reset(
    github: Any, make_brain: Callable[..., Astrocyte]
) -> None:
    for i in range(6):
        github.add_issue(REPO, f"Issue {i}", f"body {i}")
    sources = {"gh": source_config(github.url, per_page=2, include_comments=False)}
    async with make_brain(sources) as brain:
        driver, ingestor = _driver(brain)
        reset = github.set_rate_limit(remaining=2, reset_in=1.5)
        started = time.time()
        await driver.poll_once(ingestor)
        requests = github.requests
        assert len(await keys(brain, "github")) == 6
        # The second request left 0: nothing was sent until the reset.
        exhausting = requests[1]
        assert exhausting.status == 200 and exhausting.received_at < reset
        assert all(r.received_at >= reset for r in requests[2:]), [
            round(r.received_at - reset, 3) for r in requests
        ]
        assert all(r.status == 200 for r in requests)
        assert driver.rate_limit_waits >= 1 and time.time() - started >= reset - started - 0.01


async def test_forced_403_exhaustion_and_secondary_limit(
    github: Any, make_brain: Callable[..., Astrocyte]
) -> None:
    github.add_issue(REPO, "Only issue", "body")
    sources = {"gh": source_config(github.url, include_comments=False)}
    async with make_brain(sources) as brain:
        driver, ingestor = _driver(brain)
        reset = github.set_rate_limit(remaining=0, reset_in=1.0)
        await driver.poll_once(ingestor)
        statuses = [(r.status, r.received_at >= reset) for r in github.requests]
        assert statuses == [(403, False), (200, True)]
        assert len(await keys(brain, "github")) == 1

        github.add_issue(REPO, "Second issue", "body")
        github.clear_requests()
        github.fail_next(1, 429, retry_after=1, message="secondary rate limit")
        await driver.poll_once(ingestor)
        first, second = github.requests
        assert first.status == 429 and second.status == 200
        assert second.received_at - first.received_at >= 0.95
        assert len(await keys(brain, "github")) == 2


async def test_stop_during_a_rate_limit_wait_returns_promptly(
    github: Any, make_brain: Callable[..., Astrocyte]
) -> None:
    github.add_issue(REPO, "Only issue", "body")
    async with make_brain({"gh": source_config(github.url)}) as brain:
        driver, ingestor = _driver(brain)
        github.set_rate_limit(remaining=0, reset_in=60)
        stop = asyncio.Event()
        task = asyncio.create_task(driver.run(ingestor, stop))
        await wait_until(lambda: driver.rate_limit_waits >= 1, what="rate-limit wait")
        assert not (await driver.health_check()).detail.startswith("last poll failed")
        stop.set()
        await asyncio.wait_for(task, 2)
        assert len(github.requests) == 1  # no hammering while exhausted
        await driver.close()


async def test_poison_items_are_dead_lettered_and_the_poll_moves_on(
    github: Any, make_brain: Callable[..., Astrocyte], tmp_path: Path
) -> None:
    ok = github.add_issue(REPO, "Broken link in docs", "The API page 404s.")
    github.add_issue(REPO, "Contact", "Mail me at jane.doe@example.com about this.")
    github.add_issue(REPO, "", "")  # nothing to remember
    github.add_comment(REPO, ok, "Fixed in the next release.")  # no state: no bank
    github.add_raw_issue(REPO, {"number": "seven", "updated_at": "2024-02-01T00:00:00Z"})
    later = github.add_issue(REPO, "Search is slow", "Queries take 9 seconds.")
    dlq = tmp_path / "dead.jsonl"
    sources = {
        "gh": source_config(
            github.url, target_bank_template="gh-{metadata.state}", dead_letter_path=str(dlq)
        )
    }
    async with make_brain(sources, policy={"pii": {"action": "reject"}}) as brain:
        driver, ingestor = _driver(brain)
        await driver.poll_once(ingestor)
        stored = await memories(brain, "gh-open")
        assert sorted(m.metadata["number"] for m in stored) == [ok, later]
        letters = [json.loads(line) for line in dlq.read_text().splitlines()]
        errors = sorted(letter["error"] for letter in letters)
        assert errors == [
            "malformed_item",
            "malformed_payload",
            "malformed_payload",
            "pii_rejected",
        ]
        pii = next(x for x in letters if x["error"] == "pii_rejected")
        assert pii["key"].startswith(f"{REPO}#2@") and "jane.doe" in pii["value"]
        assert "jane.doe" not in pii["message"]  # the error never repeats the value
        no_bank = next(x for x in letters if "#c" in x["key"])
        assert "no target bank" in no_bank["message"] or "needs payload field" in no_bank["message"]
        assert all({"key", "error", "message", "value", "headers"} <= set(x) for x in letters)
        stats = ingestor.stats
        assert (stats.stored, stats.dead_lettered, stats.processed) == (2, 4, 6)
        # Committed: the next poll neither re-stores nor re-dead-letters.
        await driver.poll_once(ingestor)
        assert len(dlq.read_text().splitlines()) == 4 and ingestor.stats.processed == 6


async def test_store_outage_does_not_advance_the_cursor(
    github: Any, make_brain: Callable[..., Astrocyte], tmp_path: Path
) -> None:
    for i in range(3):
        github.add_issue(REPO, f"Issue {i}", f"body {i}")
    cursor_file = tmp_path / "cursor.json"
    sources = {"gh": source_config(github.url, cursor_path=str(cursor_file))}
    async with make_brain(sources) as brain:
        driver, ingestor = _driver(brain)
        real = ingestor.ingest
        calls = 0

        async def flaky(records: Any) -> Any:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise IngestUnavailable("store down", retry_after=0.3)
            return await real(records)

        ingestor.ingest = flaky  # type: ignore[method-assign]
        stop = asyncio.Event()
        started = time.monotonic()
        with pytest.raises(IngestUnavailable):
            await driver.run(ingestor, stop)
        assert time.monotonic() - started >= 0.29  # honoured retry_after before raising
        assert driver.cursor(REPO, "issue").since is None and not cursor_file.exists()
        assert not (await driver.health_check()).ok
        await driver.poll_once(ingestor)
        assert len(await keys(brain, "github")) == 3
        assert (await driver.health_check()).ok


async def test_cursor_file_is_resumed_and_a_corrupt_one_refused(
    github: Any, make_brain: Callable[..., Astrocyte], tmp_path: Path
) -> None:
    one = github.add_issue(REPO, "First", "a")
    github.add_comment(REPO, one, "a comment")
    last = github.add_issue(REPO, "Second", "b")
    cursor_file = tmp_path / "state" / "cursor.json"
    sources = {"gh": source_config(github.url, cursor_path=str(cursor_file))}
    async with make_brain(sources) as brain:
        driver, ingestor = _driver(brain)
        await driver.poll_once(ingestor)
        await driver.close()
        saved = json.loads(cursor_file.read_text())
        issues = saved["streams"][f"{REPO}/issues"]
        assert issues["since"] == issues["seen"][0].rsplit("@", 1)[1]
        assert issues["seen"] == [f"{REPO}#{last}@{issues['since']}"]
        assert saved["streams"][f"{REPO}/comments"]["since"] is not None
        assert [p.name for p in cursor_file.parent.iterdir()] == ["cursor.json"]  # no temp left

        restarted, ingestor2 = _driver(brain)  # a restart: same file
        github.clear_requests()
        await restarted.poll_once(ingestor2)
        assert ingestor2.stats.processed == 0  # nothing re-ingested
        assert all(r.query.get("since") for r in github.requests)
        await restarted.close()

        cursor_file.write_text("{not json")
        broken, ingestor3 = _driver(brain)
        with pytest.raises(CursorFileError, match="unreadable"):
            await broken.poll_once(ingestor3)


async def test_server_outage_is_survived(github: Any, make_brain: Callable[..., Astrocyte]) -> None:
    github.add_issue(REPO, "Before the outage", "first")
    async with TcpProxy("127.0.0.1", github.port) as proxy:
        sources = {"gh": source_config(f"http://127.0.0.1:{proxy.port}")}
        async with make_brain(sources) as brain:
            supervisor = IngestSupervisor.from_config(brain, min_backoff=0.1, max_backoff=0.3)
            async with supervisor:
                source = supervisor.sources["gh"]
                await wait_until(lambda: source.stats.stored == 1, what="first issue")
                proxy.cut()
                github.add_issue(REPO, "During the outage", "second")
                await wait_until(
                    lambda: supervisor.health()["gh"]["total_failures"] >= 1, what="failure"
                )
                assert not (await source.health_check()).ok
                proxy.restore()
                github.add_issue(REPO, "After the outage", "third")
                await wait_until(lambda: source.stats.stored == 3, what="catch-up")
                driver = source.driver
                assert isinstance(driver, GitHubIssuesDriver)
                await wait_until(lambda: driver.last_error is None, what="a complete poll")
                assert (await source.health_check()).ok
                assert supervisor.health()["gh"]["restarts"] >= 1
            texts = sorted(m.text for m in await memories(brain, "github"))
            assert texts == [
                "After the outage\n\nthird",
                "Before the outage\n\nfirst",
                "During the outage\n\nsecond",
            ]


async def test_one_missing_repository_does_not_block_the_others(
    github: Any, make_brain: Callable[..., Astrocyte]
) -> None:
    github.add_issue(REPO, "Present", "here")
    sources = {"gh": source_config(github.url, repos=["octo/gone", REPO])}
    async with make_brain(sources) as brain:
        driver, ingestor = _driver(brain)
        with pytest.raises(GitHubAPIError, match="404"):
            await driver.poll_once(ingestor)
        assert len(await keys(brain, "github")) == 1
        assert "octo/gone" in driver.repo_errors
        assert not (await driver.health_check()).ok


async def test_authentication(
    github: Any, make_brain: Callable[..., Astrocyte], monkeypatch: pytest.MonkeyPatch
) -> None:
    github.add_issue(REPO, "Secret", "x")
    async with make_brain({"gh": source_config(github.url)}) as brain:
        monkeypatch.delenv(TOKEN_ENV)
        driver, ingestor = _driver(brain)
        with pytest.raises(ConfigError, match=TOKEN_ENV):
            await driver.poll_once(ingestor)
        assert github.requests == []
        monkeypatch.setenv(TOKEN_ENV, "wrong-token")
        driver, ingestor = _driver(brain)
        with pytest.raises(GitHubAPIError, match="401"):
            await driver.poll_once(ingestor)
        assert not (await driver.health_check()).ok
        await driver.close()


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"repos": []}, "options.repos"),
        ({"repos": ["not-a-repo"]}, "options.repos[0]"),
        ({"repos": ["a/../b"]}, "options.repos[0]"),
        ({"repo": "a/b", "repos": ["a/b"]}, "options.repo"),
        ({"per_page": 0}, "options.per_page"),
        ({"per_page": 101}, "options.per_page"),
        ({"state": "merged"}, "options.state"),
        ({"since": "yesterday"}, "options.since"),
        ({"token_env": "ghp_literal token"}, "options.token_env"),
        ({"include_comments": "yes"}, "options.include_comments"),
        ({"format": "text"}, "options.format"),
        ({"repo_list": ["a/b"]}, "options.repo_list"),
    ],
)
def test_bad_options_are_config_errors(options: dict[str, Any], key: str) -> None:
    from tests.conftest import brain_config

    source = source_config("http://127.0.0.1:1")
    source["options"] = {"repos": ["a/b"], **options}
    if "repo" in options and "repos" not in options:
        del source["options"]["repos"]
    config = brain_config({"gh": source})
    with pytest.raises(ConfigError) as info:
        GitHubIssuesDriver("gh", config.sources["gh"])
    assert info.value.key == f"sources.gh.{key}"


def test_token_in_headers_and_missing_bank_are_refused() -> None:
    from tests.conftest import brain_config

    source = source_config("http://127.0.0.1:1")
    source["headers"] = {"Authorization": "Bearer ghp_leaked"}
    with pytest.raises(ConfigError) as info:
        GitHubIssuesDriver("gh", brain_config({"gh": source}).sources["gh"])
    assert info.value.key == "sources.gh.headers.Authorization"
    source = source_config("http://127.0.0.1:1")
    del source["target_bank_template"]
    with pytest.raises(ConfigError) as info:
        GitHubIssuesDriver("gh", brain_config({"gh": source}).sources["gh"])
    assert info.value.key == "sources.gh.target_bank_template"
