#!/usr/bin/env bash
# Compiles the CUDA kernels to PTX: the one place that names nvcc's flags (the Maven build, the
# staleness test and a human refreshing the checked-in PTX all call this script).
#
#   scripts/build-ptx.sh OUT.ptx        compile src/main/cuda/retroinfer_kernels.cu to OUT.ptx
#   scripts/build-ptx.sh --update       refresh the checked-in PTX resource
#
# Target: compute_80 PTX (Ampere and newer). The driver JIT-compiles it for the GPU at hand
# (H100/H200 are sm_90); PTX rather than a fatbin because cuModuleLoadData of PTX is what works
# through JCuda (ARCHITECTURE.md). No -lineinfo: it would put the build's absolute path in the PTX.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="$here/src/main/cuda/retroinfer_kernels.cu"
checked_in="$here/src/main/resources/org/retroinfer/gpu/retroinfer_kernels.ptx"
nvcc="${NVCC:-$(command -v nvcc || true)}"
if [[ -z "$nvcc" && -x /usr/local/cuda/bin/nvcc ]]; then nvcc=/usr/local/cuda/bin/nvcc; fi
if [[ -z "$nvcc" ]]; then
  echo "build-ptx: nvcc not found (set NVCC or put nvcc on PATH); the checked-in PTX is used" >&2
  exit 3
fi
out="${1:?usage: build-ptx.sh OUT.ptx | --update}"
if [[ "$out" == "--update" ]]; then out="$checked_in"; fi
mkdir -p "$(dirname "$out")"
tmp="$(mktemp "${TMPDIR:-/tmp}/retroinfer-ptx.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
# Compiled from inside its folder with a relative name: the PTX then does not depend on where
# the checkout lives.
(cd "$(dirname "$src")" && "$nvcc" --ptx -arch=compute_80 -std=c++17 -O3 -o "$tmp" "$(basename "$src")")
mv "$tmp" "$out"
chmod 644 "$out"
trap - EXIT
