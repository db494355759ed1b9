#!/usr/bin/env bash
# A real Neo4j 5.26 LTS (Community, neo4j-harness from Maven Central) for astrocyte-neo4j.
#
#   scripts/services/neo4j.sh start|stop|status|env
#
# Bolt on 127.0.0.1:$ASTROCYTE_NEO4J_PORT (default 57687), auth on (neo4j / astrocyte-test),
# HTTP disabled, heap 512m. Jars are resolved once with Maven into
# $SERVICES_HOME/neo4j/lib and the launcher compiled with javac; every start is a fresh,
# empty database in a temp dir under $SERVICES_HOME/neo4j/run that is deleted on stop.
set -euo pipefail

# shellcheck source=_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"

PORT="${ASTROCYTE_NEO4J_PORT:-57687}"
USER_NAME="neo4j"
PASSWORD="astrocyte-test"
HEAP="${ASTROCYTE_NEO4J_HEAP:-512m}"
START_TIMEOUT_S="${ASTROCYTE_NEO4J_START_TIMEOUT_S:-180}"
SRC_DIR="$REPO_ROOT/scripts/services/neo4j"

DIR="$(service_dir neo4j)"
LIB="$DIR/lib"
CLASSES="$DIR/classes"
RUN="$DIR/run"
PIDFILE="$RUN/neo4j.pid"
LOGFILE="$RUN/neo4j.log"

# java_bin: a JDK >= 17 (javac needed to build the launcher).
java_home() {
  local candidate
  for candidate in "${JAVA_HOME:-}" "$(dirname "$(dirname "$(readlink -f "$(command -v javac 2>/dev/null || echo /nonexistent)")")")"; do
    if [ -n "$candidate" ] && [ -x "$candidate/bin/javac" ]; then
      echo "$candidate"
      return 0
    fi
  done
  die "no JDK found (need javac >= 17; set JAVA_HOME)"
}

# install: jars (cached by a hash of the pom) and the compiled launcher (by its hash).
install() {
  local jdk pom_hash src_hash
  jdk="$(java_home)"
  maven_copy_deps "$SRC_DIR/pom.xml" "$LIB" "$DIR" "$jdk" "neo4j-harness"
  pom_hash="$(cat "$LIB/.stamp")"
  src_hash="$( (cat "$SRC_DIR/Launcher.java"; echo "$pom_hash") | sha256sum | cut -c1-16)"
  if [ "$(cat "$CLASSES/.stamp" 2>/dev/null)" != "$src_hash" ]; then
    log "compiling Launcher.java"
    rm -rf "$CLASSES"
    mkdir -p "$CLASSES"
    "$jdk/bin/javac" -nowarn -d "$CLASSES" -cp "$LIB/*" "$SRC_DIR/Launcher.java" \
      || die "javac failed"
    echo "$src_hash" >"$CLASSES/.stamp"
  fi
}

java_cmd() {
  echo "$(java_home)/bin/java"
}

probe() {
  as_service_user "$(java_cmd)" -Xmx64m -XX:TieredStopAtLevel=1 -cp "$LIB/*:$CLASSES" \
    Launcher probe "$PORT" "$PASSWORD" >/dev/null 2>&1
}

start() {
  mkdir -p "$SERVICES_HOME"
  reserve_ports "$PORT"
  local began=$SECONDS
  if pid_alive "$PIDFILE"; then
    if probe; then
      log "neo4j already running (pid $(cat "$PIDFILE")) on 127.0.0.1:$PORT"
      return 0
    fi
    log "neo4j process $(cat "$PIDFILE") does not answer; restarting it"
    stop_pid "$PIDFILE" 30
  fi
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    die "port $PORT is taken by another process (set ASTROCYTE_NEO4J_PORT)"
  fi
  install
  ensure_service_user
  # Leftover store directories of a killed server are never reused: every start is empty.
  rm -rf "$RUN"
  mkdir -p "$RUN/data"
  own_by_service_user "$RUN"
  local java
  java="$(java_cmd)"
  export SERVICE_USER
  log "starting neo4j on 127.0.0.1:$PORT (heap $HEAP, log $LOGFILE)"
  # setsid: the server must outlive this script's process group. The shell writes its
  # own pid, then execs java, so the pidfile names the JVM itself.
  setsid bash -c '
    pidfile="$1"; log="$2"; shift 2
    if [ "$(id -u)" -eq 0 ]; then
      exec runuser -u "$SERVICE_USER" -- bash -c "echo \$\$ >\"$pidfile\"; exec \"\$@\"" _ "$@" >"$log" 2>&1
    fi
    echo $$ >"$pidfile"
    exec "$@" >"$log" 2>&1
  ' _ "$PIDFILE" "$LOGFILE" \
    "$java" "-Xms$HEAP" "-Xmx$HEAP" -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
    -Djava.io.tmpdir="$RUN" -cp "$LIB/*:$CLASSES" \
    Launcher "$RUN/data" "$PORT" "$PASSWORD" </dev/null &
  local deadline=$((SECONDS + START_TIMEOUT_S))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if grep -q "neo4j-launcher: bolt ready" "$LOGFILE" 2>/dev/null && probe; then
      log "neo4j ready on bolt://127.0.0.1:$PORT in $((SECONDS - began))s"
      return 0
    fi
    if [ -f "$PIDFILE" ] && ! pid_alive "$PIDFILE"; then
      break
    fi
    sleep 1
  done
  log "neo4j did not answer a Cypher query within ${START_TIMEOUT_S}s; log tail:"
  tail -n 60 "$LOGFILE" >&2 || true
  stop_pid "$PIDFILE" 10
  die "neo4j failed to start"
}

stop() {
  if pid_alive "$PIDFILE"; then
    log "stopping neo4j (pid $(cat "$PIDFILE"))"
  fi
  stop_pid "$PIDFILE" 60
  rm -rf "$RUN/data"
}

status() {
  if pid_alive "$PIDFILE" && probe; then
    echo "neo4j running (pid $(cat "$PIDFILE")) on bolt://127.0.0.1:$PORT"
    return 0
  fi
  echo "neo4j not running"
  return 1
}

env_vars() {
  echo "export ASTROCYTE_TEST_NEO4J_URI=bolt://127.0.0.1:$PORT"
  echo "export ASTROCYTE_TEST_NEO4J_USER=$USER_NAME"
  echo "export ASTROCYTE_TEST_NEO4J_PASSWORD=$PASSWORD"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  env) env_vars ;;
  *)
    echo "usage: $0 start|stop|status|env" >&2
    exit 2
    ;;
esac
