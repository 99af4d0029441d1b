#!/usr/bin/env bash
# The GPU benchmark, in two halves.
#
# Here (the development machine):  bash scripts/gpu-bench.sh prepare
#   builds tiller-bench statically into .gpu/ and downloads the Debian packages of the Vulkan
#   loader and OpenBLAS (the binary's only shared libraries besides libc/libstdc++) into .gpu/.
# There (the GPU machine, e.g. through the device tool with carry [".gpu"]):  bash scripts/gpu-bench.sh run
#   unpacks the packages, measures PyTorch on the GPU suite's shapes, then tiller-bench on
#   Vulkan, and prints tiller-bench's table with the ratios (JSON in $OUT when set).
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
prepare)
  grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
  mkdir -p .gpu
  swift build -c release --static-swift-stdlib --product tiller-bench
  cp .build/release/tiller-bench .gpu/
  (cd .gpu && apt-get download libvulkan1 libopenblas0-pthread libgfortran5 2>/dev/null)
  ls -la .gpu
  ;;
run)
  for f in .gpu/*.deb; do dpkg -x "$f" /; done
  ldconfig
  [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ] && export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  out=${OUT:-/tmp}
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader || true
  PYTHONUNBUFFERED=1 python3 Benchmarks/TillerBench/gpu_reference.py "$out/torch.json"
  .gpu/tiller-bench --backend vulkan --torch "$out/torch.json" --json > "$out/tiller-gpu.json"
  .gpu/tiller-bench --backend vulkan --torch "$out/torch.json"
  ;;
*)
  echo "usage: scripts/gpu-bench.sh prepare|run" >&2
  exit 2
  ;;
esac
