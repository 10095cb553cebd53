#!/usr/bin/env bash
# Runs the lucene-codec benchmark harness (see BENCHMARKS.md). Arguments go to CodecBenchmark:
#   ./bench.sh [--only 16k|128k] [--queries N] [--dir DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
export JAVA_HOME=${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}
mvn -q -o -pl lucene-codec test-compile dependency:build-classpath \
  -Dmdep.outputFile=target/test-classpath.txt -Dmdep.includeScope=test
cd lucene-codec
# Private copies of the jars: other modules may re-install theirs while a long run is going.
rm -rf target/bench-lib && mkdir -p target/bench-lib
cp -r target/classes target/bench-lib/classes && cp -r target/test-classes target/bench-lib/test-classes
cp $(tr ':' ' ' < target/test-classpath.txt) target/bench-lib/
exec "$JAVA_HOME/bin/java" --add-modules=jdk.incubator.vector --enable-native-access=ALL-UNNAMED \
  --sun-misc-unsafe-memory-access=allow -Xmx8g -Dretroinfer.model=../models/bytecode-llama-10m \
  -cp "target/bench-lib/classes:target/bench-lib/test-classes:target/bench-lib/*" \
  org.retroinfer.lucene.bench.CodecBenchmark "$@"
