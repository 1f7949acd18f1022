#!/usr/bin/env bash
# make demo: the local broker (started by make), the Norce simulator, a worker, and sample
# ERP/PIM change data in Debezium form. Within a minute it shows delta jobs, a full import
# and their statuses, then keeps running until Ctrl-C (which stops what it started).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
SIM_PORT=${SIM_PORT:-8300}
WEB_PORT=${NORCE_SYNC_WEB_PORT:-6066}
export NORCE_SYNC_BROKER=${NORCE_SYNC_BROKER:-kafka://127.0.0.1:${KAFKA_PORT:-9092}}
export NORCE_SYNC_NORCE_BASE_URL=${NORCE_SYNC_NORCE_BASE_URL:-http://127.0.0.1:$SIM_PORT}
export NORCE_SYNC_WEB_PORT=$WEB_PORT
export NORCE_SYNC_APP_ID=${NORCE_SYNC_APP_ID:-norce-sync-demo}
export NORCE_SYNC_DATA_DIR=${NORCE_SYNC_DATA_DIR:-data/demo}
# The demo's secrets, set explicitly (the worker has no default secrets); the simulator
# accepts the same ones. Demo values only work against a loopback Norce base URL.
export NORCE_SYNC_ERP_CLIENT_SECRET=${NORCE_SYNC_ERP_CLIENT_SECRET:-erp-demo-secret}
export NORCE_SYNC_PIM_CLIENT_SECRET=${NORCE_SYNC_PIM_CLIENT_SECRET:-pim-demo-secret}
export NORCE_SYNC_NORCE_CLIENT_SECRET=${NORCE_SYNC_NORCE_CLIENT_SECRET:-demo-secret}
export NORCE_SIM_CLIENT_SECRET=$NORCE_SYNC_NORCE_CLIENT_SECRET
export NORCE_SYNC_WEBHOOK_TOKEN=${NORCE_SYNC_WEBHOOK_TOKEN:-demo-webhook-token}
WEBHOOK_TOKEN=$NORCE_SYNC_WEBHOOK_TOKEN
mkdir -p "$NORCE_SYNC_DATA_DIR"
logs=$NORCE_SYNC_DATA_DIR

pids=()
cleanup() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "demo stopped (the broker keeps running: make kafka-down)"
}
trap cleanup EXIT INT TERM

wait_for() {  # url, what
  for _ in $(seq 1 90); do curl -sf "$1" >/dev/null && return 0; sleep 1; done
  echo "$2 did not come up; see $logs/*.log" >&2; exit 1
}

$PY -m streams simulator --port "$SIM_PORT" --lead-time 2 --webhook-time-factor 0.2 \
  >"$logs/simulator.log" 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$SIM_PORT/_sim/stats" "the simulator"
# Norce Event's subscriptions point at this worker's webhook intake, with its token.
hooks=""
for type in SkuChangedNotification SkuPriceChangedNotification SkuOnHandBreakPointNotification \
  CustomerChangedNotification JobCompletedEvent; do
  hooks+="\"$type\": {\"url\": \"http://127.0.0.1:$WEB_PORT/norce/events/$type\","
  hooks+=" \"headers\": {\"x-norce-webhook-token\": \"$WEBHOOK_TOKEN\"}},"
done
curl -sf -X PUT "http://127.0.0.1:$SIM_PORT/_sim/subscriptions" \
  -H 'content-type: application/json' -d "{${hooks%,}}" >/dev/null

$PY -m streams worker -l info >"$logs/worker.log" 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$WEB_PORT/ready" "the worker"
echo "worker ready: dashboard http://127.0.0.1:$WEB_PORT/"

echo "== sample change data (Debezium, Postgres) =="
$PY -m tools.demo_data --bootstrap "${NORCE_SYNC_BROKER#kafka://}" --skus 200 --updates 400 --rate 40

echo "== waiting for the first delta imports (scheduled every 30 s) =="
for _ in $(seq 1 60); do
  n=$($PY -m streams jobs --json 2>/dev/null | $PY -c 'import json,sys; print(len(json.load(sys.stdin)["jobs"]))' 2>/dev/null || echo 0)
  [ "${n:-0}" -ge 3 ] && break
  sleep 1
done

echo "== a full import of ERP prices, on demand =="
$PY -m streams full-import --source erp --kind price || true

echo "== jobs =="
$PY -m streams jobs --limit 15
cat <<EOF2

Where to look next:
  dashboard            http://127.0.0.1:$WEB_PORT/
  jobs, backlog, DLQ   http://127.0.0.1:$WEB_PORT/jobs/  /pending/  /dlq/  /metrics
  Norce (simulated)    http://127.0.0.1:$SIM_PORT/_sim/stats  and  /_sim/items/price
  target topics        out.search.sku, out.marketplace.sku (enriched from Query)
  command line         .venv/bin/norce-sync jobs | dlq list | full-import --help
  logs                 $logs/worker.log, $logs/simulator.log
Deltas keep running every 30 s; press Ctrl-C to stop.
EOF2
wait
