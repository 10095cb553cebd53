#!/usr/bin/env bash
# The GPU device check, in two halves.
#
# Here (a machine with Maven, JDK 25 and no GPU needed):
#   gpu-attention/scripts/device-check.sh
# builds gpu-attention (PTX from nvcc where installed), then packs into gpu-attention/target/device-check/
# (git-ignored) a jlink'd JRE (tar.xz), the module's jars and test jars, their dependencies and run.sh,
# and checks that the pack stays far enough under the device tool's 64 MiB (the rest of the working
# tree travels too). It builds against the installed wave-core snapshot; pass --with-wave-core to
# `mvn install` wave-core first.
#
# There (the GPU machine; no Java, no Maven), from the repository root:
#   bash gpu-attention/target/device-check/run.sh [contexts] [batches] [steps] [drift]
# runs every test of the module (GPU tests against wave-core's CPU results included) and then the
# decode benchmark, printing its table last. Exit status 1 if a test failed or the GPU tests did not run.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
root="$(cd "$here/.." && pwd)"
out="$here/target/device-check"
export JAVA_HOME="${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}"
export PATH="$JAVA_HOME/bin:$PATH"
limit_mib=40   # the pack's budget: 64 MiB minus the ~21 MiB working tree (shipped model included)

cd "$root"
if [[ "${1:-}" == "--with-wave-core" ]]; then
  mvn -q -pl wave-core install -DskipTests
fi
mvn -q -pl gpu-attention package -DskipTests
rm -rf "$out"
mkdir -p "$out/lib"
mvn -q -pl gpu-attention dependency:copy-dependencies -DincludeScope=test -DoutputDirectory="$out/lib"
cp "$here"/target/gpu-attention-*-SNAPSHOT.jar "$here"/target/gpu-attention-*-tests.jar "$out/lib/"

# JCuda's natives jar also carries the PTX compiler and NVRTC bindings (25 MB unpacked) that this
# module never loads: keep only the driver and runtime libraries.
natives=$(ls "$out"/lib/jcuda-natives-*-linux-x86_64.jar)
tmp=$(mktemp -d)
(cd "$tmp" && jar xf "$natives" && rm -f lib/libJNvPTXCompiler-* lib/libJNvrtc-* \
  && rm -f "$natives" && jar cfM "$natives" .)
rm -rf "$tmp"

# The command line for the end-to-end phase (demo --device gpu with the shipped model, which the
# working tree carries): our modules and the libraries the demo loads, built in the reactor (no
# install). Chronicle Map (the store's CPU tier) and what is already in lib/ stay out: the demo
# never opens a store, and the pack has a budget.
mvn -q -pl cli -am package dependency:copy-dependencies -DskipTests -DincludeScope=runtime \
  -DoutputDirectory="$out/demo-lib" -DexcludeGroupIds=net.openhft,org.jcuda
cp "$root"/cli/target/cli-*-SNAPSHOT.jar "$out/demo-lib/"
(cd "$out/demo-lib" && for f in *.jar; do [[ -e "$out/lib/$f" ]] && rm -f "$f"; done; rm -f ./*-tests.jar)

# A JRE for a machine without Java: only the modules this module needs.
jlink --add-modules java.base,jdk.incubator.vector,java.logging,java.management,jdk.unsupported,jdk.management,jdk.zipfs \
  --strip-debug --no-man-pages --no-header-files --compress=zip-9 --output "$out/jre"
tar -C "$out" -cJf "$out/jre.tar.xz" jre
rm -rf "$out/jre"

cat > "$out/run.sh" <<'RUN'
#!/usr/bin/env bash
# Runs on the GPU machine: unpack the JRE, then three phases, each in its own JVM under its own time
# limit, so that a hang in one loses none of the others: the GPU tests, the decode benchmark (rows as
# they end, its table last), the CPU-side tests. Exit status 1 if any phase failed.
# Usage: run.sh [contexts] [batches] [steps] [drift]; time limits (s) from GPU_TESTS_S (default 180),
# BENCH_S (300), CPU_TESTS_S (120) and DEMO_S (300, the end-to-end demo --device gpu at
# DEMO_CONTEXT tokens, default 16384); a limit of 0 skips the phase.
set -uo pipefail
d="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
jre="${TMPDIR:-/tmp}/retroinfer-jre"
start=$SECONDS
rm -rf "$jre" && mkdir -p "$jre" && tar -C "$jre" -xJf "$d/jre.tar.xz" || exit 1
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
echo "cores: $(nproc), memory: $(free -g | awk '/Mem:/ {print $2}') GiB"
status=0
phase() {
  local limit=$1; shift
  if (( limit <= 0 )); then echo "=== $1: skipped"; return; fi
  echo "=== $1 (limit ${limit} s, at ${SECONDS} s)"
  timeout -k 10 "$limit" "$jre/jre/bin/java" -Xmx32g -XX:+UseParallelGC \
    --add-modules=jdk.incubator.vector --enable-native-access=ALL-UNNAMED \
    -Dretroinfer.module.dir="$d/../.." -cp "$d/lib/*" org.retroinfer.gpu.DeviceCheck "$@"
  local rc=$?
  echo "=== $1: exit $rc$( (( rc == 124 || rc == 137 )) && echo ' (time limit)') after $((SECONDS - start)) s"
  (( rc == 0 )) || status=1
}
phase "${GPU_TESTS_S:-180}" gpu-tests
phase "${BENCH_S:-300}" bench "$@"
phase "${CPU_TESTS_S:-120}" cpu-tests
# End to end: the shipped model's demo with attention on the GPU (both answers, time per token).
# It must not fall back to the CPU: the fallback line fails the phase.
demo_s="${DEMO_S:-300}"
if (( demo_s > 0 )); then
  echo "=== demo --device gpu (limit ${demo_s} s, at ${SECONDS} s)"
  timeout -k 10 "$demo_s" "$jre/jre/bin/java" -Xmx16g --add-modules=jdk.incubator.vector \
    --enable-native-access=ALL-UNNAMED -Dretroinfer.home="$d/../../.." -Dretroinfer.progress=lines \
    -cp "$d/demo-lib/*:$d/lib/*" org.retroinfer.cli.RetroInfer demo --device gpu \
    --context "${DEMO_CONTEXT:-16384}" 2>&1 | tee "${TMPDIR:-/tmp}/retroinfer-demo-gpu.log"
  rc=${PIPESTATUS[0]}
  if grep -q "no usable CUDA device" "${TMPDIR:-/tmp}/retroinfer-demo-gpu.log"; then
    echo "=== demo --device gpu: ran on the CPU (see the line above)"; rc=1
  fi
  echo "=== demo --device gpu: exit $rc after $((SECONDS - start)) s"
  (( rc == 0 )) || status=1
fi
exit $status
RUN
chmod +x "$out/run.sh"

size=$(du -sb "$out" | cut -f1)
printf 'device-check pack: %s (%.1f MiB)\n' "$out" "$(echo "$size / 1048576" | bc -l)"
ls -la "$out" "$out/lib"
if (( size > limit_mib * 1048576 )); then
  echo "device-check pack is over its ${limit_mib} MiB budget; the device tool carries 64 MiB in all" >&2
  exit 1
fi
