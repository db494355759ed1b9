"""Helpers shared by the config tests."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from astrocyte.config import load_config
from astrocyte.config.problems import ConfigProblems

API_KEY = "k" * 24
SECRET = "s" * 40


def problems_of(data: Mapping[str, Any], **kwargs: Any) -> ConfigProblems:
    """The ConfigProblems that loading ``data`` raises (fails the test if none)."""
    with pytest.raises(ConfigProblems) as caught:
        load_config(data, env=kwargs.pop("env", {}), **kwargs)
    return caught.value


class AnyEnv(Mapping[str, str]):
    """An environment in which every variable is set (to a long, key-like value)."""

    def __getitem__(self, name: str) -> str:
        return f"{name.lower()}-" + "x" * 40

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


@pytest.fixture(autouse=True)
def _no_config_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's own ASTROCYTE_CONFIG must not leak into these tests.
    monkeypatch.delenv("ASTROCYTE_CONFIG", raising=False)
    monkeypatch.delenv("ASTROCYTE_DB", raising=False)
