#!/usr/bin/env python3
"""transformers' throughput on the model suite's workloads, as JSON for `tiller-bench --transformers`.

Usage (from the repository root, after scripts/fixtures/make_speed_checkpoint.py):

    /root/venv-ref/bin/python Benchmarks/TillerBench/compare_transformers.py /tmp/qwen-0.5b-random \\
        > /tmp/transformers.json

MODEL is a checkpoint directory or a GGUF file (loaded with `gguf_file=`, dequantized to float32:
the same weights as tiller-bench's f32 variant of that file; needs gguf and accelerate).

PyTorch on the CPU with torch.set_num_threads(2), float32 weights, use_cache=True, greedy
decoding by argmax in a plain loop over model(...) calls (no generate() overhead: the strongest
figure transformers gives). The workloads are exactly the ones tiller-bench runs:

  prefill  one sequence of 512 tokens, one forward pass into an empty cache     prompt tokens / s
  decode   one sequence: a 16-token prompt is prefilled (untimed), then 32
           single-token steps, each appending the previous argmax               new tokens / s
  batch    32 prompts of 16 tokens: the prompts' forward pass gives the first
           token of each, then 31 batched single-token steps                    generated tokens / s
           (32 x 32 = 1024 generated tokens over the whole time, prompts included)

Token ids are fixed pseudo-random numbers (the same LCG as tiller-bench, bench_workloads.py), so
both runs see the same ids. Each figure is the median of --repeats runs after one warm-up run.
Also reported: load_seconds (from_pretrained to a ready model) and peak_rss_mib (ru_maxrss of this
process, which loads one model; rss_before_load_mib is the interpreter with torch imported).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import transformers
from transformers import AutoModelForCausalLM

sys.dont_write_bytecode = True  # no __pycache__ beside the Swift sources
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_workloads import (  # noqa: E402
    BATCH, BATCH_NEW, BATCH_PROMPT, DECODE_NEW, DECODE_PROMPT, PREFILL_TOKENS, peak_rss_mib, rss_mib, token_ids)


def checkpoint_dir(path: Path) -> Path:
    """A model directory, or the parent make_speed_checkpoint.py wrote (its f32/ is used)."""
    if (path / "config.json").exists():
        return path
    if (path / "f32" / "config.json").exists():
        return path / "f32"
    sys.exit(f"{path}: no config.json (nor f32/config.json)")


def load_model(path: Path, attn: str):
    """A checkpoint directory, or a GGUF file (transformers dequantizes its blocks to float32 with
    gguf-py, so the model holds the same values tiller-bench's f32 variant does)."""
    if path.is_file() and path.suffix == ".gguf":
        return path, AutoModelForCausalLM.from_pretrained(
            path.parent, gguf_file=path.name, dtype=torch.float32, attn_implementation=attn)
    directory = checkpoint_dir(path)
    return directory, AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32, attn_implementation=attn)


def median_time(body, repeats: int) -> tuple[float, list[float]]:
    body()  # warm-up: allocator, thread pool, first-touch page faults
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        body()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples), samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path)
    parser.add_argument("--attn", default="sdpa", choices=["sdpa", "eager"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", choices=["prefill", "decode", "batch"], action="append")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    rss_before = rss_mib()
    start = time.perf_counter()
    directory, model = load_model(args.model, args.attn)
    model = model.eval()
    load_seconds = time.perf_counter() - start
    vocab = model.config.vocab_size
    wanted = set(args.only or ["prefill", "decode", "batch"])
    results: dict[str, object] = {
        "tool": "compare_transformers.py",
        "model": str(directory),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "threads": torch.get_num_threads(),
        "attention": args.attn,
        "dtype": "float32",
        "repeats": args.repeats,
        "machine": platform.processor() or platform.machine(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "load_seconds": load_seconds,
        "rss_before_load_mib": rss_before,
    }

    def greedy(ids: torch.Tensor, new_tokens: int):
        """Prompt forward (its argmax is the first new token), then single-token steps."""
        # Logits of the last prompt position only, as generate() asks for.
        out = model(input_ids=ids, use_cache=True, logits_to_keep=1)
        cache = out.past_key_values
        next_ids = out.logits[:, -1, :].argmax(-1, keepdim=True)
        generated = [next_ids]
        for _ in range(new_tokens - 1):
            out = model(input_ids=next_ids, past_key_values=cache, use_cache=True)
            cache = out.past_key_values
            next_ids = out.logits[:, -1, :].argmax(-1, keepdim=True)
            generated.append(next_ids)
        return torch.cat(generated, dim=1)

    with torch.inference_mode():
        if "prefill" in wanted:
            ids = torch.tensor([token_ids(PREFILL_TOKENS, vocab, 1)])
            def prefill():
                out = model(input_ids=ids, use_cache=True, logits_to_keep=1)
                out.logits[:, -1, :].argmax(-1)
            seconds, samples = median_time(prefill, args.repeats)
            results["prefill_tokens"] = PREFILL_TOKENS
            results["prefill_seconds"] = samples
            results["prefill_tok_s"] = PREFILL_TOKENS / seconds
            print(f"prefill {PREFILL_TOKENS}: {PREFILL_TOKENS / seconds:.1f} tok/s", file=sys.stderr)

        if "decode" in wanted:
            prompt = torch.tensor([token_ids(DECODE_PROMPT, vocab, 2)])
            # The prompt is prefilled outside the clock; the 32 timed steps each make one new token.
            def decode():
                out = model(input_ids=prompt, use_cache=True, logits_to_keep=1)
                cache = out.past_key_values
                next_ids = out.logits[:, -1, :].argmax(-1, keepdim=True)
                start = time.perf_counter()
                for _ in range(DECODE_NEW):
                    out = model(input_ids=next_ids, past_key_values=cache, use_cache=True)
                    cache = out.past_key_values
                    next_ids = out.logits[:, -1, :].argmax(-1, keepdim=True)
                return time.perf_counter() - start
            decode()
            samples = [decode() for _ in range(args.repeats)]
            seconds = statistics.median(samples)
            results["decode_prompt_tokens"] = DECODE_PROMPT
            results["decode_new_tokens"] = DECODE_NEW
            results["decode_seconds"] = samples
            results["decode_tok_s"] = DECODE_NEW / seconds
            print(f"decode: {DECODE_NEW / seconds:.2f} tok/s", file=sys.stderr)

        if "batch" in wanted:
            prompts = torch.tensor([token_ids(BATCH_PROMPT, vocab, 100 + s) for s in range(BATCH)])
            seconds, samples = median_time(lambda: greedy(prompts, BATCH_NEW), args.repeats)
            results["batch_sequences"] = BATCH
            results["batch_prompt_tokens"] = BATCH_PROMPT
            results["batch_new_tokens"] = BATCH_NEW
            results["batch_seconds"] = samples
            results["batch_tok_s"] = BATCH * BATCH_NEW / seconds
            print(f"batch {BATCH}x{BATCH_NEW}: {BATCH * BATCH_NEW / seconds:.1f} tok/s", file=sys.stderr)

    # This process loaded one model: its peak is that model's, the interpreter and torch included.
    results["peak_rss_mib"] = peak_rss_mib()
    print(f"load {load_seconds:.2f} s, peak RSS {results['peak_rss_mib']:.0f} MiB", file=sys.stderr)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
