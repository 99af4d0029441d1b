#!/usr/bin/env bash
# A real model's GGUF file against transformers and llama.cpp on this machine (issue 12, item 7):
# prefill 512, one-sequence decode, the 32-prompt batch, load time and peak memory, each of
# Tiller's variants (f32, bf16: the file dequantized at load; native: its blocks kept) against
# llama.cpp at the same precision (the file as given, F32 and F16 copies) and transformers (f32).
#
#   bash scripts/bench-gguf.sh [FILE.gguf] [ROUNDS]
#
# Each round runs transformers, llama.cpp, then tiller-bench one variant per process (so each
# variant's peak memory is a fresh process's, like the other tools'), then native Tiller against
# llama.cpp on a Q8_0 copy of the file. The sides of a ratio are measured minutes apart: on a
# shared machine, look at the spread over rounds and the load averages printed with them.
# Copies of the file (F32, F16, Q8_0) go to ~/.cache/tiller/llamacpp; results to $OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
GGUF=${1:-$HOME/.cache/tiller/models/SmolLM2-135M-Instruct.Q4_1.gguf}
ROUNDS=${2:-1}
TORCH_PYTHON=${TORCH_PYTHON:-/work/venv-torch/bin/python}
LLAMA_PYTHON=${LLAMA_PYTHON:-/work/venv-llama/bin/python}
OUT=${OUT:-/tmp/tiller-gguf-bench}
# OpenMP threads (llama.cpp's, PyTorch's) spin between ops; on a machine shared with other work
# that starves their own partner thread (compare_llamacpp.py's docstring has the figures).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
mkdir -p "$OUT"

swift build -c release --product tiller-bench
BENCH=$(swift build -c release --product tiller-bench --show-bin-path)/tiller-bench
Q8=$("$LLAMA_PYTHON" Benchmarks/TillerBench/compare_llamacpp.py "$GGUF" --write-copy q8_0 2>/dev/null)

for round in $(seq 1 "$ROUNDS"); do
    echo "== round $round, load $(cut -d' ' -f1-3 /proc/loadavg): transformers" >&2
    "$TORCH_PYTHON" Benchmarks/TillerBench/compare_transformers.py "$GGUF" > "$OUT/transformers-$round.json"
    echo "== round $round, load $(cut -d' ' -f1-3 /proc/loadavg): llama.cpp" >&2
    "$LLAMA_PYTHON" Benchmarks/TillerBench/compare_llamacpp.py "$GGUF" --omp-wait-policy "$OMP_WAIT_POLICY" > "$OUT/llamacpp-$round.json"
    "$LLAMA_PYTHON" Benchmarks/TillerBench/compare_llamacpp.py "$Q8" --variants native --omp-wait-policy "$OMP_WAIT_POLICY" > "$OUT/llamacpp-q8_0-$round.json"
    for variant in f32 bf16 native; do
        echo "== round $round, load $(cut -d' ' -f1-3 /proc/loadavg): tiller-bench $variant" >&2
        "$BENCH" --model "$GGUF" --filter "model/$variant" --transformers "$OUT/transformers-$round.json" \
            --llamacpp "$OUT/llamacpp-$round.json" --json > "$OUT/tiller-$variant-$round.json"
    done
    echo "== round $round, load $(cut -d' ' -f1-3 /proc/loadavg): tiller-bench native on the Q8_0 copy" >&2
    "$BENCH" --model "$Q8" --filter model/native --llamacpp "$OUT/llamacpp-q8_0-$round.json" --json \
        | sed 's#"model/native"#"model/native-q8_0"#' > "$OUT/tiller-q8_0-$round.json"
done

python3 Benchmarks/TillerBench/summarize_rounds.py "$OUT"/tiller-*.json
