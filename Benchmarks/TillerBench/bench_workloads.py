"""The model suite's workloads and token ids, shared by compare_transformers.py and compare_llamacpp.py.

Plain Python (no torch, no numpy) so both scripts, each in its own virtual environment, import it.
The same sizes and the same LCG as ModelBench.swift, so every side sees the same ids.
"""

from __future__ import annotations

import resource

PREFILL_TOKENS = 512
DECODE_PROMPT = 16
DECODE_NEW = 32
BATCH = 32
BATCH_PROMPT = 16
BATCH_NEW = 32


def token_ids(count: int, vocab: int, seed: int) -> list[int]:
    """The benchmark's ids: a 64-bit LCG (Knuth's MMIX constants), high bits mod a vocabulary slice."""
    state, out = seed, []
    for _ in range(count):
        state = (state * 6364136223846793005 + 1442695040888963407) % 2**64
        out.append(1 + (state >> 33) % (min(vocab, 32000) - 1))
    return out


def prefill_ids(vocab: int) -> list[int]:
    return token_ids(PREFILL_TOKENS, vocab, 1)


def decode_prompt_ids(vocab: int) -> list[int]:
    return token_ids(DECODE_PROMPT, vocab, 2)


def batch_prompt_ids(vocab: int) -> list[list[int]]:
    return [token_ids(BATCH_PROMPT, vocab, 100 + s) for s in range(BATCH)]


def rss_mib() -> float:
    """Current resident set (VmRSS), in MiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mib() -> float:
    """This process's peak resident set since it started (ru_maxrss, KiB on Linux), in MiB.

    Only meaningful in a process that loaded one model: a fresh interpreter per variant."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
