#!/usr/bin/env bash
# The official openai npm package against retroinfer serve (check.mjs says what it checks).
# Installs the pinned package from the npm registry into node_modules here (once), then runs the
# check; about two minutes on two cores, most of it the first session's 16K-token prefill.
# Extra arguments go to the script, e.g. --prefix-tokens 4096. SCRIPT=load.mjs ./run.sh runs the
# load test instead (load.mjs says what it does).
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "openai check: needs Node.js 18+ with npm" >&2
  exit 1
fi
if [[ ! -d node_modules/openai ]]; then
  npm ci --no-audit --no-fund --silent
fi
exec node "${SCRIPT:-check.mjs}" "$@"
