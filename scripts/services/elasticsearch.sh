#!/usr/bin/env bash
# Elasticsearch test node for astrocyte-elasticsearch: scripts/services/elasticsearch.sh start|stop|status|env
#
# A real single-node Elasticsearch 8 (the integ-test zip from Maven Central) on
# 127.0.0.1:59200 with security on (file realm, HTTP without TLS), so the adapter's
# bad-credentials test gets a real 401. The integ-test zip has no analysis-common
# module, so the adapter runs there in its client-side analysis mode (see its README).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"

ES_VERSION="${ASTROCYTE_ES_VERSION:-8.19.21}"
ES_PORT=59200
ES_TRANSPORT_PORT=59300
ES_USER=astrocyte
# A throwaway password of a loopback-only test node, not a secret.
ES_PASSWORD=astrocyte-test-password

DIR="$(service_dir elasticsearch)"
HOME_DIR="$DIR/elasticsearch-$ES_VERSION"
PIDFILE="$DIR/run/elasticsearch.pid"
LOG="$DIR/logs/stdout.log"

java17_home() {
  # A JDK 17+; an explicit ES_JAVA_HOME wins over the java on PATH.
  jdk_home "${ES_JAVA_HOME:-}"
}

install_es() {
  if [ -x "$HOME_DIR/bin/elasticsearch" ]; then
    return 0
  fi
  local zip
  zip="$(maven_fetch "org.elasticsearch.distribution.integ-test-zip:elasticsearch:$ES_VERSION:zip" "$DIR/download")"
  log "unpacking $zip"
  rm -rf "$HOME_DIR.part"
  mkdir -p "$HOME_DIR.part"
  unpack_zip "$zip" "$HOME_DIR.part"
  mv "$HOME_DIR.part/elasticsearch-$ES_VERSION" "$HOME_DIR"
  rm -rf "$HOME_DIR.part"
}

configure_es() {
  mkdir -p "$DIR/data" "$DIR/logs" "$DIR/run"
  cat >"$HOME_DIR/config/elasticsearch.yml" <<EOF
cluster.name: astrocyte-test
node.name: astrocyte-es
discovery.type: single-node
network.host: 127.0.0.1
http.port: $ES_PORT
transport.port: $ES_TRANSPORT_PORT
path.data: $DIR/data
path.logs: $DIR/logs
# A test node on a shared disk: never go read-only because the disk looks full.
cluster.routing.allocation.disk.threshold_enabled: false
xpack.security.enabled: true
xpack.security.http.ssl.enabled: false
xpack.security.transport.ssl.enabled: false
EOF
  if ! grep -q "^$ES_USER:" "$HOME_DIR/config/users" 2>/dev/null; then
    ES_JAVA_HOME="$(java17_home)" "$HOME_DIR/bin/elasticsearch-users" useradd "$ES_USER" \
      -p "$ES_PASSWORD" -r superuser >/dev/null
  fi
  own_by_service_user "$DIR"
}

answers() {
  curl -fsS -m 5 -u "$ES_USER:$ES_PASSWORD" \
    "http://127.0.0.1:$ES_PORT/_cluster/health?wait_for_status=yellow&timeout=2s" 2>/dev/null |
    grep -q '"timed_out":false'
}

start() {
  mkdir -p "$SERVICES_HOME"
  reserve_ports "$ES_PORT" "$ES_TRANSPORT_PORT"
  local t0=$SECONDS
  if pid_alive "$PIDFILE" && answers; then
    log "elasticsearch already running on 127.0.0.1:$ES_PORT"
    return 0
  fi
  ensure_service_user
  install_es
  configure_es
  stop_pid "$PIDFILE" 30
  log "starting elasticsearch $ES_VERSION on 127.0.0.1:$ES_PORT"
  (
    cd "$HOME_DIR"
    as_service_user env ES_JAVA_HOME="$(java17_home)" ES_JAVA_OPTS="-Xms512m -Xmx512m" \
      ES_PATH_CONF="$HOME_DIR/config" \
      "$HOME_DIR/bin/elasticsearch" -d -p "$PIDFILE" >"$LOG" 2>&1
  ) || {
    tail -n 60 "$LOG" "$DIR/logs/astrocyte-test.log" 2>/dev/null >&2 || true
    die "elasticsearch failed to start"
  }
  local deadline=$((SECONDS + 180))
  until answers; do
    if [ "$SECONDS" -ge "$deadline" ] || ! pid_alive "$PIDFILE"; then
      tail -n 60 "$LOG" "$DIR/logs/astrocyte-test.log" 2>/dev/null >&2 || true
      die "elasticsearch did not answer on 127.0.0.1:$ES_PORT"
    fi
    sleep 1
  done
  log "elasticsearch up on 127.0.0.1:$ES_PORT in $((SECONDS - t0))s"
}

case "${1:-}" in
  start) start ;;
  stop) stop_pid "$PIDFILE" 60 ;;
  status) pid_alive "$PIDFILE" && answers ;;
  env)
    echo "export ASTROCYTE_TEST_ES_URL=http://127.0.0.1:$ES_PORT"
    echo "export ASTROCYTE_TEST_ES_USERNAME=$ES_USER"
    echo "export ASTROCYTE_TEST_ES_PASSWORD=$ES_PASSWORD"
    ;;
  *)
    echo "usage: $0 start|stop|status|env" >&2
    exit 2
    ;;
esac
