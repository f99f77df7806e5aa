#!/usr/bin/env python3
"""Embedding throughput: the `prottrans embed` binary against transformers (sdpa and eager).

Every implementation runs as its own subprocess (so peak RSS is per process), on the same
plain FASTA file: the first --limit records of --fasta (plain or .gz) copied verbatim into a
temporary file (all records without --limit), with the same thread count and batching:

  prottrans:  PROTTRANS embed --model MODEL --input SUBSET --output TMP/out.npz
                  --max-residues R --max-batch B --summary-json TMP/summary.json
                  [--prottrans-args ...]
              env RAYON_NUM_THREADS = --threads
  python:     benches/embed_reference.py --model MODEL --fasta SUBSET --threads T
                  --max-residues R --max-batch B --alone-above A --attn {sdpa,eager} ...
              (its one JSON line on stdout is the result)

OMP_NUM_THREADS, MKL_NUM_THREADS and OPENBLAS_NUM_THREADS are set to --threads for every
run (RAYON_NUM_THREADS too). The Rust summary JSON is expected to carry the fields
proteins, residues, seconds, residues_per_s, proteins_per_s, peak_rss_bytes (same names as
embed_reference.py); --alone-above and --per-protein are not part of that command line, so
pass the binary's own spelling through --prottrans-args if it needs them, e.g.
`--prottrans-args="--per-protein"`.

With --workdir, the outputs stay there for comparing numbers: prottrans' as out.npz and each
transformers run's per-residue (or --per-protein) embeddings as transformers-<attn>.npz
(embed_reference.py --output, written after its timing; key = protein id, float32 [L, d]).
An XLNet or Transformer-XL checkpoint needs --attn eager (transformers has no sdpa for them);
Transformer-XL needs a transformers 4.x on PYTHONPATH (inherited by the children).

The parent also records each child's own ru_maxrss (os.wait4) and wall time including
model load, in the JSON rows (child_maxrss_bytes, process_seconds).

With --repeat K the implementations run round-robin K times; the table shows, per
implementation, the median seconds (residues/s and proteins/s from it) and the largest
peak RSS. Ratio = that row's residues/s / the best transformers residues/s.

Usage:
  python benches/embed_vs_transformers.py --prottrans target/release/prottrans \\
      --fasta data/samples/uniprot_test.fasta.gz --model /tmp/bench-protbert \\
      [--threads 2] [--limit N] [--repeat 1] [--max-residues 4000] [--max-batch 100]
      [--alone-above 1000] [--per-protein] [--attn sdpa,eager] [--json-out FILE]
      [--skip-prottrans] [--prottrans-args "..."] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REFERENCE = HERE / "embed_reference.py"
RUST_FIELDS = ["proteins", "residues", "seconds", "residues_per_s", "proteins_per_s", "peak_rss_bytes"]


def write_subset(src: Path, dst: Path, limit: int | None) -> int:
    """Copy the first `limit` records of `src` (plain or .gz) verbatim; returns the count."""
    opener = gzip.open if src.suffix == ".gz" else open
    n = 0
    with opener(src, "rt") as f, open(dst, "w") as out:
        for line in f:
            if line.startswith(">"):
                if limit is not None and n == limit:
                    break
                n += 1
            if n:
                out.write(line if line.endswith("\n") else line + "\n")
    return n


def run_child(cmd: list[str], env: dict[str, str], log_prefix: Path) -> tuple[int, float, int, str]:
    """Run `cmd`; returns (exit status, wall seconds, child's ru_maxrss in bytes, stdout)."""
    out_path, err_path = Path(f"{log_prefix}.stdout"), Path(f"{log_prefix}.stderr")
    with open(out_path, "w") as out, open(err_path, "w") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
    maxrss = usage.ru_maxrss if sys.platform == "darwin" else usage.ru_maxrss * 1024
    return proc.returncode, wall, maxrss, out_path.read_text()


def tail(path: Path, n: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prottrans", type=Path, help="the prottrans binary (required unless --skip-prottrans)")
    ap.add_argument("--fasta", type=Path, required=True, help="FASTA file, plain or .gz")
    ap.add_argument("--model", type=Path, required=True, help="checkpoint directory (e.g. from make_bench_model.py)")
    ap.add_argument("--threads", type=int, default=2, help="threads for every implementation (default 2)")
    ap.add_argument("--limit", type=int, default=None, help="first N records of --fasta only")
    ap.add_argument("--repeat", type=int, default=1, help="round-robin repetitions (default 1)")
    ap.add_argument("--max-residues", type=int, default=4000, help="residues per batch (default 4000)")
    ap.add_argument("--max-batch", type=int, default=100, help="proteins per batch (default 100)")
    ap.add_argument("--alone-above", type=int, default=1000,
                    help="longer proteins run alone (default 1000; passed to the Python runs)")
    ap.add_argument("--per-protein", action="store_true", help="Python runs also average over residues")
    ap.add_argument("--attn", default="sdpa,eager", help="transformers attention impls (default sdpa,eager)")
    ap.add_argument("--batching", choices=["greedy", "rostlab"], default="greedy",
                    help="batch rule of the Python runs (default greedy, see embed_reference.py)")
    ap.add_argument("--segment-length", type=int, default=None,
                    help="XLNet / Transformer-XL segment length, passed to both sides (default: each side's default)")
    ap.add_argument("--prottrans-args", default="", help="extra arguments for `prottrans embed` (shell-split)")
    ap.add_argument("--skip-prottrans", action="store_true", help="run only the transformers side")
    ap.add_argument("--python", default=sys.executable, help="interpreter for embed_reference.py")
    ap.add_argument("--json-out", type=Path, default=None, help="write every run and the table rows here")
    ap.add_argument("--workdir", type=Path, default=None,
                    help="keep the subset FASTA, logs and outputs here (default: a temp dir, removed)")
    args = ap.parse_args(argv)

    if not args.skip_prottrans and args.prottrans is None:
        ap.error("--prottrans is required (or pass --skip-prottrans)")
    if min(args.threads, args.repeat, args.max_residues, args.max_batch, args.alone_above) < 1:
        ap.error("--threads, --repeat, --max-residues, --max-batch, --alone-above must be >= 1")
    attns = [a.strip() for a in args.attn.split(",") if a.strip()]
    if any(a not in ("sdpa", "eager") for a in attns):
        ap.error(f"--attn: sdpa and/or eager, got {attns}")
    if not attns and args.skip_prottrans:
        ap.error("nothing to run")
    if args.prottrans is not None and not args.skip_prottrans:
        if not (args.prottrans.is_file() and os.access(args.prottrans, os.X_OK)):
            ap.error(f"--prottrans {args.prottrans} is not an executable file")

    work = args.workdir or Path(tempfile.mkdtemp(prefix="embed-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    subset = work / "input.fasta"
    n_records = write_subset(args.fasta, subset, args.limit)
    if n_records == 0:
        raise SystemExit(f"{args.fasta}: no FASTA records")
    print(f"# {n_records} records -> {subset}; threads {args.threads}; "
          f"max-residues {args.max_residues}, max-batch {args.max_batch}, "
          f"alone-above {args.alone_above}", file=sys.stderr)

    env = dict(os.environ)
    t = str(args.threads)
    env.update(RAYON_NUM_THREADS=t, OMP_NUM_THREADS=t, MKL_NUM_THREADS=t, OPENBLAS_NUM_THREADS=t,
               TOKENIZERS_PARALLELISM="false")

    impls: list[tuple[str, list[str]]] = []
    if not args.skip_prottrans:
        impls.append(("prottrans", [
            str(args.prottrans), "embed", "--model", str(args.model), "--input", str(subset),
            "--output", str(work / "out.npz"), "--max-residues", str(args.max_residues),
            "--max-batch", str(args.max_batch), "--alone-above", str(args.alone_above),
            "--summary-json", str(work / "summary.json"),
            *(["--per-protein"] if args.per_protein else []),
            *([] if args.segment_length is None else ["--segment-length", str(args.segment_length)]),
            *shlex.split(args.prottrans_args)]))
    for attn in attns:
        cmd = [args.python, str(REFERENCE), "--model", str(args.model), "--fasta", str(subset),
               "--threads", t, "--max-residues", str(args.max_residues),
               "--max-batch", str(args.max_batch), "--alone-above", str(args.alone_above),
               "--attn", attn, "--batching", args.batching]
        if args.per_protein:
            cmd.append("--per-protein")
        if args.segment_length is not None:
            cmd += ["--segment-length", str(args.segment_length)]
        if args.workdir is not None:
            cmd += ["--output", str(work / f"transformers-{attn}.npz")]
        impls.append((f"transformers-{attn}", cmd))

    runs: list[dict] = []
    failed = False
    for rep in range(args.repeat):
        for name, cmd in impls:
            if name == "prottrans":  # keep its out.npz for the transformers runs that follow
                for stale in (work / "summary.json", work / "out.npz"):
                    stale.unlink(missing_ok=True)
            print(f"# [{rep + 1}/{args.repeat}] {name}: {shlex.join(cmd)}", file=sys.stderr, flush=True)
            log = work / f"{name}.{rep}"
            rc, wall, maxrss, stdout = run_child(cmd, env, log)
            if rc != 0:
                print(f"# {name} FAILED (exit {rc}); stderr tail:\n{tail(Path(f'{log}.stderr'))}",
                      file=sys.stderr)
                failed = True
                continue
            try:
                if name == "prottrans":
                    rec = json.loads((work / "summary.json").read_text())
                else:
                    rec = json.loads([ln for ln in stdout.splitlines() if ln.startswith("{")][-1])
            except (OSError, IndexError, json.JSONDecodeError) as e:
                print(f"# {name}: no result JSON ({e}); stderr tail:\n{tail(Path(f'{log}.stderr'))}",
                      file=sys.stderr)
                failed = True
                continue
            missing = [k for k in RUST_FIELDS if k not in rec]
            if missing:
                print(f"# {name}: result lacks {missing}", file=sys.stderr)
                failed = True
                continue
            rec = {"impl": name, **{k: v for k, v in rec.items() if k != "impl"},
                   "reported_impl": rec.get("impl"), "repeat": rep, "process_seconds": round(wall, 3),
                   "child_maxrss_bytes": maxrss}
            rec.setdefault("threads", args.threads)
            runs.append(rec)
            print(f"#   {rec['seconds']:.3f} s, {rec['residues_per_s']:.1f} residues/s, "
                  f"peak RSS {rec['peak_rss_bytes'] / 2**20:.0f} MiB", file=sys.stderr, flush=True)

    rows = []
    for name, _ in impls:
        mine = [r for r in runs if r["impl"] == name]
        if not mine:
            continue
        seconds = statistics.median(r["seconds"] for r in mine)
        first = mine[0]
        rows.append({
            "impl": name,
            "proteins": first["proteins"],
            "residues": first["residues"],
            "seconds": seconds,
            "residues_per_s": first["residues"] / seconds,
            "proteins_per_s": first["proteins"] / seconds,
            "peak_rss_bytes": max(r["peak_rss_bytes"] for r in mine),
            "runs": len(mine),
        })
    counts = {(r["proteins"], r["residues"]) for r in rows}
    if len(counts) > 1:
        print(f"# WARNING: implementations disagree on proteins/residues: "
              f"{[(r['impl'], r['proteins'], r['residues']) for r in rows]}", file=sys.stderr)
    best_tf = max((r["residues_per_s"] for r in rows if r["impl"].startswith("transformers-")), default=None)
    for r in rows:
        r["ratio_vs_best_transformers"] = r["residues_per_s"] / best_tf if best_tf else None

    print("| impl | proteins | residues | seconds | residues/s | peak RSS MiB | ratio vs best transformers |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        ratio = f"{r['ratio_vs_best_transformers']:.2f}" if r["ratio_vs_best_transformers"] else "-"
        print(f"| {r['impl']} | {r['proteins']} | {r['residues']} | {r['seconds']:.3f} | "
              f"{r['residues_per_s']:.1f} | {r['peak_rss_bytes'] / 2**20:.0f} | {ratio} |")

    if args.json_out is not None:
        args.json_out.write_text(json.dumps({
            "fasta": str(args.fasta), "limit": args.limit, "records": n_records,
            "model": str(args.model), "threads": args.threads, "repeat": args.repeat,
            "max_residues": args.max_residues, "max_batch": args.max_batch,
            "alone_above": args.alone_above, "per_protein": args.per_protein,
            "batching": args.batching, "prottrans_args": args.prottrans_args,
            "rows": rows, "runs": runs}, indent=2) + "\n")
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
