# Start, watch and stop one local JVM service by its pid file; sourced by
# tools/kafka/kafka.sh and tools/registry/registry.sh. The caller sets $pidfile and
# defines log (a prefixed line to stderr) and ready (exit 0 when the service answers).

service_is_running() {
  [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

# service_parse_up_args "$@": sets WATCH_PID from --watch-pid P (or empty).
service_parse_up_args() {
  WATCH_PID=""
  while [ $# -gt 0 ]; do
    case $1 in
      --watch-pid) WATCH_PID=$2; shift 2 ;;
      *) log "unknown option $1"; exit 2 ;;
    esac
  done
}

# service_already_up ADDRESS: returns 0 when our process already runs; exits when
# something else answers at ADDRESS (it would be taken for ours).
service_already_up() {
  if service_is_running; then
    log "already running (pid $(cat "$pidfile")) on $1"
    return 0
  fi
  if ready; then
    log "something else already answers on $1"; exit 1
  fi
  return 1
}

# service_start STDOUT SCRIPT CMD...: runs CMD in its own session (setsid: Ctrl-C in the
# calling shell does not reach it) and records its pid. With WATCH_PID set, a watcher
# runs `SCRIPT down` once that process is gone, so a killed test run leaves nothing behind.
service_start() {
  local stdout=$1 script=$2
  shift 2
  setsid "$@" >"$stdout" 2>&1 </dev/null &
  echo $! >"$pidfile"
  if [ -n "${WATCH_PID:-}" ]; then
    ( while kill -0 "$WATCH_PID" 2>/dev/null && service_is_running; do sleep 1; done
      service_is_running && "$script" down ) >/dev/null 2>&1 </dev/null &
    disown
  fi
}

# service_wait_ready NAME LIMIT_S INTERVAL_S LOGFILE: waits until `ready`; fails with the
# log's last lines when the process exits, and stops it after LIMIT_S.
service_wait_ready() {
  local name=$1 limit=$2 interval=$3 logfile=$4 started=$SECONDS
  until ready; do
    if ! service_is_running; then
      log "$name exited during start; last lines of $logfile:"
      tail -n 30 "$logfile" >&2 || true
      exit 1
    fi
    if [ $((SECONDS - started)) -ge "$limit" ]; then
      log "$name did not answer within ${limit}s"; service_stop "$name"; exit 1
    fi
    sleep "$interval"
  done
}

# service_stop NAME: SIGTERM, then SIGKILL after 30 s.
service_stop() {
  local name=$1 pid
  if ! service_is_running; then
    rm -f "$pidfile"; log "not running"; return 0
  fi
  pid=$(cat "$pidfile")
  kill -TERM "$pid"
  for _ in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$pidfile"; log "stopped"; return 0; }
    sleep 0.5
  done
  log "$name did not stop in 30s; killing it"
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$pidfile"
}
