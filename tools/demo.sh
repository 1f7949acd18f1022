#!/usr/bin/env bash
# make demo: the local broker (started by make), the Norce simulator, a worker, and sample
# ERP/PIM change data in Debezium form. Within a minute it shows delta jobs, a full import
# and their statuses, then keeps running until Ctrl-C (which stops what it started).
#
# tools/demo.sh --check (make demo-check, and tests/e2e/test_demo_check.py): the same story
# unattended, on a broker of its own (free ports, empty data directory) and free ports for
# the simulator and the worker; tools/demo_check.py then verifies what the demo promises and
# exits non-zero naming the first condition not met. It stops everything it started on
# success, failure or Ctrl-C. DEMO_CHECK_TIMEOUT: seconds allowed per wait (default 180:
# several times what a loaded 2-core machine needs, yet below the ~5 minutes (Kafka's
# metadata refresh) after which a worker that missed its job-events topic at start was
# seen to recover by itself; that miss is what the check exists to catch).
set -euo pipefail
cd "$(dirname "$0")/.."
check=0
case ${1:-} in
  --check) check=1 ;;
  "") ;;
  *) echo "usage: tools/demo.sh [--check]" >&2; exit 2 ;;
esac
PY=${DEMO_PYTHON:-.venv/bin/python}

if [ $check = 1 ]; then
  # Nothing from the caller's environment: the check must mean the same everywhere.
  for name in $(compgen -e | grep -E '^(NORCE_SYNC_|NORCE_SIM_)' || true); do unset "$name"; done
  wait_s=${DEMO_CHECK_TIMEOUT:-180}
  work=$(mktemp -d "${TMPDIR:-/tmp}/norce-sync-demo-check.XXXXXX")
  # Four distinct free ports, held together while chosen.
  read -r KAFKA_PORT KAFKA_CONTROLLER_PORT SIM_PORT WEB_PORT < <($PY -c '
import socket
socks = [socket.socket() for _ in range(4)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))')
  export KAFKA_PORT KAFKA_CONTROLLER_PORT KAFKA_DATA_DIR=$work/kafka
  export KAFKA_START_TIMEOUT=$wait_s
  export NORCE_SYNC_BROKER=kafka://127.0.0.1:$KAFKA_PORT
  export NORCE_SYNC_DATA_DIR=$work/data
  logs=$work
