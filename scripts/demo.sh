#!/usr/bin/env bash
# `make demo`, after the services are up and the database migrated: a demo
# login, the demo workload (and the demo app's own Celery worker), then web,
# collector and worker from the Procfile under scripts/supervise.py, which
# restarts a process that dies. Ctrl-C stops every one of them.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
STATE=${MQB_STATE_DIR:-var}
# Logs, the password file, the Celery beat schedule and the database: owner only.
umask 077
mkdir -p "$STATE/log"

# The demo app's own Celery worker, on the app's task queue (which carries DEMO_PREFIX).
# `scripts/demo.sh celery-worker` runs only this step.
celery_worker() {
  exec "$BIN/celery" -A demo.celery_app worker --pool=solo --loglevel=INFO \
    -Q "${DEMO_PREFIX:-}celery-tasks" --hostname "demo-tasks@%h" --without-mingle --without-gossip
}
if [ "${1:-}" = celery-worker ]; then
  celery_worker
fi

# One random password per checkout, kept so that a second `make demo` keeps it.
if [ ! -s "$STATE/demo-password" ]; then
  (umask 077; "$BIN/python" -c 'import secrets; print(secrets.token_urlsafe(12))' > "$STATE/demo-password")
fi
# The file's password, the one printed below, even if MQB_USER_PASSWORD is set.
MQB_USER_PASSWORD='' MQB_USER_PASSWORD_FILE="$STATE/demo-password" "$BIN/python" manage.py ensure_user demo --role operator >/dev/null
MQB_USER_PASSWORD='' MQB_USER_PASSWORD_FILE="$STATE/demo-password" "$BIN/python" manage.py ensure_user demo-admin --role admin >/dev/null

