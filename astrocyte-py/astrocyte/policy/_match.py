"""Bank patterns of the policy config: ``*`` is the only wildcard."""

from __future__ import annotations

import re
from functools import lru_cache


@lru_cache(maxsize=1024)
def _compile(pattern: str) -> re.Pattern[str]:
    # Everything but "*" is literal: a bank named "a.b" is never matched by accident.
    return re.compile("^" + ".*".join(re.escape(part) for part in pattern.split("*")) + "$")


def bank_matches(patterns: list[str], bank_id: str) -> bool:
    """Whether ``bank_id`` matches one of ``patterns``.

    A tenant-namespaced storage id (``acme/user-1``) also matches patterns written for
    the bank name the caller used (``user-*``), so one policy works with and without
    tenants.
    """
    names = [bank_id]
    if "/" in bank_id:
        names.append(bank_id.rsplit("/", 1)[1])
    for pattern in patterns:
        for name in names:
            if pattern == "*" or pattern == name:
                return True
            if "*" in pattern and _compile(pattern).match(name):
                return True
    return False
