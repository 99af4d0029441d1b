#!/usr/bin/env bash
# Model throughput against transformers on this machine (issue 4): prefill, one-sequence decode and
# a 32-prompt batch, Tiller with f32 and bf16 weights, transformers (PyTorch, 2 threads, f32).
#
#   bash scripts/bench-models.sh [DIR] [ROUNDS]
#
# DIR (default /tmp/qwen-0.5b-random) gets the random Qwen2.5-0.5B-shaped checkpoint if it has
# none yet (about 3 GB, never commit it). Each round runs transformers, then tiller-bench with that
# round's transformers figures, so the two sides of every ratio are measured minutes apart; on a
# shared VM whose memory bandwidth and clock move by 2x from minute to minute, look at the spread
# over rounds, not at one figure. Results go to $OUT (default /tmp/tiller-model-bench).
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${1:-/tmp/qwen-0.5b-random}
ROUNDS=${2:-3}
PYTHON=${PYTHON:-/root/venv-ref/bin/python}
OUT=${OUT:-/tmp/tiller-model-bench}
mkdir -p "$OUT"

"$PYTHON" scripts/fixtures/make_speed_checkpoint.py "$DIR"
swift build -c release --product tiller-bench
BENCH=$(swift build -c release --product tiller-bench --show-bin-path)/tiller-bench

for round in $(seq 1 "$ROUNDS"); do
    echo "== round $round: transformers" >&2
    "$PYTHON" Benchmarks/TillerBench/compare_transformers.py "$DIR" > "$OUT/transformers-$round.json"
    echo "== round $round: tiller-bench" >&2
    "$BENCH" --model "$DIR" --transformers "$OUT/transformers-$round.json" --json > "$OUT/tiller-$round.json"
done

"$PYTHON" - "$OUT" "$ROUNDS" <<'EOF'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
rows = {}
for r in range(1, rounds + 1):
    doc = json.load(open(f"{out}/tiller-{r}.json"))
    for row in doc["rows"]:
        rows.setdefault((row["name"], row["shape"]), []).append(row)
print(f"{'benchmark':<11} {'shape':<17} {'tiller (median)':>16} {'reference':>10} {'ratio per round':<28} target")
for (name, shape), rs in rows.items():
    figures = [r["figure"] for r in rs]
    refs = [r["reference"]["figure"] for r in rs]
    ratios = [r["ratio"] for r in rs]
    targets = "; ".join(f"{t['metric']} >= {t['threshold']:g}: {sum(1 for r in rs for u in r['targets'] if u['metric'] == t['metric'] and u['pass'])}/{len(rs)} pass"
                        for t in rs[0]["targets"])
    print(f"{name:<11} {shape:<17} {statistics.median(figures):>12.1f} {rs[0]['unit']:<5} {statistics.median(refs):>8.1f}  "
          f"{' '.join(f'{x:.2f}' for x in ratios):<28} {targets or '-'}")
EOF
