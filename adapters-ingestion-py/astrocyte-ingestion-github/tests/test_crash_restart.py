"""A consumer process SIGKILLed after a page was retained but before its cursor was
written; a fresh process resumes from the persisted cursor: every issue and comment
version is stored exactly once."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import textwrap
from pathlib import Path
from typing import Any

from astrocyte import Astrocyte

from tests.conftest import TOKEN, TOKEN_ENV, brain_config, source_config
from tests.helpers import memories

REPO = "octo/widgets"

_SCRIPT = textwrap.dedent(
    """
    import asyncio, json, os, signal, sys

    from astrocyte import Astrocyte, load_config
    from astrocyte.ingest import IngestSupervisor, StreamIngestor

    config = load_config(json.loads(sys.argv[1]))
    crash_after = int(sys.argv[2])  # 0: never
    real_ingest = StreamIngestor.ingest
    done = 0

    async def ingest_then_maybe_die(self, records):
        # Test-only wrapper: the batch is durably retained, the driver has not yet
        # moved (persisted) its cursor.
        global done
        outcome = await real_ingest(self, records)
        done += 1
        if done == crash_after:
            os.kill(os.getpid(), signal.SIGKILL)
        return outcome

    StreamIngestor.ingest = ingest_then_maybe_die

    async def main():
        async with Astrocyte(config) as brain:
            supervisor = IngestSupervisor.from_config(brain)
            async with supervisor:
                driver = supervisor.sources["gh"].driver
                for _ in range(3000):
                    if driver.polls_completed >= 1:
                        break
                    await asyncio.sleep(0.01)
                else:
                    raise SystemExit("no complete poll within 30s")
                print(json.dumps(supervisor.health()["gh"]["counters"]))

    asyncio.run(main())
    """
)


async def _run(script: Path, config: dict[str, Any], crash_after: int) -> tuple[int, str]:
    env = {**os.environ, TOKEN_ENV: TOKEN}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        json.dumps(config),
        str(crash_after),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 90)
    assert proc.returncode is not None
    if proc.returncode not in (0, -signal.SIGKILL):
        raise AssertionError(f"consumer failed ({proc.returncode}): {err.decode()[-2000:]}")
    return proc.returncode, out.decode()


async def test_sigkill_between_retain_and_cursor_commit(github: Any, tmp_path: Path) -> None:
    expected: dict[str, str] = {}
    for i in range(10):
        n = github.add_issue(REPO, f"Issue number {i}", f"Details of problem {i}.")
        expected[f"issue {n}"] = f"Issue number {i}\n\nDetails of problem {i}."
    for i in range(5):
        c = github.add_comment(REPO, 1 + i, f"Comment {i} on issue {1 + i}.")
        expected[f"comment {c}"] = f"Comment {i} on issue {1 + i}."
    db = tmp_path / "store.db"
    cursor = tmp_path / "cursor.json"
    sources = {"gh": source_config(github.url, per_page=4, cursor_path=str(cursor))}
    raw = {
        "storage": {"backend": "embedded", "path": str(db)},
        "embedder": {"provider": "hashing"},
        "sources": sources,
    }
    script = tmp_path / "consumer.py"
    script.write_text(_SCRIPT)

    code, _ = await _run(script, raw, crash_after=2)
    assert code == -signal.SIGKILL
    saved = json.loads(cursor.read_text())["streams"]
    # Page 1 (issues 1-4) committed. Page 2 asked again from issue 4's updated_at
    # (keyset paging: 4 is the already-committed boundary) and retained issues 5-7,
    # but the process died before its cursor write.
    assert saved[f"{REPO}/issues"]["since"] == github.issue(REPO, 4)["updated_at"]

    code, out = await _run(script, raw, crash_after=0)
    assert code == 0
    counters = json.loads(out)
    # The redelivered page is recognised as duplicates, the rest is stored.
    assert (counters["duplicates"], counters["stored"]) == (3, 3 + 5), counters
    assert counters["dead_lettered"] == 0 and counters["failed_batches"] == 0

    async with Astrocyte(brain_config(sources, db=db)) as brain:
        stored = await memories(brain, "github")
    seen = [
        f"{m.metadata['kind']} {m.metadata.get('comment_id', m.metadata['number'])}" for m in stored
    ]
    assert sorted(seen) == sorted(expected)  # none missing, none twice
    assert {s: m.text for s, m in zip(seen, stored, strict=True)} == expected
