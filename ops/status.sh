#!/usr/bin/env bash
# One line per service: "NAME: ready on ..." or "NAME: not running" (or
# "running ... but NOT ready"). Exits 0 only if all named services are ready.
# Usage: ops/status.sh [rabbitmq|kafka|redis|postgres ...]   (default: all four)
set -euo pipefail
SVC=status
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if (($# == 0)); then set -- "${ALL_SERVICES[@]}"; fi
check_services "$@"
ensure_dirs
rc=0
for s in "$@"; do
  "$OPS_DIR/$s.sh" status || rc=1
done
exit "$rc"
