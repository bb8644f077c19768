#!/usr/bin/env bash
# `make topology`, after the services are up: the production topology on one
# machine. PostgreSQL (ops/postgres.sh's cluster) as the database, migrated;
# collectstatic; a login; ops/nginx.sh on 127.0.0.1:${MQB_TOPOLOGY_PORT:-8080}
# in front of the two Daphne processes of ops/Procfile.prod, which runs whole
# (web ×2, collector ×2, tasks, jobs, beat) under scripts/supervise.py.
# Ctrl-C, or `scripts/topology.sh down` (`make topology-down`) from another
# terminal, stops all of it, nginx included. DATABASE_URL, if set, is used
# instead of the project cluster's database. `make demo` is unaffected: it
# keeps its SQLite file and port 8000.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
STATE=${MQB_STATE_DIR:-var}
RUN="$STATE/run"
PIDFILE="$RUN/topology.pid"
PORT=${MQB_TOPOLOGY_PORT:-8080}
export MQB_WEB1_PORT=${MQB_WEB1_PORT:-8001} MQB_WEB2_PORT=${MQB_WEB2_PORT:-8002}
export MQB_NGINX_PORT=$PORT MQB_WEB_ADDRESSES="127.0.0.1:$MQB_WEB1_PORT 127.0.0.1:$MQB_WEB2_PORT"
umask 077
mkdir -p "$STATE/log/topology" "$RUN"

supervisor_pid() {
  local pid
  [[ -f $PIDFILE ]] || return 1
  pid=$(tr -dc '0-9' <"$PIDFILE")
  [[ -n $pid ]] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'supervise.py -f ops/Procfile.prod' &&
    echo "$pid"
}

if [[ ${1:-} == down ]]; then
  if pid=$(supervisor_pid); then
    kill -TERM "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
    echo "topology: stopped"
  else
    echo "topology: not running"
  fi
  ops/nginx.sh down
  exit 0
fi

if pid=$(supervisor_pid); then
  echo "topology: already running (supervisor pid $pid); make topology-down stops it" >&2
  exit 1
fi

DATABASE_URL=${DATABASE_URL:-$(ops/postgres.sh url)}
export DATABASE_URL
"$BIN/python" manage.py migrate --no-input -v0
"$BIN/python" manage.py collectstatic --no-input -v0

# One random password per checkout, kept so that a second run keeps it.
if [ ! -s "$STATE/topology-password" ]; then
  "$BIN/python" -c 'import secrets; print(secrets.token_urlsafe(12))' >"$STATE/topology-password"
fi
# The file's password, the one printed below, even if MQB_USER_PASSWORD is set.
MQB_USER_PASSWORD='' MQB_USER_PASSWORD_FILE="$STATE/topology-password" \
  "$BIN/python" manage.py ensure_user topo --role operator >/dev/null
MQB_USER_PASSWORD='' MQB_USER_PASSWORD_FILE="$STATE/topology-password" \
  "$BIN/python" manage.py ensure_user topo-admin --role admin >/dev/null

ops/nginx.sh up

supervisor=
stop() {
  trap - INT TERM EXIT
  if [[ -n $supervisor ]]; then
    kill -TERM "$supervisor" 2>/dev/null || true
    wait "$supervisor" 2>/dev/null || true
  fi
  rm -f "$PIDFILE"
  ops/nginx.sh down
}
trap stop INT TERM EXIT

cat <<TXT

  mqboard (production topology) is starting at  http://127.0.0.1:${PORT}/
  nginx -> Daphne on ${MQB_WEB_ADDRESSES}; database ${DATABASE_URL%%://*}:// (ops/postgres.sh)
  log in as  topo / $(cat "$STATE/topology-password")        (operator)
  or         topo-admin / (same password)     (admin)
  logs: $STATE/log/topology/<process>.log, $STATE/log/nginx-access.log
  Ctrl-C or \`make topology-down\` stops it; \`make services-down\` stops the brokers.

TXT
"$BIN/python" scripts/supervise.py -f ops/Procfile.prod --log-dir "$STATE/log/topology" &
supervisor=$!
echo "$supervisor" >"$PIDFILE"
wait "$supervisor"
