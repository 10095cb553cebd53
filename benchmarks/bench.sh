#!/usr/bin/env bash
# Runs the benchmarks of this module, building them first when needed.
#
#   benchmarks/bench.sh --quick                 decode attention side by side, 16K and 32K (< 1 minute)
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
  mvn -B -q -f "$ROOT/pom.xml" -pl benchmarks -am package -DskipTests >&2
fi
FLAGS=$(sed -n 's:.*<retroinfer.jvm.flags>\(.*\)</retroinfer.jvm.flags>.*:\1:p' "$ROOT/pom.xml")
if [[ "${1:-}" == "--jmh" ]]; then
  shift
  # shellcheck disable=SC2086
  exec "$JAVA_HOME/bin/java" $FLAGS -jar "$JAR" "$@"
fi
if [[ "${1:-}" == "--overlap" ]]; then
  shift
  # shellcheck disable=SC2086
  exec "$JAVA_HOME/bin/java" $FLAGS -cp "$JAR" org.retroinfer.bench.OverlapBench "$@"
fi
# shellcheck disable=SC2086
exec "$JAVA_HOME/bin/java" $FLAGS -cp "$JAR" org.retroinfer.bench.AttentionBench "$@"
