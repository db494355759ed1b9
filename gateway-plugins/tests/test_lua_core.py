"""Runs the busted unit tests of the shared Lua core (and luacheck) under pytest.

busted and luacheck come from Debian (``lua-busted``, ``lua-check``). Missing tools skip
the tests, or fail them when ``ASTROCYTE_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

PLUGINS_DIR = Path(__file__).resolve().parent.parent
LUA_DIR = PLUGINS_DIR / "lua"


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if path:
        return path
    message = f"{tool} not installed (apt-get install -y lua-busted lua-check luajit2 lua5.1)"
    if os.environ.get("ASTROCYTE_REQUIRE_SERVICES") == "1":
        pytest.fail(message)
    pytest.skip(message)


# LuaJIT is what Kong and APISIX run; Lua 5.1 keeps the core free of LuaJIT-only syntax.
@pytest.mark.parametrize("interpreter", ["luajit", "lua5.1"])
def test_busted_specs(interpreter: str) -> None:
    busted = _need("busted")
    _need(interpreter)
    result = subprocess.run(
        [busted, f"--lua={interpreter}", "-o", "utfTerminal"],
        cwd=LUA_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert " 0 failures / 0 errors" in output, output


def test_luacheck_clean() -> None:
    luacheck = _need("luacheck")
    result = subprocess.run(
        [luacheck, "--no-color", "."],
        cwd=PLUGINS_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
