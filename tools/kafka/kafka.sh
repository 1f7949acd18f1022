#!/usr/bin/env bash
# A local single-node Apache Kafka (KRaft, combined broker+controller) from Maven Central.
#
#   tools/kafka/kafka.sh fetch               resolve the jars once into .cache/kafka/<version>/libs
#   tools/kafka/kafka.sh up [--watch-pid P]  fetch if needed, format storage, start, wait until ready
#   tools/kafka/kafka.sh down                stop the broker started from this checkout
#   tools/kafka/kafka.sh status              exit 0 when the broker answers a metadata request
#
# Settings (environment): KAFKA_VERSION (default from pom.xml), KAFKA_PORT (9092),
# KAFKA_CONTROLLER_PORT (KAFKA_PORT+1), KAFKA_DATA_DIR (.cache/kafka/data-<port>),
# KAFKA_HEAP (512m), KAFKA_START_TIMEOUT seconds (90).
# --watch-pid P stops the broker as soon as process P ends (tests pass their own pid so a
# killed test run never leaves a broker behind). Without it the broker runs until `down`.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
default_version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/pom.xml")
version=${KAFKA_VERSION:-$default_version}
port=${KAFKA_PORT:-9092}
controller_port=${KAFKA_CONTROLLER_PORT:-$((port + 1))}
cache=${KAFKA_CACHE_DIR:-$root/.cache/kafka}
libs=$cache/$version/libs
data=${KAFKA_DATA_DIR:-$cache/data-$port}
pidfile=$data/broker.pid
python=${PYTHON:-python3}

log() { echo "[kafka] $*" >&2; }
# shellcheck source=../lib/service.sh
. "$here/../lib/service.sh"

fetch() {
  if [ -f "$libs/.complete" ]; then return 0; fi
  log "resolving org.apache.kafka:kafka_2.13:$version from Maven Central into $libs"
  local started=$SECONDS
  mkdir -p "$libs"
  mvn -q -B -f "$here/pom.xml" -Dkafka.version="$version" \
    dependency:copy-dependencies -DoutputDirectory="$libs" -DincludeScope=runtime >&2
  touch "$libs/.complete"
  log "jars ready in $((SECONDS - started))s"
}

ready() { "$python" "$here/probe.py" 127.0.0.1 "$port"; }

java_args=(-Xms"${KAFKA_HEAP:-512m}" -Xmx"${KAFKA_HEAP:-512m}" -XX:+UseG1GC
  -Dlog4j2.configurationFile="$here/log4j2.properties" -Dkafka.logs.dir="$data"
  -cp "$libs/*")
run_java() { java "${java_args[@]}" "$@"; }

write_config() {
  cat >"$data/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$data/logs
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
log.cleaner.backoff.ms=1000
PROPS
}

up() {
  service_parse_up_args "$@"
  fetch
  mkdir -p "$data"
  if service_already_up "127.0.0.1:$port"; then return 0; fi
  write_config
  if [ ! -f "$data/logs/meta.properties" ]; then
    run_java kafka.tools.StorageTool format \
      -t "$(run_java kafka.tools.StorageTool random-uuid)" \
      -c "$data/server.properties" >"$data/format.log" 2>&1 \
      || { cat "$data/format.log" >&2; exit 1; }
  fi
  local started=$SECONDS
  service_start "$data/stdout.log" "$here/kafka.sh" java "${java_args[@]}" kafka.Kafka "$data/server.properties"
  service_wait_ready broker "${KAFKA_START_TIMEOUT:-90}" 0.3 "$data/server.log"
  log "Kafka $version ready on 127.0.0.1:$port in $((SECONDS - started))s (pid $(cat "$pidfile"), data $data)"
}

down() { service_stop broker; }

case ${1:-} in
  fetch) fetch ;;
  up) shift; up "$@" ;;
  down) down ;;
  status) ready ;;
  *) sed -n '2,15p' "$0"; exit 2 ;;
esac
