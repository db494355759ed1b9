#!/usr/bin/env bash
# The whole test suite: installs what it needs into a virtualenv, starts the real servers
# the storage and ingestion adapters are tested against (and the Debian packages the
# gateway-plugin tests run: nginx + Lua, Mono), then lint, types and tests of every package
# (core, gateway, storage adapters, hybrid stack, ingestion adapters, gateway plugins).
#
# Usage: scripts/test.sh [extra pytest args for the core suite]
# ASTROCYTE_SKIP_ADAPTERS=1  core only (no servers needed)
# ASTROCYTE_KEEP_SERVICES=1  leave the servers running afterwards (faster reruns)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${ASTROCYTE_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
ADAPTERS=(astrocyte-pgvector astrocyte-qdrant astrocyte-neo4j astrocyte-elasticsearch)
INGESTION=(astrocyte-ingestion-kafka astrocyte-ingestion-redis astrocyte-ingestion-github)
# package directory:module (their module names are shorter than the package names)
INTEGRATION=(astrocyte-mcp:astrocyte_mcp astrocyte-integration-llm-wrapper:astrocyte_llm_wrapper)
# Framework packages whose dependencies conflict with the main environment (mcp<2,
# openai<3, pinned pydantic): tested in a second virtualenv of their own.
HEAVY_INTEGRATION=(
  astrocyte-integration-crewai:astrocyte_crewai
  astrocyte-integration-semantic-kernel:astrocyte_semantic_kernel
  astrocyte-integration-dspy:astrocyte_dspy
)
HEAVY_VENV="${ASTROCYTE_INTEGRATIONS_VENV:-$ROOT/.venv-integrations}"
WITH_ADAPTERS=1
[ "${ASTROCYTE_SKIP_ADAPTERS:-0}" = 1 ] && WITH_ADAPTERS=0

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
pip_install() {
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$@"
}
pip_install --upgrade pip
pip_install -e "$ROOT/astrocyte-py[dev]"
GATEWAY="$ROOT/astrocyte-services-py/astrocyte-gateway-py"
pip_install -e "$GATEWAY[test]"

# Console scripts (astrocyte) must resolve to this environment's, not a global one.
export PATH="$VENV/bin:$PATH"

SERVICES_PID=""
SERVICES_LOG="$(mktemp -t astrocyte-services.XXXXXX.log)"
if [ "$WITH_ADAPTERS" = 1 ]; then
  for pkg in "${ADAPTERS[@]}"; do
    pip_install -e "$ROOT/adapters-storage-py/$pkg[test]"
  done
  for pkg in "${INGESTION[@]}"; do
    pip_install -e "$ROOT/adapters-ingestion-py/$pkg[test]"
  done
  for entry in "${INTEGRATION[@]}"; do
    pip_install -e "$ROOT/adapters-integration-py/${entry%%:*}[test]"
  done
  pip_install -r "$ROOT/gateway-plugins/requirements-test.txt"
  # The heavy framework environment installs in the background, beside the core suite.
  HEAVY_LOG="$(mktemp -t astrocyte-heavy-venv.XXXXXX.log)"
  (
    [ -x "$HEAVY_VENV/bin/python" ] || "$PYTHON" -m venv "$HEAVY_VENV"
    heavy_args=(-e "$ROOT/astrocyte-py")
    for entry in "${HEAVY_INTEGRATION[@]}"; do
      heavy_args+=(-e "$ROOT/adapters-integration-py/${entry%%:*}[test]")
    done
    "$HEAVY_VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
    "$HEAVY_VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
      "${heavy_args[@]}" "mypy>=1.10"
  ) >"$HEAVY_LOG" 2>&1 &
  HEAVY_PID=$!
  # Debian packages first (one apt at a time; redis.sh would install redis-server
  # itself), then the servers — JVMs take tens of seconds to start: all of it now,
  # alongside the core suite.
  (
    "$ROOT/scripts/ensure_apt.sh" redis-server nginx libnginx-mod-http-lua lua-cjson luajit2 \
      lua5.1 lua-busted lua-check mono-mcs mono-runtime libnewtonsoft-json-cil-dev
    "$ROOT/scripts/services.sh" start
  ) >"$SERVICES_LOG" 2>&1 &
  SERVICES_PID=$!
  if [ "${ASTROCYTE_KEEP_SERVICES:-0}" != 1 ]; then
    trap '"$ROOT/scripts/services.sh" stop >/dev/null 2>&1 || true' EXIT
  fi
