#!/usr/bin/env bash
# RAG reuse on the shipped model (RagReuseBenchmark): recall with stored, re-rotated document K/V
# vs a full recompute, side by side.
#   kv-store/scripts/rag-reuse-bench.sh [TRIALS (10)] [DOCS (4)] [DOC_TOKENS (1024)] [SEED (1)]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
: "${JAVA_HOME:=/usr/lib/jvm/temurin-25-jdk-amd64}"
export JAVA_HOME
work="$(mktemp -d -t retroinfer-ragbench-XXXXXX)"
mvn -q -pl kv-store package -DskipTests
mvn -q -pl kv-store dependency:build-classpath -Dmdep.outputFile="$work/cp.txt"
cp kv-store/target/kv-store-*.jar "$work/kv-store.jar"
flags="$(sed -n 's:.*<retroinfer.jvm.flags>\(.*\)</retroinfer.jvm.flags>.*:\1:p' pom.xml)"
# shellcheck disable=SC2086
exec "$JAVA_HOME/bin/java" $flags -cp "$work/kv-store.jar:$(cat "$work/cp.txt")" \
  org.retroinfer.store.bench.RagReuseBenchmark "$@"
