"""Test setup: DSPy's caches off and pointed at a throw-away directory, so runs are
independent and nothing is written under the home directory; fixtures for brains."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from typing import Any

# Before dspy is imported anywhere: its default cache directory is read at import time.
_CACHE_DIR = tempfile.mkdtemp(prefix="astrocyte-dspy-cache-")
atexit.register(shutil.rmtree, _CACHE_DIR, ignore_errors=True)
os.environ.setdefault("DSPY_CACHEDIR", _CACHE_DIR)
# DummyLM never reaches litellm, but keep litellm from phoning home should anything load it.
os.environ.setdefault("LITELLM_TELEMETRY", "False")

# These imports must follow the environment set-up above.
import dspy  # noqa: E402
import pytest  # noqa: E402
from astrocyte import Astrocyte  # noqa: E402
from astrocyte.integrations.common import run_sync  # noqa: E402

dspy.configure_cache(enable_disk_cache=False, enable_memory_cache=False)

#: Fast settings: in-process stores, the hashing embedder.
CONFIG: dict[str, Any] = {"storage": {"backend": "memory"}, "embedder": {"provider": "hashing"}}

#: Grants in the style of the core's LangChain tests.
GRANTS: dict[str, Any] = {
    "access_grants": [
        {"principals": ["user:alice"], "banks": ["users:alice*"], "permissions": ["admin"]},
        {"principals": ["agent:bot"], "banks": ["users:alice*"], "permissions": ["read", "write"]},
        # eve may write into alice's notes but never read them
        {"principals": ["user:eve"], "banks": ["users:alice:notes"], "permissions": ["write"]},
    ]
}


@pytest.fixture
async def brain() -> AsyncIterator[Astrocyte]:
    """An in-process brain, used from the test's own event loop (async tests)."""
    async with Astrocyte.from_config(CONFIG) as b:
        yield b


@pytest.fixture
def sync_brain() -> Iterator[Astrocyte]:
    """A brain for sync tests: DSPy's sync paths run it on the shared background loop."""
    b = Astrocyte.from_config(CONFIG)
    yield b
    run_sync(b.close())


@pytest.fixture
def guarded() -> Iterator[Astrocyte]:
    """A brain with ``GRANTS`` (sync tests)."""
    b = Astrocyte.from_config({**CONFIG, **GRANTS})
    yield b
    run_sync(b.close())
