#!/usr/bin/env python3
"""Summarizes tiller-bench --json reports of several rounds: one line per row (benchmark, shape and
reference), Tiller's median figure, the reference's median, every round's ratio and how many rounds
passed each target. On a shared machine the spread over rounds says more than any one figure.

    python3 Benchmarks/TillerBench/summarize_rounds.py OUT/tiller-*.json
"""

from __future__ import annotations

import json
import statistics
import sys


def main(paths: list[str]) -> int:
    if not paths:
        sys.exit("usage: summarize_rounds.py REPORT.json...")
    rows: dict[tuple[str, str, str], list[dict]] = {}
    loads = []
    for path in paths:
        doc = json.load(open(path))
        machine = doc["machine"]
        loads.append((machine["loadAverageBefore"], machine["loadAverageAfter"]))
        for row in doc["rows"]:
            rows.setdefault((row["name"], row["shape"], row["reference"]["name"]), []).append(row)
    print(f"cpu: {machine['cpu']}; {machine['openblas']}")
    print("load average before/after each report: " + ", ".join(f"{a:.1f}/{b:.1f}" for a, b in loads))
    print(f"{'benchmark':<13} {'shape':<17} {'tiller':>9} {'unit':<6} {'reference':>9}  {'(ref name)':<40} "
          f"{'ratio per report':<18} target")
    for (name, shape, ref_name), rs in rows.items():
        def median(values):
            values = [v for v in values if isinstance(v, (int, float))]
            return statistics.median(values) if values else float("nan")
        ratios = " ".join(f"{r['ratio']:.2f}" if isinstance(r["ratio"], (int, float)) else "nan" for r in rs)
        targets = "; ".join(
            f"{t['metric']} >= {t['threshold']:g}: "
            f"{sum(1 for r in rs for u in r['targets'] if u['threshold'] == t['threshold'] and u['pass'])}/{len(rs)} pass"
            for t in rs[0]["targets"])
        print(f"{name:<13} {shape:<17} {median(r['figure'] for r in rs):>9.4g} {rs[0]['unit']:<6} "
              f"{median(r['reference']['figure'] for r in rs):>9.4g}  {ref_name:<40} {ratios:<18} {targets or '-'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
