#!/usr/bin/env bash
# Kafka: Apache Kafka 4.x from Maven Central jars (no Debian package), one
# KRaft node that is both broker and controller, loopback only.
# Usage: ops/kafka.sh up|down|status|install
# Environment: MQB_STATE_DIR, MQB_KAFKA_PORT, MQB_KAFKA_CONTROLLER_PORT, MQB_KAFKA_HEAP
# (maximum heap, default 512m).
#
# Jars: ops/kafka/pom.xml, copied by Maven into
#   $MQB_CACHE_DIR/kafka-<version>/libs   (outside the repo, shared by clones)
# with a marker file holding the POM's checksum, so an interrupted copy or a
# changed POM is fetched again.
#
# Readiness = a metadata request answered by a registered broker with an
# elected controller (an open port is not enough). Probe: the project's
# virtualenv python with confluent-kafka (list_topics, ~0.3 s) when it is
# there, else org.apache.kafka.tools.BrokerApiVersionsCommand from the jars
# (it sends Metadata then ApiVersions; ~2 s of JVM start per try).
set -euo pipefail
SVC=kafka
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KAFKA_VERSION="${MQB_KAFKA_VERSION:-4.1.2}"
PORT="${MQB_KAFKA_PORT:-9092}"
CONTROLLER_PORT="${MQB_KAFKA_CONTROLLER_PORT:-9093}"
# Maximum heap: 512m suits the tests; 5,000 topics x 3 partitions and 10,000
# groups (benchmarks/kafka_scale.py) run out of it and need about 2g.
HEAP="${MQB_KAFKA_HEAP:-512m}"
BOOTSTRAP="$MQB_HOST:$PORT"
LOG="$LOG_DIR/kafka.log"
PIDFILE="$RUN_DIR/kafka.pid"
DATA="$DATA_DIR/kafka"
KAFKA_LOG_DIRS="$DATA/kraft-combined-logs"
CONF="$DATA/server.properties"
POM="$OPS_DIR/kafka/pom.xml"
LOG4J_CONF="$OPS_DIR/kafka/log4j2.properties"
CACHE="$MQB_CACHE_DIR/kafka-$KAFKA_VERSION"
LIBS="$CACHE/libs"
MARKER="$CACHE/.complete"
START_TIMEOUT=90
VENV_PY="$REPO_DIR/.venv/bin/python"

java_major() {
  java -XshowSettings:properties -version 2>&1 |
    sed -n 's/^ *java\.specification\.version = \([0-9]*\).*/\1/p'
}

pom_sum() { sha256sum "$POM" | cut -d' ' -f1; }

# Copy the jars into the cache unless a complete copy for this POM is there.
fetch_jars() {
  if [[ -f $MARKER && $(cat "$MARKER") == "$(pom_sum)" && -d $LIBS ]]; then
    return 0
  fi
  mkdir -p "$CACHE"
  # Other clones share the cache: serialise the download on its own lock.
  exec 8>"$CACHE.lock"
  flock -w 600 8 || die "could not lock $CACHE.lock within 600 s"
  if [[ -f $MARKER && $(cat "$MARKER") == "$(pom_sum)" && -d $LIBS ]]; then
    exec 8>&-
    return 0
  fi
  info "fetching Kafka $KAFKA_VERSION jars with Maven into $LIBS"
  rm -rf "$LIBS.tmp" "$MARKER"
  printf '=== %s mvn dependency:copy-dependencies kafka %s\n' "$(date '+%F %T')" "$KAFKA_VERSION" >>"$LOG"
  # Copy into a temp dir and rename, so a half copy is never used. (Debian's
  # mvn 3.8 prints ANSI resets even with -B; sed keeps them out of the log.)
  mvn -B -q -f "$POM" -Dkafka.version="$KAFKA_VERSION" \
    dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$LIBS.tmp" 2>&1 8>&- 9>&- | sed 's/\x1b\[[0-9;]*m//g' >>"$LOG" ||
    die_with_log "$LOG" "mvn could not fetch Kafka $KAFKA_VERSION jars"
  [[ -f $LIBS.tmp/kafka_2.13-$KAFKA_VERSION.jar ]] ||
    die_with_log "$LOG" "kafka_2.13-$KAFKA_VERSION.jar missing after mvn"
  rm -rf "$LIBS"
  mv "$LIBS.tmp" "$LIBS"
  pom_sum >"$MARKER"
  exec 8>&-
}

