#!/usr/bin/env bash
# Installs the Debian packages Tiller builds and tests against, only those missing.
set -euo pipefail
packages=(pkg-config libopenblas-dev libvulkan-dev mesa-vulkan-drivers vulkan-tools vulkan-validationlayers glslang-tools spirv-tools)
# CI (.ci/run) also installs Slurm and munge for the Slurm array test (docs/cluster.md): ~15 s, no
# service started in a container. Not on a workstation, where they would become system services.
[ "${TILLER_INSTALL_SLURM:-0}" = 1 ] && packages+=(slurm-wlm munge)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
