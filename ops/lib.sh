# shellcheck shell=bash
# Shared helpers for ops/*.sh. Sourced, never executed.
#
# Layout (all overridable through the environment):
#   MQB_STATE_DIR  runtime state, default <repo>/var
#     log/<service>.log   every service logs here (one folder for all logs)
#     data/<service>/     persistent data
#     run/                pid files and lock files
#   MQB_CACHE_DIR  downloads kept outside the repo (Kafka jars), so a fresh
#                  clone reuses them; default ~/.cache/mqboard

OPS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(dirname "$OPS_DIR")"
MQB_STATE_DIR="${MQB_STATE_DIR:-$REPO_DIR/var}"
MQB_CACHE_DIR="${MQB_CACHE_DIR:-${HOME:-/root}/.cache/mqboard}"
LOG_DIR="$MQB_STATE_DIR/log"
DATA_DIR="$MQB_STATE_DIR/data"
RUN_DIR="$MQB_STATE_DIR/run"
export MQB_STATE_DIR MQB_CACHE_DIR

# Everything listens on loopback only.
MQB_HOST=127.0.0.1

# Name used to prefix every message; each service script sets it.
SVC="${SVC:-ops}"

# The state dir also holds the dashboard's database and secret key: owner only
# (0700). Existing dirs lose group/other read and write but keep "x", which
# rabbitmq.sh adds for the RabbitMQ node (its own user) to reach its data.
ensure_dirs() {
  (umask 077 && mkdir -p "$MQB_STATE_DIR" "$LOG_DIR" "$DATA_DIR" "$RUN_DIR")
  chmod go-rw "$MQB_STATE_DIR" "$LOG_DIR" "$DATA_DIR" "$RUN_DIR" 2>/dev/null || true
}

info() { printf '%s: %s\n' "$SVC" "$*"; }
warn() { printf '%s: %s\n' "$SVC" "$*" >&2; }

# One clear line on stderr, then exit non-zero.
die() {
  printf '%s: ERROR: %s\n' "$SVC" "$*" >&2
  exit 1
}

# Like die, but show the end of a log file so the cause is visible at once.
die_with_log() {
  local logfile=$1
  shift
  printf '%s: ERROR: %s (log: %s)\n' "$SVC" "$*" "$logfile" >&2
  if [[ -s $logfile ]]; then
    printf '%s: last 20 lines of %s:\n' "$SVC" "$logfile" >&2
    tail -n 20 "$logfile" | sed 's/^/  | /' >&2
  fi
  exit 1
}

# Serialise concurrent up/down calls for one service (e.g. two terminals or
# CI plus a developer), so that two copies are never started. The lock is
# held on fd 9 until the script exits. Trap: a daemon started while the lock
# is held inherits fd 9 and keeps the lock forever, so every command that
# leaves a process behind must be run with `9>&-`.
take_lock() {
  ensure_dirs
  exec 9>"$RUN_DIR/$SVC.lock"
  flock -w 300 9 || die "could not get lock $RUN_DIR/$SVC.lock within 300 s"
}

# True if something accepts TCP connections on 127.0.0.1:$1. A plain connect
# is cheaper than ss and needs no privileges.
port_open() {
  timeout 2 bash -c ": >/dev/tcp/$MQB_HOST/$1" 2>/dev/null
}

# Describe who listens on a port, for error messages.
port_owner() {
  ss -Hltnp "sport = :$1" 2>/dev/null | sed -n 's/.*users:((\("[^"]*",pid=[0-9]*\).*/\1/p' | head -n 1
}

# read_pid FILE: print the pid stored in FILE, if any.
read_pid() {
  [[ -f $1 ]] || return 1
  local pid
  pid=$(tr -dc '0-9' <"$1")
  [[ -n $pid ]] || return 1
  printf '%s\n' "$pid"
}

# pid_matches PID PATTERN: the process exists and its command line matches
# PATTERN (guards against a stale pid file whose pid was reused).
pid_matches() {
  local pid=$1 pattern=$2
  [[ -r /proc/$pid/cmdline ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -Eq -- "$pattern"
}

# live_pid FILE PATTERN: print the pid from FILE if that process is alive and
# is what we expect; remove a stale pid file.
live_pid() {
  local pidfile=$1 pattern=$2 pid
  pid=$(read_pid "$pidfile") || return 1
  if pid_matches "$pid" "$pattern"; then
    printf '%s\n' "$pid"
    return 0
  fi
  rm -f "$pidfile"
  return 1
}

# stop_pid PID SECONDS: SIGTERM, wait up to SECONDS, then SIGKILL.
stop_pid() {
  local pid=$1 grace=$2 waited=0
  kill -TERM "$pid" 2>/dev/null || return 0
  while kill -0 "$pid" 2>/dev/null; do
    if ((waited >= grace * 10)); then
      warn "pid $pid still alive after ${grace}s, sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
      break
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
}

# wait_for SECONDS CMD...: poll CMD about once a second until it succeeds.
wait_for() {
  local limit=$1
  shift
  local start=$SECONDS
  while ! "$@"; do
    ((SECONDS - start < limit)) || return 1
    sleep 1
  done
}

# Wait while another apt-get/dpkg runs (e.g. a background install), since
# the dpkg lock would make our install fail.
wait_for_apt() {
  local start=$SECONDS
  # pgrep matches process names of at most 15 characters; each name on its own.
  while pgrep -x apt-get >/dev/null || pgrep -x apt >/dev/null || pgrep -x dpkg >/dev/null; do
    if ((SECONDS - start > 900)); then
      die "another apt-get/dpkg is still running after 900 s"
    fi
    sleep 3
  done
}

# apt_install PKG...: install Debian packages; run `apt-get update` only if
# the first attempt fails (fresh images may have empty package lists).
apt_install() {
  local aptlog="$LOG_DIR/apt.log"
  ensure_dirs
  [[ $(id -u) -eq 0 ]] || die "need root to apt-get install $*"
  wait_for_apt
  info "installing $* with apt-get (log: $aptlog)"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -q "$@" >>"$aptlog" 2>&1; then
    apt-get update -q >>"$aptlog" 2>&1 || true
    apt-get install -y -q "$@" >>"$aptlog" 2>&1 ||
      die_with_log "$aptlog" "apt-get install $* failed"
  fi
}

ALL_SERVICES=(rabbitmq kafka redis postgres)

# check_services NAME...: reject unknown names before doing anything.
check_services() {
  local s
  for s in "$@"; do
    case " ${ALL_SERVICES[*]} " in
      *" $s "*) ;;
      *) die "unknown service '$s' (known: ${ALL_SERVICES[*]})" ;;
    esac
  done
}

# run_each ACTION NAME...: run ops/NAME.sh ACTION for all NAMEs at the
# same time (RabbitMQ and Kafka each take seconds to boot or stop), then
# print their output in the given order. Returns non-zero if any failed.
run_each() {
  local action=$1
  shift
  local tmp s rc=0
  local -a pids=()
  tmp=$(mktemp -d)
  for s in "$@"; do
    "$OPS_DIR/$s.sh" "$action" >"$tmp/$s.out" 2>&1 &
    pids+=("$!")
  done
  local i=0
  for s in "$@"; do
    if wait "${pids[$i]}"; then
      cat "$tmp/$s.out"
    else
      rc=1
      cat "$tmp/$s.out" >&2
    fi
    i=$((i + 1))
  done
  rm -rf "$tmp"
  return "$rc"
}
