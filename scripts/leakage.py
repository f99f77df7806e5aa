#!/usr/bin/env python3
"""Leakage report: how many valid/test sequences have a close relative in a training split they
could be combined with.

A valid/test sequence is a hit when a training sequence aligns to it with >= 30% identity over
>= 80% of the valid/test sequence (mmseqs easy-search, E <= 1e-3, the criterion of the leakage
filter in scripts/prepare_data.py).  Pairs searched, for the files present in DATA:

  same set         X_train vs X_valid, X_test for uniprot, metastudent, ss, ss8, localization
  shared source    ss_train vs ss8_valid/test and ss8_train vs ss_valid/test (gor4, promod3: both PDB)
  pretraining      uniprot_train vs ss/ss8/localization valid/test;
                   metastudent_train vs ss/ss8/localization/uniprot valid/test
  report only      uniprot_train vs metastudent_valid/test (not filtered)

Same-set and shared-source pairs search the valid/test sequences (query, --cov-mode 2) against the
train split; pretraining pairs search the train split (query) against the union of the protected
valid/test splits (target, --cov-mode 1), as the filter does, so a clean split reports exactly 0.

Python 3.11, standard library only, plus the Debian `mmseqs` binary (apt-get install mmseqs2).

Usage:
    python3 scripts/leakage.py [DATA=data/full] [--train-dir DIR] [--work data/work]
        [--threads 2] [--examples N] [--json FILE] [--check]

--train-dir DIR also takes train splits missing from DATA from DIR (e.g. DATA=data/samples,
DIR=data/full for metastudent_train.fasta).  --check exits 1 if any filtered pair has a hit.
"""
from __future__ import annotations

import argparse
import csv
import gzip
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from prepare_data import (FILE_PREFIX, LEAK_CRITERION, PROTECTED, ROOT, SHARED_SOURCE,  # noqa: E402
                          mmseqs_search, read_fasta)

SETS = ["uniprot", "metastudent", "gor4", "promod3", "localization"]
SPLITS = ("train", "valid", "test")


