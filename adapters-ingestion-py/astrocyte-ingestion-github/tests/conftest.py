"""Shared fixtures: a local fake GitHub API (``tests/github_server.py``) and brains.

No real GitHub is ever contacted: every test points the driver's ``url`` at a
Starlette + uvicorn server on 127.0.0.1 that the test starts. That server needs
``starlette`` and ``uvicorn`` (the ``test`` extra); without them the tests skip, unless
``ASTROCYTE_REQUIRE_SERVICES=1`` (as in CI), where they fail instead.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from astrocyte import Astrocyte, load_config

TOKEN_ENV = "ASTROCYTE_TEST_GITHUB_TOKEN"
TOKEN = "ghp_test_0123456789abcdef"


def _require_server_deps() -> None:
    missing = [m for m in ("starlette", "uvicorn") if importlib.util.find_spec(m) is None]
    if not missing:
        return
    reason = f"{', '.join(missing)} not installed (pip install -e '.[test]')"
    if os.environ.get("ASTROCYTE_REQUIRE_SERVICES") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture
async def github(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Any]:
    """A running fake GitHub that requires ``Bearer TOKEN``; the token is in the
    environment variable ``TOKEN_ENV``, as a user would provide it."""
    _require_server_deps()
    from tests.github_server import FakeGitHub

    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    async with FakeGitHub(token=TOKEN) as server:
        yield server


def source_config(url: str, **options: Any) -> dict[str, Any]:
    """A ``sources.<name>`` entry for the fake server."""
    extra = {
        k: options.pop(k) for k in ("interval_seconds", "target_bank_template") if k in options
    }
    return {
        "type": "poll",
        "driver": "github",
        "url": url,
        "interval_seconds": extra.get("interval_seconds", 1),
        "timeout_seconds": 5,
        "target_bank_template": extra.get("target_bank_template", "github"),
        "options": {"repos": ["octo/widgets"], "token_env": TOKEN_ENV, **options},
    }


def brain_config(
    sources: dict[str, Any], *, db: Path | None = None, policy: dict[str, Any] | None = None
) -> Any:
    storage: dict[str, Any] = (
        {"backend": "embedded", "path": str(db)} if db else {"backend": "memory"}
    )
    raw: dict[str, Any] = {
        "storage": storage,
        "embedder": {"provider": "hashing"},
        "sources": sources,
    }
    if policy:
        raw["policy"] = policy
    return load_config(raw)


@pytest.fixture
def make_brain() -> Callable[..., Astrocyte]:
    def make(sources: dict[str, Any], **kw: Any) -> Astrocyte:
        return Astrocyte(brain_config(sources, **kw))

    return make
