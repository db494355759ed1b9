#!/usr/bin/env bash
# A real Redis server (Debian's redis-server, 7.0 on bookworm) for the Redis Streams
# ingest-adapter tests.
#
#   scripts/services/redis.sh start|stop|restart|status|env|wipe
#
# Listens on 127.0.0.1:$ASTROCYTE_REDIS_PORT (default 56379), no password. No RDB
# snapshots, but an append-only file (appendfsync everysec) in $SERVICES_HOME/redis/data,
# so data survives stop/start and `restart` (the tests' simulated broker restart);
# `wipe` deletes it. Installs redis-server with apt when it is missing.
# As root, the ports are added to net.ipv4.ip_local_reserved_ports (they lie in the
# ephemeral range), and a start whose bind fails with EADDRINUSE is retried.
set -euo pipefail

# shellcheck source=_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"

PORT="${ASTROCYTE_REDIS_PORT:-56379}"
START_TIMEOUT_S="${ASTROCYTE_REDIS_START_TIMEOUT_S:-30}"

DIR="$(service_dir redis)"
DATA="$DIR/data"
RUN="$DIR/run"
PIDFILE="$RUN/redis.pid"
LOGFILE="$RUN/redis.log"

install_server() {
  if command -v redis-server >/dev/null && command -v redis-cli >/dev/null; then
    return 0
  fi
  [ "$(id -u)" -eq 0 ] || die "redis-server is not installed (apt-get install redis-server, as root)"
  log "installing redis-server with apt"
  local apt=(env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 -y -q)
  if ! "${apt[@]}" install --no-install-recommends redis-server >"$DIR/apt.log" 2>&1; then
    log "apt-get install failed; running apt-get update first"
    "${apt[@]}" update >>"$DIR/apt.log" 2>&1 || true
    "${apt[@]}" install --no-install-recommends redis-server >>"$DIR/apt.log" 2>&1 \
      || { tail -n 30 "$DIR/apt.log" >&2; die "apt-get install redis-server failed"; }
  fi
}

ping() {
  [ "$(redis-cli -h 127.0.0.1 -p "$PORT" ping 2>/dev/null)" = "PONG" ]
}

# launch: redis-server in the foreground of its own session (see launch_detached).
launch() {
  launch_detached "$PIDFILE" "$LOGFILE" \
    redis-server --bind 127.0.0.1 --port "$PORT" --protected-mode yes --daemonize no \
    --dir "$DATA" --save '' --appendonly yes --appendfsync everysec --databases 16
}

start() {
  local t0=$SECONDS
  if pid_alive "$PIDFILE" && ping; then
    log "redis already running (pid $(cat "$PIDFILE")) on 127.0.0.1:$PORT"
    return 0
  fi
  stop_pid "$PIDFILE" 10
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    die "port $PORT is taken by another process (set ASTROCYTE_REDIS_PORT)"
  fi
  reserve_ports "$PORT"
  install_server
  ensure_service_user
  mkdir -p "$DATA" "$RUN"
  own_by_service_user "$DATA" "$RUN"
  local attempt deadline
  for attempt in 1 2 3 4 5 6; do
    log "starting redis on 127.0.0.1:$PORT (AOF in $DATA, log $LOGFILE)"
    launch
    deadline=$((SECONDS + START_TIMEOUT_S))
    while [ "$SECONDS" -lt "$deadline" ]; do
      if ping; then
        log "redis ready on 127.0.0.1:$PORT in $((SECONDS - t0))s"
        return 0
      fi
      if [ -s "$PIDFILE" ] && ! pid_alive "$PIDFILE"; then
        break
      fi
      sleep 0.2
    done
    # Some other process's socket (often TIME-WAIT) can hold the port for a while.
    if ! pid_alive "$PIDFILE" && grep -q "Address already in use" "$LOGFILE"; then
      log "redis could not bind 127.0.0.1:$PORT (attempt $attempt); sockets on it:"
      ss -tanH "( sport = :$PORT )" >&2 || true
      sleep 10
      continue
    fi
    break
  done
  tail -n 30 "$LOGFILE" >&2 || true
  stop_pid "$PIDFILE" 10
  die "redis does not answer PING on 127.0.0.1:$PORT"
}

stop() {
  if pid_alive "$PIDFILE"; then
    log "stopping redis (pid $(cat "$PIDFILE"))"
  fi
  # SIGTERM: Redis fsyncs the append-only file before it exits.
  stop_pid "$PIDFILE" 30
}

restart() {
  stop
  start
}

status() {
  if pid_alive "$PIDFILE" && ping; then
    echo "redis running (pid $(cat "$PIDFILE")) on 127.0.0.1:$PORT"
    return 0
  fi
  echo "redis not running"
  return 1
}

# with_lock CMD: one start/stop/restart/wipe at a time per services home (held until exit).
with_lock() {
  exec 9>"$DIR/.lock"
  flock -w 120 9 || die "another redis.sh holds $DIR/.lock"
  "$@"
}

case "${1:-}" in
  start) with_lock start ;;
  stop) with_lock stop ;;
  restart) with_lock restart ;;
  status) status ;;
  env) echo "export ASTROCYTE_TEST_REDIS_URL=redis://127.0.0.1:$PORT/0" ;;
  wipe)
    with_lock stop
    rm -rf "$DATA"
    log "redis data deleted"
    ;;
  *)
    echo "usage: $0 start|stop|restart|status|env|wipe" >&2
    exit 2
    ;;
esac
