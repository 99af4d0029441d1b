#!/usr/bin/env python3
"""llama.cpp's throughput on the model suite's workloads, as JSON for `tiller-bench --llamacpp`.

Usage (from the repository root; llama-cpp-python installed in the interpreter's environment):

    /work/venv-llama/bin/python Benchmarks/TillerBench/compare_llamacpp.py MODEL.gguf > /tmp/llamacpp.json
    # a Q8_0 copy of the file, for Tiller's native Q8_0 path against llama.cpp's on the same file:
    /work/venv-llama/bin/python Benchmarks/TillerBench/compare_llamacpp.py MODEL.gguf --write-copy q8_0

llama.cpp through llama-cpp-python's low-level C API (llama_decode on a llama_batch, no sampler
or Python-level Llama object), 2 threads (n_threads and n_threads_batch), CPU only, greedy argmax
of the returned logits in numpy. The workloads and token ids are tiller-bench's (bench_workloads.py):

  prefill  one sequence of 512 tokens in one llama_decode (n_batch = n_ubatch = 512),
           logits of the last position only, then their argmax              prompt tokens / s
  decode   a 16-token prompt decoded untimed, then 32 timed single-token
           llama_decode calls, each feeding the previous argmax               new tokens / s
  batch    32 sequences (seq_id 0..31) of 16 tokens in one llama_decode, then
           31 llama_decode calls of 32 tokens, one per sequence               generated tokens / s
           (32 x 32 = 1024 generated tokens over the whole time, prompts included)
  load     llama_model_load_from_file + llama_init_from_model (the default load mode: the file
           is memory-mapped, so its pages are read on first use, in the warm-up run)
  memory   peak resident set (ru_maxrss: anonymous and file-backed pages) of a fresh interpreter
           that loaded this one variant and ran every workload; the interpreter's RSS before
           loading is reported beside it

The weights: each tiller-bench variant is measured against llama.cpp at the same precision, the
keys of "variants" being tiller-bench's variant names:

  native   the file as given (the same file as Tiller's native path: Q4_1 blocks stay Q4_1)
  f32      a copy converted by llama_model_quantize to LLAMA_FTYPE_ALL_F32
  bf16     a copy converted to LLAMA_FTYPE_MOSTLY_F16 (llama.cpp's usual 16-bit CPU type; Tiller's
           is bf16: the same bytes per weight, a different rounding)

Copies go to --cache-dir (default ~/.cache/tiller/llamacpp), never into the repository, and are
reused.

OMP_WAIT_POLICY: llama.cpp's CPU threads (OpenMP) spin between the ~600 ops of each token. On a
machine shared with other work (load average above the core count) a spinning thread holds a core
the other one waits for: one-sequence decode of SmolLM2-135M Q4_1 ran at 0.8 tok/s spinning and
17.5 tok/s passive at load 22 on 2 cores. The default here is passive; on an idle machine pass
--omp-wait-policy active (or unset: libgomp's own default) and compare.

Each variant runs in a fresh interpreter (this script with --worker), so peak memory is
that variant's alone. Each figure is the median of --repeats runs after one warm-up run.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ beside the Swift sources
sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_workloads as W  # noqa: E402

# llama_ftype values (llama.h); the copies this script can write.
FTYPES = {"f32": 0, "f16": 1, "q4_0": 2, "q4_1": 3, "q8_0": 7, "bf16": 32}
# tiller-bench's variant -> the llama.cpp file type it is compared with (None: the file as given).
VARIANT_FTYPE = {"native": None, "f32": "f32", "bf16": "f16"}


def copy_path(source: Path, ftype: str, cache_dir: Path) -> Path:
    """The source converted to `ftype` by llama.cpp's own quantizer, made once and cached."""
    import llama_cpp as L

    target = cache_dir / f"{source.stem}.{ftype.upper()}.gguf"
    if target.exists() and target.stat().st_mtime >= source.stat().st_mtime:
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    params = L.llama_model_quantize_default_params()
    params.ftype = FTYPES[ftype]
    params.allow_requantize = True  # the source is already quantized: dequantize, then convert
    params.nthread = 2
    status = L.llama_model_quantize(str(source).encode(), str(partial).encode(), ctypes.byref(params))
    if status != 0:
        partial.unlink(missing_ok=True)
        sys.exit(f"{source}: llama_model_quantize to {ftype} failed (status {status})")
    partial.rename(target)
    return target


