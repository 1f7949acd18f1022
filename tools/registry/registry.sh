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
# shellcheck source=../lib/service.sh
. "$here/../lib/service.sh"

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
  service_parse_up_args "$@"
  fetch
  mkdir -p "$run"
  if service_already_up "127.0.0.1:$port"; then return 0; fi
  local started=$SECONDS
  service_start "$run/registry.log" "$here/registry.sh" \
    java -Xms"${REGISTRY_HEAP:-384m}" -Xmx"${REGISTRY_HEAP:-384m}" -XX:+UseSerialGC \
    -Dquarkus.http.port="$port" -jar "$jar"
  service_wait_ready registry "${REGISTRY_START_TIMEOUT:-180}" 0.5 "$run/registry.log"
  log "Apicurio Registry $version ready on http://127.0.0.1:$port/apis/ccompat/v7 in $((SECONDS - started))s (pid $(cat "$pidfile"))"
}

down() { service_stop registry; }

case ${1:-} in
  fetch) fetch ;;
  up) shift; up "$@" ;;
  down) down ;;
  status) ready ;;
  *) sed -n '2,13p' "$0"; exit 2 ;;
esac