else
  wait_s=90
  SIM_PORT=${SIM_PORT:-8300}
  WEB_PORT=${NORCE_SYNC_WEB_PORT:-6066}
  export NORCE_SYNC_BROKER=${NORCE_SYNC_BROKER:-kafka://127.0.0.1:${KAFKA_PORT:-9092}}
  export NORCE_SYNC_DATA_DIR=${NORCE_SYNC_DATA_DIR:-data/demo}
  logs=$NORCE_SYNC_DATA_DIR
fi
export NORCE_SYNC_NORCE_BASE_URL=${NORCE_SYNC_NORCE_BASE_URL:-http://127.0.0.1:$SIM_PORT}
export NORCE_SYNC_WEB_PORT=$WEB_PORT
export NORCE_SYNC_APP_ID=${NORCE_SYNC_APP_ID:-norce-sync-demo}
# The demo's secrets, set here rather than left to defaults; the simulator is given the same.
export NORCE_SYNC_NORCE_CLIENT_SECRET=${NORCE_SYNC_NORCE_CLIENT_SECRET:-demo-secret}
export NORCE_SIM_CLIENT_SECRET=$NORCE_SYNC_NORCE_CLIENT_SECRET
export NORCE_SYNC_ERP_CLIENT_SECRET=${NORCE_SYNC_ERP_CLIENT_SECRET:-erp-demo-secret}
export NORCE_SYNC_PIM_CLIENT_SECRET=${NORCE_SYNC_PIM_CLIENT_SECRET:-pim-demo-secret}
export NORCE_SYNC_WEBHOOK_TOKEN=${NORCE_SYNC_WEBHOOK_TOKEN:-demo-webhook-token}
mkdir -p "$NORCE_SYNC_DATA_DIR"

pids=()
broker_started=0
stop_pid() {  # SIGTERM, then SIGKILL when it has not ended within 30 s
  kill "$1" 2>/dev/null || return 0
  for _ in $(seq 1 60); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.5; done
  kill -KILL "$1" 2>/dev/null || true
}
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do stop_pid "$pid"; done
  wait 2>/dev/null || true
  if [ $check = 0 ]; then
    echo "demo stopped (the broker keeps running: make kafka-down)"
    exit "$status"
  fi
  [ $broker_started = 1 ] && tools/kafka/kafka.sh down || true
  if [ "$status" = 0 ] || [ "$status" -gt 128 ]; then
    [ "$status" = 0 ] || echo "demo check interrupted" >&2
    rm -rf "$work"
  else
    echo "demo check failed (exit $status); the worker's last warnings and errors:" >&2
    grep -E ' (WARNING|ERROR|CRITICAL) ' "$work/worker.log" | tail -n 15 >&2 || true
    # Keep the logs for a look, not the broker's or the worker's data.
    rm -rf "$work/kafka/logs" "$work/data"
    echo "logs kept in $work" >&2
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

wait_for() {  # url, what, pid: until the url answers, the process ends, or wait_s passes
  local started=$SECONDS
  until curl -sf --max-time 5 "$1" >/dev/null; do
    if ! kill -0 "$3" 2>/dev/null; then
      echo "$2 exited during start; see $logs/*.log" >&2; exit 1
    fi
    if [ $((SECONDS - started)) -ge "$wait_s" ]; then
      echo "$2 did not come up within ${wait_s}s; see $logs/*.log" >&2; exit 1
    fi
    sleep 1
  done
}

if [ $check = 1 ]; then
  echo "== broker on 127.0.0.1:$KAFKA_PORT, empty data directory $KAFKA_DATA_DIR =="
  broker_started=1
  # --watch-pid: the broker also stops if this script is killed outright.
  tools/kafka/kafka.sh up --watch-pid $$
fi

$PY -m norce_simulator --port "$SIM_PORT" --lead-time 2 --webhook-time-factor 0.2 \
  >"$logs/simulator.log" 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$SIM_PORT/_sim/stats" "the simulator" $!
# Norce Event's subscriptions point at this worker's webhook intake, with its token.
hooks=""
for type in SkuChangedNotification SkuPriceChangedNotification SkuOnHandBreakPointNotification \
  CustomerChangedNotification JobCompletedEvent; do
  hooks+="\"$type\": {\"url\": \"http://127.0.0.1:$WEB_PORT/norce/events/$type\","
  hooks+=" \"headers\": {\"x-norce-webhook-token\": \"$NORCE_SYNC_WEBHOOK_TOKEN\"}},"
done
curl -sf -X PUT "http://127.0.0.1:$SIM_PORT/_sim/subscriptions" \
  -H 'content-type: application/json' -d "{${hooks%,}}" >/dev/null

$PY -m norce_sync worker -l info >"$logs/worker.log" 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$WEB_PORT/ready" "the worker" $!
echo "worker ready: dashboard http://127.0.0.1:$WEB_PORT/"

echo "== sample change data (Debezium, Postgres) =="
$PY -m tools.demo_data --bootstrap "${NORCE_SYNC_BROKER#kafka://}" --skus 200 --updates 400 --rate 40

if [ $check = 1 ]; then
  $PY -m tools.demo_check --sim-url "http://127.0.0.1:$SIM_PORT" \
    --worker-url "http://127.0.0.1:$WEB_PORT" --timeout "$wait_s"
  exit 0
fi

echo "== waiting for the first delta imports (scheduled every 30 s) =="
for _ in $(seq 1 60); do
  n=$($PY -m norce_sync jobs --json 2>/dev/null | $PY -c 'import json,sys; print(len(json.load(sys.stdin)["jobs"]))' 2>/dev/null || echo 0)
  [ "${n:-0}" -ge 3 ] && break
  sleep 1
done

echo "== a full import of ERP prices, on demand =="
$PY -m norce_sync full-import --source erp --kind price || true

echo "== jobs =="
$PY -m norce_sync jobs --limit 15

echo "== one item, from its source change to Norce =="
$PY -m norce_sync item --source erp --kind price --worker "http://127.0.0.1:$WEB_PORT" 'SKU-00001|STD|1' || true
cat <<EOF2

Where to look next:
  dashboard            http://127.0.0.1:$WEB_PORT/
  jobs, backlog, DLQ   http://127.0.0.1:$WEB_PORT/jobs/  /pending/  /dlq/  /metrics
  Norce (simulated)    http://127.0.0.1:$SIM_PORT/_sim/stats  and  /_sim/items/price
  target topics        out.search.sku, out.marketplace.sku (enriched from Query)
  command line         .venv/bin/norce-sync jobs | dlq list | full-import --help | item --help
  trace an item        .venv/bin/norce-sync item --source erp --kind price 'SKU-00002|STD|1' 
  logs                 $logs/worker.log, $logs/simulator.log
Deltas keep running every 30 s; press Ctrl-C to stop.
EOF2
wait
