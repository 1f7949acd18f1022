#!/usr/bin/env bash
# A local Apicurio Registry (in-memory storage; the Confluent-compatible schema registry
# API under /apis/ccompat/v7), built from Maven Central. The tests start it themselves.
#
#   tools/registry/registry.sh fetch               build the runnable jar once into .cache/registry/<version>
#   tools/registry/registry.sh up [--watch-pid P]  fetch if needed, start, wait until it answers
#   tools/registry/registry.sh down                stop the registry started on REGISTRY_PORT
#   tools/registry/registry.sh status              exit 0 when the registry answers
#
# Settings (environment): REGISTRY_PORT (8081), REGISTRY_HEAP (384m),
# REGISTRY_START_TIMEOUT seconds (180), REGISTRY_CACHE_DIR (.cache/registry).
# --watch-pid P stops the registry as soon as process P ends (tests pass their own pid).
# The ccompat base URL is http://127.0.0.1:<port>/apis/ccompat/v7.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
version=$(sed -n 's:.*<apicurio.version>\(.*\)</apicurio.version>.*:\1:p' "$here/pom.xml")
port=${REGISTRY_PORT:-8081}
cache=${REGISTRY_CACHE_DIR:-$root/.cache/registry}
build=$cache/$version/build
jar=$build/target/local-registry-1-runner.jar
run=$cache/run-$port
pidfile=$run/registry.pid
python=${PYTHON:-python3}

log() { echo "[registry] $*" >&2; }

fetch() {
  # Rebuilt when the pom or the properties change (the stamp holds their checksum).
  local stamp
  stamp=$(cat "$here/pom.xml" "$here/application.properties" | cksum | cut -d' ' -f1)
  if [ -f "$jar" ] && [ "$(cat "$build/.complete" 2>/dev/null)" = "$stamp" ]; then return 0; fi
  log "building Apicurio Registry $version from Maven Central into $build"
  local started=$SECONDS
  rm -rf "$build"
  mkdir -p "$build/src/main/resources"
  cp "$here/pom.xml" "$build/pom.xml"
  cp "$here/application.properties" "$build/src/main/resources/application.properties"
  mvn -q -B -f "$build/pom.xml" package -DskipTests >"$cache/build.log" 2>&1 \
    || { tail -n 40 "$cache/build.log" >&2; exit 1; }
  echo "$stamp" >"$build/.complete"
  log "registry jar ready in $((SECONDS - started))s"
}

is_running() {
  [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

ready() {
  "$python" - "$port" <<'PY'
import sys, urllib.request
try:
    with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/apis/ccompat/v7/subjects", timeout=2) as r:
        sys.exit(0 if r.status == 200 else 1)
except Exception:
    sys.exit(1)
PY
}

up() {
  local watch_pid=""
  while [ $# -gt 0 ]; do
    case $1 in
      --watch-pid) watch_pid=$2; shift 2 ;;
      *) log "unknown option $1"; exit 2 ;;
    esac
  done
  fetch
  mkdir -p "$run"
  if is_running; then
    log "already running (pid $(cat "$pidfile")) on 127.0.0.1:$port"
    return 0
  fi
  if ready; then
    log "something else already answers on 127.0.0.1:$port"; exit 1
  fi
  local started=$SECONDS
  # setsid: its own session, so Ctrl-C in the calling shell does not reach it.
  setsid java -Xms"${REGISTRY_HEAP:-384m}" -Xmx"${REGISTRY_HEAP:-384m}" -XX:+UseSerialGC \
    -Dquarkus.http.port="$port" -jar "$jar" >"$run/registry.log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  if [ -n "$watch_pid" ]; then
    ( while kill -0 "$watch_pid" 2>/dev/null && is_running; do sleep 1; done
      is_running && "$here/registry.sh" down ) >/dev/null 2>&1 </dev/null &
    disown
  fi
  local limit=${REGISTRY_START_TIMEOUT:-180}
  until ready; do
    if ! is_running; then
      log "registry exited during start; last lines of $run/registry.log:"
      tail -n 30 "$run/registry.log" >&2 || true
      exit 1
    fi
    if [ $((SECONDS - started)) -ge "$limit" ]; then
      log "registry did not answer within ${limit}s"; down; exit 1
    fi
    sleep 0.5
  done
  log "Apicurio Registry $version ready on http://127.0.0.1:$port/apis/ccompat/v7 in $((SECONDS - started))s (pid $(cat "$pidfile"))"
}

down() {
  if ! is_running; then
    rm -f "$pidfile"; log "not running"; return 0
  fi
  local pid
  pid=$(cat "$pidfile")
  kill -TERM "$pid"
  for _ in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$pidfile"; log "stopped"; return 0; }
    sleep 0.5
  done
  log "registry did not stop in 30s; killing it"
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$pidfile"
}

case ${1:-} in
  fetch) fetch ;;
  up) shift; up "$@" ;;
  down) down ;;
  status) ready ;;
  *) sed -n '2,13p' "$0"; exit 2 ;;
esac
