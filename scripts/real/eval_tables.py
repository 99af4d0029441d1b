#!/usr/bin/env python3
"""The tables of scripts/real/eval-real.sh's runs, in markdown, beside the paper's figures.

Usage: python3 scripts/real/eval_tables.py OUT_DIR

ifeval-format: the whole set's none and prompt table (OUT_DIR/ifeval-all-table.txt), then per
instruction (fmt-NN) and over those every method was run on, the strict pass rate (percent) and the
mean proxy coherence of each method, read from OUT_DIR/ifeval-*-results.jsonl. persona: the tables
`tiller eval compare` printed (OUT_DIR/persona-*-table.txt), as they are.
"""

from __future__ import annotations

import glob
import json
import os
import sys
from collections import defaultdict

# Heyman & Vandeputte, IFEval single-instruction format subset, Gemma-2-9b-it: accuracy / coherence
# (../shared/reference/psr-method.md, section 6).
PAPER_IFEVAL = {"none": (11.4, 96.6), "Stolfo": (30.8, 96.1), "S-PSR(LL)": (66.1, 95.5),
                "prompt": (85.7, 94.8), "S-PSR(LL) + prompt": (93.1, 94.6)}
METHODS = ["none", "prompt", "Stolfo", "S-PSR(LL)", "S-PSR(LL) + prompt"]


def method(steer: dict) -> str:
    mode = steer.get("mode")
    if mode in ("none", "prompt"):
        return mode
    name = os.path.basename(steer.get("file") or "")
    base = "Stolfo" if "stolfo" in name else "S-PSR(LL)" if "spsr-ll" in name else name
    return base + (" + prompt" if steer.get("with_prompt") else "")


def mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def cell(pair: tuple[float | None, float | None]) -> str:
    a, c = pair
    return "-" if a is None else f"{a:.1f} / {c:.1f}"


def ifeval(out: str) -> list[str]:
    files = sorted(glob.glob(os.path.join(out, "ifeval-fmt-*-results.jsonl")))
    if not files:
        return []
    rows, overall, complete = [], defaultdict(lambda: ([], [])), []
    for path in files:
        key = os.path.basename(path).split("-results")[0].removeprefix("ifeval-")
        by = defaultdict(lambda: ([], []))
        instruction = ""
        for line in open(path):
            r = json.loads(line)
            m = method(r["steer"])
            instruction = r.get("instruction_id") or instruction
            p, c = r["scores"].get("pass"), r["scores"].get("coherence")
            if p is not None:
                by[m][0].append(100 * p)
            if c is not None:
                by[m][1].append(c)
        n = len(by["none"][0])
        # The overall row holds the instructions every method was run on, so that its means
        # compare the methods on the same items.
        if all(by[m][0] for m in METHODS):
            complete.append(key)
            for m in METHODS:
                overall[m][0].extend(by[m][0])
                overall[m][1].extend(by[m][1])
        rows.append(f"| {key} `{instruction}` ({n}) | " + " | ".join(cell((mean(by[m][0]), mean(by[m][1]))) for m in METHODS) + " |")
    total = len(overall["none"][0])
    lines = ["| instruction (items) | " + " | ".join(METHODS) + " |", "| --- |" + " --- |" * len(METHODS)]
    lines += rows
    lines.append(f"| **the {len(complete)} with every method ({total})** | " + " | ".join(f"**{cell((mean(overall[m][0]), mean(overall[m][1])))}**" for m in METHODS) + " |")
    lines.append("| paper, Gemma-2-9b-it | " + " | ".join(cell(PAPER_IFEVAL[m]) for m in METHODS) + " |")
    whole = os.path.join(out, "ifeval-all-table.txt")
    head = ["### ifeval-format, the whole committed set: none and prompt", "", "```", open(whole).read().rstrip(), "```", ""] \
        if os.path.exists(whole) else []
    return head + ["### ifeval-format: strict pass rate (%) / coherence (proxy; the paper's: judge)", ""] + lines + [""]


def persona(out: str) -> list[str]:
    lines = []
    for path in sorted(glob.glob(os.path.join(out, "persona-*-table.txt"))):
        trait = os.path.basename(path).removeprefix("persona-").removesuffix("-table.txt")
        lines += [f"### persona: {trait}", "", "```", open(path).read().rstrip(), "```", ""]
    return lines


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: eval_tables.py OUT_DIR")
    print("\n".join(ifeval(sys.argv[1]) + persona(sys.argv[1])))


if __name__ == "__main__":
    main()
