#!/usr/bin/env bash
# Redis for the Channels layer / Celery: Debian's redis-server, our own
# instance on 127.0.0.1 unless something already answers PING there.
# Usage: ops/redis.sh up|down|status|install
set -euo pipefail
SVC=redis
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PORT="${MQB_REDIS_PORT:-6379}"
# Redis carries Celery's queues and the Channels layer: it gets a memory ceiling,
# and at the ceiling it refuses writes (noeviction) rather than evicting their keys.
MAXMEMORY="${MQB_REDIS_MAXMEMORY:-1gb}"
LOG="$LOG_DIR/redis.log"
PIDFILE="$RUN_DIR/redis.pid"
DATA="$DATA_DIR/redis"

install() {
  if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
    apt_install redis-server
  fi
}

ready() {
  [[ $(redis-cli -h "$MQB_HOST" -p "$PORT" ping 2>/dev/null) == PONG ]]
}

our_pid() {
  live_pid "$PIDFILE" 'redis-server'
}

ready_line() {
  local how=$1
  info "ready on $MQB_HOST:$PORT [$how]"
}

config_get() {
  redis-cli -h "$MQB_HOST" -p "$PORT" config get "$1" 2>/dev/null | sed -n 2p
}

# Our own server (started earlier, perhaps before these settings): set them live.
# Someone else's: leave it alone, but say what is unsafe about it.
apply_memory_limits() {
  local ours=$1
  if [[ $ours == yes ]]; then
    redis-cli -h "$MQB_HOST" -p "$PORT" config set maxmemory "$MAXMEMORY" >/dev/null &&
      redis-cli -h "$MQB_HOST" -p "$PORT" config set maxmemory-policy noeviction >/dev/null ||
      die "could not set maxmemory $MAXMEMORY / noeviction on $MQB_HOST:$PORT"
    return 0
  fi
  local max policy
  max=$(config_get maxmemory)
  policy=$(config_get maxmemory-policy)
  if [[ $max == 0 ]]; then
    warn "the reused Redis has no maxmemory: it can grow until the machine runs out of memory"
  fi
  if [[ -n $policy && $policy != noeviction ]]; then
    warn "the reused Redis evicts keys (maxmemory-policy $policy): Celery tasks and Channels messages can be lost; use noeviction"
  fi
}

up() {
  install
  take_lock
  if ready; then
    # Reuse whatever answers (ours from an earlier run, or a system one).
    if our_pid >/dev/null; then
      apply_memory_limits yes
      ready_line "already running"
    else
      apply_memory_limits no
      ready_line "reused existing server"
    fi
    return 0
  fi
  if port_open "$PORT"; then
    die "port $MQB_HOST:$PORT is taken by $(port_owner "$PORT") which does not answer PING"
  fi
  mkdir -p "$DATA"
  printf '=== %s starting redis-server on %s:%s\n' "$(date '+%F %T')" "$MQB_HOST" "$PORT" >>"$LOG"
  # --daemonize writes the pid file itself; persistence goes to our data dir.
  # Output before daemonizing (e.g. a bad option) is appended to the log too.
  # shellcheck disable=SC2094 # redis opens --logfile itself only after we return
  redis-server --bind "$MQB_HOST" --port "$PORT" --daemonize yes \
    --dir "$DATA" --logfile "$LOG" --pidfile "$PIDFILE" \
    --maxmemory "$MAXMEMORY" --maxmemory-policy noeviction >>"$LOG" 2>&1 9>&- ||
    die_with_log "$LOG" "redis-server failed to start"
  wait_for 20 ready || die_with_log "$LOG" "no PONG on $MQB_HOST:$PORT after 20 s"
  ready_line "started"
}

down() {
  take_lock
  local pid
  if pid=$(our_pid); then
    # SHUTDOWN NOSAVE is quick; fall back to the pid if the CLI cannot talk.
    redis-cli -h "$MQB_HOST" -p "$PORT" shutdown nosave >/dev/null 2>&1 || true
    stop_pid "$pid" 10
    rm -f "$PIDFILE"
    info "stopped"
  elif ready; then
    info "not started by ops/ (no pid file), left running"
  else
    info "not running"
  fi
}

status() {
  if ready; then
    if our_pid >/dev/null; then ready_line "pid $(our_pid)"; else ready_line "not started by ops/"; fi
  else
    info "not running"
    return 1
  fi
}

case "${1:-}" in
  up | down | status | install) "$1" ;;
  *)
    echo "usage: $0 up|down|status|install" >&2
    exit 2
    ;;
esac
