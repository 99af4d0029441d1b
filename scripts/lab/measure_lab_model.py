#!/usr/bin/env python3
"""Measure the lab model with `tiller lab eval` and write the numbers into its model card.

Usage (from the repository root, after `swift build -c release --product tiller`):

    python3 scripts/lab/measure_lab_model.py [--model DIR] [--limit 500] [--tiller PATH]

Runs `tiller lab eval --kind K --steer prompt|none --json` for concept, persona and format on the
held-out split (every held-out example of the kind with the default --limit 500), checks the targets
of issue 5 (point 4), prints a table, and replaces everything after the marker line
`<!-- tiller-lab-eval -->` in DIR/README.md with that table. Standard library only: no PyTorch.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import re
import subprocess
import sys
from pathlib import Path

MARKER = "<!-- tiller-lab-eval -->"
DEFAULT_MODEL = "Sources/TillerLab/Resources/tiller-lab"

# (kind, metric, steer, comparison, threshold): the targets of issue 5, point 4.
TARGETS = [
    ("concept", "concept", "prompt", ">=", 1.8),
    ("concept", "fluency", "prompt", ">=", 1.8),
    ("persona", "trait", "prompt", ">=", 80),
    ("persona", "coherence", "prompt", ">=", 80),
    ("format", "pass", "prompt", ">=", 0.9),
    ("concept", "concept", "none", "<=", 0.1),
    ("persona", "trait", "none", "<=", 10),
    ("format", "pass", "none", "<=", 0.1),
]


def run_eval(tiller: str, model: str, kind: str, steer: str, limit: int) -> dict:
    command = [tiller, "lab", "eval", "--model", model, "--kind", kind, "--steer", steer,
               "--limit", str(limit), "--json"]
    print("$ " + " ".join(command), file=sys.stderr)
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(done.stdout)


def format_type(target: str) -> str:
    """'format(end_with "over and out")' and the like -> the format's type name."""
    match = re.match(r"format\((\w+)", target)
    return match.group(1) if match else target


def by_format_type(report: dict) -> dict[str, tuple[int, float]]:
    groups: dict[str, list[float]] = {}
    for row in report["examples"]:
        groups.setdefault(format_type(row["target"]), []).append(row["scores"]["pass"])
    return {name: (len(v), sum(v) / len(v)) for name, v in sorted(groups.items())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--limit", type=int, default=500)
    parser.add_argument("--tiller", default=".build/release/tiller")
    parser.add_argument("--no-write", action="store_true", help="print the section, leave README.md alone")
    args = parser.parse_args()

    reports = {(kind, steer): run_eval(args.tiller, args.model, kind, steer, args.limit)
               for kind in ("concept", "persona", "format") for steer in ("prompt", "none")}

    lines = [MARKER, "## Measured with tiller", ""]
    lines.append(f"{datetime.date.today().isoformat()}, `scripts/lab/measure_lab_model.py --limit {args.limit}` "
                 f"({platform.machine()}, greedy decoding, `tiller lab eval` on the held-out split).")
    lines.append("")
    lines.append("| kind | metric | prompt-steered | unsteered | examples (steered / unsteered) |")
    lines.append("| --- | --- | --- | --- | --- |")
    for kind in ("concept", "persona", "format"):
        steered, plain = reports[(kind, "prompt")], reports[(kind, "none")]
        for metric in steered["metrics"]:
            lines.append(f"| {kind} | {metric} | {steered['metrics'][metric]:.3f} | {plain['metrics'][metric]:.3f} "
                         f"| {steered['count']} / {plain['count']} |")
    lines.append("")
    lines.append("By placement (prompt-steered): " + "; ".join(
        f"{kind} {placement} ({v['count']}): " + ", ".join(f"{m} {x:.3f}" for m, x in v["metrics"].items())
        for kind in ("concept", "persona", "format")
        for placement, v in sorted(reports[(kind, "prompt")]["by_placement"].items())) + ".")
    lines.append("")
    lines.append("Format pass rate by instruction (prompt-steered / unsteered): " + "; ".join(
        f"{name} {s[1]:.2f} / {u[1]:.2f} (n={s[0]})"
        for (name, s), (_, u) in zip(by_format_type(reports[("format", "prompt")]).items(),
                                      by_format_type(reports[("format", "none")]).items())) + ".")
    lines.append("")
    lines.append("| target (issue 5, point 4) | measured | |")
    lines.append("| --- | --- | --- |")
    all_met = True
    for kind, metric, steer, op, threshold in TARGETS:
        value = reports[(kind, steer)]["metrics"][metric]
        met = value >= threshold if op == ">=" else value <= threshold
        all_met &= met
        lines.append(f"| {kind} {metric}, {'prompt-steered' if steer == 'prompt' else 'unsteered'} {op} {threshold:g} "
                     f"| {value:.3f} | {'met' if met else '**missed**'} |")
    section = "\n".join(lines) + "\n"
    print(section)

    if not args.no_write:
        card = Path(args.model) / "README.md"
        text = card.read_text()
        head = text.split(MARKER)[0] if MARKER in text else text.rstrip() + "\n\n"
        card.write_text(head + section)
        print(f"wrote {card}", file=sys.stderr)
    sys.exit(0 if all_met else 1)


if __name__ == "__main__":
    main()
