#!/usr/bin/env python3
"""Scores the real-model track's generations with exact checks and prints a markdown table.

Usage: score.py OUT_DIR  (the directory demo-real.sh wrote; reads gen-*.jsonl and analysis-*.json there)

Also prints, per task, the Delta_PS statistics of `tiller analyze --json` at a few layers (is the
heavy tail there: max / median of ||Delta_t||, the share of rows holding half of sum ||Delta_t||^2)
and each steering file's relative RMSE against Delta_PS at the layers it steers.

persona (pirate): the share of answers that use a pirate word (arr, matey, ahoy, aye, ye, hearty,
    landlubber, shiver, yo ho, booty, scallywag), counted on whole words, case-insensitive;
format (capitals): the share of answers whose letters are at least 90% upper case (and that have
    at least 20 letters, so an empty answer does not pass);
length: mean words per answer, a crude fluency check (a steered model that breaks down tends to
    repeat itself to the token limit or stop at once); repeats: the share of answers in which one
    word makes up more than a third of the words.
"""
import json
import re
import sys
from pathlib import Path

PIRATE = re.compile(r"\b(arr+|matey|mateys|ahoy|aye|ye|hearty|hearties|landlubbers?|shiver|yo ho|booty|scallywags?)\b", re.I)


def persona(text: str) -> bool:
    return bool(PIRATE.search(text))


def capitals(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    return len(letters) >= 20 and sum(c.isupper() for c in letters) / len(letters) >= 0.9


def repeats(text: str) -> bool:
    words = re.findall(r"[a-z']+", text.lower())
    return len(words) >= 6 and max(words.count(w) for w in set(words)) > len(words) / 3


ORDER = ["unsteered", "prompt", "diffmean", "stolfo", "apsr"]


def analysis(out: Path) -> None:
    for path in sorted(out.glob("analysis-*.json")):
        task = path.stem[len("analysis-"):]
        data = json.loads(path.read_text())
        layers = data["layers"]
        picks = sorted({0, len(layers) // 4, len(layers) // 2, 3 * len(layers) // 4, len(layers) - 1})
        print(f"\n{task}: Delta_PS per captured row, {data['capture']['triplets']} triplets, {data['capture']['rows']} rows")
        print("| layer | rows | median norm | p99 | max / median | half the mass in | answer rows: max / median |")
        print("|---:|---:|---:|---:|---:|---:|---:|")
        for i in picks:
            entry = layers[i]
            a, ans = entry["all"], entry.get("answer", {})
            print(f"| {entry.get('layer', i)} | {a['count']} | {a['p50']:.3g} | {a['p99']:.3g} | {a['max_over_median']:.1f} | "
                  f"{a['half_mass_share']:.1%} of rows | {ans.get('max_over_median', float('nan')):.1f} |")
        print("\n| steering file | layer | relative RMSE (all rows) | (answer rows) |")
        print("|---|---:|---:|---:|")
        for steer in data.get("steering", []):
            name = Path(steer["file"]).stem
            for entry in steer["layers"]:
                # A-PSR has a head on every layer: the picked layers; the others their steered one.
                if (entry["layer"] in picks) if name.startswith("apsr") else ("projection_mean" in entry):
                    print(f"| {name} | {entry['layer']} | {entry['relative_rmse']:.3f} | {entry['relative_rmse_answer']:.3f} |")


def main() -> int:
    out = Path(sys.argv[1])
    rows = []
    for path in sorted(out.glob("gen-*.jsonl"), key=lambda p: (p.stem.split("--")[0], ORDER.index(p.stem.split("--")[1])
                                                               if p.stem.split("--")[1] in ORDER else 99)):
        task, method = path.stem[len("gen-"):].split("--", 1)
        answers = [json.loads(line)["completion"] for line in path.open()]
        check = persona if task == "persona" else capitals
        rows.append((task, method, len(answers), sum(map(check, answers)) / len(answers),
                     sum(len(a.split()) for a in answers) / len(answers), sum(map(repeats, answers)) / len(answers)))
    print("| task | method | answers | on target | mean words | repetitive |")
    print("|---|---|---:|---:|---:|---:|")
    for task, method, n, hit, words, rep in rows:
        print(f"| {task} | {method} | {n} | {hit:.2f} | {words:.0f} | {rep:.2f} |")
    analysis(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