def median_seconds(body, repeats: int) -> tuple[float, list[float]]:
    """One warm-up run, then `repeats` timed ones; `body` returns its own timed seconds."""
    body()
    samples = [body() for _ in range(repeats)]
    return statistics.median(samples), samples


def worker(path: Path, threads: int, repeats: int, wanted: set[str]) -> dict:
    """One variant in this (fresh) process: load, the workloads, peak memory."""
    import numpy as np
    import llama_cpp as L

    # llama.cpp logs every load to stderr; the callback must outlive every call (a collected
    # ctypes callback is a crash), hence the global.
    global _quiet_log
    _quiet_log = L.llama_log_callback(lambda level, text, data: None)
    L.llama_log_set(_quiet_log, ctypes.c_void_p(0))
    L.llama_backend_init()
    rss_before = W.rss_mib()

    start = time.perf_counter()
    model_params = L.llama_model_default_params()
    model_params.n_gpu_layers = 0
    model = L.llama_model_load_from_file(str(path).encode(), model_params)
    if not model:
        sys.exit(f"{path}: llama.cpp could not load the model")
    ctx_params = L.llama_context_default_params()
    # Room for the batch: 32 sequences of 16 + 32 tokens in one unified KV cache.
    ctx_params.n_ctx = 2048
    ctx_params.n_batch = W.PREFILL_TOKENS
    ctx_params.n_ubatch = W.PREFILL_TOKENS
    ctx_params.n_seq_max = W.BATCH
    ctx_params.kv_unified = True
    ctx_params.n_threads = threads
    ctx_params.n_threads_batch = threads
    ctx = L.llama_init_from_model(model, ctx_params)
    if not ctx:
        sys.exit(f"{path}: llama.cpp could not create a context")
    load_seconds = time.perf_counter() - start

    vocab = L.llama_vocab_n_tokens(L.llama_model_get_vocab(model))
    memory = L.llama_get_memory(ctx)
    batch = L.llama_batch_init(W.PREFILL_TOKENS, 0, 1)

    def decode(sequences: list[list[int]], start_pos: int) -> np.ndarray:
        """One llama_decode of the sequences' tokens (sequence s is seq_id s, positions from
        start_pos), logits of each sequence's last token; returns their argmax, one per sequence."""
        n = 0
        for s, ids in enumerate(sequences):
            for i, token in enumerate(ids):
                batch.token[n] = token
                batch.pos[n] = start_pos + i
                batch.n_seq_id[n] = 1
                batch.seq_id[n][0] = s
                batch.logits[n] = int(i == len(ids) - 1)
                n += 1
        batch.n_tokens = n
        status = L.llama_decode(ctx, batch)
        if status != 0:
            sys.exit(f"{path}: llama_decode returned {status}")
        logits = np.ctypeslib.as_array(L.llama_get_logits(ctx), shape=(len(sequences), vocab))
        return logits.argmax(axis=1)

    def clear():
        L.llama_memory_clear(memory, True)

    results: dict[str, object] = {"file": str(path), "load_seconds": load_seconds}

    if "prefill" in wanted:
        ids = W.prefill_ids(vocab)

        def prefill():
            clear()
            start = time.perf_counter()
            decode([ids], 0)
            return time.perf_counter() - start

        seconds, samples = median_seconds(prefill, repeats)
        results.update(prefill_seconds=samples, prefill_tok_s=W.PREFILL_TOKENS / seconds)
        print(f"  {path.name} prefill: {W.PREFILL_TOKENS / seconds:.1f} tok/s", file=sys.stderr)

    if "decode" in wanted:
        prompt = W.decode_prompt_ids(vocab)

        def one_sequence():
            clear()
            token = decode([prompt], 0)
            start = time.perf_counter()
            for step in range(W.DECODE_NEW):
                token = decode([[int(token[0])]], W.DECODE_PROMPT + step)
            return time.perf_counter() - start

        seconds, samples = median_seconds(one_sequence, repeats)
        results.update(decode_seconds=samples, decode_tok_s=W.DECODE_NEW / seconds)
        print(f"  {path.name} decode: {W.DECODE_NEW / seconds:.1f} tok/s", file=sys.stderr)

    if "batch" in wanted:
        prompts = W.batch_prompt_ids(vocab)

        def batched():
            clear()
            start = time.perf_counter()
            tokens = decode(prompts, 0)
            for step in range(W.BATCH_NEW - 1):
                tokens = decode([[int(t)] for t in tokens], W.BATCH_PROMPT + step)
            return time.perf_counter() - start

        seconds, samples = median_seconds(batched, repeats)
        results.update(batch_seconds=samples, batch_tok_s=W.BATCH * W.BATCH_NEW / seconds)
        print(f"  {path.name} batch: {W.BATCH * W.BATCH_NEW / seconds:.1f} tok/s", file=sys.stderr)

    results["rss_before_load_mib"] = rss_before
    results["peak_rss_mib"] = W.peak_rss_mib()
    results["flash_attn_type"] = ctx_params.flash_attn_type
    results["system_info"] = L.llama_print_system_info().decode().strip()
    L.llama_batch_free(batch)
    L.llama_free(ctx)
    L.llama_model_free(model)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path, help="a GGUF file")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", choices=["prefill", "decode", "batch"], action="append")
    parser.add_argument("--variants", default="native,f32,bf16",
                        help="tiller-bench variants to measure at the matching precision (default native,f32,bf16)")
    parser.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache/tiller/llamacpp")
    parser.add_argument("--write-copy", choices=sorted(FTYPES), metavar="TYPE",
                        help="only write the file converted to TYPE into --cache-dir and print its path")
    parser.add_argument("--omp-wait-policy", choices=["passive", "active", "unset"], default="passive",
                        help="OMP_WAIT_POLICY of the llama.cpp processes (default passive: see above)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if not args.model.is_file():
        sys.exit(f"{args.model}: no such file")
    if args.repeats < 1:
        sys.exit(f"--repeats {args.repeats}: must be at least 1")
    wanted = set(args.only or ["prefill", "decode", "batch"])
    if args.worker:
        print(json.dumps(worker(args.model, args.threads, args.repeats, wanted)))
        return 0
    if args.write_copy:
        print(copy_path(args.model, args.write_copy, args.cache_dir))
        return 0

    import llama_cpp as L

    variants = [v for v in args.variants.split(",") if v]
    for v in variants:
        if v not in VARIANT_FTYPE:
            sys.exit(f"--variants: unknown variant {v!r} (known: {', '.join(VARIANT_FTYPE)})")
    results: dict[str, object] = {
        "tool": "compare_llamacpp.py",
        "model": str(args.model),
        "llama_cpp_python": L.__version__,
        "threads": args.threads,
        "omp_wait_policy": args.omp_wait_policy,
        "repeats": args.repeats,
        "machine": platform.processor() or platform.machine(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "variants": {},
    }
    for variant in variants:
        ftype = VARIANT_FTYPE[variant]
        path = args.model if ftype is None else copy_path(args.model, ftype, args.cache_dir)
        command = [sys.executable, __file__, str(path), "--worker", "--threads", str(args.threads),
                   "--repeats", str(args.repeats)] + [f"--only={w}" for w in sorted(wanted)]
        env = dict(os.environ)
        if args.omp_wait_policy != "unset":
            env["OMP_WAIT_POLICY"] = args.omp_wait_policy
        done = subprocess.run(command, stdout=subprocess.PIPE, text=True, env=env)
        if done.returncode != 0:
            sys.exit(f"{path}: the llama.cpp worker for {variant} failed (exit {done.returncode})")
        figures = json.loads(done.stdout)
        figures["type"] = "as given" if ftype is None else ftype.upper()
        results["system_info"] = figures.pop("system_info")
        results["variants"][variant] = figures
        summary = ", ".join(f"{w} {figures[w + '_tok_s']:.1f} tok/s" for w in ["prefill", "decode", "batch"]
                            if w + "_tok_s" in figures)
        print(f"llama.cpp {variant} ({figures['type']}): {summary}; load {figures['load_seconds']:.2f} s, "
              f"peak RSS {figures['peak_rss_mib']:.0f} MiB", file=sys.stderr)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