# The demo's own DLQs are managed from the start, so their dead letters fill one
# inbox: as demo-admin, through the same service (and audit) as the Manage
# button. Waits for the workload to declare them. Every other DLQ on the
# brokers stays unmanaged. `scripts/demo.sh manage-dlqs` runs only this step.
manage_demo_dlqs() {
  local vhost failed=0
  vhost=$("$BIN/python" -c 'import os, urllib.parse as u
print(u.unquote(u.urlsplit(os.environ.get("DEMO_AMQP_URL", "amqp:///")).path[1:]) or "/")')
  "$BIN/python" manage.py manage_dlqs --as demo-admin --wait 60 \
    --cluster "${DEMO_RABBITMQ_CLUSTER:-local-rabbitmq}" --vhost "$vhost" "${DEMO_PREFIX:-}dlq" || failed=1
  "$BIN/python" manage.py manage_dlqs --as demo-admin --wait 60 \
    --cluster "${DEMO_KAFKA_CLUSTER:-local-kafka}" "${DEMO_PREFIX:-}user-events-dlq" || failed=1
  return $failed
}
if [ "${1:-}" = manage-dlqs ]; then
  manage_demo_dlqs
  exit
fi

# Something for the retry policies and redirects pages to show: a retry rule in
# dry-run mode on the demo's RabbitMQ DLQ (it records what it would do and sends
# nothing) and a redirect of one of the demo's origins to a routing key the same
# binding still routes. Added once, as demo-admin (audited); a second run leaves
# them. `scripts/demo.sh seed-rules` runs only this step.
seed_demo_rules() {
  local vhost
  vhost=$("$BIN/python" -c 'import os, urllib.parse as u
print(u.unquote(u.urlsplit(os.environ.get("DEMO_AMQP_URL", "amqp:///")).path[1:]) or "/")')
  "$BIN/python" manage.py seed_rules --as demo-admin \
    --cluster "${DEMO_RABBITMQ_CLUSTER:-local-rabbitmq}" --vhost "$vhost" \
    --policy "Retry demo failures later" --policy-dlq "${DEMO_PREFIX:-}dlq" \
    --redirect-from "exchange=${DEMO_PREFIX:-}events,routing_key=user.deleted" \
    --redirect-to "routing_key=user.removed" \
    --redirect-note "user.deleted was renamed user.removed"
}
if [ "${1:-}" = seed-rules ]; then
  seed_demo_rules
  exit
fi

# The demo's alert rules (arrivals on dlq, lag in seconds of user-events-processor, no
# consumers on task-queue) notifying the "demo sink" channel: the local webhook receiver
# started below (scripts/alert_sink.py, 127.0.0.1 only) with a secret of its own. Added
# once, as demo (audited). `scripts/demo.sh seed-alerts` runs only this step.
SINK_PORT=${MQB_DEMO_SINK_PORT:-8025}
export MQB_DEMO_SINK_URL="http://127.0.0.1:${SINK_PORT}/hook"
if [ ! -s "$STATE/demo-sink-secret" ]; then
  (umask 077; "$BIN/python" -c 'import secrets; print(secrets.token_urlsafe(24))' > "$STATE/demo-sink-secret")
fi
seed_demo_alerts() {
  local threshold
  # Over the workload's steady failures in the 20 s window, under them plus one incident's burst.
  threshold=$("$BIN/python" -c 'import os
print(round(float(os.environ.get("DEMO_RATE", "5")) * float(os.environ.get("DEMO_FAIL_SHARE", "0.2")) * 20 + 40))')
  "$BIN/python" manage.py seed_alerts --as demo \
    --rabbitmq-cluster "${DEMO_RABBITMQ_CLUSTER:-local-rabbitmq}" \
    --kafka-cluster "${DEMO_KAFKA_CLUSTER:-local-kafka}" --prefix "${DEMO_PREFIX:-}" \
    --sink-url-env MQB_DEMO_SINK_URL --sink-secret-file "$(pwd)/$STATE/demo-sink-secret" \
    --dlq-window 20 --dlq-threshold "$threshold"
}
if [ "${1:-}" = seed-alerts ]; then
  seed_demo_alerts
  exit
fi

pids=()
stop() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop INT TERM EXIT

"$BIN/python" -m demo.workload >"$STATE/log/demo-workload.log" 2>&1 &
pids+=($!)
(celery_worker) >"$STATE/log/demo-celery.log" 2>&1 &
pids+=($!)
manage_demo_dlqs || echo "warning: the demo's DLQs are not managed; manage them on /deadletters/queues/" >&2
seed_demo_rules || echo "warning: the demo's retry policy and redirect were not added" >&2
seed_demo_alerts || echo "warning: the demo's alert rules were not added" >&2
MQB_DEMO_SINK_SECRET_FILE="$STATE/demo-sink-secret" "$BIN/python" scripts/alert_sink.py \
  --port "$SINK_PORT" >"$STATE/log/demo-alert-sink.log" 2>&1 &
pids+=($!)
# Every 90 s, 30 s of trouble for those rules: a burst of poison events, a stuck Kafka
# group member, task-queue without consumers (scripts/demo_incidents.py says how).
"$BIN/python" scripts/demo_incidents.py --burst 80 --last 30 >"$STATE/log/demo-incidents.log" 2>&1 &
pids+=($!)

port=${MQB_PORT:-8000}
banner() {
cat <<TXT

  mqboard is starting at  http://127.0.0.1:${port}/
  log in as  demo / $(cat "$STATE/demo-password")        (operator)
  or         demo-admin / (same password)     (admin, also /admin/)
  demo workload logs: $STATE/log/demo-workload.log, $STATE/log/demo-celery.log
  alert notifications:  http://127.0.0.1:${SINK_PORT}/   (the demo sink; incidents every 90 s)
  Ctrl-C stops everything; \`make services-down\` stops the brokers.

TXT
}
banner
# Again once the processes have printed their start-up lines over it.
(sleep 6; banner) &
pids+=($!)
# Not honcho: it stops everything when one process dies, and says so in one line
# that scrolls away. The supervisor names what died and why, shows its last
# lines and restarts it (or, when it keeps dying, stops everything and says so).
"$BIN/python" scripts/supervise.py -f Procfile --log-dir "$STATE/log"