fi

cd "$ROOT/astrocyte-py"
echo "== ruff"
"$VENV/bin/ruff" check astrocyte tests benchmarks
"$VENV/bin/ruff" format --check astrocyte tests benchmarks
echo "== mypy --strict (core)"
"$VENV/bin/mypy" astrocyte
echo "== pytest (core)"
"$VENV/bin/python" -m pytest -q "$@"

echo "== astrocyte-gateway"
(
  cd "$GATEWAY"
  "$VENV/bin/ruff" check .
  "$VENV/bin/ruff" format --check .
  "$VENV/bin/mypy" astrocyte_gateway
  "$VENV/bin/python" -m pytest -q
)

echo "== documentation site (mkdocs build --strict; every public name documented)"
(
  cd "$ROOT"
  "$VENV/bin/ruff" check docs/_hooks docs/_tests
  "$VENV/bin/ruff" format --check docs/_hooks docs/_tests
  NO_MKDOCS_2_WARNING=1 "$VENV/bin/python" -m pytest -q docs/_tests
)

echo "== release checks (versions and declared core ranges; scripts/release.py tests)"
(
  cd "$ROOT/scripts"
  "$VENV/bin/python" release.py --check-versions --json "$(mktemp -t release-report.XXXXXX.json)"
  "$VENV/bin/python" -m pytest -q
)

[ "$WITH_ADAPTERS" = 1 ] || exit 0

echo "== servers"
if ! wait "$SERVICES_PID"; then
  cat "$SERVICES_LOG" >&2
  echo "a test server failed to start (log above)" >&2
  exit 1
fi
cat "$SERVICES_LOG"
eval "$("$ROOT/scripts/services.sh" env)"
# A server that is missing now is a failure, never a skip.
export ASTROCYTE_REQUIRE_SERVICES=1

cd "$ROOT"
echo "== ruff (benchmarks, scripts, hybrid tests, gateway-plugin tests)"
"$VENV/bin/ruff" check benchmarks scripts adapters-storage-py/tests-hybrid gateway-plugins
"$VENV/bin/ruff" format --check benchmarks scripts adapters-storage-py/tests-hybrid gateway-plugins
for pkg in "${ADAPTERS[@]}"; do
  echo "== $pkg"
  (
    cd "$ROOT/adapters-storage-py/$pkg"
    "$VENV/bin/ruff" check .
    "$VENV/bin/ruff" format --check .
    "$VENV/bin/mypy" "${pkg//-/_}"
    "$VENV/bin/python" -m pytest -q
  )
done
echo "== hybrid stack (pgvector + Elasticsearch + Neo4j)"
(
  cd "$ROOT/adapters-storage-py/tests-hybrid"
  "$VENV/bin/python" -m pytest -q
)
for pkg in "${INGESTION[@]}"; do
  echo "== $pkg"
  (
    cd "$ROOT/adapters-ingestion-py/$pkg"
    "$VENV/bin/ruff" check .
    "$VENV/bin/ruff" format --check .
    "$VENV/bin/mypy" "${pkg//-/_}"
    "$VENV/bin/python" -m pytest -q
  )
done
for entry in "${INTEGRATION[@]}"; do
  echo "== ${entry%%:*}"
  (
    cd "$ROOT/adapters-integration-py/${entry%%:*}"
    "$VENV/bin/ruff" check .
    "$VENV/bin/ruff" format --check .
    "$VENV/bin/mypy" "${entry##*:}"
    "$VENV/bin/python" -m pytest -q
  )
done
echo "== heavy framework integrations (own virtualenv: $HEAVY_VENV)"
if ! wait "$HEAVY_PID"; then
  cat "$HEAVY_LOG" >&2
  echo "installing the heavy integration environment failed (log above)" >&2
  exit 1
fi
for entry in "${HEAVY_INTEGRATION[@]}"; do
  echo "== ${entry%%:*}"
  (
    cd "$ROOT/adapters-integration-py/${entry%%:*}"
    "$VENV/bin/ruff" check .
    "$VENV/bin/ruff" format --check .
    "$HEAVY_VENV/bin/mypy" "${entry##*:}"
    "$HEAVY_VENV/bin/python" -m pytest -q
  )
done
echo "== gateway plugins (Kong and APISIX on real nginx + Lua, Azure APIM emulator + Mono)"
cd "$ROOT/gateway-plugins"
"$VENV/bin/python" -m pytest -q
