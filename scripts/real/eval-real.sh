#!/usr/bin/env bash
# The field's protocols on SmolLM2-135M-Instruct (docs/real-models.md, "tiller eval on SmolLM2"):
#
# ifeval-format: per instruction, Stolfo and S-PSR(LL) are made from triplets on the training
#   questions (scripts/real/questions.jsonl, none of which is an IFEval question): x' = the question
#   followed by the instruction, x = the question. Stolfo is fitted on the last prompt token's
#   difference (every position steered); S-PSR(LL) is one head at LAYER trained with the prompted
#   answer's likelihood. Then `tiller eval` asks that instruction's committed IFEval items with
#   none, prompt, Stolfo, S-PSR(LL) and S-PSR(LL) + prompt, scored by IFEval's checkers, coherence
#   by the proxy.
# persona: per trait, triplets on the training questions under the trait's system prompt; DiffMean
#   at LAYER, S-PSR(MSE) at LAYER and A-PSR(MSE) on every layer; `tiller eval compare` bisects each
#   file's alpha for matched coherence (the proxy) and a judge rates the trait. No LLM judge can be
#   had here (SmolLM2 rates everything "The answer is 100."), so the trait judge is VADER sentiment
#   behind an OpenAI-compatible endpoint (scripts/real/sentiment_judge.py): traits whose content is
#   sentiment only (optimistic; evil, impolite as negative sentiment).
#
# Usage: scripts/real/eval-real.sh [ifeval|persona|all] [OUT_DIR]
# Environment: TILLER (default .build/release/tiller), MODEL (default SmolLM2 from the cache),
#   INSTRUCTIONS (ifeval group keys, default the ones listed below), TRAITS (default "optimistic
#   evil"), LAYER (default the middle layer), TRAIN_QUESTIONS (default 24), LIMIT (persona
#   questions per trait, default 10), PORT (the judge's, default 8432), JUDGE_PYTHON (a
#   python with vaderSentiment, default /work/venv-torch/bin/python).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$here/../.."
tiller="${TILLER:-$root/.build/release/tiller}"
model="${MODEL:-$("$here/fetch-smollm2.sh")}"
part="${1:-all}"
out="${2:-/tmp/tiller-eval-real}"
train_count="${TRAIN_QUESTIONS:-24}"
limit="${LIMIT:-10}"
port="${PORT:-8432}"
sets="$root/Sources/TillerEvaluation/Resources/prompt-sets"
mkdir -p "$out"
say() { printf '\n== %s (%s)\n' "$*" "$(date -u +%H:%M:%S)" >&2; }
layers="$("$tiller" inspect --model "$model" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["layers"])')"
layer="${LAYER:-$((layers / 2))}"
common=(--model "$model" --backend cpu)

# Writes the triplets of one steering (question + instruction, or system prompt + question) and
# the prompt set of its evaluation items.
split() { # kind key set-file out-prefix
    python3 - "$here/questions.jsonl" "$train_count" "$@" <<'PY'
import json, sys
questions, count, kind, key, set_file, prefix = sys.argv[1], int(sys.argv[2]), *sys.argv[3:]
items = [json.loads(l) for l in open(set_file)]
if kind == "ifeval":
    items = [i for i in items if i["key"].rsplit("-", 1)[0] == key]
    text = items[0]["instruction"]
    steer = lambda q: [{"role": "user", "content": f"{q} {text}"}]
else:
    items = [i for i in items if i["trait"] == key]
    text = items[0]["instruction"]
    steer = lambda q: [{"role": "system", "content": text}, {"role": "user", "content": q}]
with open(f"{prefix}-triplets.jsonl", "w") as f:
    for q in [json.loads(l)["question"] for l in open(questions)][:count]:
        f.write(json.dumps({"steered": steer(q), "unsteered": [{"role": "user", "content": q}]}) + "\n")
with open(f"{prefix}-items.jsonl", "w") as f:
    for i in items:
        f.write(json.dumps(i) + "\n")
PY
}

