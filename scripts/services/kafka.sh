#!/usr/bin/env bash
# A real Apache Kafka 4.x broker (jars from Maven Central, KRaft single node) for the
# Kafka ingest-adapter tests.
#
#   scripts/services/kafka.sh start|stop|restart|status|env|wipe
#
# PLAINTEXT on 127.0.0.1:$ASTROCYTE_KAFKA_PORT (default 59092), KRaft controller on
# 127.0.0.1:$ASTROCYTE_KAFKA_CONTROLLER_PORT (default 59093), heap 256m..512m.
# The jars are resolved once with Maven (scripts/services/kafka/pom.xml) into
# $SERVICES_HOME/kafka/lib; the storage dir $SERVICES_HOME/kafka/data is formatted once and
# KEPT by stop/restart, so topics and committed offsets survive a restart (`wipe` deletes it).
# Readiness = the broker log says "Kafka Server started" AND
# `org.apache.kafka.tools.TopicCommand --list` (a Java client round trip) succeeds.
# As root, the ports are added to net.ipv4.ip_local_reserved_ports (they lie in the
# ephemeral range), and a start whose bind fails with EADDRINUSE is retried.
set -euo pipefail

# shellcheck source=_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"

PORT="${ASTROCYTE_KAFKA_PORT:-59092}"
CONTROLLER_PORT="${ASTROCYTE_KAFKA_CONTROLLER_PORT:-59093}"
HEAP_MIN="${ASTROCYTE_KAFKA_HEAP_MIN:-256m}"
HEAP_MAX="${ASTROCYTE_KAFKA_HEAP_MAX:-512m}"
START_TIMEOUT_S="${ASTROCYTE_KAFKA_START_TIMEOUT_S:-180}"
SRC_DIR="$REPO_ROOT/scripts/services/kafka"

DIR="$(service_dir kafka)"
LIB="$DIR/lib"
DATA="$DIR/data"
CONF="$DIR/server.properties"
PIDFILE="$DIR/kafka.pid"
LOGFILE="$DIR/kafka.log"

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

java_home() {
  local candidate
  for candidate in "${JAVA_HOME:-}" "$(dirname "$(dirname "$(readlink -f "$(command -v java 2>/dev/null || echo /nonexistent)")")")"; do
    if [ -n "$candidate" ] && [ -x "$candidate/bin/java" ]; then
      echo "$candidate"
      return 0
    fi
  done
  die "no Java found (need java >= 17; set JAVA_HOME)"
}

java_cmd() { echo "$(java_home)/bin/java"; }

# install: the broker's jars, cached by a hash of the pom.
install() {
  maven_copy_deps "$SRC_DIR/pom.xml" "$LIB" "$DIR" "$(java_home)" "Apache Kafka"
}

# tool CLASS ARGS... -> runs a Kafka command-line class with a small client JVM.
tool() {
  local cls="$1"
  shift
  "$(java_cmd)" -Xms32m -Xmx128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto \
    -Djava.awt.headless=true -Dlog4j2.configurationFile="$DIR/tools-log4j2.properties" \
    -cp "$LIB/*" "$cls" "$@"
}

write_config() {
  # Copies, so the service user never needs to read the repository.
  cp "$SRC_DIR/log4j2.properties" "$SRC_DIR/tools-log4j2.properties" "$DIR/"
  chmod 644 "$DIR/log4j2.properties" "$DIR/tools-log4j2.properties"
  cat >"$CONF.tmp" <<EOF
# Written by scripts/services/kafka.sh on every start: edit the script, not this file.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$DATA
num.partitions=3
auto.create.topics.enable=true
default.replication.factor=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=5
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
# Small machine: few threads.
num.network.threads=2
num.io.threads=2
background.threads=2
num.recovery.threads.per.data.dir=1
log.cleaner.threads=1
EOF
  mv "$CONF.tmp" "$CONF"
}

# format_storage: once per data dir (meta.properties marks it formatted).
format_storage() {
  if [ -f "$DATA/meta.properties" ]; then
    return 0
  fi
  local cluster_id
  # A Kafka Uuid: 16 random bytes, URL-safe base64 without padding, not starting with '-'.
  cluster_id="$(python3 -c '
import base64, uuid
while True:
    s = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    if not s.startswith("-"):
        print(s)
        break
')"
  log "formatting KRaft storage $DATA (cluster id $cluster_id)"
  rm -rf "$DATA"
  mkdir -p "$DATA"
  own_by_service_user "$DATA"
  as_service_user "$(java_cmd)" -Xmx128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
    -Dlog4j2.configurationFile="$DIR/tools-log4j2.properties" -cp "$LIB/*" \
    kafka.tools.StorageTool format -t "$cluster_id" -c "$CONF" >"$DIR/format.log" 2>&1 \
    || { cat "$DIR/format.log" >&2; die "kafka storage format failed"; }
}

