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

# A JRE for a machine without Java: only the modules this module needs.
jlink --add-modules java.base,jdk.incubator.vector,java.logging,java.management,jdk.unsupported,jdk.management,jdk.zipfs \
  --strip-debug --no-man-pages --no-header-files --compress=zip-9 --output "$out/jre"
tar -C "$out" -cJf "$out/jre.tar.xz" jre
rm -rf "$out/jre"

cat > "$out/run.sh" <<'RUN'
#!/usr/bin/env bash
# Runs on the GPU machine: unpack the JRE, run the tests and the benchmark (table last).
set -euo pipefail
d="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
jre="${TMPDIR:-/tmp}/retroinfer-jre"
rm -rf "$jre" && mkdir -p "$jre" && tar -C "$jre" -xJf "$d/jre.tar.xz"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || true
exec "$jre/jre/bin/java" -Xmx32g -XX:+UseParallelGC --add-modules=jdk.incubator.vector \
  --enable-native-access=ALL-UNNAMED -Dretroinfer.module.dir="$d/../.." \
  -cp "$d/lib/*" org.retroinfer.gpu.DeviceCheck "$@"
RUN
chmod +x "$out/run.sh"

size=$(du -sb "$out" | cut -f1)
printf 'device-check pack: %s (%.1f MiB)\n' "$out" "$(echo "$size / 1048576" | bc -l)"
ls -la "$out" "$out/lib"
if (( size > limit_mib * 1048576 )); then
  echo "device-check pack is over its ${limit_mib} MiB budget; the device tool carries 64 MiB in all" >&2
  exit 1
fi
