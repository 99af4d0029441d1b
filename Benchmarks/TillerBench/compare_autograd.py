#!/usr/bin/env python3
"""PyTorch autograd on the training suite's workloads, as JSON for `tiller-bench --training --autograd`.

Usage (from the repository root, after scripts/fixtures/make_speed_checkpoint.py):

    python Benchmarks/TillerBench/compare_autograd.py /tmp/qwen-0.5b-random --workload mse > /tmp/autograd-mse.json
    python Benchmarks/TillerBench/compare_autograd.py /tmp/qwen-0.5b-random --workload ll > /tmp/autograd-ll.json
    python Benchmarks/TillerBench/compare_autograd.py /tmp/qwen-0.5b-random --workload epoch-mse > /tmp/autograd-epoch-mse.json
    python Benchmarks/TillerBench/compare_autograd.py /tmp/qwen-0.5b-random --workload epoch-ll > /tmp/autograd-epoch-ll.json

One step of each workload is what `tiller loss` computes (docs/training.md), on 4 triplets: x of 48
tokens and x' of 64 sharing their last 8, y' of 64 (ids from the benchmark's LCG, as tiller-bench):

  mse  a relu head on every layer, answer_only: the prompted run x'y' without gradient, the steered
       run xy' with the heads, the MSE over every layer, backward to the head parameters
  ll   one relu head at the middle layer: the steered run xy' and -log p(y' | x), backward

  epoch-mse, epoch-ll  a training epoch of the same objective (as `tiller train`): 16 triplets in
       shuffled batches of 4, each batch's forward and backward followed by an AdamW step (lr 1e-3,
       weight decay 1e-6, linearly decayed); the figure is the epoch's steered tokens per second

Frozen f32 weights (requires_grad only on the head parameters), the triplets as one right-padded
batch with an attention mask, torch.set_num_threads(--threads). Figures: steered tokens (sum of
|xy'|) per second, the median of --repeats steps after one warm-up, and the peak resident memory
(VmHWM, reset just before the workload, so both sides count the weights and the step alike).
Each workload runs in its own process. The loss is printed too: tiller-bench's must agree.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM

TRIPLETS, X, XP, SHARED, Y = 4, 48, 64, 8, 64
EPOCH_TRIPLETS, EPOCH_BATCH = 16, 4


def token_ids(count: int, vocab: int, seed: int) -> list[int]:
    state, out = seed, []
    for _ in range(count):
        state = (state * 6364136223846793005 + 1442695040888963407) % 2**64
        out.append(1 + (state >> 33) % (min(vocab, 32000) - 1))
    return out


def triplets(vocab: int, count: int = TRIPLETS) -> list[tuple[list[int], list[int], list[int]]]:
    out = []
    for i in range(count):
        header = token_ids(SHARED, vocab, 200 + i)
        x = token_ids(X - SHARED, vocab, 100 + i) + header
        xp = token_ids(XP - SHARED, vocab, 300 + i) + header
        out.append((x, xp, token_ids(Y, vocab, 400 + i)))
    return out


def head(layer: int, d: int) -> dict:
    i = torch.arange(d, dtype=torch.float64)
    return {"w": (0.02 * torch.sin(0.37 * i + layer)).float().requires_grad_(),
            "bias": torch.tensor(0.05, requires_grad=True),
            "z": (0.02 * torch.cos(0.11 * i + 2 * layer)).float().requires_grad_()}


def vm(key: str) -> float:
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path)
    parser.add_argument("--workload", choices=["mse", "ll", "epoch-mse", "epoch-ll"], required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--attn", default="sdpa", choices=["sdpa", "eager"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    path = args.model / "f32" if (args.model / "f32" / "config.json").exists() else args.model
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation=args.attn).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    layers, d = model.config.num_hidden_layers, model.config.hidden_size
    epoch = args.workload.startswith("epoch-")
    objective = args.workload.removeprefix("epoch-")
    everything = triplets(model.config.vocab_size, EPOCH_TRIPLETS if epoch else TRIPLETS)
    steered_layers = list(range(layers)) if objective == "mse" else [layers // 2]
    heads = {l: head(l, d) for l in steered_layers}

    def batch(seqs):
        t = max(map(len, seqs))
        ids = torch.zeros(len(seqs), t, dtype=torch.long)
        mask = torch.zeros(len(seqs), t, dtype=torch.long)
        for b, s in enumerate(seqs):
            ids[b, :len(s)] = torch.tensor(s)
            mask[b, :len(s)] = 1
        return ids, mask

    def run(seqs, steer, steer_mask=None):
        outputs, handles = [], []
        def make(index):
            def hook(module, inputs, output):
                h = output[0] if isinstance(output, tuple) else output
                if steer and index in heads:
                    p = heads[index]
                    lam = torch.relu(h @ p["w"] + p["bias"]) * steer_mask
                    h = h + lam[..., None] * p["z"]
                outputs.append(h)
                return (h,) + tuple(output[1:]) if isinstance(output, tuple) else h
            return hook
        for i, layer in enumerate(model.model.layers):
            handles.append(layer.register_forward_hook(make(i)))
        try:
            ids, mask = batch(seqs)
            # Logits only where the loss reads them, as Tiller computes them: every x has the same
            # length, so y' is predicted from the same positions in every sequence.
            keep = torch.arange(X - 1, X - 1 + Y) if objective == "ll" else 1
            logits = model(input_ids=ids, attention_mask=mask, use_cache=False, logits_to_keep=keep).logits
        finally:
            for h in handles:
                h.remove()
        return outputs, logits

    def step(data) -> float:
        for p in heads.values():
            for t in p.values():
                t.grad = None
        xy = [x + y for x, _, y in data]
        xpy = [xp + y for _, xp, y in data]
        steer_mask = torch.zeros(len(xy), max(map(len, xy)))
        for b, (x, _, y) in enumerate(data):
            steer_mask[b, len(x) - 1:len(x) + len(y)] = 1  # answer_only
        if objective == "mse":
            with torch.no_grad():
                prompted, _ = run(xpy, steer=False)
            steered, _ = run(xy, steer=True, steer_mask=steer_mask)
            count = sum(len(y) + 1 for _, _, y in data)
            loss = 0
            for b, (x, xp, y) in enumerate(data):
                off = len(xp) - len(x)
                rows = torch.arange(len(x) - 1, len(x) + len(y))
                for l in range(min(steered_layers), layers):
                    loss = loss + ((steered[l][b, rows] - prompted[l][b, rows + off]) ** 2).sum()
            loss = loss / count
        else:
            _, logits = run(xy, steer=True, steer_mask=steer_mask)
            loss, count = 0, sum(len(y) for _, _, y in data)
            for b, (x, _, y) in enumerate(data):
                lp = torch.log_softmax(logits[b], dim=-1)
                loss = loss - lp[torch.arange(len(y)), torch.tensor(y)].sum()
            loss = loss / count
        loss.backward()
        return loss.item()

    parameters = [t for p in heads.values() for t in p.values()]
    batches = (len(everything) + EPOCH_BATCH - 1) // EPOCH_BATCH
    optimiser = torch.optim.AdamW(parameters, lr=1e-3, weight_decay=1e-6)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda k: max(0.0, 1 - k / ((args.repeats + 1) * batches)))
    generator = torch.Generator().manual_seed(0)

    def train_epoch() -> float:
        # The training loop of `tiller train`: shuffled mini-batches, a step after each.
        order, total = torch.randperm(len(everything), generator=generator).tolist(), 0.0
        for b in range(batches):
            total += step([everything[i] for i in order[b * EPOCH_BATCH:(b + 1) * EPOCH_BATCH]])
            optimiser.step()
            schedule.step()
        return total / batches

    work = train_epoch if epoch else (lambda: step(everything))
    work()  # warm-up
    open("/proc/self/clear_refs", "w").write("5")
    samples, loss = [], math.nan
    for _ in range(args.repeats):
        start = time.perf_counter()
        loss = work()
        samples.append(time.perf_counter() - start)
    tokens = sum(len(x) + len(y) for x, _, y in everything)
    print(json.dumps({"workload": args.workload, "threads": args.threads, "attention": args.attn,
                      "torch": torch.__version__, "machine": platform.processor() or platform.machine(),
                      "tok_s": tokens / statistics.median(samples), "seconds": samples, "loss": loss,
                      "peak_rss_mib": vm("VmHWM"), "steered_layers": steered_layers}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
