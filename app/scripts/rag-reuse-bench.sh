#!/usr/bin/env bash
# RAG reuse on the shipped model (RagReuseBenchmark): recall with stored, re-rotated document K/V
# vs a full recompute, side by side.
#   app/scripts/rag-reuse-bench.sh [TRIALS (10)] [DOCS (4)] [DOC_TOKENS (1024)] [SEED (1)]
# Builds cli/target/retroinfer.jar (through ./retroinfer, which finds a JDK 25) when it is missing or
# stale, and runs the harness from a private copy of it with the project's JVM flags.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
"$root/retroinfer" --version >/dev/null # builds cli/target/retroinfer.jar if it is missing or stale
source "$root/scripts/find-jdk.sh" >/dev/null 2>&1 || true
work="$(mktemp -d -t retroinfer-bench-XXXXXX)"
# a private copy of the jar: a rebuild during the run cannot change the classes under it
cp "$root/cli/target/retroinfer.jar" "$work/retroinfer.jar"
# shellcheck disable=SC2046 # the flags file is a space-separated list of options
exec "$JAVA_HOME/bin/java" $(cat "$root/cli/target/jvm.flags") -Dretroinfer.home="$root" \
  -cp "$work/retroinfer.jar" org.retroinfer.app.bench.RagReuseBenchmark "$@"
