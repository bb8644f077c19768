#!/usr/bin/env bash
# nginx in front of the dashboard's Daphne processes: Debian's nginx binary
# running an instance of our own (its prefix, config, temp dirs under
# $MQB_STATE_DIR/nginx, its pid in run/, its logs in log/), on 127.0.0.1 only.
# The system service (/etc/nginx, port 80) plays no part: left as it is.
# Usage: ops/nginx.sh up|down|status|install|render
#   render  prints ops/nginx/mqboard.conf with its placeholders filled in from
#           the environment (for /etc/nginx/conf.d/ in production)
#
# Settings (environment):
#   MQB_NGINX_PORT     port on 127.0.0.1 (default 8080)
#   MQB_WEB_ADDRESSES  the Daphne processes, space-separated host:port or
#                      unix:/path (default "127.0.0.1:8001 127.0.0.1:8002",
#                      the web1 and web2 lines of ops/Procfile.prod)
#   MQB_STATIC_ROOT    collectstatic's root (default $MQB_STATE_DIR/staticfiles,
#                      Django's STATIC_ROOT)
#   MQB_NGINX_MAX_BODY client_max_body_size (default 3m)
#   MQB_NGINX_WORKERS  worker processes (default 1: one is plenty for a dashboard)
#
# Root-less as far as nginx allows: run as a normal user, nginx runs as that
# user. Run as root, the master keeps root (it only reads the config and opens
# the logs) and the workers, which serve every request, run as "nobody"; they
# need to pass through the state dir ("x" only, as for RabbitMQ) to reach the
# temp dirs and the static files, which are public (CSS, JS, fonts) and made
# world-readable.
set -euo pipefail
SVC=nginx
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PORT="${MQB_NGINX_PORT:-8080}"
WEB_ADDRESSES="${MQB_WEB_ADDRESSES:-127.0.0.1:8001 127.0.0.1:8002}"
STATIC_ROOT="${MQB_STATIC_ROOT:-$MQB_STATE_DIR/staticfiles}"
MAX_BODY="${MQB_NGINX_MAX_BODY:-3m}"
WORKERS="${MQB_NGINX_WORKERS:-1}"
TEMPLATE="$OPS_DIR/nginx/mqboard.conf"
PREFIX="$MQB_STATE_DIR/nginx"
CONF="$PREFIX/nginx.conf"
SITE="$PREFIX/mqboard.conf"
PIDFILE="$RUN_DIR/nginx.pid"
ERROR_LOG="$LOG_DIR/nginx-error.log"
ACCESS_LOG="$LOG_DIR/nginx-access.log"
WORKER_USER=nobody
WORKER_GROUP=nogroup

install() {
  command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || apt_install nginx
}

nginx_bin() {
  command -v nginx 2>/dev/null || echo /usr/sbin/nginx
}

# One `server` line per Daphne. max_fails=1: the first refused connection takes
# it out of the rotation for fail_timeout, then one request tries it again.
upstream_lines() {
  local address
  for address in $WEB_ADDRESSES; do
    [[ $address =~ ^(unix:/[^[:space:]\;{}]+|[^[:space:]\;{}/]+:[0-9]+)$ ]] ||
      die "MQB_WEB_ADDRESSES: '$address' is neither host:port nor unix:/path"
    printf '    server %s max_fails=1 fail_timeout=5s;\n' "$address"
  done
}

