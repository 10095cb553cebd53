#!/usr/bin/env bash
# Runs the benchmarks of this module, building them first when needed.
#
#   benchmarks/bench.sh --quick                 decode attention side by side, 16K and 32K (under 30 s on 2 cores once built)
#   benchmarks/bench.sh [AttentionBench options] e.g. --contexts 16384,32768,131072 --rounds 30
#   benchmarks/bench.sh --jmh [JMH options]     the JMH benchmarks, e.g. --jmh IndexBuildBenchmark
#   benchmarks/bench.sh --overlap [tokens] [rounds] [threads]  per core: each attention kernel in memory vs in
#                                               cache, next to a streaming read (OverlapBench)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/find-jdk.sh"
JAR="$ROOT/benchmarks/target/benchmarks.jar"
if [[ ! -f "$JAR" || -n "$(find "$ROOT/wave-core/src" "$ROOT/benchmarks/src" "$ROOT/pom.xml" -newer "$JAR" -type f -print -quit)" ]]; then
  echo "bench: building benchmarks/target/benchmarks.jar ..." >&2
  # Maven 3.8 writes colour resets (ESC[0m) even in batch mode: dropped
  mvn -B -q -f "$ROOT/pom.xml" -pl benchmarks -am package -DskipTests 2>&1 \
    | sed -u 's/\x1b\[[0-9;]*m//g' >&2
fi
FLAGS=$(sed -n 's:.*<retroinfer.jvm.flags>\(.*\)</retroinfer.jvm.flags>.*:\1:p' "$ROOT/pom.xml")
case "${1:-}" in
  --jmh) shift; RUN=(-jar "$JAR") ;;
  --overlap) shift; RUN=(-cp "$JAR" org.retroinfer.bench.OverlapBench) ;;
  *) RUN=(-cp "$JAR" org.retroinfer.bench.AttentionBench) ;;
esac
# standard error without the JVM's start-up line about the incubator module (scripts/find-jdk.sh)
exec 3> >(retroinfer_drop_incubator_notice >&2)
filter=$!
status=0
# shellcheck disable=SC2086 # FLAGS is a space-separated list of options
"$JAVA_HOME/bin/java" $FLAGS "${RUN[@]}" "$@" 2>&3 || status=$?
exec 3>&-
wait "$filter" 2>/dev/null || true # its last bytes reach the terminal first
exit "$status"
