#!/usr/bin/env python3
"""Train the Tiller lab model: a small Llama that speaks the generated lab chat language.

Usage (from the repository root; the spec is docs/lab.md, "The model"):

    .build/debug/tiller lab corpus --seed 1 --out /tmp/lab-corpus
    /root/venv-ref/bin/python scripts/lab/train_lab_model.py \\
        --corpus /tmp/lab-corpus --out /tmp/tiller-lab --seed 1 --threads 2 --minutes 50

What it does, in order:

1. Reads DIR/train.jsonl, DIR/heldout.jsonl and DIR/world.json as written by `tiller lab corpus`.
2. Trains a byte-level BPE tokenizer (HF `tokenizers`: ByteLevel pre-tokenizer with
   add_prefix_space=False and the GPT-2 split regex, ByteLevel decoder, no normalizer and no
   post-processor) on every text of train.jsonl (system, user and assistant contents of
   `messages` and of `unsteered_messages`). The special tokens <|bos|> <|end|> <|system|> <|user|>
   <|assistant|> <|pad|> take ids 0..5. tokenizer_config.json carries the chat template (bos, then
   "<|role|>\\n{content}<|end|>\\n" per message, "<|assistant|>\\n" for add_generation_prompt).
3. Trains a LlamaForCausalLM (f32, tied embeddings) on the chat-formatted train examples: every
   line's `messages`, plus, for a share of the steered lines (--unsteered-extra), the line's
   `unsteered_messages` as one more (unsteered) example. The loss is on the assistant content
   tokens and the closing <|end|> only. AdamW, linear warmup, cosine decay to --min-lr-ratio of the
   peak. Batches are right-padded and bucketed by length (no attention mask is needed: with right
   padding the causal mask already keeps every real token off the pads, and pads carry no loss).
   Without --steps the run sizes itself to --minutes: it times the first steps, sets the schedule's
   length from that, and shortens the schedule (never lengthens it) if the machine slows down.
4. Logs the held-out loss (heldout.jsonl, steered and unsteered, per kind) and saves in Hugging
   Face layout: config.json, generation_config.json, model.safetensors, tokenizer.json,
   tokenizer_config.json, README.md (the model card, with a "## Measured with tiller" placeholder).
5. Reloads the saved directory with transformers and prints greedy answers to a few held-out
   prompts, so a person sees whether the model follows steering.

Deterministic for a seed, a corpus and a step count on one machine (CPU, fixed thread count);
rerun with the recorded --steps to reproduce a time-sized run's schedule.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import random
import shlex
import sys
import time
from pathlib import Path

SPECIAL_TOKENS = ["<|bos|>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>", "<|pad|>"]
BOS, EOS, PAD = "<|bos|>", "<|end|>", "<|pad|>"

# The spec's chat format, kept to the Jinja subset Tiller interprets.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\\n' + message['content'] + '<|end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"
)

EVAL_MARKER = "<!-- tiller-lab-eval -->"


def render_chat(messages: list[dict], add_generation_prompt: bool) -> str:
    """Python twin of CHAT_TEMPLATE (checked against transformers' rendering on load)."""
    text = BOS
    for m in messages:
        text += f"<|{m['role']}|>\n{m['content']}{EOS}\n"
    if add_generation_prompt:
        text += "<|assistant|>\n"
    return text


def log(msg: str) -> None:
    print(msg, flush=True)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_jsonl(path: Path) -> list[dict]:
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                sys.exit(f"{path}:{n}: not JSON: {e}")
    return rows


def fmt_duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


# ---------------------------------------------------------------------------------------------
# Tokenizer


def train_tokenizer(texts: list[str], vocab_size: int, min_frequency: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    for i, s in enumerate(SPECIAL_TOKENS):
        if tok.token_to_id(s) != i:
            sys.exit(f"special token {s} got id {tok.token_to_id(s)}, expected {i}")
    return tok


def tokenizer_config(max_len: int) -> dict:
    added = {}
    for i, s in enumerate(SPECIAL_TOKENS):
        added[str(i)] = {"content": s, "lstrip": False, "normalized": False, "rstrip": False,
                         "single_word": False, "special": True}
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": BOS,
        "eos_token": EOS,
        "pad_token": PAD,
        "add_bos_token": False,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": max_len,
        "added_tokens_decoder": added,
        "chat_template": CHAT_TEMPLATE,
    }


# ---------------------------------------------------------------------------------------------
# Data


def encode_examples(tok, conversations: list[list[dict]], max_len: int):
    """Token ids and loss labels (-100 off the assistant content + closing <|end|>)."""
    texts, spans = [], []
    for msgs in conversations:
        text = BOS
        targets = []
        for m in msgs:
            head = f"<|{m['role']}|>\n"
            start = len(text) + len(head)
            text += head + m["content"] + EOS
            if m["role"] == "assistant":
                targets.append((start, len(text)))  # content and the closing <|end|>
            text += "\n"
        texts.append(text)
        spans.append(targets)
    encodings = tok.encode_batch(texts, add_special_tokens=False)
    out, truncated, straddling = [], 0, 0
    for enc, targets in zip(encodings, spans):
        ids = list(enc.ids)
        labels = [-100] * len(ids)
        for i, (s, e) in enumerate(enc.offsets):
            for cs, ce in targets:
                if s >= cs and e <= ce and e > s:
                    labels[i] = ids[i]
                elif s < ce and e > cs:
                    straddling += 1
        if len(ids) > max_len:
            ids, labels = ids[:max_len], labels[:max_len]
            truncated += 1
        out.append((ids, labels))
    return out, truncated, straddling


def conversations_for(rows: list[dict], unsteered_extra: float, rng: random.Random):
    convs, kinds = [], []
    for r in rows:
        convs.append(r["messages"])
        kinds.append(r.get("kind", "?"))
        um = r.get("unsteered_messages")
        if um and r.get("kind") != "none" and um != r["messages"] and rng.random() < unsteered_extra:
            convs.append(um)
            kinds.append("unsteered")
    return convs, kinds


def make_batches(lengths: list[int], batch_size: int, rng: random.Random, bucket_batches: int = 64):
    """One epoch: shuffle, sort chunks of batch_size*bucket_batches by length, shuffle batches."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    chunk = batch_size * bucket_batches
    batches = []
    for c in range(0, len(order), chunk):
        part = sorted(order[c:c + chunk], key=lambda i: lengths[i])
        batches.extend(part[b:b + batch_size] for b in range(0, len(part), batch_size))
    rng.shuffle(batches)
    return batches


def collate(examples, idx, pad_id):
    import torch

    width = max(len(examples[i][0]) for i in idx)
    ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
    labels = torch.full((len(idx), width), -100, dtype=torch.long)
    for row, i in enumerate(idx):
        x, y = examples[i]
        ids[row, :len(x)] = torch.tensor(x)
        labels[row, :len(y)] = torch.tensor(y)
    return ids, labels


def batch_loss(model, ids, labels):
    """Summed cross-entropy over labelled positions, and their count."""
    import torch.nn.functional as F

    logits = model(input_ids=ids).logits
    shift_logits = logits[:, :-1, :].reshape(-1, logits.size(-1))
    shift_labels = labels[:, 1:].reshape(-1)
    total = F.cross_entropy(shift_logits, shift_labels, ignore_index=-100, reduction="sum")
    count = int((shift_labels != -100).sum())
    return total, count


def evaluate(model, examples, kinds, pad_id, batch_size=64):
    import torch

    model.eval()
    sums: dict[str, list[float]] = {}
    order = sorted(range(len(examples)), key=lambda i: len(examples[i][0]))
    with torch.no_grad():
        for b in range(0, len(order), batch_size):
            idx = order[b:b + batch_size]
            ids, labels = collate(examples, idx, pad_id)
            logits = model(input_ids=ids).logits
            lp = torch.log_softmax(logits[:, :-1, :], dim=-1)
            tgt = labels[:, 1:]
            mask = tgt != -100
            nll = -lp.gather(-1, tgt.clamp(min=0).unsqueeze(-1)).squeeze(-1) * mask
            per_seq = nll.sum(dim=1).tolist()
            per_cnt = mask.sum(dim=1).tolist()
            for row, i in enumerate(idx):
                for key in ("all", kinds[i]):
                    s = sums.setdefault(key, [0.0, 0])
                    s[0] += per_seq[row]
                    s[1] += per_cnt[row]
    model.train()
    return {k: v[0] / max(1, v[1]) for k, v in sums.items()}


# ---------------------------------------------------------------------------------------------
# Model card


def write_card(path: Path, info: dict) -> None:
    a = info
    lines = [
        "---",
        "library_name: transformers",
        "pipeline_tag: text-generation",
        "tags: [tiller, tiller-lab, synthetic]",
        "---",
        "",
        "# tiller-lab",
        "",
        "A small Llama trained from scratch on Tiller's generated lab chat language (see docs/lab.md).",
        "Its only purpose is to be steered and judged exactly: the corpus, the held-out splits and the",
        "judges are all known. It knows nothing outside the lab lexicon.",
        "",
        "## Corpus",
        "",
        f"- command: `{a['corpus_command']}`",
        f"- corpus seed: {a['corpus_seed']}",
        f"- train.jsonl: {a['train_lines']} lines (sha256 `{a['train_sha']}`)",
        f"- heldout.jsonl: {a['heldout_lines']} lines (sha256 `{a['heldout_sha']}`)",
        f"- training sequences: {a['train_sequences']} ({a['train_lines']} steered/none lines + "
        f"{a['extra_unsteered']} extra unsteered copies, --unsteered-extra {a['unsteered_extra']}); "
        f"{a['train_tokens']} tokens, {a['train_target_tokens']} of them with loss "
        f"(assistant content + closing <|end|>)",
        "",
        "## Model",
        "",
        f"- LlamaForCausalLM, float32, tied embeddings: hidden {a['hidden']}, {a['layers']} layers, "
        f"{a['heads']} heads ({a['kv_heads']} KV heads, head dim {a['hidden'] // a['heads']}), "
        f"intermediate {a['intermediate']}, rope theta {a['rope_theta']:g}, max positions {a['max_pos']}",
        f"- parameters: {a['params']:,} ({a['params_no_embed']:,} without the embedding)",
        f"- model.safetensors: {a['weights_bytes']:,} bytes",
        f"- tokenizer: byte-level BPE (ByteLevel pre-tokenizer, no prefix space, GPT-2 split regex), "
        f"vocab {a['vocab']} including the special tokens {' '.join(SPECIAL_TOKENS)} (ids 0-5)",
        "- chat format: `<|bos|>` then `<|role|>\\n{content}<|end|>\\n` per message; the generation "
        "prompt is `<|assistant|>\\n`; eos is `<|end|>`",
        "",
        "## Training",
        "",
        f"- command: `{a['train_command']}`",
        f"- training seed: {a['seed']}; threads: {a['threads']}; device: {a['device']}",
        f"- steps: {a['steps']} (schedule: {a['schedule_note']}), batch size {a['batch_size']} sequences "
        f"(bucketed by length), ~{a['epochs']:.2f} epochs",
        f"- optimizer: AdamW (betas 0.9/{a['beta2']}, weight decay {a['weight_decay']}, grad clip "
        f"{a['grad_clip']}), peak learning rate {a['lr']:g}, {a['warmup']} warmup steps, cosine decay "
        f"to {a['min_lr_ratio']:g} x peak",
        f"- loss: on assistant content tokens and the closing <|end|> only",
        f"- wall time: {fmt_duration(a['wall_s'])} total ({fmt_duration(a['train_s'])} in the training "
        f"loop, {a['steps_per_s']:.2f} steps/s, {a['tokens_per_s']:.0f} tokens/s)",
        f"- final train loss (mean of the last {a['tail_steps']} steps): {a['final_train_loss']:.4f}",
        f"- held-out loss (heldout.jsonl, per target token): {a['heldout_loss']:.4f} on the steered/none "
        f"messages, {a['heldout_unsteered_loss']:.4f} on the unsteered messages",
        "- held-out loss by kind: " + ", ".join(f"{k} {v:.4f}" for k, v in sorted(a["heldout_by_kind"].items())),
        f"- software: torch {a['torch']}, transformers {a['transformers']}, tokenizers {a['tokenizers']}, "
        f"python {platform.python_version()}",
        "",
        "Loss during training (train: mean over the preceding log interval):",
        "",
        "| step | train loss | held-out loss (subset) |",
        "|---:|---:|---:|",
    ]
    for step, tl, hl in a["curve"]:
        lines.append(f"| {step} | {tl:.4f} | {'' if hl is None else f'{hl:.4f}'} |")
    lines += [
        "",
        "## Measured with tiller",
        "",
        EVAL_MARKER,
        "",
        "_Not measured yet: filled in by the lab evaluation (`tiller lab eval`)._",
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")


# ---------------------------------------------------------------------------------------------


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", type=Path, required=True, help="directory made by `tiller lab corpus`")
    p.add_argument("--out", type=Path, required=True, help="output model directory (Hugging Face layout)")
    p.add_argument("--seed", type=int, default=1, help="training seed (init, data order)")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--minutes", type=float, default=50.0,
                   help="training-loop budget when --steps is not given (the whole script adds ~1-3 minutes)")
    p.add_argument("--steps", type=int, default=None, help="fixed number of optimizer steps (overrides --minutes)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--min-lr-ratio", type=float, default=0.1)
    p.add_argument("--warmup", type=int, default=150, help="warmup steps (capped at 10%% of the run)")
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--beta2", type=float, default=0.98)
    p.add_argument("--grad-clip", type=float, default=1.0)
    p.add_argument("--unsteered-extra", type=float, default=0.25,
                   help="share of steered lines whose unsteered_messages are added as an extra example")
    p.add_argument("--vocab-size", type=int, default=1024)
    p.add_argument("--min-frequency", type=int, default=2)
    p.add_argument("--hidden", type=int, default=192)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=6)
    p.add_argument("--kv-heads", type=int, default=2)
    p.add_argument("--intermediate", type=int, default=512)
    p.add_argument("--max-positions", type=int, default=256)
    p.add_argument("--rope-theta", type=float, default=10000.0)
    p.add_argument("--log-every", type=int, default=50, help="print progress every N steps")
    p.add_argument("--eval-every", type=int, default=0,
                   help="held-out subset loss every N steps (0: about 8 times per run)")
    p.add_argument("--max-bytes", type=int, default=20_000_000, help="fail if model.safetensors is larger")
    p.add_argument("--samples", type=int, default=7, help="held-out prompts to generate after saving")
    p.add_argument("--force", action="store_true", help="write into a non-empty --out")
    args = p.parse_args()

    t_start = time.time()
    train_path, heldout_path, world_path = (args.corpus / n for n in ("train.jsonl", "heldout.jsonl", "world.json"))
    for path in (train_path, heldout_path, world_path):
        if not path.is_file():
            sys.exit(f"missing {path} (make the corpus with `tiller lab corpus --seed S --out {args.corpus}`)")
    if args.out.exists() and any(args.out.iterdir()) and not args.force:
        sys.exit(f"{args.out} is not empty (use --force to overwrite)")
    if args.hidden % args.heads or args.heads % args.kv_heads:
        sys.exit("hidden must divide by heads and heads by kv-heads")

    import tokenizers
    import torch
    import transformers

    transformers.utils.logging.disable_progress_bar()
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)

    # -- corpus ------------------------------------------------------------------------------
    train_rows = read_jsonl(train_path)
    heldout_rows = read_jsonl(heldout_path)
    world = json.loads(world_path.read_text(encoding="utf-8"))
    corpus_seed = world.get("seed", "unknown")
    corpus_command = world.get("command") or f"tiller lab corpus --seed {corpus_seed} --out DIR" + (
        "" if len(train_rows) == 40000 and len(heldout_rows) == 2000
        else f" --train {len(train_rows)} --heldout {len(heldout_rows)}")
    log(f"corpus {args.corpus}: {len(train_rows)} train lines, {len(heldout_rows)} held-out lines, seed {corpus_seed}")

    # -- tokenizer -----------------------------------------------------------------------------
    t0 = time.time()
    texts = []
    for r in train_rows:
        for m in r["messages"] + r.get("unsteered_messages", []):
            texts.append(m["content"])
    tok = train_tokenizer(texts, args.vocab_size, args.min_frequency)
    vocab = tok.get_vocab_size()
    log(f"tokenizer: vocab {vocab} ({time.time() - t0:.1f}s)")
    pad_id, bos_id, eos_id = tok.token_to_id(PAD), tok.token_to_id(BOS), tok.token_to_id(EOS)

    # -- data ----------------------------------------------------------------------------------
    data_rng = random.Random(args.seed)
    convs, kinds = conversations_for(train_rows, args.unsteered_extra, data_rng)
    train_ex, trunc, strad = encode_examples(tok, convs, args.max_positions)
    if strad:
        log(f"WARNING: {strad} tokens straddle an assistant-content boundary (not trained on)")
    if trunc:
        log(f"WARNING: {trunc} train sequences truncated to {args.max_positions} tokens")
    extra_unsteered = sum(1 for k in kinds if k == "unsteered")
    lengths = [len(x) for x, _ in train_ex]
    train_tokens = sum(lengths)
    target_tokens = sum(sum(1 for v in y if v != -100) for _, y in train_ex)
    log(f"train: {len(train_ex)} sequences ({extra_unsteered} extra unsteered), {train_tokens} tokens, "
        f"{target_tokens} target tokens, mean length {train_tokens / len(train_ex):.1f}, max {max(lengths)}")

    ho_convs = [r["messages"] for r in heldout_rows]
    ho_kinds = [r.get("kind", "?") for r in heldout_rows]
    ho_un = [r["unsteered_messages"] for r in heldout_rows if r.get("unsteered_messages")]
    heldout_ex, _, _ = encode_examples(tok, ho_convs, args.max_positions)
    heldout_un_ex, _, _ = encode_examples(tok, ho_un, args.max_positions)
    sub_rng = random.Random(args.seed + 1)
    sub_idx = sorted(sub_rng.sample(range(len(heldout_ex)), min(256, len(heldout_ex))))
    heldout_sub = [heldout_ex[i] for i in sub_idx]

    # -- model ---------------------------------------------------------------------------------
    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=args.hidden,
        intermediate_size=args.intermediate,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        num_key_value_heads=args.kv_heads,
        head_dim=args.hidden // args.heads,
        max_position_embeddings=args.max_positions,
        rope_theta=args.rope_theta,
        rms_norm_eps=1e-5,
        hidden_act="silu",
        tie_word_embeddings=True,
        attention_bias=False,
        mlp_bias=False,
        initializer_range=0.02,
        bos_token_id=bos_id,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
        use_cache=True,
    )
    model = LlamaForCausalLM(config).to(device=device, dtype=torch.float32)
    model.train()
    params = sum(p.numel() for p in model.parameters())  # tied: the embedding is counted once
    params_no_embed = params - model.get_input_embeddings().weight.numel()
    log(f"model: {params:,} parameters ({params_no_embed:,} without the embedding), ~{params * 4 / 1e6:.1f} MB f32")

    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, args.beta2), eps=1e-8)

    # -- schedule ------------------------------------------------------------------------------
    budget_s = args.minutes * 60.0
    total_steps = args.steps if args.steps else 10**9  # sized after timing the first steps
    calib_from, calib_to = 3, 23
    schedule_note = "fixed by --steps" if args.steps else "sized to --minutes"
    shrinks = grows = 0

    def warmup_steps() -> int:
        return max(1, min(args.warmup, total_steps // 10)) if total_steps < 10**9 else args.warmup

    def lr_at(step: int) -> float:
        w = warmup_steps()
        if step < w:
            return args.lr * (step + 1) / w
        progress = min(1.0, (step - w) / max(1, total_steps - w))
        return args.lr * (args.min_lr_ratio + (1 - args.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))

    eval_every = args.eval_every
    batch_rng = random.Random(args.seed + 2)
    epoch, batches, bpos = 0, make_batches(lengths, args.batch_size, batch_rng), 0
    step = 0
    curve = []  # (step, train loss over the interval, held-out subset loss or None)
    interval_sum, interval_cnt, interval_tokens, interval_steps = 0.0, 0, 0, 0
    recent_losses: list[float] = []
    t_loop = time.time()
    t_interval = t_loop
    t_calib = None
    seen_sequences = 0
    log(f"training: batch {args.batch_size}, lr {args.lr:g}, threads {args.threads}, "
        + (f"{args.steps} steps" if args.steps else f"budget {args.minutes:g} min"))

    while step < total_steps:
        if bpos >= len(batches):
            epoch += 1
            batches, bpos = make_batches(lengths, args.batch_size, batch_rng), 0
        idx = batches[bpos]
        bpos += 1
        ids, labels = collate(train_ex, idx, pad_id)
        ids, labels = ids.to(device), labels.to(device)
        lr = lr_at(step)
        for g in opt.param_groups:
            g["lr"] = lr
        total, count = batch_loss(model, ids, labels)
        loss = total / max(1, count)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if args.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
        opt.step()
        step += 1
        seen_sequences += len(idx)
        lv = float(loss.detach())
        if not math.isfinite(lv):
            sys.exit(f"loss is {lv} at step {step}")
        interval_sum += float(total.detach())
        interval_cnt += count
        interval_tokens += sum(lengths[i] for i in idx)
        interval_steps += 1
        recent_losses.append(lv)
        recent_losses = recent_losses[-100:]

        now = time.time()
        if not args.steps:
            if step == calib_from:
                t_calib = now
            elif step == calib_to:
                per_step = (now - t_calib) / (calib_to - calib_from)
                total_steps = max(step + 1, int((budget_s - (now - t_loop)) / per_step) + step)
                if not eval_every:
                    eval_every = max(50, total_steps // 8)
                log(f"calibrated: {per_step * 1000:.0f} ms/step -> {total_steps} steps "
                    f"(warmup {warmup_steps()}, eval every {eval_every})")
            elif step > calib_to and step % 100 == 0:
                remaining = budget_s - (now - t_loop)
                rate = (now - t_loop) / step
                projected = step + int(remaining / rate)
                if projected < total_steps * 0.98:  # slower than planned: shorten
                    total_steps = max(step + 1, projected)
                    shrinks += 1
                    log(f"schedule shortened to {total_steps} steps (machine slower than calibrated)")
                elif projected > total_steps * 1.02 and step < 0.1 * total_steps:
                    # faster than calibrated: lengthen, but only early, while the cosine is still near its peak
                    total_steps = projected
                    grows += 1
                    log(f"schedule lengthened to {total_steps} steps (machine faster than calibrated)")
        elif not eval_every:
            eval_every = max(50, total_steps // 8)

        if step % args.log_every == 0 or step == total_steps:
            dt = now - t_interval
            elapsed = now - t_loop
            eta = (total_steps - step) * elapsed / step if total_steps < 10**9 else float("nan")
            train_l = interval_sum / max(1, interval_cnt)
            log(f"step {step:6d}/{total_steps if total_steps < 10**9 else '?'}  loss {train_l:.4f}  "
                f"lr {lr:.2e}  {interval_tokens / dt:6.0f} tok/s  {interval_steps / dt:.2f} step/s  "
                f"epoch {epoch + bpos / len(batches):.2f}  elapsed {fmt_duration(elapsed)}  "
                f"ETA {fmt_duration(eta) if math.isfinite(eta) else '?'}")
            ho = None
            if eval_every and (step % eval_every == 0 or step == total_steps):
                ho = evaluate(model, heldout_sub, ["x"] * len(heldout_sub), pad_id)["all"]
                log(f"           held-out subset loss {ho:.4f}")
            curve.append((step, train_l, ho))
            interval_sum, interval_cnt, interval_tokens, interval_steps = 0.0, 0, 0, 0
            t_interval = time.time()

    train_s = time.time() - t_loop
    steps_per_s = step / train_s
    epochs = seen_sequences / len(train_ex)
    tokens_per_s = sum(lengths) * epochs / train_s  # real (unpadded) tokens
    final_train = sum(recent_losses) / len(recent_losses)
    log(f"done: {step} steps in {fmt_duration(train_s)} ({steps_per_s:.2f} steps/s, {tokens_per_s:.0f} real tok/s), "
        f"{epochs:.2f} epochs, final train loss {final_train:.4f}")

    # -- held-out ------------------------------------------------------------------------------
    ho = evaluate(model, heldout_ex, ho_kinds, pad_id)
    ho_un = evaluate(model, heldout_un_ex, ["unsteered"] * len(heldout_un_ex), pad_id)
    log(f"held-out loss {ho['all']:.4f} (steered/none messages), {ho_un['all']:.4f} (unsteered messages); by kind: "
        + ", ".join(f"{k} {v:.4f}" for k, v in sorted(ho.items()) if k != "all"))

    # -- save ----------------------------------------------------------------------------------
    from safetensors.torch import load_file

    args.out.mkdir(parents=True, exist_ok=True)
    for stale in ("chat_template.jinja", "pytorch_model.bin", "special_tokens_map.json"):
        (args.out / stale).unlink(missing_ok=True)
    model = model.to("cpu")
    model.eval()
    model.generation_config = GenerationConfig(bos_token_id=bos_id, eos_token_id=eos_id, pad_token_id=pad_id,
                                               do_sample=False, max_new_tokens=64)
    model.save_pretrained(args.out, safe_serialization=True)
    tok.save(str(args.out / "tokenizer.json"))
    (args.out / "tokenizer_config.json").write_text(
        json.dumps(tokenizer_config(args.max_positions), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    weights = args.out / "model.safetensors"
    wbytes = weights.stat().st_size
    saved = load_file(str(weights))
    bad = [k for k, v in saved.items() if v.dtype != torch.float32]
    if bad:
        sys.exit(f"non-f32 tensors saved: {bad}")
    log(f"saved {args.out}: model.safetensors {wbytes:,} bytes, {len(saved)} tensors "
        f"({'lm_head stored' if 'lm_head.weight' in saved else 'lm_head tied, not stored'})")
    if wbytes > args.max_bytes:
        sys.exit(f"model.safetensors is {wbytes} bytes > {args.max_bytes}")

    wall_s = time.time() - t_start
    argv = [a for a in sys.argv[1:]]
    info = dict(
        corpus_command=corpus_command, corpus_seed=corpus_seed,
        train_lines=len(train_rows), heldout_lines=len(heldout_rows),
        train_sha=sha256_file(train_path), heldout_sha=sha256_file(heldout_path),
        train_sequences=len(train_ex), extra_unsteered=extra_unsteered, unsteered_extra=args.unsteered_extra,
        train_tokens=train_tokens, train_target_tokens=target_tokens,
        hidden=args.hidden, layers=args.layers, heads=args.heads, kv_heads=args.kv_heads,
        intermediate=args.intermediate, rope_theta=args.rope_theta, max_pos=args.max_positions,
        params=params, params_no_embed=params_no_embed, weights_bytes=wbytes, vocab=vocab,
        train_command="python scripts/lab/train_lab_model.py " + " ".join(shlex.quote(a) for a in argv),
        seed=args.seed, threads=args.threads, device=str(device),
        steps=step, schedule_note=schedule_note + "".join(
            f", {w} {n}x while running" for w, n in (("lengthened", grows), ("shortened", shrinks)) if n),
        batch_size=args.batch_size, epochs=epochs, lr=args.lr, warmup=warmup_steps(),
        min_lr_ratio=args.min_lr_ratio, weight_decay=args.weight_decay, beta2=args.beta2, grad_clip=args.grad_clip,
        wall_s=wall_s, train_s=train_s, steps_per_s=steps_per_s, tokens_per_s=tokens_per_s,
        tail_steps=len(recent_losses), final_train_loss=final_train,
        heldout_loss=ho["all"], heldout_unsteered_loss=ho_un["all"],
        heldout_by_kind={k: v for k, v in ho.items() if k != "all"},
        torch=torch.__version__, transformers=transformers.__version__, tokenizers=tokenizers.__version__,
        curve=curve,
    )
    write_card(args.out / "README.md", info)
    log(f"wrote {args.out / 'README.md'} (wall time so far {fmt_duration(wall_s)})")

    # -- reload and look -----------------------------------------------------------------------
    from transformers import AutoModelForCausalLM, AutoTokenizer

    htok = AutoTokenizer.from_pretrained(args.out)
    hmodel = AutoModelForCausalLM.from_pretrained(args.out, dtype=torch.float32)
    hmodel.eval()
    # the Python renderer and the saved Jinja template must agree
    for r in heldout_rows[:50]:
        prompt_msgs = [m for m in r["messages"] if m["role"] != "assistant"]
        a = htok.apply_chat_template(prompt_msgs, tokenize=False, add_generation_prompt=True)
        if a != render_chat(prompt_msgs, True):
            sys.exit(f"chat template mismatch:\n{a!r}\n{render_chat(prompt_msgs, True)!r}")
    # and the reloaded model must match the trained one
    check = heldout_ex[0][0]
    with torch.no_grad():
        d = (hmodel(input_ids=torch.tensor([check])).logits - model(input_ids=torch.tensor([check])).logits).abs().max()
    log(f"reloaded: chat template renders as trained; max |logit difference| vs trained model {float(d):.2e}")

    picks, seen = [], set()
    for want in [("concept", "system"), ("concept", "user"), ("persona", "system"), ("persona", "user"),
                 ("format", "system"), ("format", "user"), ("none", "none")]:
        for i, r in enumerate(heldout_rows):
            if (r.get("kind"), r.get("placement")) == want and i not in seen:
                picks.append(i)
                seen.add(i)
                break
    log("\ngreedy answers to held-out prompts:")
    for i in picks[:args.samples]:
        r = heldout_rows[i]
        prompt_msgs = [m for m in r["messages"] if m["role"] != "assistant"]
        enc = htok.apply_chat_template(prompt_msgs, tokenize=True, add_generation_prompt=True, return_dict=True,
                                       return_tensors="pt")
        with torch.no_grad():
            out = hmodel.generate(**enc, max_new_tokens=48, do_sample=False, eos_token_id=eos_id, pad_token_id=pad_id)
        gen = htok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)
        target = {k: r[k] for k in ("concept", "trait", "format") if k in r}
        log(f"- [{r.get('kind')}/{r.get('placement')} {r.get('question_template')}] {target or ''}")
        for m in prompt_msgs:
            log(f"    {m['role']}: {m['content']}")
        log(f"    model    : {gen}")
        log(f"    reference: {r['messages'][-1]['content']}")
        if r.get("unsteered_messages") and r.get("kind") != "none":
            enc = htok.apply_chat_template(r["unsteered_messages"][:-1], tokenize=True, add_generation_prompt=True,
                                           return_dict=True, return_tensors="pt")
            with torch.no_grad():
                out = hmodel.generate(**enc, max_new_tokens=48, do_sample=False, eos_token_id=eos_id, pad_token_id=pad_id)
            log(f"    unsteered: {htok.decode(out[0, enc['input_ids'].shape[1]:], skip_special_tokens=True)}")
    log(f"\ntotal wall time {fmt_duration(time.time() - t_start)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