def read_split(d: Path, name: str, split: str):
    """[(id, sequence)] of one split file, or None if absent."""
    pre = f"{FILE_PREFIX[name]}_{split}"
    for ext in (".fasta", ".fasta.gz"):
        p = d / (pre + ext)
        if p.exists():
            opener = gzip.open if ext.endswith(".gz") else open
            with opener(p, "rt") as f:
                return [(h.split()[0] if h.split() else "", s) for h, s in read_fasta(f)]
    p = d / (pre + ".csv")
    if not p.exists():
        return None
    with open(p, newline="") as f:
        rows = list(csv.DictReader(f))
    if name == "localization":
        return [(r["id"], r["sequence"]) for r in rows]
    ids_p = d / (pre + ".ids.txt")
    ids = ids_p.read_text().split() if ids_p.exists() else [f"row{i + 1}" for i in range(len(rows))]
    return [(i, r["input"]) for i, r in zip(ids, rows)]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", nargs="?", type=Path, default=ROOT / "data/full")
    ap.add_argument("--train-dir", type=Path, help="take train splits missing from DATA from here")
    ap.add_argument("--work", type=Path, default=ROOT / "data/work", help="mmseqs scratch and result cache")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--examples", type=int, default=0, help="list up to N hits per pair")
    ap.add_argument("--json", type=Path, help="also write the figures as JSON")
    ap.add_argument("--check", action="store_true", help="exit 1 if a filtered pair has any hit")
    args = ap.parse_args()

    data = {}
    for n in SETS:
        for s in SPLITS:
            recs = read_split(args.data, n, s)
            src = args.data
            if recs is None and s == "train" and args.train_dir is not None:
                recs = read_split(args.train_dir, n, s)
                src = args.train_dir
            if recs is not None:
                data[(n, s)] = recs
                print(f"  {FILE_PREFIX[n]}_{s}: {len(recs)} sequences ({src})", file=sys.stderr)
    if not data:
        raise SystemExit(f"no split files in {args.data}")

    def name(n, s):
        return f"{FILE_PREFIX[n]}_{s}"

    rows = []  # (train, test, relation, filtered, n_test, test_hit, train_hit, examples)
    t0 = time.time()
    for tr in SETS:
        if (tr, "train") not in data:
            continue
        train = data[(tr, "train")]
        # test-query pairs: valid/test of the same set, of a set with a shared source, report-only
        group = [(tr, "same set", True)] + [(o, "shared source (PDB)", True) for o in SHARED_SOURCE.get(tr, [])]
        if tr == "uniprot":
            group.append(("metastudent", "report only", False))
        qs = [(n, s, rel, filt) for n, rel, filt in group for s in ("valid", "test") if (n, s) in data]
        if qs:
            query = [sq for n, s, _, _ in qs for _, sq in data[(n, s)]]
            res = mmseqs_search(query, [sq for _, sq in train], args.work, args.threads, 2,
                                tag=f"report_{tr}_train")
            off = 0
            for n, s, rel, filt in qs:
                m = len(data[(n, s)])
                hits = {k - off: v for k, v in res["best"].items() if off <= k < off + m}
                ex = [(data[(n, s)][k][0], train[v[0]][0], v[1], v[2], v[3]) for k, v in sorted(hits.items())]
                rows.append((name(tr, "train"), name(n, s), rel, filt, m, len(hits),
                             len({v[0] for v in hits.values()}), ex))
                off += m
        # train-query pairs: a pretraining corpus against the union of the valid/test splits it protects
        if tr in PROTECTED:
            prot = [(p, s) for p in PROTECTED[tr] for s in ("valid", "test") if (p, s) in data]
            if prot:
                target = [sq for p, s in prot for _, sq in data[(p, s)]]
                res = mmseqs_search([sq for _, sq in train], target, args.work, args.threads, 1,
                                    tag=f"report_{tr}_train_vs_protected")
                starts, off = [], 0
                for p, s in prot:
                    starts.append(off)
                    off += len(data[(p, s)])
                by_target = {}
                for qi, v in sorted(res["best"].items()):
                    by_target.setdefault(v[0], (qi, v))
                for (p, s), st in zip(prot, starts):
                    m = len(data[(p, s)])
                    train_hit = {qi for qi, v in res["best"].items() if st <= v[0] < st + m}
                    test_hit = [t for t in res["targets"] if st <= t < st + m]
                    ex = []
                    for t in test_hit:
                        if t in by_target:
                            qi, v = by_target[t]
                            ex.append((data[(p, s)][t - st][0], train[qi][0], v[1], v[3], v[2]))
                    rows.append((name(tr, "train"), name(p, s), "pretraining corpus", True, m,
                                 len(test_hit), len(train_hit), ex))
    elapsed = time.time() - t0

    print(f"\nLeakage in {args.data}" + (f" (train splits also from {args.train_dir})" if args.train_dir else "")
          + f": {LEAK_CRITERION}.\n")
    print("| train | valid/test | relation | filtered | sequences | hits | fraction | train sequences involved |")
    print("|---|---|---|---|---|---|---|---|")
    for tr, te, rel, filt, m, h, th, _ in rows:
        frac = f"{100 * h / m:.1f}%" if m else "-"
        print(f"| {tr} | {te} | {rel} | {'yes' if filt else 'no'} | {m:,} | {h:,} | {frac} | {th:,} |")
    print(f"\n({elapsed:.0f} s)")
    if args.examples:
        print("\nExamples (valid/test id ~ train id, identity, coverage of the valid/test and of the train sequence):")
        for tr, te, _, _, _, _, _, ex in rows:
            for e in ex[:args.examples]:
                print(f"  {tr} -> {te}: {e[0]} ~ {e[1]} id {e[2]:.2f} test cov {e[3]:.2f} train cov {e[4]:.2f}")
    if args.json:
        args.json.write_text(json.dumps(
            {"data": str(args.data), "criterion": LEAK_CRITERION,
             "pairs": [{"train": tr, "test": te, "relation": rel, "filtered": filt, "sequences": m,
                        "hits": h, "train_sequences_involved": th}
                       for tr, te, rel, filt, m, h, th, _ in rows]}, indent=2) + "\n")
    if args.check:
        bad = [(tr, te, h) for tr, te, _, filt, _, h, _, _ in rows if filt and h]
        if bad:
            print("\nLEAKAGE CHECK FAILED: " + "; ".join(f"{tr} -> {te}: {h} hits" for tr, te, h in bad),
                  file=sys.stderr)
            sys.exit(1)
        print("\nleakage check passed: no hit in any filtered pair", file=sys.stderr)


if __name__ == "__main__":
    main()
