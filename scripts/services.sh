#!/usr/bin/env bash
# Start, stop or describe the real servers the adapter tests run against.
#
# Usage: scripts/services.sh start|stop|status|env [service...]
# Services: postgres (PostgreSQL 18 + pgvector), neo4j, elasticsearch, opensearch,
#   redis (Debian redis-server, 127.0.0.1:56379), kafka (Apache Kafka 4.x KRaft, 127.0.0.1:59092).
# Default set: $ASTROCYTE_SERVICES or all six.
# redis and kafka keep their data across stop/start; `scripts/services/{redis,kafka}.sh
# restart` restarts one keeping its data (and `wipe` deletes it).
# `start` starts the services in parallel and fails if any of them fails; `env` prints
# `export ...` lines for the test environment variables (eval it).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

action="${1:-}"
shift || true
if [ "$#" -eq 0 ]; then
  read -r -a services <<<"${ASTROCYTE_SERVICES:-postgres neo4j elasticsearch opensearch redis kafka}"
else
  services=("$@")
fi
for name in "${services[@]}"; do
  [ -x "$HERE/services/$name.sh" ] || { echo "unknown service: $name" >&2; exit 2; }
done

case "$action" in
  start)
    declare -A pids
    for name in "${services[@]}"; do
      "$HERE/services/$name.sh" start &
      pids[$name]=$!
    done
    failed=()
    for name in "${services[@]}"; do
      wait "${pids[$name]}" || failed+=("$name")
    done
    if [ "${#failed[@]}" -gt 0 ]; then
      echo "[services] failed to start: ${failed[*]}" >&2
      exit 1
    fi
    ;;
  stop | status | env)
    rc=0
    for name in "${services[@]}"; do
      "$HERE/services/$name.sh" "$action" || rc=1
    done
    exit "$rc"
    ;;
  *)
    echo "usage: $0 start|stop|status|env [service...]" >&2
    exit 2
    ;;
esac
