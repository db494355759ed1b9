"""Config builders and constants shared by the app tests."""

from __future__ import annotations

import hashlib
from typing import Any

from conftest import fast_config

ALICE_KEY = "alice-key-0123456789abcdef"
BOB_KEY = "bob-key-0123456789abcdef"
ADMIN_KEY = "admin-key-0123456789abcdef"
ACME_KEY = "acme-key-0123456789abcdef"
WEBHOOK_SECRET = "whsec-0123456789abcdef"


def api_key_config(**sections: Any) -> dict[str, Any]:
    """A standalone gateway with four API keys (one hashed, one with a tenant)."""
    gateway = {
        "auth": {
            "mode": "api_key",
            "api_keys": [
                {"key": ALICE_KEY, "principal": "user:alice"},
                {
                    "key_sha256": hashlib.sha256(BOB_KEY.encode()).hexdigest(),
                    "principal": "user:bob",
                },
                {"key": ADMIN_KEY, "principal": "service:ops"},
                {"key": ACME_KEY, "principal": "user:carol", "tenant": "acme"},
            ],
        },
        "admin_principals": ["service:ops"],
        **sections.pop("gateway", {}),
    }
    return fast_config(deployment={"mode": "standalone"}, gateway=gateway, **sections)


def h(key: str = ALICE_KEY) -> dict[str, str]:
    """Headers authenticating with ``key``."""
    return {"X-Api-Key": key}
