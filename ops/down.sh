#!/usr/bin/env bash
# Stop the services that ops/up.sh started (pid files in
# $MQB_STATE_DIR/run). Servers we did not start are left alone. Services that
# are not running are fine: exits 0 unless a stop itself failed.
# Usage: ops/down.sh [rabbitmq|kafka|redis|postgres ...]   (default: all four)
set -euo pipefail
SVC=down
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if (($# == 0)); then set -- "${ALL_SERVICES[@]}"; fi
check_services "$@"
ensure_dirs
run_each down "$@"