install() {
  ensure_dirs
  if ! command -v java >/dev/null || (($(java_major || echo 0) < 17)); then
    apt_install openjdk-17-jre-headless
  fi
  command -v mvn >/dev/null || apt_install maven
  fetch_jars
}

# Run a Kafka tool class from the cached jars. Its log4j output goes to
# stderr (WARN and up), so stdout carries only the tool's own output (trap:
# with Kafka's usual stdout logging, `StorageTool random-uuid` prints a log
# line before the id and the format tool happily stores it as cluster.id).
kjava() {
  java -Xms64m -Xmx256m -Dlog4j2.configurationFile="$LOG4J_CONF" \
    -Dmqboard.log.target=SYSTEM_ERR -Dmqboard.log.level=WARN \
    -cp "$LIBS/*" "$@" 9>&-
}

probe_python() {
  "$VENV_PY" - "$BOOTSTRAP" 2>/dev/null <<'EOF'
import sys
from confluent_kafka.admin import AdminClient
admin = AdminClient({"bootstrap.servers": sys.argv[1], "socket.timeout.ms": 3000,
                     "log_level": 0})
md = admin.list_topics(timeout=5)
sys.exit(0 if md.brokers and md.controller_id >= 0 else 1)
EOF
}

# A freshly formatted cluster creates __consumer_offsets on the first group
# request, and for a few seconds after that its coordinators answer
# NOT_COORDINATOR / COORDINATOR_LOAD_IN_PROGRESS. Ready therefore also means
# that group requests are answered: describe a few group names (they hash to
# different __consumer_offsets partitions) until every one succeeds.
warm_coordinators() {
  [[ -x $VENV_PY ]] && "$VENV_PY" -c 'import confluent_kafka' 2>/dev/null || return 0
  "$VENV_PY" - "$BOOTSTRAP" 2>>"$LOG" <<'EOF'
import sys, time
from confluent_kafka.admin import AdminClient
admin = AdminClient({"bootstrap.servers": sys.argv[1], "log_level": 0})
groups = [f"mqboard-services-ready-{i}" for i in range(16)]
deadline = time.monotonic() + 60
while True:
    try:
        for future in admin.describe_consumer_groups(groups, request_timeout=5).values():
            future.result()
        sys.exit(0)
    except Exception as exc:
        if time.monotonic() > deadline:
            print(f"group coordinators not ready after 60 s: {exc}", file=sys.stderr)
            sys.exit(1)
        time.sleep(0.5)
EOF
}

probe_java() {
  local cfg="$RUN_DIR/kafka-probe.properties"
  printf 'request.timeout.ms=5000\ndefault.api.timeout.ms=5000\n' >"$cfg"
  # Its log4j output (connection warnings) is noise for a probe.
  timeout 30 java -Xmx128m -Dlog4j2.configurationFile="$LOG4J_CONF" \
    -Dmqboard.log.target=SYSTEM_ERR -Dmqboard.log.level=OFF \
    -cp "$LIBS/*" org.apache.kafka.tools.BrokerApiVersionsCommand \
    --bootstrap-server "$BOOTSTRAP" --command-config "$cfg" 2>/dev/null 9>&- |
    grep -q "^$BOOTSTRAP (id: .*isFenced: false)"
}

# MQB_KAFKA_PROBE=python|java forces one probe (for testing the fallback).
PROBE=""
case "${MQB_KAFKA_PROBE:-}" in
  python | java) PROBE="probe_$MQB_KAFKA_PROBE" ;;
  "") ;;
  *) die "MQB_KAFKA_PROBE must be python or java, not '$MQB_KAFKA_PROBE'" ;;
esac
pick_probe() {
  if [[ -z $PROBE ]]; then
    if [[ -x $VENV_PY ]] && "$VENV_PY" -c 'import confluent_kafka' 2>/dev/null; then
      PROBE=probe_python
    else
      PROBE=probe_java
    fi
  fi
}

ready() {
  port_open "$PORT" || return 1
  pick_probe
  "$PROBE"
}

our_pid() { live_pid "$PIDFILE" 'kafka\.Kafka'; }

ready_line() { info "ready on $BOOTSTRAP (Kafka $KAFKA_VERSION, KRaft) [$1]"; }

