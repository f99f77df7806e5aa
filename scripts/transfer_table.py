#!/usr/bin/env python3
"""Prints the transfer comparison table (markdown) from the evaluate reports under OUT.

    python3 scripts/transfer_table.py runs/transfer [one-hot random pretrained]
"""
import json
import sys
from pathlib import Path

out = Path(sys.argv[1])
names = sys.argv[2:] or sorted(p.name for p in out.iterdir() if p.is_dir())


def cell(task):
    return f"{100 * task['accuracy']:.1f} ± {100 * task['standard_error']:.1f}"


rows = []
majority = {}
for name in names:
    row = {"features": name}
    for problem in ["secondary_structure", "localization"]:
        report = out / name / problem / "test" / "report.json"
        if not report.exists():
            continue
        data = json.loads(report.read_text())
        for task in data["tasks"]:
            row[task["metric"]] = cell(task)
            row[task["metric"] + " MCC"] = f"{task['mcc']:.3f}"
            majority[task["metric"]] = f"{100 * task['majority_accuracy']:.1f} ± {100 * task['majority_standard_error']:.1f}"
            row[task["metric"] + " n"] = task["labelled"]
    rows.append(row)

columns = ["Q3", "Q8", "Q10", "Q2"]
print("| features | " + " | ".join(f"{c} (%)" for c in columns) + " |")
print("|---|" + "---|" * len(columns))
for row in rows:
    print(f"| {row['features']} | " + " | ".join(row.get(c, "-") for c in columns) + " |")
print("| majority class | " + " | ".join(majority.get(c, "-") for c in columns) + " |")
if rows:
    print()
    print("labelled: " + ", ".join(f"{c} {rows[0].get(c + ' n', '-')}" for c in columns))
    print("MCC: " + "; ".join(row["features"] + " " + ", ".join(f"{c} {row.get(c + ' MCC', '-')}" for c in columns) for row in rows))
