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
# KAFKA_HEAP (1g: a broker the test suites share holds thousands of partitions), KAFKA_START_TIMEOUT seconds (90).
# KAFKA_SASL_SSL_PORT adds a SASL_SSL listener (SCRAM-SHA-512, TLS) on that port, beside
# the plaintext one: a CA and a broker certificate (localhost, 127.0.0.1) are made with
# openssl into $KAFKA_DATA_DIR/tls (ca.pem is what clients trust), and the user
# KAFKA_SASL_USER (norce-sync) with password KAFKA_SASL_PASSWORD (generated when unset,
# kept in $KAFKA_DATA_DIR/tls/sasl-password) is created when the storage is formatted.
# KAFKA_SSL_PORT adds an SSL listener that requires a client certificate (mTLS, as Aiven
# and MSK offer); a client certificate signed by the same CA is made into
# $KAFKA_DATA_DIR/tls/client.pem and client.key.
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
sasl_port=${KAFKA_SASL_SSL_PORT:-}
ssl_port=${KAFKA_SSL_PORT:-}
tls=$data/tls
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

java_args=(-Xms"${KAFKA_HEAP:-1g}" -Xmx"${KAFKA_HEAP:-1g}" -XX:+UseG1GC
  -Dlog4j2.configurationFile="$here/log4j2.properties" -Dkafka.logs.dir="$data"
  -cp "$libs/*")
run_java() { java "${java_args[@]}" "$@"; }

# A CA and a broker certificate signed by it (SAN localhost and 127.0.0.1), the broker's
# PKCS12 keystore, and the SASL password: once per data dir (parallel brokers never share).
make_tls() {
  [ -f "$tls/broker.p12" ] && return 0
  mkdir -p "$tls" && chmod 700 "$tls"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=norce-sync lab CA" \
    -keyout "$tls/ca.key" -out "$tls/ca.pem" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
    -keyout "$tls/broker.key" -out "$tls/broker.csr" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$tls/san.ext"
  openssl x509 -req -in "$tls/broker.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" \
    -CAcreateserial -days 3650 -extfile "$tls/san.ext" -out "$tls/broker.pem" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=norce-sync client" \
    -keyout "$tls/client.key" -out "$tls/client.csr" 2>/dev/null
  openssl x509 -req -in "$tls/client.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" \
    -CAcreateserial -days 3650 -out "$tls/client.pem" 2>/dev/null
  openssl rand -hex 16 >"$tls/keystore-password"
  openssl pkcs12 -export -in "$tls/broker.pem" -inkey "$tls/broker.key" -name broker \
    -passout "file:$tls/keystore-password" -out "$tls/broker.p12"
  if [ -n "${KAFKA_SASL_PASSWORD:-}" ]; then
    printf '%s' "$KAFKA_SASL_PASSWORD" >"$tls/sasl-password"
  else
    openssl rand -hex 16 | tr -d '\n' >"$tls/sasl-password"
  fi
  chmod 600 "$tls"/*
}

write_config() {
  local listeners="PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port"
  local advertised="PLAINTEXT://127.0.0.1:$port"
  local protocols="PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
  if [ -n "$sasl_port" ]; then
    listeners="$listeners,SASL_SSL://127.0.0.1:$sasl_port"
    advertised="$advertised,SASL_SSL://localhost:$sasl_port"
    protocols="$protocols,SASL_SSL:SASL_SSL"
  fi
  if [ -n "$ssl_port" ]; then
    listeners="$listeners,SSL://127.0.0.1:$ssl_port"
    advertised="$advertised,SSL://localhost:$ssl_port"
    protocols="$protocols,SSL:SSL"
  fi
  cat >"$data/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
listeners=$listeners
advertised.listeners=$advertised
controller.listener.names=CONTROLLER
listener.security.protocol.map=$protocols
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
  if [ -n "$sasl_port$ssl_port" ]; then
    cat >>"$data/server.properties" <<PROPS
ssl.keystore.type=PKCS12
ssl.keystore.location=$tls/broker.p12
ssl.keystore.password=$(cat "$tls/keystore-password")
PROPS
  fi
  if [ -n "$sasl_port" ]; then
    cat >>"$data/server.properties" <<PROPS
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
PROPS
  fi
  if [ -n "$ssl_port" ]; then
    cat >>"$data/server.properties" <<PROPS
listener.name.ssl.ssl.client.auth=required
listener.name.ssl.ssl.truststore.type=PEM
listener.name.ssl.ssl.truststore.location=$tls/ca.pem
PROPS
  fi
}

up() {
  service_parse_up_args "$@"
  fetch
  mkdir -p "$data"
  if service_already_up "127.0.0.1:$port"; then return 0; fi
  local scram=()
  if [ -n "$sasl_port$ssl_port" ]; then make_tls; fi
  if [ -n "$sasl_port" ]; then
    scram=(--add-scram "SCRAM-SHA-512=[name=${KAFKA_SASL_USER:-norce-sync},password=$(cat "$tls/sasl-password")]")
  fi
  write_config
  if [ ! -f "$data/logs/meta.properties" ]; then
    run_java kafka.tools.StorageTool format \
      -t "$(run_java kafka.tools.StorageTool random-uuid)" "${scram[@]}" \
      -c "$data/server.properties" >"$data/format.log" 2>&1 \
      || { cat "$data/format.log" >&2; exit 1; }
  fi
  local started=$SECONDS
  service_start "$data/stdout.log" "$here/kafka.sh" java "${java_args[@]}" kafka.Kafka "$data/server.properties"
  service_wait_ready broker "${KAFKA_START_TIMEOUT:-90}" 0.3 "$data/server.log"
  log "Kafka $version ready on 127.0.0.1:$port in $((SECONDS - started))s (pid $(cat "$pidfile"), data $data)"
  if [ -n "$sasl_port" ]; then
    log "SASL_SSL (SCRAM-SHA-512) on localhost:$sasl_port: user ${KAFKA_SASL_USER:-norce-sync}, password in $tls/sasl-password, CA $tls/ca.pem"
  fi
  if [ -n "$ssl_port" ]; then
    log "SSL with client certificates on localhost:$ssl_port: $tls/client.pem, $tls/client.key, CA $tls/ca.pem"
  fi
}

down() { service_stop broker; }

case ${1:-} in
  fetch) fetch ;;
  up) shift; up "$@" ;;
  down) down ;;
  status) ready ;;
  *) sed -n '2,23p' "$0"; exit 2 ;;
esac
