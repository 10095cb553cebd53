#!/usr/bin/env bash
# OpenSearch refuses to run as root. When the tests run as root, opensearch-plugin's real-server
# test starts the server as this unprivileged user; this creates it if it is missing (idempotent).
# CI (.ci/run) calls it; on a machine where you are not root, nothing is needed.
set -euo pipefail
user="${RETROINFER_OPENSEARCH_USER:-retroinfer-os}"
if [ "$(id -u)" -ne 0 ]; then
  exit 0
fi
if ! id "$user" >/dev/null 2>&1; then
  useradd --system --no-create-home --shell /usr/sbin/nologin "$user"
  echo "created the unprivileged user $user for the OpenSearch test server" >&2
fi
