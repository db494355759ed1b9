# Shared helpers of the service scripts (sourced, not run).
#
# Every server binds 127.0.0.1 only, keeps its downloads and data under
# $ASTROCYTE_SERVICES_HOME (default /var/tmp/astrocyte-services, readable by the
# unprivileged service user), and is stopped by the PID in its pidfile.

SERVICES_HOME="${ASTROCYTE_SERVICES_HOME:-/var/tmp/astrocyte-services}"
SERVICE_USER="${ASTROCYTE_SERVICE_USER:-astrocyte-svc}"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

log() { echo "[services] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# service_dir NAME -> prints (and creates) the per-service directory.
service_dir() {
  local dir="$SERVICES_HOME/$1"
  mkdir -p "$dir"
  chmod 755 "$SERVICES_HOME" "$dir"
  echo "$dir"
}

# ensure_service_user: PostgreSQL and Elasticsearch refuse to run as root, so as root we
# run every server as an unprivileged system user; otherwise as ourselves.
ensure_service_user() {
  if [ "$(id -u)" -ne 0 ]; then
    return 0
  fi
  if ! id -u "$SERVICE_USER" >/dev/null 2>&1; then
    useradd --system --no-create-home --shell /usr/sbin/nologin "$SERVICE_USER"
  fi
}

# as_service_user CMD... -> runs CMD as the service user when we are root.
as_service_user() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u "$SERVICE_USER" -- "$@"
  else
    "$@"
  fi
}

# own_by_service_user PATH... -> hands PATHs to the service user (no-op unless root).
own_by_service_user() {
  if [ "$(id -u)" -eq 0 ]; then
    chown -R "$SERVICE_USER" "$@"
  fi
}

# wait_port PORT SECONDS -> waits until 127.0.0.1:PORT accepts connections.
wait_port() {
  local port="$1" deadline=$((SECONDS + $2))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      return 0
    fi
    sleep 0.5
  done
  return 1
}

# pid_alive PIDFILE -> true when the pidfile names a running process.
pid_alive() {
  [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

# stop_pid PIDFILE [SECONDS] -> TERM, wait, then KILL the process (and its group).
stop_pid() {
  local pidfile="$1" wait_s="${2:-30}" pid
  if ! pid_alive "$pidfile"; then
    rm -f "$pidfile"
    return 0
  fi
  pid="$(cat "$pidfile")"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + wait_s))
  while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do
    sleep 0.5
  done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$pidfile"
}

# maven_fetch GROUP:ARTIFACT:VERSION[:PACKAGING[:CLASSIFIER]] DEST -> downloads one artifact
# from Maven Central into DEST (cached).
maven_fetch() {
  local coords="$1" dest="$2"
  IFS=: read -r group artifact version packaging classifier <<<"$coords"
  packaging="${packaging:-jar}"
  local file="$artifact-$version${classifier:+-$classifier}.$packaging"
  local url="${MAVEN_CENTRAL:-https://repo1.maven.org/maven2}/${group//.//}/$artifact/$version/$file"
  if [ ! -s "$dest/$file" ]; then
    mkdir -p "$dest"
    log "downloading $url"
    curl -fsSL --retry 3 -o "$dest/$file.part" "$url" && mv "$dest/$file.part" "$dest/$file"
  fi
  echo "$dest/$file"
}

# maven_copy_deps POM LIB WORKDIR JDK WHAT: the runtime jars of POM's dependencies, copied
# into LIB by Maven (its local repository under WORKDIR/m2) and kept until the pom changes
# (a hash stamp in LIB). WHAT names the jars in messages.
maven_copy_deps() {
  local pom="$1" lib="$2" dir="$3" jdk="$4" what="$5" pom_hash
  pom_hash="$(sha256sum "$pom" | cut -c1-16)"
  if [ "$(cat "$lib/.stamp" 2>/dev/null)" = "$pom_hash" ]; then
    return 0
  fi
  command -v mvn >/dev/null || die "mvn not found (needed once to fetch the $what jars)"
  log "resolving $what jars from Maven Central into $lib"
  rm -rf "$lib.tmp"
  if ! JAVA_HOME="$jdk" mvn -q -B -Dstyle.color=never -f "$pom" \
    -Dmaven.repo.local="$dir/m2" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$lib.tmp" \
    >"$dir/mvn.log" 2>&1; then
    tail -n 40 "$dir/mvn.log" >&2
    die "mvn dependency:copy-dependencies failed (log: $dir/mvn.log)"
  fi
  rm -rf "$lib"
  mv "$lib.tmp" "$lib"
  chmod -R a+rX "$lib"
  echo "$pom_hash" >"$lib/.stamp"
}

# unpack_zip ZIP DEST: Python's zipfile (no unzip on a fresh machine), keeping the
# archive's permission bits so bin/ stays executable.
unpack_zip() {
  python3 - "$1" "$2" <<'PY'
import os, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as archive:
    for info in archive.infolist():
        path = archive.extract(info, sys.argv[2])
        mode = (info.external_attr >> 16) & 0o777
        if mode:
            os.chmod(path, mode)
PY
}

# jdk_home [PREFERRED] -> PREFERRED if set, else the JDK of the java on PATH.
jdk_home() {
  if [ -n "${1:-}" ]; then
    echo "$1"
  else
    dirname "$(dirname "$(readlink -f "$(command -v java)")")"
  fi
}

# reserve_ports PORT...: as root, adds the ports to net.ipv4.ip_local_reserved_ports so the
# kernel never hands them out as ephemeral source ports (our ports lie inside the default
# range 32768-60999, and a kernel may keep TIME-WAIT sockets for minutes). Best effort.
reserve_ports() {
  local file=/proc/sys/net/ipv4/ip_local_reserved_ports current
  [ "$(id -u)" -eq 0 ] && [ -w "$file" ] || return 0
  (
    flock -w 10 8 || exit 0
    current="$(cat "$file")"
    printf '%s\n' "${current:+$current,}$(IFS=,; echo "$*")" >"$file" 2>/dev/null || true
  ) 8>"$SERVICES_HOME/.reserved-ports.lock"
}

# launch_detached PIDFILE LOGFILE CMD...: starts CMD in the background in its own session
# (it must outlive this script's process group), as the service user when root, with its
# output in LOGFILE. The shell writes its own pid and then execs CMD, so the pidfile names
# the server process itself; 9>&- keeps a caller's start lock out of the server.
launch_detached() {
  local pidfile="$1" logfile="$2"
  shift 2
  : >"$logfile"
  own_by_service_user "$logfile"
  rm -f "$pidfile"
  export SERVICE_USER
  setsid bash -c '
    pidfile="$1"; log="$2"; shift 2
    if [ "$(id -u)" -eq 0 ]; then
      touch "$pidfile"; chown "$SERVICE_USER" "$pidfile"
      exec runuser -u "$SERVICE_USER" -- bash -c "echo \$\$ >\"$pidfile\"; exec \"\$@\"" _ "$@" >"$log" 2>&1
    fi
    echo $$ >"$pidfile"
    exec "$@" >"$log" 2>&1
  ' _ "$pidfile" "$logfile" "$@" </dev/null 9>&- &
}