# render LISTEN SERVER_NAME ACCESS_LOG: the template with its placeholders filled in.
render_site() {
  local listen=$1 server_name=$2 access_log=$3 upstreams
  upstreams=$(upstream_lines)
  [[ -n $upstreams ]] || die "MQB_WEB_ADDRESSES is empty"
  [[ $MAX_BODY =~ ^[0-9]+[kKmMgG]?$ ]] || die "MQB_NGINX_MAX_BODY: '$MAX_BODY' is not a size"
  [[ $STATIC_ROOT =~ ^/[^[:space:]\;{}\"\']*$ ]] ||
    die "MQB_STATIC_ROOT: '$STATIC_ROOT' is not an absolute path without spaces, quotes, ';' or braces"
  # awk, not sed: the values hold slashes; each placeholder is replaced literally,
  # outside comments (the template's head names them).
  awk -v listen="$listen" -v server_name="$server_name" -v upstreams="$upstreams" \
    -v static_root="${STATIC_ROOT%/}" -v max_body="$MAX_BODY" -v access_log="$access_log" '
    function put(line, key, value,   i) {
      while ((i = index(line, "{{" key "}}")) > 0)
        line = substr(line, 1, i - 1) value substr(line, i + length(key) + 4)
      return line
    }
    /^[[:space:]]*#/ { print; next }
    {
      $0 = put($0, "LISTEN", listen); $0 = put($0, "SERVER_NAME", server_name)
      $0 = put($0, "UPSTREAMS", upstreams); $0 = put($0, "STATIC_ROOT", static_root)
      $0 = put($0, "MAX_BODY", max_body); $0 = put($0, "ACCESS_LOG", access_log)
      print
    }' "$TEMPLATE"
}

render() {
  render_site "${MQB_NGINX_LISTEN:-$MQB_HOST:$PORT}" "${MQB_NGINX_SERVER_NAME:-_}" \
    "${MQB_NGINX_ACCESS_LOG:-/var/log/nginx/mqboard-access.log}"
}

as_root() { [[ $(id -u) -eq 0 ]]; }

write_config() {
  mkdir -p "$PREFIX/tmp"
  local t
  for t in body proxy fastcgi uwsgi scgi; do mkdir -p "$PREFIX/tmp/$t"; done
  render_site "$MQB_HOST:$PORT" "_" "$ACCESS_LOG" >"$SITE.new"
  {
    echo "# Written by ops/nginx.sh from ops/nginx/mqboard.conf; edits are overwritten."
    if as_root; then echo "user $WORKER_USER $WORKER_GROUP;"; fi
    cat <<CONF
worker_processes $WORKERS;
pid $PIDFILE;
error_log $ERROR_LOG warn;
events {
    worker_connections 1024;
}
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    client_body_temp_path $PREFIX/tmp/body;
    proxy_temp_path $PREFIX/tmp/proxy;
    fastcgi_temp_path $PREFIX/tmp/fastcgi;
    uwsgi_temp_path $PREFIX/tmp/uwsgi;
    scgi_temp_path $PREFIX/tmp/scgi;
    include $SITE;
}
CONF
  } >"$CONF.new"
  mv "$SITE.new" "$SITE"
  mv "$CONF.new" "$CONF"
  if as_root; then
    # The workers (nobody) pass through to their temp dirs and read the static files.
    chown -R "$WORKER_USER:$WORKER_GROUP" "$PREFIX/tmp"
    chmod o+x "$MQB_STATE_DIR" "$PREFIX"
    if [[ -d $STATIC_ROOT ]]; then
      chmod -R a+rX "$STATIC_ROOT"
      runuser -u "$WORKER_USER" -- test -r "$STATIC_ROOT" ||
        warn "$WORKER_USER cannot reach $STATIC_ROOT (a parent dir without o+x): /static/ will answer 403/404"
    fi
  fi
  [[ -d $STATIC_ROOT ]] || warn "no $STATIC_ROOT: run manage.py collectstatic (make topology does)"
}

run_nginx() {
  "$(nginx_bin)" -p "$PREFIX" -c "$CONF" -e "$ERROR_LOG" "$@"
}

# The master of this instance: from the pid file, else found by its own config
# path (unique to this state dir), should the pid file be gone.
our_pid() {
  local pid
  live_pid "$PIDFILE" 'nginx: master process' && return 0
  pid=$(pgrep -f -x "nginx: master process $(nginx_bin) -p $PREFIX -c $CONF -e $ERROR_LOG" | head -n 1)
  [[ -n $pid ]] && printf '%s\n' "$pid"
}

ready() {
  port_open "$PORT"
}

up() {
  install
  take_lock
  write_config
  run_nginx -t -q >>"$ERROR_LOG" 2>&1 || die_with_log "$ERROR_LOG" "the rendered config $CONF is invalid"
  local pid
  if pid=$(our_pid); then
    # Already ours: load the (perhaps changed) config without dropping connections.
    kill -HUP "$pid" || die "could not signal nginx (pid $pid) to reload"
    info "ready on http://$MQB_HOST:$PORT/ -> $WEB_ADDRESSES [reloaded, pid $pid]"
    return 0
  fi
  if port_open "$PORT"; then
    die "port $MQB_HOST:$PORT is taken by $(port_owner "$PORT")"
  fi
  printf '=== %s starting nginx on %s:%s\n' "$(date '+%F %T')" "$MQB_HOST" "$PORT" >>"$ERROR_LOG"
  run_nginx >>"$ERROR_LOG" 2>&1 9>&- || die_with_log "$ERROR_LOG" "nginx failed to start"
  wait_for 10 ready || die_with_log "$ERROR_LOG" "nothing listens on $MQB_HOST:$PORT after 10 s"
  info "ready on http://$MQB_HOST:$PORT/ -> $WEB_ADDRESSES [started, pid $(our_pid)]"
}

down() {
  take_lock
  local pid
  if pid=$(our_pid); then
    printf '=== %s stopping nginx (pid %s)\n' "$(date '+%F %T')" "$pid" >>"$ERROR_LOG"
    stop_pid "$pid" 10
    rm -f "$PIDFILE"
    info "stopped"
  else
    info "not running"
  fi
}

status() {
  local pid
  if pid=$(our_pid) && ready; then
    info "ready on http://$MQB_HOST:$PORT/ -> $WEB_ADDRESSES [pid $pid]"
  else
    info "not running"
    return 1
  fi
}

case "${1:-}" in
  up | down | status | install) "$1" ;;
  render) render ;;
  *)
    echo "usage: $0 up|down|status|install|render" >&2
    exit 2
    ;;
esac
