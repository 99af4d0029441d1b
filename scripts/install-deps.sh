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
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The official openai Python client, for the test that talks to `tiller serve` with it
# (ServeOpenAIClientTests, skipped with a note where this venv is missing).
venv="$(dirname "$0")/../.venv-openai"
if ! "$venv/bin/python" -c "import openai" 2>/dev/null; then
  { python3 -m venv "$venv" && "$venv/bin/pip" install -q openai; } >&2 \
    || echo "install-deps: the openai client is not installed (its test will be skipped)" >&2
fi
