#!/usr/bin/env python3
"""Prints the fine-tuning comparison (markdown) from scripts/finetune_comparison.sh's OUT.

    python3 scripts/finetune_table.py runs/finetune_cmp/quickstart
"""
import json
import re
import sys
from pathlib import Path

out = Path(sys.argv[1])
ROWS = {"baseline": "baseline (one-hot / composition)", "frozen": "head on frozen embeddings",
        "lora": "LoRA (q, k, v, o; rank 4) + head", "full": "full fine-tuning + head"}

print("| task | row | accuracy (%) | MCC | trainable parameters | s / epoch | epochs (kept) | peak memory | wall |")
print("|---|---|---|---|---:|---:|---|---:|---:|")
for task_dir in sorted(p for p in out.iterdir() if (p / "baseline").is_dir()):
    for row, label in ROWS.items():
        d = task_dir / row
        report = d / "test" / "report.json"
        if not report.exists():
            continue
        tasks = json.loads(report.read_text())["tasks"]
        accuracy = ", ".join(f"{t['metric']} {100 * t['accuracy']:.1f} ± {100 * t['standard_error']:.1f}" for t in tasks)
        mcc = ", ".join(f"{t['mcc']:.3f}" for t in tasks)
        wall, peak = re.match(r"([\d.]+) s, (\d+) KiB", (d / "time.txt").read_text()).groups()
        summary = d / "run" / "finetune.json"
        if summary.exists():
            s = json.loads(summary.read_text())
            params = f"{s['trainable_parameters']:,} of {s['total_parameters']:,}"
            per_epoch = f"{s['seconds_per_epoch']:.1f}"
            epochs = f"{s['epochs_run']} ({s['best_epoch']})"
        else:
            head = json.loads((d / "run" / "head.json").read_text())
            params = "head only"
            per_epoch = "-"
            epochs = f"{head['epochs_run']} ({head['best_epoch']})"
        print(f"| {task_dir.name} | {label} | {accuracy} | {mcc} | {params} | {per_epoch} | {epochs} | "
              f"{int(peak) / 1024:.0f} MiB | {float(wall):.0f} s |")
    majority = json.loads((task_dir / "baseline" / "test" / "report.json").read_text())["tasks"]
    print(f"| {task_dir.name} | majority class | " + ", ".join(
        f"{t['metric']} {100 * t['majority_accuracy']:.1f}" for t in majority) + " | | | | | | |")
