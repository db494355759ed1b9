"""The callers and grants the framework integration tests share: alice owns the
``users:alice*`` banks, the agent ``bot`` may read and write them, and eve may only write
into ``users:alice:notes`` (never read) — so each framework's test can show a refused read
and a refused write through the framework's own error path."""

from typing import Any

from astrocyte import AstrocyteContext

CONFIG: dict[str, Any] = {"storage": {"backend": "memory"}, "embedder": {"provider": "hashing"}}

ALICE = AstrocyteContext(principal="user:alice")
BOT = AstrocyteContext(principal="agent:bot")
EVE = AstrocyteContext(principal="user:eve")
GRANTS: dict[str, Any] = {
    "access_grants": [
        {"principals": ["user:alice"], "banks": ["users:alice*"], "permissions": ["admin"]},
        {"principals": ["agent:bot"], "banks": ["users:alice*"], "permissions": ["read", "write"]},
        # eve may write into alice's notes but never read them
        {"principals": ["user:eve"], "banks": ["users:alice:notes"], "permissions": ["write"]},
    ]
}
