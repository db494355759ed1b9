#!/usr/bin/env bash
# The whole test suite: installs what it needs into a virtualenv, then lint, types, tests.
# Usage: scripts/test.sh [extra pytest args]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${ASTROCYTE_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e "$ROOT/astrocyte-py[dev]"

# Console scripts (astrocyte) must resolve to this environment's, not a global one.
export PATH="$VENV/bin:$PATH"
cd "$ROOT/astrocyte-py"
echo "== ruff"
"$VENV/bin/ruff" check astrocyte tests benchmarks
"$VENV/bin/ruff" format --check astrocyte tests benchmarks
echo "== mypy --strict (core)"
"$VENV/bin/mypy" astrocyte
echo "== pytest"
"$VENV/bin/python" -m pytest -q "$@"