probe() {
  tool org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$PORT" --list \
    >/dev/null 2>&1
}

# launch: the broker in the background (see launch_detached).
launch() {
  local java
  java="$(java_cmd)"
  launch_detached "$PIDFILE" "$LOGFILE" \
    "$java" "-Xms$HEAP_MIN" "-Xmx$HEAP_MAX" -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
    -Djava.awt.headless=true -Djava.io.tmpdir="$DIR" \
    -Dlog4j2.configurationFile="$DIR/log4j2.properties" \
    -cp "$LIB/*" kafka.Kafka "$CONF"
}

start() {
  local began
  began="$(now)"
  if pid_alive "$PIDFILE"; then
    if probe; then
      log "kafka already running (pid $(cat "$PIDFILE")) on 127.0.0.1:$PORT"
      return 0
    fi
    log "kafka process $(cat "$PIDFILE") does not answer; restarting it"
    stop_pid "$PIDFILE" 30
  fi
  local port
  for port in "$PORT" "$CONTROLLER_PORT"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      die "port $port is taken by another process (set ASTROCYTE_KAFKA_PORT / ASTROCYTE_KAFKA_CONTROLLER_PORT)"
    fi
  done
  reserve_ports "$PORT" "$CONTROLLER_PORT"
  install
  ensure_service_user
  write_config
  format_storage
  own_by_service_user "$DATA"
  local attempt deadline
  for attempt in 1 2 3 4 5 6; do
    log "starting kafka on 127.0.0.1:$PORT (heap $HEAP_MIN..$HEAP_MAX, log $LOGFILE)"
    launch
    deadline=$((SECONDS + START_TIMEOUT_S))
    while [ "$SECONDS" -lt "$deadline" ]; do
      if grep -q "Kafka Server started" "$LOGFILE" 2>/dev/null && probe; then
        log "kafka ready on 127.0.0.1:$PORT in $(elapsed "$began")s"
        return 0
      fi
      if [ -s "$PIDFILE" ] && ! pid_alive "$PIDFILE"; then
        break
      fi
      sleep 0.5
    done
    # A socket left by some other process's connection (often TIME-WAIT) can hold the port
    # for a while even with the ports reserved: wait and try again.
    if ! pid_alive "$PIDFILE" && grep -q "failed to bind to 127.0.0.1:.*Address already in use" "$LOGFILE"; then
      log "kafka could not bind its port (attempt $attempt); sockets on it:"
      ss -tanH "( sport = :$PORT or sport = :$CONTROLLER_PORT )" >&2 || true
      sleep 10
      continue
    fi
    break
  done
  if pid_alive "$PIDFILE"; then
    log "kafka did not answer on 127.0.0.1:$PORT within ${START_TIMEOUT_S}s; log tail:"
  else
    log "kafka exited during startup; log tail:"
  fi
  tail -n 60 "$LOGFILE" >&2 || true
  stop_pid "$PIDFILE" 10
  die "kafka failed to start"
}

stop() {
  if pid_alive "$PIDFILE"; then
    log "stopping kafka (pid $(cat "$PIDFILE"))"
  fi
  # A clean shutdown flushes the logs and writes the clean-shutdown marker, so the next
  # start skips log recovery.
  stop_pid "$PIDFILE" 60
}

restart() {
  stop
  start
}

status() {
  if pid_alive "$PIDFILE" && probe; then
    echo "kafka running (pid $(cat "$PIDFILE")) on 127.0.0.1:$PORT"
    return 0
  fi
  echo "kafka not running"
  return 1
}

# with_lock CMD: one start/stop/restart/wipe at a time per services home (the lock is held
# until this script exits).
with_lock() {
  exec 9>"$DIR/.lock"
  flock -w 300 9 || die "another kafka.sh holds $DIR/.lock"
  "$@"
}

case "${1:-}" in
  start) with_lock start ;;
  stop) with_lock stop ;;
  restart) with_lock restart ;;
  status) status ;;
  env) echo "export ASTROCYTE_TEST_KAFKA_BOOTSTRAP=127.0.0.1:$PORT" ;;
  wipe)
    with_lock stop
    rm -rf "$DATA" "$CONF"
    log "kafka data deleted"
    ;;
  *)
    echo "usage: $0 start|stop|restart|status|env|wipe" >&2
    exit 2
    ;;
esac