ifeval() {
    # Three instructions SmolLM2 follows when asked (the whole-set run: title 86%, 3 bullets 52%,
    # end phrase 33%) and two it never does (lowercase, capitals: 0%), as the group keys of the
    # committed set (fmt-NN).
    local keys="${INSTRUCTIONS:-fmt-03 fmt-12 fmt-10 fmt-08 fmt-13}"
    say "ifeval: none and prompt on all $(wc -l < "$sets/ifeval-format.jsonl") items"
    "$tiller" eval run --protocol ifeval-format "${common[@]}" --out "$out/ifeval-all-results.jsonl" --steer none --steer prompt \
        --batch-size 32 --by-group > "$out/ifeval-all-table.txt"
    for key in $keys; do
        local p="$out/ifeval-$key"
        split ifeval "$key" "$sets/ifeval-format.jsonl" "$p"
        if [ ! -s "$p-stolfo.safetensors" ]; then
            say "ifeval $key: capture at layer $layer and fit Stolfo"
            "$tiller" capture "${common[@]}" --triplets "$p-triplets.jsonl" --layers "$layer" --sample-max-new-tokens 8 \
                --out "$p-capture.safetensors"
            "$tiller" fit "${common[@]}" --method stolfo --capture "$p-capture.safetensors" --layer "$layer" --rows last_prompt \
                --location all --out "$p-stolfo.safetensors"
        fi
        if [ ! -s "$p-spsr-ll.safetensors" ]; then
            say "ifeval $key: train S-PSR(LL) at layer $layer"
            "$tiller" train "${common[@]}" --method psr --objective ll --layers "$layer" --triplets "$p-triplets.jsonl" \
                --learning-rate 0.01 --batch-size 4 --sample-max-new-tokens 128 --out "$p-spsr-ll.safetensors"
        fi
    done
    for key in $keys; do
        local p="$out/ifeval-$key"
        # The none and prompt answers of this instruction's items are the whole-set run's: the
        # results file resumes from them (same protocol, model and length) instead of asking again.
        [ -s "$p-results.jsonl" ] || grep "\"id\": *\"$key-" "$out/ifeval-all-results.jsonl" > "$p-results.jsonl" || true
        say "ifeval $key: Stolfo, S-PSR(LL) and S-PSR(LL) + prompt"
        "$tiller" eval run --protocol ifeval-format "${common[@]}" --prompts "$p-items.jsonl" --out "$p-results.jsonl" \
            --steer none --steer prompt --steer "$p-stolfo.safetensors" --steer "$p-spsr-ll.safetensors" > "$p-table.txt"
        "$tiller" eval run --protocol ifeval-format "${common[@]}" --prompts "$p-items.jsonl" --out "$p-results.jsonl" \
            --steer "$p-spsr-ll.safetensors" --with-prompt >> "$p-table.txt"
    done
}

persona() {
    say "persona: the trait judge is VADER sentiment behind an OpenAI-compatible endpoint on port $port"
    "${JUDGE_PYTHON:-/work/venv-torch/bin/python}" "$here/sentiment_judge.py" --port "$port" > "$out/judge.log" 2>&1 &
    local judge_pid=$!
    trap 'kill $judge_pid 2>/dev/null || true' RETURN
    until curl -sf "http://127.0.0.1:$port/v1/models" > /dev/null; do sleep 1; kill -0 $judge_pid; done
    local judge=(--judge-url "http://127.0.0.1:$port/v1" --judge-model vader --judge-cache "$out/judge-cache.jsonl" --coherence proxy)
    for trait in ${TRAITS:-optimistic evil}; do
        local p="$out/persona-$trait"
        split persona "$trait" "$sets/persona.jsonl" "$p"
        head -n "$limit" "$p-items.jsonl" > "$p-eval.jsonl"
        if [ ! -s "$p-capture.safetensors" ]; then
            say "persona $trait: capture at layer $layer and fit DiffMean"
            "$tiller" capture "${common[@]}" --triplets "$p-triplets.jsonl" --layers "$layer" --sample-max-new-tokens 48 \
                --out "$p-capture.safetensors"
        fi
        [ -s "$p-diffmean.safetensors" ] || "$tiller" fit "${common[@]}" --method diffmean --capture "$p-capture.safetensors" \
            --layer "$layer" --out "$p-diffmean.safetensors"
        for heads in single all; do
            local f="$p-$([ $heads = single ] && echo spsr || echo apsr)-mse.safetensors"
            [ -s "$f" ] && continue
            say "persona $trait: train $([ $heads = single ] && echo "S-PSR(MSE) at layer $layer" || echo "A-PSR(MSE) on every layer")"
            "$tiller" train "${common[@]}" --method psr --objective mse --layers "$([ $heads = single ] && echo "$layer" || echo all)" \
                --triplets "$p-triplets.jsonl" --epochs 8 --learning-rate 0.01 --batch-size 4 --regularizer 0.1 \
                --sample-max-new-tokens 48 --out "$f"
        done
        say "persona $trait: matched coherence (proxy), trait by the judge"
        "$tiller" eval compare --protocol persona "${common[@]}" "${judge[@]}" --prompts "$p-eval.jsonl" --max-new-tokens 64 \
            --steer "$p-diffmean.safetensors" --steer "$p-spsr-mse.safetensors" --steer "$p-apsr-mse.safetensors" \
            --max-alpha 8 --steps 2 --out "$p-results.jsonl" | tee "$p-table.txt"
    done
}

case "$part" in
    ifeval) ifeval ;;
    persona) persona ;;
    all) ifeval; persona ;;
    *) echo "eval-real.sh: unknown part '$part' (ifeval, persona or all)" >&2; exit 2 ;;
esac
python3 "$here/eval_tables.py" "$out" | tee "$out/tables.md"
