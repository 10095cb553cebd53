#!/usr/bin/env bash
# Runs the lucene-codec benchmark harness (see BENCHMARKS.md). Arguments go to CodecBenchmark:
#   ./bench.sh [--only 16k|128k] [--queries N] [--dir DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
export JAVA_HOME=${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}
mvn -q -o -pl lucene-codec test-compile dependency:build-classpath \
  -Dmdep.outputFile=target/test-classpath.txt -Dmdep.includeScope=test
cd lucene-codec
exec "$JAVA_HOME/bin/java" --add-modules=jdk.incubator.vector --enable-native-access=ALL-UNNAMED \
  --sun-misc-unsafe-memory-access=allow -Xmx8g -Dretroinfer.model=../models/bytecode-llama-10m \
  -cp "target/classes:target/test-classes:$(cat target/test-classpath.txt)" \
  org.retroinfer.lucene.bench.CodecBenchmark "$@"
