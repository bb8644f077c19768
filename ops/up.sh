#!/usr/bin/env bash
# Start the local services (brokers, Redis, PostgreSQL), reusing any that already run and answer.
# Usage: ops/up.sh [rabbitmq|kafka|redis|postgres ...]   (default: all four)
# Prints one "NAME: ready on ..." line per service; exits non-zero if any
# service could not be made ready (its error line says why).
set -euo pipefail
SVC=up
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if (($# == 0)); then set -- "${ALL_SERVICES[@]}"; fi
check_services "$@"
ensure_dirs

# Installs first, one at a time: apt-get holds the dpkg lock, so two
# parallel installs would fail. Each is a quick no-op once installed.
for s in "$@"; do
  "$OPS_DIR/$s.sh" install
done

# Then start them in parallel.
run_each up "$@"