write_config() {
  mkdir -p "$KAFKA_LOG_DIRS"
  cat >"$CONF" <<EOF
# Generated by ops/kafka.sh on every start; edits are overwritten.
# Single KRaft node, broker + controller, loopback only.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$MQB_HOST:$CONTROLLER_PORT
listeners=PLAINTEXT://$MQB_HOST:$PORT,CONTROLLER://$MQB_HOST:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$MQB_HOST:$PORT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$KAFKA_LOG_DIRS

# One node: every internal topic must get replication factor 1.
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1

# Metadata requests for unknown topics must not create them.
auto.create.topics.enable=false
delete.topic.enable=true
# Consumer groups start at once (tests).
group.initial.rebalance.delay.ms=0
EOF
}

# Format the storage once: meta.properties marks a formatted log dir, and
# formatting again would wipe the cluster id (and with it the data).
format_once() {
  [[ -f $KAFKA_LOG_DIRS/meta.properties ]] && return 0
  local cluster_id
  cluster_id=$(kjava kafka.tools.StorageTool random-uuid 2>>"$LOG") ||
    die_with_log "$LOG" "kafka.tools.StorageTool random-uuid failed"
  [[ $cluster_id =~ ^[A-Za-z0-9_-]{22}$ ]] ||
    die_with_log "$LOG" "unexpected cluster id from StorageTool random-uuid: ${cluster_id:0:80}"
  # Static quorum (controller.quorum.voters), so no --standalone.
  kjava kafka.tools.StorageTool format --ignore-formatted \
    -t "$cluster_id" -c "$CONF" >>"$LOG" 2>&1 ||
    die_with_log "$LOG" "kafka.tools.StorageTool format failed"
}

wait_started() {
  local pid=$1 start=$SECONDS
  until ready; do
    kill -0 "$pid" 2>/dev/null ||
      die_with_log "$LOG" "broker process $pid exited during startup"
    ((SECONDS - start < START_TIMEOUT)) ||
      die_with_log "$LOG" "no metadata answer on $BOOTSTRAP after ${START_TIMEOUT}s (pid $pid)"
    sleep 1
  done
}

up() {
  install
  take_lock
  local pid
  if pid=$(our_pid); then
    # Ours is running (or still starting): wait, never start a second one.
    wait_started "$pid"
    ready_line "already running"
    return 0
  fi
  if ready; then
    ready_line "reused existing server"
    return 0
  fi
  local p
  for p in "$PORT" "$CONTROLLER_PORT"; do
    if port_open "$p"; then
      die "port $MQB_HOST:$p is taken by $(port_owner "$p") which does not answer Kafka metadata requests"
    fi
  done
  write_config
  format_once
  printf '=== %s starting Kafka %s on %s\n' "$(date '+%F %T')" "$KAFKA_VERSION" "$BOOTSTRAP" >>"$LOG"
  # setsid + nohup: the broker outlives this shell and its terminal; the
  # inner shell records its own pid and execs java, so the pid file names the
  # JVM itself.
  # shellcheck disable=SC2016 # $$ and $1 belong to the inner shell
  setsid nohup bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$PIDFILE" \
    java -Xms256m -Xmx"$HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true -Djava.net.preferIPv4Stack=true \
    -Dlog4j2.configurationFile="$LOG4J_CONF" \
    -cp "$LIBS/*" kafka.Kafka "$CONF" \
    </dev/null >>"$LOG" 2>&1 9>&- &

  for _ in {1..50}; do
    pid=$(our_pid) && break
    sleep 0.1
  done
  [[ -n ${pid:-} ]] || die_with_log "$LOG" "broker did not start (no live pid in $PIDFILE)"
  wait_started "$pid"
  warm_coordinators || die_with_log "$LOG" "group coordinators of $BOOTSTRAP not ready"
  ready_line "started"
}

down() {
  take_lock
  local pid
  if pid=$(our_pid); then
    # SIGTERM is Kafka's clean shutdown (flushes logs, no recovery on next
    # start); it takes a few seconds. SIGKILL only after 30 s.
    stop_pid "$pid" 30
    rm -f "$PIDFILE"
    info "stopped"
  elif port_open "$PORT"; then
    info "not started by ops/ (no pid file), left running"
  else
    info "not running"
  fi
}

status() {
  local pid
  if pid=$(our_pid); then
    if ready; then
      ready_line "pid $pid"
    else
      info "running (pid $pid) but NOT ready"
      return 1
    fi
  elif ready; then
    ready_line "not started by ops/"
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
