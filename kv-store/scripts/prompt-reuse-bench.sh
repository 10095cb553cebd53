#!/usr/bin/env bash
# Prompt-prefix caching across processes on the shipped model (PromptReuseBenchmark):
#   kv-store/scripts/prompt-reuse-bench.sh [TOKENS (16384)] [SEED (1)] [STORE_DIR (fresh temp dir)]
# Builds kv-store against the installed snapshots of the other modules, then runs the harness with
# the root pom's JVM flags (retroinfer.jvm.flags). Needs JAVA_HOME pointing at a JDK 25.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
: "${JAVA_HOME:=/usr/lib/jvm/temurin-25-jdk-amd64}"
export JAVA_HOME
work="$(mktemp -d -t retroinfer-kvbench-XXXXXX)"
mvn -q -pl kv-store package -DskipTests
mvn -q -pl kv-store dependency:build-classpath -Dmdep.outputFile="$work/cp.txt"
# a private copy of the jar: a rebuild during the run cannot change the classes under it
cp kv-store/target/kv-store-*.jar "$work/kv-store.jar"
flags="$(sed -n 's:.*<retroinfer.jvm.flags>\(.*\)</retroinfer.jvm.flags>.*:\1:p' pom.xml)"
# shellcheck disable=SC2086
exec "$JAVA_HOME/bin/java" $flags -cp "$work/kv-store.jar:$(cat "$work/cp.txt")" \
  org.retroinfer.store.bench.PromptReuseBenchmark "$@"
