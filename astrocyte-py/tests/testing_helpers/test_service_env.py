"""service_env: skip without a server address, fail instead when CI requires servers."""

from __future__ import annotations

import pytest

from astrocyte.testing import service_env


def test_returns_the_addresses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_TEST_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("X_TEST_PASSWORD", "pw")
    assert service_env("X_TEST_URL", "X_TEST_PASSWORD") == {
        "X_TEST_URL": "redis://127.0.0.1:1/0",
        "X_TEST_PASSWORD": "pw",
    }


def test_missing_or_empty_skips_unless_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("X_TEST_URL", raising=False)
    monkeypatch.setenv("X_TEST_EMPTY", "")
    monkeypatch.delenv("ASTROCYTE_REQUIRE_SERVICES", raising=False)
    with pytest.raises(pytest.skip.Exception, match="X_TEST_URL, X_TEST_EMPTY"):
        service_env("X_TEST_URL", "X_TEST_EMPTY", hint="start it")
    monkeypatch.setenv("ASTROCYTE_REQUIRE_SERVICES", "1")
    with pytest.raises(pytest.fail.Exception, match=r"needs X_TEST_URL \(start it\)"):
        service_env("X_TEST_URL", hint="start it")
