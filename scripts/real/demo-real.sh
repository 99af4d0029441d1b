#!/usr/bin/env bash
# The real-model track (docs/real-models.md): prompt steering of SmolLM2-135M-Instruct (GGUF) with a
# persona system prompt and a format instruction, captured as Delta_PS over generated triplets,
# analysed, imitated by DiffMean, Stolfo and a trained A-PSR head, and every method's steered
# answers to held-out questions scored side by side.
#
# Usage: scripts/real/demo-real.sh [MODEL.gguf|DIR] [OUT_DIR]
#   MODEL defaults to SmolLM2 from the cache (fetched on first use, scripts/real/fetch-smollm2.sh);
#   OUT_DIR (default /tmp/tiller-demo-real) receives the triplets, captures, steering files, the
#   analysis reports, the generations and scores.md.
# Environment: TILLER (default .build/release/tiller), TILLER_BACKEND (default auto),
#   TRAIN_QUESTIONS (default 24 of the 36 in questions.jsonl; the rest are held out),
#   EPOCHS and LEARNING_RATE (A-PSR training: default 8 epochs at 0.01; the paper's 1e-3 barely
#   moves a head in the 24 steps two dozen triplets give), LAYER (DiffMean/Stolfo layer, default the middle).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
tiller="${TILLER:-$here/../../.build/release/tiller}"
backend="${TILLER_BACKEND:-auto}"
model="${1:-$("$here/fetch-smollm2.sh")}"
out="${2:-/tmp/tiller-demo-real}"
train_count="${TRAIN_QUESTIONS:-24}"
epochs="${EPOCHS:-8}"
learning_rate="${LEARNING_RATE:-0.01}"
mkdir -p "$out"
say() { printf '\n== %s\n' "$*" >&2; }

layers="$("$tiller" inspect --model "$model" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["layers"])')"
layer="${LAYER:-$((layers / 2))}"
say "model $model: $layers layers; DiffMean and Stolfo at layer $layer; A-PSR on every layer"

declare -A steering=(
    [persona]="You are a pirate. Answer every question the way a pirate talks, with words like arr, matey and ahoy."
    [format]="Answer in all capital letters."
)

# Triplets: x' = the steering prompt as the system message + the question, x = the question alone;
# y' is sampled greedily from x' by tiller capture (and kept in the capture for training).
for task in persona format; do
    python3 - "$here/questions.jsonl" "$out" "$task" "$train_count" "${steering[$task]}" <<'PY'
import json, sys
questions, out, task, count, text = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
lines = [json.loads(l) for l in open(questions)]
with open(f"{out}/triplets-{task}.jsonl", "w") as f:
    for q in lines[:count]:
        user = {"role": "user", "content": q["question"]}
        f.write(json.dumps({"steered": [{"role": "system", "content": text}, user], "unsteered": [user]}) + "\n")
with open(f"{out}/heldout-{task}.jsonl", "w") as f:
    for q in lines[count:]:
        f.write(json.dumps({"id": q["id"], "messages": [{"role": "user", "content": q["question"]}]}) + "\n")
with open(f"{out}/heldout-{task}-prompted.jsonl", "w") as f:
    for q in lines[count:]:
        f.write(json.dumps({"id": q["id"], "messages": [{"role": "system", "content": text},
                                                        {"role": "user", "content": q["question"]}]}) + "\n")
PY
done

for task in persona format; do
    say "$task: capture Delta_PS on every layer ($train_count triplets, y' sampled from x')"
    "$tiller" capture --model "$model" --triplets "$out/triplets-$task.jsonl" --layers all --sample-max-new-tokens 48 \
        --out "$out/capture-$task.safetensors" --backend "$backend"
    say "$task: fit DiffMean and Stolfo at layer $layer"
    for method in diffmean stolfo; do
        "$tiller" fit --method "$method" --capture "$out/capture-$task.safetensors" --layer "$layer" --model "$model" \
            --out "$out/$method-$task.safetensors" --backend "$backend"
    done
    say "$task: train A-PSR (MSE, a head on every layer, $epochs epochs at learning rate $learning_rate) through the frozen model"
    "$tiller" train --method psr --objective mse --layers all --model "$model" --triplets "$out/triplets-$task.jsonl" \
        --epochs "$epochs" --learning-rate "$learning_rate" --sample-max-new-tokens 48 --out "$out/apsr-$task.safetensors" --backend "$backend"
    say "$task: the analysis report (Delta_PS statistics, each method replayed against it)"
    "$tiller" analyze --capture "$out/capture-$task.safetensors" --model "$model" \
        --steer "$out/diffmean-$task.safetensors" --steer "$out/stolfo-$task.safetensors" --steer "$out/apsr-$task.safetensors" \
        --out "$out/report-$task.html" --json --backend "$backend" > "$out/analysis-$task.json"
    say "$task: held-out questions: unsteered, prompt, DiffMean, Stolfo, A-PSR"
    common=(--model "$model" --max-new-tokens 64 --backend "$backend")
    "$tiller" generate "${common[@]}" --prompts "$out/heldout-$task.jsonl" --out "$out/gen-$task--unsteered.jsonl"
    "$tiller" generate "${common[@]}" --prompts "$out/heldout-$task-prompted.jsonl" --out "$out/gen-$task--prompt.jsonl"
    for method in diffmean stolfo apsr; do
        "$tiller" generate "${common[@]}" --prompts "$out/heldout-$task.jsonl" --steer "$out/$method-$task.safetensors" \
            --out "$out/gen-$task--$method.jsonl"
    done
done

python3 "$here/score.py" "$out" | tee "$out/scores.md"
say "done: reports $out/report-persona.html and $out/report-format.html; answers $out/gen-*.jsonl; scores $out/scores.md"
