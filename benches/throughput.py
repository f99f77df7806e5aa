#!/usr/bin/env python3
"""One benchmark, one table: prottrans against PyTorch/transformers on this machine.

Embedding rows, for each model shape (random weights, a few layers, made by
make_bench_model.py and cached in --workdir):
  - protbert:  ProtBert's shape (BertModel, width 1024, 16 heads, FFN 4096)
  - prott5-xl: ProtT5-XL's encoder shape (T5EncoderModel, width 1024, 32 heads of 128,
               FFN 16384, ReLU, bucketed relative bias)
each implementation runs as its own process on the same proteins (the first --limit records of
--fasta), with the same length-sorted residue-budget batches (--max-residues, --max-batch),
the same thread count, warm-up excluded by each side's own timer:
  - prottrans embed --device flex --precision f32|bf16 (the --prottrans binary), and on CPUs
    with AMX-BF16 also f32 with --matmul-precision bf16 (the linear layers' products in bf16)
  - prottrans embed --device tch  --precision f32|bf16 (a binary built with `--features tch`,
    given as --prottrans-tch; libtorch's directory on LD_LIBRARY_PATH, see scripts/libtorch.sh)
  - transformers sdpa|eager in float32|bfloat16 (benches/embed_reference.py)
The implementations alternate round-robin --repeat times; the table shows the median residues/s,
the largest peak RSS of the process, the ratio to transformers sdpa f32, and the largest
absolute per-residue deviation and smallest per-protein (mean-pooled) cosine to transformers
sdpa f32's embeddings.

Training rows: tokens/s of one masked-LM step of configs/small.toml's model (batch 16 x 256),
`cargo bench --bench backends -- --workloads train_small` (and, with --bench-tch, that bench
built with `--features tch`, run on tch) against benches/torch_reference.py's train_small (the
same model and step in PyTorch, eager and sdpa).

Usage:
  python benches/throughput.py --prottrans target/release/prottrans \\
      [--prottrans-tch PATH] [--bench-tch PATH] [--also LABEL=PATH] [--also-bench LABEL=PATH] [--fasta data/samples/uniprot_test.fasta.gz] [--limit 64]
      [--layers 2] [--repeat 2] [--threads N] [--shapes protbert,prott5-xl]
      [--python PY] [--no-training] [--book book/src/performance.md] [--workdir DIR]

--book replaces the text between `<!-- throughput:begin -->` and `<!-- throughput:end -->`
(or, with --section NAME, `<!-- NAME:begin -->` and `<!-- NAME:end -->`) in that file with the
table, the command line, the CPU and the versions.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from embed_vs_transformers import run_child, tail, write_subset  # noqa: E402

SHAPES = {"protbert": ("bert", "ProtBert"), "prott5-xl": ("t5", "ProtT5-XL encoder")}


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def cpu_has(flag: str) -> bool:
    try:
        return any(l.startswith("flags") and flag in l.split() for l in Path("/proc/cpuinfo").read_text().splitlines())
    except OSError:
        return False


def cpu_simd() -> str:
    try:
        flags = next(l for l in Path("/proc/cpuinfo").read_text().splitlines() if l.startswith("flags")).split()
    except (OSError, StopIteration):
        return "?"
    if "avx512f" in flags:
        return "AVX-512" + (" + AMX" if "amx_tile" in flags else "")
    return "AVX2" if "avx2" in flags else "SSE"


def load_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as z:
        return {k: z[k].astype(np.float32) for k in z.files}


def deviation(out: dict[str, np.ndarray], ref: dict[str, np.ndarray]) -> tuple[float, float]:
    """(largest |a - b| over every residue and dimension, smallest per-protein cosine)."""
    if set(out) != set(ref):
        raise SystemExit(f"outputs disagree on proteins: {sorted(set(out) ^ set(ref))[:5]}")
    worst, cosine = 0.0, 1.0
    for key, b in ref.items():
        a = out[key]
        if a.shape != b.shape:
            raise SystemExit(f"{key}: shape {a.shape} vs {b.shape}")
        worst = max(worst, float(np.abs(a - b).max()))
        pa, pb = a.mean(axis=0).astype(np.float64), b.mean(axis=0).astype(np.float64)
        cosine = min(cosine, float(pa @ pb / (np.linalg.norm(pa) * np.linalg.norm(pb))))
    return worst, cosine


def embedding_rows(args, shape: str, model: Path, subset: Path, work: Path, env: dict[str, str]) -> list[dict]:
    impls = []  # (name, backend, precision, command builder)
    binaries = [("flex", args.prottrans, "")] + ([("tch", args.prottrans_tch, "")] if args.prottrans_tch else [])
    for extra in args.also:
        label, _, path = extra.partition("=")
        binaries.append(("flex", Path(path), f" ({label})"))
    runs = [(backend, binary, label, precision, [])
            for backend, binary, label in binaries
            for precision in (args.precisions.split(",") if not label else args.precisions.split(",")[:1])]
    if cpu_has("amx_bf16"):
        # f32 model, products in bf16 on AMX.
        runs.append(("flex", args.prottrans, ", bf16 products (AMX)", "f32", ["--matmul-precision", "bf16"]))
    for backend, binary, label, precision, extra in runs:
        name = f"prottrans {backend} {precision}{label}"

        def cmd(out: Path, summary: Path, binary=binary, backend=backend, precision=precision, extra=extra):
            return [str(binary), "embed", "--model", str(model), "--input", str(subset),
                    "--output", str(out), "--device", backend, "--precision", precision, *extra,
                    "--max-residues", str(args.max_residues), "--max-batch", str(args.max_batch),
                    "--alone-above", str(args.alone_above), "--summary-json", str(summary)]
        impls.append((name, cmd))
    for dtype in args.precisions.split(","):
        for attn in ("sdpa", "eager"):
            name = f"transformers {attn} {dtype}"

            def cmd(out: Path, summary: Path, attn=attn, dtype=dtype):
                return [args.python, str(HERE / "embed_reference.py"), "--model", str(model),
                        "--fasta", str(subset), "--threads", str(args.threads), "--attn", attn,
                        "--dtype", dtype, "--max-residues", str(args.max_residues),
                        "--max-batch", str(args.max_batch), "--alone-above", str(args.alone_above),
                        "--output", str(out)]
            impls.append((name, cmd))

    reference_name = f"transformers sdpa {args.precisions.split(',')[0]}"
    if args.skip:
        impls = [(n, c) for n, c in impls if n == reference_name or not re.search(args.skip, n)]
    runs: dict[str, list[dict]] = {name: [] for name, _ in impls}
    outputs: dict[str, Path] = {}
    for rep in range(args.repeat):
        for i, (name, cmd) in enumerate(impls):
            slug = name.replace(" ", "-")
            out, summary = work / f"{shape}-{slug}.npz", work / f"{shape}-{slug}.summary.json"
            for stale in (out, summary):
                stale.unlink(missing_ok=True)
            code, wall, maxrss, stdout = run_child(cmd(out, summary), env, work / f"{shape}-{slug}-{rep}")
            if code != 0:
                raise SystemExit(f"{name} failed ({code}):\n{tail(work / f'{shape}-{slug}-{rep}.stderr')}")
            result = json.loads(summary.read_text()) if name.startswith("prottrans") else json.loads(
                stdout.strip().splitlines()[-1])
            result.update(maxrss=maxrss, wall=wall)
            runs[name].append(result)
            outputs[name] = out
            print(f"# {shape} round {rep + 1}: {name}: {result['residues_per_s']:.1f} residues/s, "
                  f"peak {maxrss / 2**20:.0f} MiB", file=sys.stderr, flush=True)

    reference = load_npz(outputs[reference_name])
    rows = []
    for name, _ in impls:
        seconds = statistics.median(r["seconds"] for r in runs[name])
        residues = runs[name][0]["residues"]
        worst, cosine = deviation(load_npz(outputs[name]), reference)
        rows.append({"shape": shape, "impl": name, "residues": residues, "seconds": seconds,
                     "residues_per_s": residues / seconds, "all_residues_per_s": [r["residues_per_s"] for r in runs[name]],
                     "peak_rss_bytes": max(r["maxrss"] for r in runs[name]),
                     "max_abs_dev": worst, "min_cosine": cosine})
    base = next(r for r in rows if r["impl"] == reference_name)["residues_per_s"]
    for r in rows:
        r["ratio"] = r["residues_per_s"] / base
    return rows


def training_rows(args, env: dict[str, str]) -> list[dict]:
    rows = []
    benches = [("prottrans flex", ["cargo", "bench", "-q", "--bench", "backends", "--"], "flex")]
    if args.bench_tch:
        benches.append(("prottrans tch", [str(args.bench_tch)], "tch"))
    for extra in args.also_bench:
        label, _, path = extra.partition("=")
        benches.append((f"prottrans flex ({label})", [path], "flex"))
    for rep in range(args.repeat):
        for name, prefix, device in benches:
            cmd = [*prefix, "--device", device, "--workloads", "train_small"]
            out = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
            if out.returncode != 0:
                raise SystemExit(f"{shlex.join(cmd)} failed:\n{out.stderr[-3000:]}")
            for line in out.stdout.splitlines():
                if line.startswith("{"):
                    rows.append({**json.loads(line), "impl": name})
        cmd = [args.python, str(HERE / "torch_reference.py"), "--threads", str(args.threads),
               "--workloads", "train_small", "--impls", "eager,sdpa"]
        out = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"{shlex.join(cmd)} failed:\n{out.stderr[-3000:]}")
        for line in out.stdout.splitlines():
            if line.startswith("{"):
                rec = json.loads(line)
                rows.append({**rec, "impl": rec["impl"].replace("pytorch-", "PyTorch ")})
    merged: dict[str, list[float]] = {}
    for r in rows:
        merged.setdefault(r["impl"], []).append(r["tokens_per_s"])
    best_torch = max(statistics.median(v) for k, v in merged.items() if k.startswith("PyTorch"))
    return [{"impl": k, "tokens_per_s": statistics.median(v), "all": v,
             "ratio": statistics.median(v) / best_torch} for k, v in merged.items()]


def table(embed: list[dict], train: list[dict]) -> str:
    lines = ["| shape | implementation | residues/s | × transformers sdpa f32 | peak RSS | max abs dev | min cosine |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in embed:
        lines.append(f"| {SHAPES[r['shape']][1]} | {r['impl']} | {r['residues_per_s']:.1f} | {r['ratio']:.2f} | "
                     f"{r['peak_rss_bytes'] / 2**20:.0f} MiB | {r['max_abs_dev']:.1e} | {r['min_cosine']:.6f} |")
    if train:
        lines += ["", "| MLM training step, `configs/small.toml` (16 × 256 tokens) | tokens/s | × best PyTorch |",
                  "|---|---:|---:|"]
        for r in train:
            lines.append(f"| {r['impl']} | {r['tokens_per_s']:.0f} | {r['ratio']:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prottrans", type=Path, required=True, help="prottrans binary (default features)")
    ap.add_argument("--prottrans-tch", type=Path, default=None, help="prottrans binary built with --features tch")
    ap.add_argument("--also", action="append", default=[], metavar="LABEL=PATH",
                    help="another prottrans binary (e.g. before=/path/to/old/prottrans), flex f32 only")
    ap.add_argument("--also-bench", action="append", default=[], metavar="LABEL=PATH",
                    help="another build's `backends` bench binary, for a flex training row")
    ap.add_argument("--bench-tch", type=Path, default=None, metavar="PATH",
                    help="a `backends` bench binary built with --features tch, for the tch training row")
    ap.add_argument("--fasta", type=Path, default=ROOT / "data/samples/uniprot_test.fasta.gz")
    ap.add_argument("--limit", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2, help="layers of each benchmark model (default 2)")
    ap.add_argument("--shapes", default="protbert,prott5-xl", help="embedding shapes (\"\": training rows only)")
    ap.add_argument("--precisions", default="f32,bf16", help="first one is the reference (default f32,bf16)")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--max-residues", type=int, default=4000)
    ap.add_argument("--max-batch", type=int, default=100)
    ap.add_argument("--alone-above", type=int, default=1000)
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--skip", default=None, metavar="REGEX",
                    help="leave out the embedding rows whose name matches (never the reference)")
    ap.add_argument("--no-training", action="store_true")
    ap.add_argument("--book", type=Path, default=None)
    ap.add_argument("--section", default="throughput",
                    help="--book replaces the text between <!-- SECTION:begin --> and <!-- SECTION:end --> (default throughput)")
    ap.add_argument("--json-out", type=Path, default=None)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/prottrans-throughput"))
    args = ap.parse_args(argv)

    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    subset = work / "input.fasta"
    n = write_subset(args.fasta, subset, args.limit)
    env = dict(os.environ)
    t = str(args.threads)
    env.update(RAYON_NUM_THREADS=t, OMP_NUM_THREADS=t, MKL_NUM_THREADS=t, OPENBLAS_NUM_THREADS=t)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())

    embed: list[dict] = []
    for shape in filter(None, args.shapes.split(",")):  # --shapes "": training rows only
        arch = SHAPES[shape][0]
        model = work / f"model-{shape}-{args.layers}"
        if not (model / "config.json").exists():
            subprocess.run([args.python, str(HERE / "make_bench_model.py"), "--arch", arch,
                            "--layers", str(args.layers), "--out", str(model)], check=True, env=env)
        embed += embedding_rows(args, shape, model, subset, work, env)
    train = [] if args.no_training else training_rows(args, env)

    versions = subprocess.run([args.python, "-c", "import torch, transformers; "
                               "print(torch.__version__, transformers.__version__)"],
                              capture_output=True, text=True, env=env).stdout.split()
    header = (f"{cpu_name()} ({cpu_simd()}), {args.threads} threads, {started}; {n} proteins of "
              f"`{args.fasta.name}`, {args.layers} layers, batches of ≤ {args.max_residues} residues / "
              f"{args.max_batch} proteins, {args.repeat} alternated rounds (median); torch "
              f"{versions[0] if versions else '?'}, transformers {versions[1] if len(versions) > 1 else '?'}.")
    command = "python " + shlex.join(["benches/throughput.py", *(argv if argv is not None else sys.argv[1:])])
    text = f"{header}\n\n```sh\n{command}\n```\n\n{table(embed, train)}\n"
    print(text)
    if args.json_out:
        args.json_out.write_text(json.dumps({"header": header, "embed": embed, "train": train}, indent=1))
    if args.book:
        page = args.book.read_text()
        BEGIN, END = f"<!-- {args.section}:begin -->", f"<!-- {args.section}:end -->"
        if BEGIN not in page or END not in page:
            raise SystemExit(f"{args.book}: no {BEGIN} ... {END} markers")
        before, rest = page.split(BEGIN, 1)
        _, after = rest.split(END, 1)
        args.book.write_text(f"{before}{BEGIN}\n{text}{END}{after}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
