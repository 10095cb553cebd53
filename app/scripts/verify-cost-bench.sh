#!/usr/bin/env bash
# What the store's verification costs 'retroinfer store get' (StoreGetCost), before and after, in
# one run: each build puts the same prompt into a store of its own, then they answer
# 'store get --generate 1' in alternating order, each in a fresh JVM.
#   app/scripts/verify-cost-bench.sh BEFORE_JAR [TOKENS (16384)] [PAIRS (5)] [WORK_DIR]
# BEFORE_JAR is a retroinfer.jar of the code before, e.g.
#   git worktree add /tmp/before <commit> && (cd /tmp/before && mvn -q -o -pl cli -am package -DskipTests)
#   (the jar is /tmp/before/cli/target/retroinfer.jar)
# The after jar is this checkout's cli/target/retroinfer.jar (./retroinfer builds it when needed),
# copied first so that a rebuild during the run cannot change it. Both use this checkout's model.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
before="$(realpath "$1")"
shift
"$root/retroinfer" --version >/dev/null # builds cli/target/retroinfer.jar if it is missing or stale
source "$root/scripts/find-jdk.sh" >/dev/null 2>&1 || true
work="$(mktemp -d -t retroinfer-verify-XXXXXX)"
cp "$root/cli/target/retroinfer.jar" "$work/after.jar"
# shellcheck disable=SC2046 # the flags file is a space-separated list of options
exec "$JAVA_HOME/bin/java" $(cat "$root/cli/target/jvm.flags") -Dretroinfer.home="$root" \
  -cp "$work/after.jar" org.retroinfer.app.bench.StoreGetCost "$before" "$work/after.jar" \
  "${1:-16384}" "${2:-5}" "${3:-$work}"
