"""Finding the real servers an adapter's tests run against.

Test suites read server addresses from environment variables (``scripts/services.sh
env`` prints them). Without them a developer's run skips those tests; CI sets
``ASTROCYTE_REQUIRE_SERVICES=1`` so that a server that failed to start fails the run
instead of silently skipping it.
"""

from __future__ import annotations

import os

import pytest

__all__ = ["REQUIRE_SERVICES_ENV", "service_env"]

#: Set to ``1`` to turn "server missing" skips into failures (CI does).
REQUIRE_SERVICES_ENV = "ASTROCYTE_REQUIRE_SERVICES"


def service_env(*names: str, hint: str = "run scripts/services.sh start") -> dict[str, str]:
    """The values of the environment variables ``names``; when any is unset or empty,
    skip the test — or fail it when :data:`REQUIRE_SERVICES_ENV` is ``1``."""
    missing = [name for name in names if not os.environ.get(name)]
    if missing:
        reason = f"needs {', '.join(missing)} ({hint})"
        if os.environ.get(REQUIRE_SERVICES_ENV) == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return {name: os.environ[name] for name in names}
