#!/usr/bin/env bash
# make demo: the local broker (started by make), the Norce simulator, a worker, and the
# sample ERP/PIM change-data generator. Ctrl-C stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
export NORCE_SYNC_BROKER=${NORCE_SYNC_BROKER:-kafka://127.0.0.1:${KAFKA_PORT:-9092}}
export NORCE_SYNC_NORCE_BASE_URL=${NORCE_SYNC_NORCE_BASE_URL:-http://127.0.0.1:8300}
export NORCE_SYNC_WEB_PORT=${NORCE_SYNC_WEB_PORT:-6066}
mkdir -p data/demo
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "demo stopped (the broker keeps running: make kafka-down)"
}
trap cleanup EXIT INT TERM

$PY -m norce.simulator --port 8300 >data/demo/simulator.log 2>&1 &
pids+=($!)
$PY -m streams worker -l info >data/demo/worker.log 2>&1 &
pids+=($!)
echo "worker log: data/demo/worker.log, simulator log: data/demo/simulator.log"
until curl -sf "http://127.0.0.1:$NORCE_SYNC_WEB_PORT/ready" >/dev/null; do sleep 1; done
echo "worker ready on http://127.0.0.1:$NORCE_SYNC_WEB_PORT/"
if $PY -c "import tools.demo_data" 2>/dev/null; then
  $PY -m tools.demo_data
fi
wait
