#!/usr/bin/env bash
# What the tests need besides the brokers: Debian's Chromium for the browser
# tests (test tools cannot download their own browser here, and need not).
set -euo pipefail

if ! command -v chromium >/dev/null 2>&1; then
  echo "test-prereqs: installing Debian's chromium for the browser tests"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq chromium >/dev/null 2>&1 \
    || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } \
    || { echo "test-prereqs: cannot install chromium (apt-get failed)" >&2; exit 1; }
fi

# Debian's nginx for the production topology tests (ops/nginx.sh runs its own instance).
"$(dirname "$0")/../ops/nginx.sh" install
