#!/usr/bin/env bash
# OpenSearch test node for astrocyte-elasticsearch: scripts/services/opensearch.sh start|stop|status|env
#
# A real single-node OpenSearch 2 (the integ-test zip from Maven Central) on
# 127.0.0.1:59201. The zip ships only the netty transport module, so the script adds
# OpenSearch's own analysis-common module (the jar published to Maven Central, the one
# the full distribution bundles): the adapter's server-side analyzer needs it. No
# security plugin: the node is open on loopback.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"

OS_VERSION="${ASTROCYTE_OPENSEARCH_VERSION:-2.19.6}"
OS_PORT=59201
OS_TRANSPORT_PORT=59301

DIR="$(service_dir opensearch)"
HOME_DIR="$DIR/opensearch-$OS_VERSION"
PIDFILE="$DIR/run/opensearch.pid"
LOG="$DIR/logs/stdout.log"

java_home() {
  # A JDK 17+; an explicit OPENSEARCH_JAVA_HOME wins over the java on PATH.
  jdk_home "${OPENSEARCH_JAVA_HOME:-}"
}

install_os() {
  if [ ! -x "$HOME_DIR/bin/opensearch" ]; then
    local zip
    zip="$(maven_fetch "org.opensearch.distribution.integ-test-zip:opensearch:$OS_VERSION:zip" "$DIR/download")"
    log "unpacking $zip"
    rm -rf "$HOME_DIR.part"
    mkdir -p "$HOME_DIR.part"
    unpack_zip "$zip" "$HOME_DIR.part"
    mv "$HOME_DIR.part/opensearch-$OS_VERSION" "$HOME_DIR"
    rm -rf "$HOME_DIR.part"
  fi
  local module="$HOME_DIR/modules/analysis-common"
  if [ ! -f "$module/plugin-descriptor.properties" ]; then
    local jar
    jar="$(maven_fetch "org.opensearch.plugin:analysis-common:$OS_VERSION" "$DIR/download")"
    mkdir -p "$module"
    cp "$jar" "$module/"
    # The published jar has no descriptor (the distribution build writes it); this one
    # leaves out `extended.plugins=lang-painless`, which the zip does not have.
    cat >"$module/plugin-descriptor.properties" <<EOF
description=Adds "built in" analyzers to OpenSearch.
version=$OS_VERSION
name=analysis-common
classname=org.opensearch.analysis.common.CommonAnalysisPlugin
java.version=11
opensearch.version=$OS_VERSION
EOF
  fi
}

configure_os() {
  mkdir -p "$DIR/data" "$DIR/logs" "$DIR/run"
  cat >"$HOME_DIR/config/opensearch.yml" <<EOF
cluster.name: astrocyte-test
node.name: astrocyte-opensearch
discovery.type: single-node
network.host: 127.0.0.1
http.port: $OS_PORT
transport.port: $OS_TRANSPORT_PORT
path.data: $DIR/data
path.logs: $DIR/logs
cluster.routing.allocation.disk.threshold_enabled: false
EOF
  own_by_service_user "$DIR"
}

answers() {
  curl -fsS -m 5 "http://127.0.0.1:$OS_PORT/_cluster/health?wait_for_status=yellow&timeout=2s" \
    2>/dev/null | grep -q '"timed_out":false'
}

start() {
  mkdir -p "$SERVICES_HOME"
  reserve_ports "$OS_PORT" "$OS_TRANSPORT_PORT"
  local t0=$SECONDS
  if pid_alive "$PIDFILE" && answers; then
    log "opensearch already running on 127.0.0.1:$OS_PORT"
    return 0
  fi
  ensure_service_user
  install_os
  configure_os
  stop_pid "$PIDFILE" 30
  log "starting opensearch $OS_VERSION on 127.0.0.1:$OS_PORT"
  (
    cd "$HOME_DIR"
    as_service_user env OPENSEARCH_JAVA_HOME="$(java_home)" \
      OPENSEARCH_JAVA_OPTS="-Xms512m -Xmx512m" OPENSEARCH_PATH_CONF="$HOME_DIR/config" \
      "$HOME_DIR/bin/opensearch" -d -p "$PIDFILE" >"$LOG" 2>&1
  ) || {
    tail -n 60 "$LOG" "$DIR/logs/astrocyte-test.log" 2>/dev/null >&2 || true
    die "opensearch failed to start"
  }
  local deadline=$((SECONDS + 180))
  until answers; do
    # -d returns before the daemon writes its pidfile: allow it a moment to appear.
    if [ "$SECONDS" -ge "$deadline" ] ||
      { [ $((SECONDS - t0)) -gt 30 ] && ! pid_alive "$PIDFILE"; }; then
      tail -n 60 "$LOG" "$DIR/logs/astrocyte-test.log" 2>/dev/null >&2 || true
      die "opensearch did not answer on 127.0.0.1:$OS_PORT"
    fi
    sleep 1
  done
  # A real query through the analysis module the adapter needs, not just a live port.
  curl -fsS -m 10 -H 'content-type: application/json' "http://127.0.0.1:$OS_PORT/_analyze" \
    -d '{"tokenizer":"standard","filter":["lowercase","asciifolding"],"text":"Café"}' |
    grep -q '"cafe"' || die "opensearch is up but its analysis-common module is missing"
  log "opensearch up on 127.0.0.1:$OS_PORT in $((SECONDS - t0))s"
}

case "${1:-}" in
  start) start ;;
  stop) stop_pid "$PIDFILE" 60 ;;
  status) pid_alive "$PIDFILE" && answers ;;
  env) echo "export ASTROCYTE_TEST_OPENSEARCH_URL=http://127.0.0.1:$OS_PORT" ;;
  *)
    echo "usage: $0 start|stop|status|env" >&2
    exit 2
    ;;
esac
