#!/usr/bin/env bash
# Prompt-prefix caching across processes on the shipped model (PromptReuseBenchmark):
#   app/scripts/prompt-reuse-bench.sh [TOKENS (16384)] [SEED (1)] [STORE_DIR (fresh temp dir)]
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
  -cp "$work/retroinfer.jar" org.retroinfer.app.bench.PromptReuseBenchmark "$@"
