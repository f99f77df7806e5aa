#!/usr/bin/env python3
"""Fetch, verify, convert and split the real protein data reachable from package
registries (Debian apt, PyPI) into the formats used by `prottrans`.

Python 3.11, standard library only.  External tools: `apt-get download`,
`dpkg-deb -x`, `pip download` (only when an archive is not cached yet) and the
Debian `mmseqs` binary (package `mmseqs2`) for sequence-identity clustering.

Usage:
    python3 scripts/prepare_data.py [--out data/full] [--samples data/samples]
        [--sets sequences,secondary-structure,localization] [--work data/work]
        [--with-metastudent] [--with-promod3] [--seed 42] [--threads 2]
        [--update-checksums]

See data/README.md for provenance, licences, the class mapping and counts.
"""
from __future__ import annotations

import argparse
import collections
import csv
import glob
import gzip
import hashlib
import io
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tarfile
import time
import zipfile
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHECKSUMS = Path(__file__).resolve().parent / "data_checksums.json"

# --------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------
SOURCES = {
    "mmseqs2-examples": {
        "kind": "deb", "package": "mmseqs2-examples", "version": "14-7e284+ds-1",
        "file": "mmseqs2-examples_14-7e284+ds-1_all.deb",
        "licence": "UniProtKB data, CC BY 4.0 (Debian package: MIT/GPL-3 of MMseqs2)",
    },
    "gor4": {
        "kind": "sdist", "package": "gor4", "version": "1.0.1",
        "file": "gor4-1.0.1.tar.gz",
        "licence": "MIT (gor4 package); structures derived from the PDB (CC0)",
    },
    "p-scldata": {
        "kind": "wheel", "package": "p-scldata", "version": "2025.6.0",
        "file": "p_scldata-2025.6.0-py3-none-any.whl",
        "licence": "MIT (p-scldata / SCL2205); sequences from UniProtKB, CC BY 4.0",
    },
    "metastudent-data": {
        "kind": "deb", "package": "metastudent-data", "version": "2.0.1-8",
        "file": "metastudent-data_2.0.1-8_all.deb",
        "licence": "GPL-2+ (Debian package metastudent-data); UniProtKB sequences (2014-01) and GO annotations",
    },
    "promod3-data": {
        "kind": "deb", "package": "promod3-data", "version": "3.2.1+ds-6",
        "file": "promod3-data_3.2.1+ds-6_all.deb",
        "licence": "Apache-2.0 (ProMod3); structures from the PDB (CC0)",
    },
}

AA_OK = set("ACDEFGHIKLMNPQRSTVWYXBZUOJ")


def log(*a):
    print(*a, flush=True)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def run(cmd, **kw):
    log("  $ " + " ".join(str(c) if len(str(c)) < 200 else "<script>" for c in cmd))
    subprocess.run([str(c) for c in cmd], check=True, **kw)


# --------------------------------------------------------------------------
# Fetch + verify + extract
# --------------------------------------------------------------------------
class Fetcher:
    def __init__(self, work: Path, update_checksums: bool):
        self.dl = work / "dl"
        self.x = work / "x"
        self.dl.mkdir(parents=True, exist_ok=True)
        self.x.mkdir(parents=True, exist_ok=True)
        self.update = update_checksums
        self.sums = json.loads(CHECKSUMS.read_text()) if CHECKSUMS.exists() else {}

    def fetch(self, name: str) -> Path:
        src = SOURCES[name]
        path = self.dl / src["file"]
        if not path.exists():
            log(f"[fetch] {name} {src['version']}")
            if src["kind"] == "deb":
                run(["apt-get", "download", f"{src['package']}={src['version']}"], cwd=self.dl)
            elif src["kind"] == "sdist":
                run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                     f"{src['package']}=={src['version']}", "-d", self.dl])
            elif src["kind"] == "wheel":
                run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
                     f"{src['package']}=={src['version']}", "-d", self.dl])
            if not path.exists():
                raise SystemExit(f"download of {name} did not produce {path}")
        got = sha256_file(path)
        want = self.sums.get(src["file"])
        if want is None or self.update:
            if want is not None and want != got:
                log(f"[checksum] updating {src['file']}: {want} -> {got}")
            self.sums[src["file"]] = got
            CHECKSUMS.write_text(json.dumps(self.sums, indent=2, sort_keys=True) + "\n")
            log(f"[checksum] recorded {src['file']} sha256={got}")
        elif want != got:
            raise SystemExit(
                f"CHECKSUM MISMATCH for {src['file']} ({path}):\n"
                f"  expected {want}\n  got      {got}\n"
                f"Delete the file to re-download, or run with --update-checksums if the change is intended.")
        else:
            log(f"[checksum] ok {src['file']} {got[:16]}...")
        return path

    def extract(self, name: str) -> Path:
        src = SOURCES[name]
        archive = self.fetch(name)
        dest = self.x / name
        stamp = dest / ".extracted"
        if stamp.exists() and stamp.read_text() == self.sums[src["file"]]:
            return dest
        if dest.exists():
            shutil.rmtree(dest)
        dest.mkdir(parents=True)
        log(f"[extract] {archive.name}")
        if src["kind"] == "deb":
            run(["nice", "dpkg-deb", "-x", archive, dest])
        elif src["kind"] == "sdist":
            with tarfile.open(archive) as t:
                t.extractall(dest, filter="data")
        else:
            with zipfile.ZipFile(archive) as z:
                z.extractall(dest)
        stamp.write_text(self.sums[src["file"]])
        return dest


# --------------------------------------------------------------------------
# Helpers: FASTA, clustering, splitting
# --------------------------------------------------------------------------
def read_fasta(handle):
    name, seq = None, []
    for line in handle:
        line = line.rstrip("\r\n")
        if line.startswith(">"):
            if name is not None:
                yield name, "".join(seq)
            name, seq = line[1:], []
        elif line:
            seq.append(line.strip())
    if name is not None:
        yield name, "".join(seq)


def fasta_record(rid: str, desc: str, seq: str) -> str:
    head = f">{rid} {desc}".rstrip() if desc else f">{rid}"
    body = "\n".join(seq[i:i + 60] for i in range(0, len(seq), 60))
    return head + "\n" + body + "\n"


def write_fasta(path: Path, records, gz=False):
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        # mtime=0 and no file name for byte-reproducible archives
        with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as g:
            for rid, desc, seq in records:
                g.write(fasta_record(rid, desc, seq).encode())
    else:
        with open(path, "w") as f:
            for rid, desc, seq in records:
                f.write(fasta_record(rid, desc, seq))


def mmseqs_cluster(seqs: list[str], tmpdir: Path, threads: int, linclust=False,
                   min_seq_id=0.3, coverage=0.8) -> list[int]:
    """Cluster sequences; returns the cluster index (0..) of each input sequence.

    Cluster indices are numbered by the position of the representative in the input,
    so the result is deterministic for a given input order."""
    exe = shutil.which("mmseqs")
    if exe is None:
        raise SystemExit("mmseqs not found: apt-get install -y mmseqs2")
    if tmpdir.exists():
        shutil.rmtree(tmpdir)
    tmpdir.mkdir(parents=True)
    fa = tmpdir / "in.fasta"
    with open(fa, "w") as f:
        for i, s in enumerate(seqs):
            f.write(f">s{i}\n{s}\n")
    mode = "easy-linclust" if linclust else "easy-cluster"
    key = hashlib.sha256(fa.read_bytes() + f"{mode} {min_seq_id} {coverage}".encode()).hexdigest()[:24]
    cache = tmpdir.parent / "cluster_cache" / f"{key}.json"
    if cache.exists():
        log(f"  mmseqs {mode}: cached result {cache.name}")
        return json.loads(cache.read_text())
    t0 = time.time()
    run(["nice", exe, mode, fa, tmpdir / "out", tmpdir / "tmp", "--min-seq-id", str(min_seq_id),
         "-c", str(coverage), "--cov-mode", "0", "--threads", str(threads), "-v", "1"],
        stdout=subprocess.DEVNULL)
    log(f"  mmseqs {mode}: {time.time() - t0:.1f} s")
    rep_of = {}
    with open(tmpdir / "out_cluster.tsv") as f:
        for line in f:
            rep, mem = line.split()
            rep_of[int(mem[1:])] = int(rep[1:])
    missing = [i for i in range(len(seqs)) if i not in rep_of]
    if missing:
        raise SystemExit(f"mmseqs output lacks {len(missing)} sequences")
    reps = sorted(set(rep_of.values()))
    idx = {r: k for k, r in enumerate(reps)}
    shutil.rmtree(tmpdir / "tmp", ignore_errors=True)
    result = [idx[rep_of[i]] for i in range(len(seqs))]
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(result))
    return result


# Leakage filter: a valid/test sequence leaks when some training sequence aligns to it with
# >= 30% identity over >= 80% of the *test* sequence (mmseqs search, E <= 1e-3 as in clustering).
LEAK_MIN_ID = 0.3
LEAK_COVERAGE = 0.8
LEAK_CRITERION = (f"mmseqs easy-search --min-seq-id {LEAK_MIN_ID} -c {LEAK_COVERAGE}, coverage of the "
                  "valid/test sequence (--cov-mode 2 with it as query, --cov-mode 1 with it as target), "
                  "E <= 1e-3 (default)")


def mmseqs_search(query: list[str], target: list[str], work: Path, threads: int, cov_mode: int,
                  tag: str = "search", min_seq_id: float = LEAK_MIN_ID,
                  coverage: float = LEAK_COVERAGE) -> dict:
    """Search `query` against `target` with mmseqs easy-search.

    cov_mode 2: coverage of the query >= `coverage`; cov_mode 1: coverage of the target.
    Returns {"best": {query index: [target index, identity, qcov, tcov, evalue]} (mmseqs' best
    hit per query), "targets": sorted target indices hit by any query}.

    Results are cached per target set and parameters (work/search_cache/KEY.json, KEY = SHA-256 of
    the target FASTA and the parameters), per query sequence: a search for which every query
    sequence was searched before against the same target set runs nothing, otherwise only the new
    query sequences are searched.  This relies on mmseqs scoring each query independently of the
    other queries (E-values depend on the target set only)."""
    if not query or not target:
        return {"best": {}, "targets": []}
    exe = shutil.which("mmseqs")
    if exe is None:
        raise SystemExit("mmseqs not found: apt-get install -y mmseqs2")
    params = f"easy-search --min-seq-id {min_seq_id} -c {coverage} --cov-mode {cov_mode}"
    th = hashlib.sha256()
    for i, sq in enumerate(target):
        th.update(f">t{i}\n{sq}\n".encode())
    th.update(params.encode())
    cache_path = work / "search_cache" / f"{th.hexdigest()[:24]}.json"
    cache = json.loads(cache_path.read_text()) if cache_path.exists() else {"searched": [], "hits": {}}
    searched = set(cache["searched"])
    qkey = [hashlib.sha256(sq.encode()).hexdigest()[:20] for sq in query]
    todo = {}
    for k, sq in zip(qkey, query):
        if k not in searched and k not in todo:
            todo[k] = sq
    if not todo:
        log(f"  mmseqs easy-search {tag} ({len(query)} x {len(target)}): cached ({cache_path.name})")
    else:
        d = work / f"mmseqs_search_{tag}"
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
        todo_keys = list(todo)
        with open(d / "q.fasta", "w") as f:
            for i, k in enumerate(todo_keys):
                f.write(f">q{i}\n{todo[k]}\n")
        with open(d / "t.fasta", "w") as f:
            for i, sq in enumerate(target):
                f.write(f">t{i}\n{sq}\n")
        t0 = time.time()
        run(["nice", exe, "easy-search", d / "q.fasta", d / "t.fasta", d / "out.m8", d / "tmp",
             "--min-seq-id", str(min_seq_id), "-c", str(coverage), "--cov-mode", str(cov_mode),
             "--threads", str(threads), "-v", "1",
             "--format-output", "query,target,fident,qcov,tcov,evalue"], stdout=subprocess.DEVNULL)
        log(f"  mmseqs easy-search {tag} ({len(todo)} new of {len(query)} queries x {len(target)}): "
            f"{time.time() - t0:.1f} s")
        hits = cache["hits"]
        with open(d / "out.m8") as f:
            for line in f:
                q, t, fid, qc, tc, ev = line.split("\t")
                k, ti = todo_keys[int(q[1:])], int(t[1:])
                if k not in hits:  # mmseqs lists each query's hits best first
                    hits[k] = {"best": [ti, float(fid), float(qc), float(tc), float(ev)], "targets": []}
                hits[k]["targets"].append(ti)
        shutil.rmtree(d)
        cache["searched"] = sorted(searched | set(todo_keys))
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(cache))
        tmp.rename(cache_path)
    best, targets = {}, set()
    for i, k in enumerate(qkey):
        h = cache["hits"].get(k)
        if h is not None:
            best[i] = h["best"]
            targets.update(h["targets"])
    return {"best": best, "targets": sorted(targets)}


def split_clusters(cluster_of: list[int], fractions: dict[str, float], seed: int, tag: str) -> list[str]:
    """Assign whole clusters to splits; the split sizes (in sequences) follow `fractions`.

    Clusters are shuffled with a seeded RNG; the small splits (valid/test) are filled
    first up to their quota, the rest goes to train."""
    members = collections.defaultdict(list)
    for i, c in enumerate(cluster_of):
        members[c].append(i)
    order = sorted(members)
    rng = random.Random(f"{seed}:{tag}:clusters")
    rng.shuffle(order)
    n = len(cluster_of)
    small = [s for s in fractions if s != "train"]
    quota = {s: round(fractions[s] * n) for s in small}
    filled = {s: 0 for s in small}
    split_of_cluster = {}
    for c in order:
        size = len(members[c])
        target = "train"
        for s in small:
            if filled[s] < quota[s] and filled[s] + size <= quota[s] + max(1, quota[s] // 20):
                target = s
                break
        if target != "train":
            filled[target] += size
        split_of_cluster[c] = target
    return [split_of_cluster[c] for c in cluster_of]


def print_split_counts(tag, split_of, cluster_of, residues=None):
    clusters = collections.defaultdict(set)
    counts = collections.Counter(split_of)
    res = collections.Counter()
    for i, s in enumerate(split_of):
        clusters[s].add(cluster_of[i])
        if residues is not None:
            res[s] += residues[i]
    out = {}
    for s in ("train", "valid", "test"):
        log(f"  {tag} {s:5s}: {counts[s]:7d} sequences in {len(clusters[s]):6d} clusters"
            + (f", {res[s]} residues" if residues is not None else ""))
        out[s] = {"sequences": counts[s], "clusters": len(clusters[s])}
        if residues is not None:
            out[s]["residues"] = res[s]
    return out


def sample_indices(indices: list[int], k: int, seed: int, tag: str) -> list[int]:
    rng = random.Random(f"{seed}:{tag}:sample")
    if k >= len(indices):
        return sorted(indices)
    return sorted(rng.sample(sorted(indices), k))


# --------------------------------------------------------------------------
# Output bookkeeping
# --------------------------------------------------------------------------
class Manifest:
    def __init__(self):
        self.files = {}

    def add(self, path: Path, rows: int, residues: int, source: str, extra=None):
        src = SOURCES[source]
        entry = {
            "rows": rows, "residues": residues, "bytes": path.stat().st_size,
            "sha256": sha256_file(path),
            "source": f"{src['package']} {src['version']} ({src['kind']}: {src['file']})",
            "licence": src["licence"],
        }
        if extra:
            entry.update(extra)
        self.files[path.name] = entry


def write_csv(path: Path, header, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        for r in rows:
            w.writerow(r)


# --------------------------------------------------------------------------
# 1. Sequences (mmseqs2-examples DB.fasta.gz; optional metastudent-data)
# --------------------------------------------------------------------------
SEQ_FRACTIONS = {"train": 0.90, "valid": 0.05, "test": 0.05}
SEQ_SAMPLE = {"train": 3000, "valid": 300, "test": 300}


def clean_seq(s: str) -> str:
    return "".join(s.split()).upper().rstrip("*")


def prepare_sequences(fx: Fetcher, args):
    log("\n=== sequences: mmseqs2-examples DB.fasta.gz ===")
    root = fx.extract("mmseqs2-examples")
    db = root / "usr/share/doc/mmseqs2/example-data/DB.fasta.gz"
    recs, skipped = [], collections.Counter()
    seen_ids, seen_seqs = set(), set()
    with gzip.open(db, "rt") as f:
        for header, seq in read_fasta(f):
            seq = clean_seq(seq)
            first, _, rest = header.partition(" ")
            parts = first.split("|")
            rid = parts[1] if len(parts) >= 3 else first
            desc = " ".join(([first] if rid != first else []) + rest.split())
            if not seq:
                skipped["empty sequence"] += 1
                continue
            if set(seq) - AA_OK:
                skipped["non-amino-acid letters"] += 1
                continue
            if rid in seen_ids:
                skipped["duplicate id"] += 1
                continue
            if seq in seen_seqs:
                skipped["exact duplicate sequence (first accession kept)"] += 1
                continue
            seen_ids.add(rid)
            seen_seqs.add(seq)
            recs.append((rid, desc, seq))
    log(f"  read {len(recs)} sequences; skipped: {dict(skipped) or 'none'}")
    cl = mmseqs_cluster([r[2] for r in recs], args.work / "mmseqs_uniprot", args.threads)
    split = split_clusters(cl, SEQ_FRACTIONS, args.seed, "uniprot")
    print_split_counts("uniprot", split, cl, [len(r[2]) for r in recs])
    save_stage(args, "uniprot", recs, split, cl,
               {"source_records": len(recs), "skipped": dict(skipped), "clusters": len(set(cl))})


def write_uniprot(args, st, split, manifest: Manifest, out: dict):
    recs = st["records"]
    for s in ("train", "valid", "test"):
        idx = [i for i in range(len(recs)) if split[i] == s]
        full = args.out / f"uniprot_{s}.fasta"
        write_fasta(full, [recs[i] for i in idx])
        sidx = sample_indices(idx, SEQ_SAMPLE[s], args.seed, f"uniprot_{s}")
        sp = args.samples / f"uniprot_{s}.fasta.gz"
        write_fasta(sp, [recs[i] for i in sidx], gz=True)
        manifest.add(sp, len(sidx), sum(len(recs[i][2]) for i in sidx), "mmseqs2-examples",
                     {"split": s, "clustering": "mmseqs easy-cluster --min-seq-id 0.3 -c 0.8",
                      "leakage_filter": filter_note(args, "uniprot", s)})
        out["samples"][s] = len(sidx)


def parse_blastdb_v4(prefix: Path, annot: Path):
    """Yield (accession, sequence) from an NCBI BLAST v4 protein database."""
    pin = Path(str(prefix) + ".pin").read_bytes()
    off = 0

    def u32():
        nonlocal off
        v = struct.unpack_from(">I", pin, off)[0]
        off += 4
        return v

    version, dbtype = u32(), u32()
    if version != 4 or dbtype != 1:
        raise SystemExit(f"{prefix}: not a v4 protein BLAST db (version {version}, type {dbtype})")
    tl = u32(); off += tl  # title
    sl = u32(); off += sl  # timestamp
    n = u32()
    total = struct.unpack_from("<Q", pin, off)[0]; off += 8
    maxlen = u32()
    hdr_off = struct.unpack_from(f">{n + 1}I", pin, off); off += 4 * (n + 1)
    seq_off = struct.unpack_from(f">{n + 1}I", pin, off)
    psq = Path(str(prefix) + ".psq").read_bytes()
    alphabet = "-ABCDEFGHIKLMNPQRSTVWXYZU*OJ"
    table = bytes(ord(alphabet[i]) if i < len(alphabet) else ord("X") for i in range(256))
    with open(annot) as f:
        accs = [line.split("\t", 1)[0].strip() for line in f]
    if len(accs) != n:
        raise SystemExit(f"{annot}: {len(accs)} lines but the db has {n} entries")
    # Cross-check goasp_annot.dat against the ASN.1 deflines of .phr (first, middle, last entry):
    # the title is a VisibleString (tag 0x1a) "ACCESSION|GO:...".
    phr = Path(str(prefix) + ".phr").read_bytes()
    for i in sorted({0, n // 2, n - 1}):
        blob = phr[hdr_off[i]:hdr_off[i + 1]]
        k = blob.find(b"\x1a")
        ln = blob[k + 1]
        if ln & 0x80:  # long-form length
            nb = ln & 0x7F
            ln = int.from_bytes(blob[k + 2:k + 2 + nb], "big")
            k += nb
        title = blob[k + 2:k + 2 + ln].decode(errors="replace")
        if title.split("|", 1)[0] != accs[i]:
            raise SystemExit(f"{prefix}: entry {i} header {title[:40]!r} does not match annot {accs[i]!r}")
    del phr
    residues = 0
    for i in range(n):
        raw = psq[seq_off[i]:seq_off[i + 1] - 1]
        residues += len(raw)
        yield accs[i], raw.translate(table).decode()
    if residues != total:
        log(f"  WARNING {prefix.name}: {residues} residues read, header says {total}")
    log(f"  {prefix.parent.name}: {n} entries, {total} residues, max length {maxlen}")


def prepare_metastudent(fx: Fetcher, args):
    log("\n=== sequences: metastudent-data (UniProt 2014-01, BLAST v4 dbs) ===")
    root = fx.extract("metastudent-data") / "usr/share/metastudent-data/dataset_201401"
    by_seq = {}
    order = []
    accs_total = 0
    go_cc = {}
    for ont in ("CCO", "MFO", "BPO"):
        for acc, seq in parse_blastdb_v4(root / ont / "goasp.fasta", root / ont / "goasp_annot.dat"):
            accs_total += 1
            seq = seq.rstrip("*")
            if seq not in by_seq:
                by_seq[seq] = [acc]
                order.append(seq)
            elif acc not in by_seq[seq]:
                by_seq[seq].append(acc)
    skipped = collections.Counter()
    recs = []
    for seq in order:
        accs = by_seq[seq]
        if not seq or "-" in seq or "*" in seq:
            skipped["gap/stop/empty"] += 1
            continue
        desc = f"n_accessions={len(accs)}" + (f" also={','.join(accs[1:6])}" if len(accs) > 1 else "")
        recs.append((accs[0], desc, seq))
    del by_seq
    log(f"  {accs_total} db entries -> {len(recs)} unique sequences; skipped {dict(skipped) or 'none'}")
    cl = mmseqs_cluster([r[2] for r in recs], args.work / "mmseqs_metastudent", args.threads,
                        linclust=True, min_seq_id=0.3)
    split = split_clusters(cl, SEQ_FRACTIONS, args.seed, "metastudent")
    print_split_counts("metastudent", split, cl, [len(r[2]) for r in recs])
    save_stage(args, "metastudent", recs, split, cl,
               {"db_entries": accs_total, "unique_sequences": len(recs), "skipped": dict(skipped),
                "clusters": len(set(cl)), "clustering": "mmseqs easy-linclust --min-seq-id 0.3 -c 0.8"})


def write_metastudent(args, st, split, manifest: Manifest, out: dict):
    recs = st["records"]
    for s in ("train", "valid", "test"):
        write_fasta(args.out / f"metastudent_{s}.fasta", [r for r, sp in zip(recs, split) if sp == s])
    out.pop("samples", None)


# --------------------------------------------------------------------------
# 2. Secondary structure (gor4 new-gor4.seq/.obs)
# --------------------------------------------------------------------------
SS_FRACTIONS = {"train": 0.80, "valid": 0.10, "test": 0.10}
SS_SAMPLE = {"train": 600, "valid": 100, "test": 150}
SS_HEADER = ["input", "dssp3", "dssp8", "disorder", "cb513_mask"]


def read_gor(path: Path):
    """Records are `!ID ... length` then lines; the record ends with `@`."""
    recs = []
    cur = None
    with open(path) as f:
        for line in f:
            line = line.rstrip("\r\n")
            if line.startswith("!"):
                if cur is not None:
                    raise SystemExit(f"{path}: record {cur[0]} not terminated by @")
                toks = line[1:].split()
                cur = [toks[0], int(toks[-1]), []]
            elif cur is not None:
                s = line.strip()
                if s.endswith("@"):
                    cur[2].append(s[:-1])
                    recs.append((cur[0], cur[1], "".join(cur[2]).replace(" ", "")))
                    cur = None
                else:
                    cur[2].append(s)
    if cur is not None:
        raise SystemExit(f"{path}: last record {cur[0]} not terminated by @")
    return recs


def prepare_secondary_structure(fx: Fetcher, args):
    log("\n=== secondary structure: gor4 new-gor4.seq/.obs ===")
    root = fx.extract("gor4")
    d = root / "gor4-1.0.1/gor4/data"
    seqs = read_gor(d / "new-gor4.seq")
    obs = read_gor(d / "new-gor4.obs")
    log(f"  read {len(seqs)} .seq records, {len(obs)} .obs records")
    skipped = collections.Counter()
    if len(seqs) != len(obs):
        log(f"  WARNING: record counts differ ({len(seqs)} vs {len(obs)}); pairing by position and id")
    recs = []
    id_count = collections.Counter()
    for (sid, slen, s), (oid, olen, o) in zip(seqs, obs):
        if sid != oid:
            skipped["id mismatch between .seq and .obs"] += 1
            continue
        s = s.upper()
        if not (len(s) == slen == olen == len(o)):
            skipped["length mismatch (header/sequence/labels)"] += 1
            continue
        if not s or set(s) - AA_OK:
            skipped["non-amino-acid letters"] += 1
            continue
        if set(o) - set("HEC"):
            skipped["labels outside H/E/C"] += 1
            continue
        id_count[sid] += 1
        rid = sid if id_count[sid] == 1 else f"{sid}_{id_count[sid]}"
        recs.append((rid, s, o))
    log(f"  kept {len(recs)} chains; skipped {sum(skipped.values())}: {dict(skipped) or 'none'}")
    cl = mmseqs_cluster([r[1] for r in recs], args.work / "mmseqs_gor4", args.threads)
    split = split_clusters(cl, SS_FRACTIONS, args.seed, "gor4")
    print_split_counts("gor4", split, cl, [len(r[1]) for r in recs])
    lab = collections.Counter()
    for r in recs:
        lab.update(r[2])
    save_stage(args, "gor4", recs, split, cl,
               {"source_records": len(seqs), "kept": len(recs), "skipped": dict(skipped),
                "clusters": len(set(cl)), "label_counts": dict(lab)})


def write_gor4(args, st, split, manifest: Manifest, out: dict):
    recs = st["records"]

    def rows(idx):
        for i in idx:
            _, s, o = recs[i]
            yield [s, o, "", "", "1" * len(s)]

    for s in ("train", "valid", "test"):
        idx = [i for i in range(len(recs)) if split[i] == s]
        write_csv(args.out / f"ss_{s}.csv", SS_HEADER, rows(idx))
        (args.out / f"ss_{s}.ids.txt").write_text("".join(recs[i][0] + "\n" for i in idx))
        sidx = sample_indices(idx, SS_SAMPLE[s], args.seed, f"ss_{s}")
        sp = args.samples / f"ss_{s}.csv"
        write_csv(sp, SS_HEADER, rows(sidx))
        (args.samples / f"ss_{s}.ids.txt").write_text("".join(recs[i][0] + "\n" for i in sidx))
        manifest.add(sp, len(sidx), sum(len(recs[i][1]) for i in sidx), "gor4",
                     {"split": s, "ids": f"ss_{s}.ids.txt",
                      "clustering": "mmseqs easy-cluster --min-seq-id 0.3 -c 0.8",
                      "leakage_filter": filter_note(args, "gor4", s),
                      "columns": "dssp8 and disorder empty = unknown (masked); cb513_mask all 1"})
        out["samples"][s] = len(sidx)


# --------------------------------------------------------------------------
# 2b. 8-state DSSP from ProMod3's StructureDB (optional, --with-promod3)
# --------------------------------------------------------------------------
PROMOD3_EXTRACT = r"""
import sys
from promod3 import loop
db = loop.LoadStructureDB()
out = open(sys.argv[1], "w")
n = db.GetNumCoords()
for i in range(n):
    ci = db.GetCoordInfo(i)
    seq = db.GetSequence(i)
    dssp = db.GetDSSPStates(i)
    out.write("%s_%s\t%s\t%s\n" % (ci.id, ci.chain_name, seq, dssp))
out.close()
print("promod3 StructureDB chains:", n)
"""
SS8_SAMPLE = {"train": 400, "valid": 80, "test": 120}
DSSP8_TO_3 = {"H": "H", "G": "H", "I": "H", "E": "E", "B": "E"}


def prepare_promod3(fx: Fetcher, args):
    log("\n=== secondary structure (8-state): promod3 StructureDB ===")
    # Checksum the data package even though the API reads the installed copy.
    fx.fetch("promod3-data")
    sys_py = "/usr/bin/python3"
    probe = subprocess.run([sys_py, "-c", "import promod3"], capture_output=True)
    if probe.returncode != 0:
        raise SystemExit("promod3 is not importable by /usr/bin/python3; install it first:\n"
                         "  apt-get install -y --no-install-recommends python3-promod3 promod3-data")
    inst = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "promod3-data"], capture_output=True, text=True).stdout
    if inst != SOURCES["promod3-data"]["version"]:
        log(f"  WARNING: installed promod3-data {inst!r} differs from the checksummed {SOURCES['promod3-data']['version']}")
    tsv = args.work / "promod3_structuredb.tsv"
    if not tsv.exists():
        tmp = tsv.with_suffix(".tmp")
        run(["nice", sys_py, "-c", PROMOD3_EXTRACT, tmp])
        tmp.rename(tsv)
    skipped = collections.Counter()
    states = collections.Counter()
    recs, seen = [], collections.Counter()
    with open(tsv) as f:
        for line in f:
            rid, seq, dssp = line.rstrip("\n").split("\t")
            seq = seq.upper()
            if len(seq) != len(dssp):
                skipped["length mismatch sequence/DSSP"] += 1
                continue
            if not seq or set(seq) - AA_OK:
                skipped["non-amino-acid letters"] += 1
                continue
            if len(seq) < 20:
                skipped["shorter than 20 residues"] += 1
                continue
            states.update(dssp)
            d8 = "".join(c if c in "GHIBEST" else "C" for c in dssp)
            d3 = "".join(DSSP8_TO_3.get(c, "C") for c in d8)
            seen[rid] += 1
            if seen[rid] > 1:
                rid = f"{rid}_{seen[rid]}"
            recs.append((rid, seq, d3, d8))
    log(f"  kept {len(recs)} chains; skipped {dict(skipped) or 'none'}; raw DSSP states {dict(states)}")
    cl = mmseqs_cluster([r[1] for r in recs], args.work / "mmseqs_promod3", args.threads)
    split = split_clusters(cl, SS_FRACTIONS, args.seed, "promod3")
    print_split_counts("promod3", split, cl, [len(r[1]) for r in recs])
    save_stage(args, "promod3", recs, split, cl,
               {"kept": len(recs), "skipped": dict(skipped), "raw_dssp_states": dict(states),
                "clusters": len(set(cl))})


def write_promod3(args, st, split, manifest: Manifest, out: dict):
    recs = st["records"]

    def rows(idx):
        for i in idx:
            _, sq, d3, d8 = recs[i]
            yield [sq, d3, d8, "", "1" * len(sq)]

    for s in ("train", "valid", "test"):
        idx = [i for i in range(len(recs)) if split[i] == s]
        write_csv(args.out / f"ss8_{s}.csv", SS_HEADER, rows(idx))
        (args.out / f"ss8_{s}.ids.txt").write_text("".join(recs[i][0] + "\n" for i in idx))
        sidx = sample_indices(idx, SS8_SAMPLE[s], args.seed, f"ss8_{s}")
        sp = args.samples / f"ss8_{s}.csv"
        write_csv(sp, SS_HEADER, rows(sidx))
        (args.samples / f"ss8_{s}.ids.txt").write_text("".join(recs[i][0] + "\n" for i in sidx))
        manifest.add(sp, len(sidx), sum(len(recs[i][1]) for i in sidx), "promod3-data",
                     {"split": s, "ids": f"ss8_{s}.ids.txt",
                      "clustering": "mmseqs easy-cluster --min-seq-id 0.3 -c 0.8",
                      "leakage_filter": filter_note(args, "promod3", s),
                      "columns": "dssp8 from DSSP (non GHIBEST -> C); dssp3 H,G,I->H E,B->E else C; "
                                 "disorder empty = unknown; cb513_mask all 1"})
        out["samples"][s] = len(sidx)


# --------------------------------------------------------------------------
# 3. Localisation (p-scldata SCL2205)
# --------------------------------------------------------------------------
DEEPLOC_CLASSES = ["Cell membrane", "Cytoplasm", "Endoplasmic reticulum", "Golgi apparatus",
                   "Lysosome/Vacuole", "Mitochondrion", "Nucleus", "Peroxisome", "Plastid",
                   "Extracellular"]
# SCL2205 label -> (DeepLoc location or None = dropped, membrane flag, note)
SCL_MAP = {
    "Cytoplasm": ("Cytoplasm", "soluble", ""),
    "Plastid": ("Plastid", "", "membrane status not annotated"),
    "Secreted": ("Extracellular", "soluble", ""),
    "Mitochondrion": ("Mitochondrion", "", "membrane status not annotated"),
    "Membrane": ("Cell membrane", "membrane", "UniProt 'Membrane' (not necessarily plasma membrane)"),
    "Peroxisome": ("Peroxisome", "", "membrane status not annotated"),
    "Nucleus": ("Nucleus", "soluble", ""),
    "Cell projection": (None, "", "no DeepLoc class"),
    "ER": ("Endoplasmic reticulum", "", "membrane status not annotated"),
    "Cytoplasm;Nucleus": (None, "", "dual localisation, ambiguous single label"),
    "Centrosome;Cytoplasm;Cytoskeleton;Microtubule organizing center": ("Cytoplasm", "soluble", "cytoplasmic structures"),
    "Cytoplasm;Membrane": (None, "", "dual localisation, ambiguous single label"),
    "Cytoplasm;Cytoskeleton": ("Cytoplasm", "soluble", "cytoskeleton is cytoplasmic"),
}
LOC_SAMPLE = {"train": 1500, "valid": 200, "test": 300}
LOC_HEADER = ["id", "sequence", "location", "membrane", "split"]


def prepare_localization(fx: Fetcher, args):
    log("\n=== localisation: p-scldata SCL2205 ===")
    d = fx.extract("p-scldata") / "scldata/data"
    labels = json.loads((d / "labels.json").read_text())["index_to_label"]
    entries = json.loads((d / "entries.json").read_text())
    split_of = {}
    sp_path = d / "splits.json"
    if sp_path.exists():
        sj = json.loads(sp_path.read_text())
        for key, name in (("trn", "train"), ("evl", "valid"), ("tst", "test")):
            for idx in sj[key]:
                acc = entries[str(idx)]
                if acc in split_of:
                    raise SystemExit(f"{acc} is in two splits of splits.json")
                split_of[acc] = name
    for lab in labels.values():
        if lab not in SCL_MAP:
            raise SystemExit(f"p-scldata label {lab!r} has no mapping in SCL_MAP")
    recs = []
    dropped = collections.Counter()
    per_source = collections.Counter()
    with open(d / "scl2205.csv", newline="") as f:
        for row in csv.DictReader(f):
            lab = labels[row["scl"]]
            per_source[lab] += 1
            loc, mem, note = SCL_MAP[lab]
            seq = clean_seq(row["seq"])
            if loc is None:
                dropped[f"{lab}: {note}"] += 1
                continue
            if not seq or set(seq) - AA_OK:
                dropped["bad sequence"] += 1
                continue
            sp = split_of.get(row["entry"])
            if sp is None:
                dropped["not in splits.json"] += 1
                continue
            recs.append((row["entry"], seq, loc, mem, sp))
    log(f"  source labels: {dict(per_source)}")
    log(f"  dropped: {dict(dropped)}")
    log_loc_classes(recs, [r[4] for r in recs])
    out = {"source_records": sum(per_source.values()), "source_labels": dict(per_source),
           "dropped": dict(dropped)}
    cl = None
    if args.check_leakage:
        # p-scldata's splits are homology-reduced with its own criteria; with mmseqs at 30%
        # identity / 80% coverage a few hundred clusters still span splits.  Keep each such
        # cluster in its highest-priority split (train > valid > test) and drop the other
        # members, so that no valid/test protein shares a cluster with a train protein.
        cl = mmseqs_cluster([r[1] for r in recs], args.work / "mmseqs_scl", args.threads)
        prio = {"train": 0, "valid": 1, "test": 2}
        best = {}
        splits_in = collections.defaultdict(set)
        for r, c in zip(recs, cl):
            splits_in[c].add(r[4])
            best[c] = min(best.get(c, 9), prio[r[4]])
        mixed = [c for c, ss in splits_in.items() if len(ss) > 1]
        keep = [prio[r[4]] == best[c] for r, c in zip(recs, cl)]
        leak = collections.Counter(r[4] for r, k in zip(recs, keep) if not k)
        log(f"  leakage check (mmseqs 30% id, 80% cov): {len(set(cl))} clusters, "
            f"{len(mixed)} span more than one split; dropped {dict(leak)}")
        for s_, n_ in leak.items():
            dropped[f"{s_} protein shares an mmseqs cluster with a higher-priority split"] += n_
        out["leakage_check"] = {"clusters": len(set(cl)), "clusters_spanning_splits": len(mixed),
                                "dropped": dict(leak)}
        out["dropped"] = dict(dropped)
        cl = [c for c, k in zip(cl, keep) if k]
        recs = [r for r, k in zip(recs, keep) if k]
        log("  after the cluster check:")
        log_loc_classes(recs, [r[4] for r in recs])
    save_stage(args, "localization", recs, [r[4] for r in recs], cl, out)


def log_loc_classes(recs, split):
    per_class = {s: collections.Counter() for s in ("train", "valid", "test")}
    for r, s in zip(recs, split):
        if s in per_class:
            per_class[s][r[2]] += 1
    for c in DEEPLOC_CLASSES:
        log(f"  {c:22s} " + " ".join(f"{s}={per_class[s][c]:5d}" for s in ("train", "valid", "test")))
    return per_class


def write_localization(args, st, split, manifest: Manifest, out: dict):
    recs = st["records"]
    dropped = collections.Counter(out.get("dropped", {}))
    for r, s in zip(recs, split):
        if s == "drop":
            dropped[f"{r[4]} protein hits a training sequence (leakage filter)"] += 1
    out["dropped"] = dict(dropped)
    out["kept"] = sum(1 for s in split if s != "drop")
    log("  localisation classes after the leakage filter:")
    per_class = log_loc_classes(recs, split)
    out["per_class"] = {s: dict(per_class[s]) for s in per_class}
    mem_counts = collections.Counter((s, r[3] or "unknown") for r, s in zip(recs, split) if s != "drop")
    out["membrane"] = {f"{a}/{b}": n for (a, b), n in sorted(mem_counts.items())}
    for s in ("train", "valid", "test"):
        idx = [i for i in range(len(recs)) if split[i] == s]
        write_csv(args.out / f"localization_{s}.csv", LOC_HEADER, (recs[i] for i in idx))
        sidx = sample_indices(idx, LOC_SAMPLE[s], args.seed, f"loc_{s}")
        sp = args.samples / f"localization_{s}.csv"
        write_csv(sp, LOC_HEADER, (recs[i] for i in sidx))
        manifest.add(sp, len(sidx), sum(len(recs[i][1]) for i in sidx), "p-scldata",
                     {"split": s, "split_source": "p-scldata splits.json (trn/evl/tst)",
                      "leakage_filter": filter_note(args, "localization", s)})
        out["samples"][s] = len(sidx)


# --------------------------------------------------------------------------
# Stages, leakage filter, writing
# --------------------------------------------------------------------------
# Each set is prepared (read, clustered, split) into a stage file data/work/splits/NAME.json.gz.
# Every run then loads all stage files present, applies the leakage filter across them and
# writes data/full and data/samples for every set, so the result after the three documented
# commands does not depend on their order.  The filter only ever removes sequences:
#   1. supervised sets: valid/test sequences hitting their own train split, and (gor4 and promod3,
#      both from the PDB) the other set's train split, are dropped;
#   2. pretraining corpora: train sequences hitting any valid/test sequence of the sets in
#      PROTECTED (union) are dropped; then their own valid/test sequences hitting the remaining
#      train split are dropped.
SET_ORDER = ["uniprot", "gor4", "promod3", "localization", "metastudent"]
SUMMARY_KEY = {"uniprot": "sequences", "gor4": "secondary_structure", "promod3": "secondary_structure_8",
               "localization": "localization", "metastudent": "metastudent"}
FILE_PREFIX = {"uniprot": "uniprot", "gor4": "ss", "promod3": "ss8", "localization": "localization",
               "metastudent": "metastudent"}
SEQ_FIELD = {"uniprot": 2, "metastudent": 2, "gor4": 1, "promod3": 1, "localization": 1}
SUPERVISED = ["gor4", "promod3", "localization"]
SHARED_SOURCE = {"gor4": ["promod3"], "promod3": ["gor4"]}  # both from the PDB
# Pretraining corpus -> sets whose valid/test sequences must not be in its train split.  uniprot
# valid/test is protected from metastudent train because a metastudent-pretrained model is scored
# on the uniprot samples (the book's held-out masked-LM loss).
PROTECTED = {"uniprot": SUPERVISED, "metastudent": SUPERVISED + ["uniprot"]}


def stage_path(args, name: str) -> Path:
    return args.work / "splits" / f"{name}.json.gz"


def save_stage(args, name, recs, split, clusters, summary_entry):
    path = stage_path(args, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"set": name, "seed": args.seed, "cluster_check": bool(args.check_leakage),
            "records": recs, "split": split, "clusters": clusters, "summary": summary_entry}
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=1) as g:
        g.write(json.dumps(data).encode())
    tmp.rename(path)


def load_stages(args) -> dict:
    stages = {}
    for name in SET_ORDER:
        path = stage_path(args, name)
        if not path.exists():
            continue
        with gzip.open(path, "rb") as g:
            data = json.loads(g.read())
        if data["seed"] != args.seed:
            log(f"[stage] WARNING {path} was made with --seed {data['seed']}, not {args.seed}: ignored "
                f"(re-run its set to include it)")
            continue
        if name == "localization" and data["cluster_check"] != bool(args.check_leakage):
            log(f"[stage] WARNING {path} was made with{'out' if not data['cluster_check'] else ''} the "
                f"cluster check; re-run --sets localization to change that")
        data["records"] = [tuple(r) for r in data["records"]]
        stages[name] = data
    log(f"\n[stage] sets available in {args.work / 'splits'}: {', '.join(stages) or 'none'}")
    return stages


def filter_note(args, name, split):
    if not args.filter_leakage:
        return "not applied"
    if name in PROTECTED and split == "train":
        return ("train sequences hitting a valid/test sequence of " + ", ".join(PROTECTED[name])
                + " dropped (" + LEAK_CRITERION + ")")
    if split == "train":
        return "none (train split is the cluster split)"
    trains = [name] + SHARED_SOURCE.get(name, [])
    return ("sequences hitting the train split of " + ", ".join(trains) + " dropped (" + LEAK_CRITERION + ")")


def leakage_filter(args, stages: dict):
    """Returns the filtered split lists ("drop" marks removed sequences) and a report per set."""
    split = {n: list(st["split"]) for n, st in stages.items()}
    report = {n: {"criterion": LEAK_CRITERION} for n in stages}

    def idx(n, s):
        return [i for i, sp in enumerate(split[n]) if sp == s]

    def seq(n, i):
        return stages[n]["records"][i][SEQ_FIELD[n]]

    def filter_eval(n):
        trains = [n] + [o for o in SHARED_SOURCE.get(n, []) if o in stages]
        missing = [o for o in SHARED_SOURCE.get(n, []) if o not in stages]
        if missing:
            report[n]["not_available"] = missing
            log(f"[leakage] WARNING {n}: {', '.join(missing)} not built yet; its train split is not searched")
        # valid and test are searched together (per query the result does not depend on the others)
        q = idx(n, "valid") + idx(n, "test")
        hits = {}
        for t in trains:
            tidx = idx(t, "train")
            res = mmseqs_search([seq(n, i) for i in q], [seq(t, i) for i in tidx], args.work,
                                args.threads, 2, tag=f"{n}_eval_vs_{t}_train")
            hits[t] = {q[k] for k in res["best"]}
        for s in ("valid", "test"):
            qs = set(idx(n, s))
            rep = {"before": len(qs)}
            drop = set()
            for t in trains:
                hit = hits[t] & qs
                rep[f"hits_{t}_train"] = len(hit)
                if t != n:
                    rep[f"only_{t}_train"] = len(hit - drop)
                drop |= hit
            rep["dropped"] = len(drop)
            rep["after"] = len(qs) - len(drop)
            report[n][s] = rep
            log(f"[leakage] {n} {s}: {rep['before']} -> {rep['after']} (dropped {len(drop)}; hits: "
                + ", ".join(f"{t} train {rep[f'hits_{t}_train']}" for t in trains) + ")")
        for t in trains:
            for i in hits[t]:
                split[n][i] = "drop"

    def filter_train(n):
        avail = [p for p in PROTECTED[n] if p in stages]
        missing = [p for p in PROTECTED[n] if p not in stages]
        if missing:
            report[n]["not_available"] = missing
            log(f"[leakage] WARNING {n} train: {', '.join(missing)} not built yet; not protected")
        prot = [(p, s, i) for p in avail for s in ("valid", "test") for i in idx(p, s)]
        tidx = idx(n, "train")
        res = mmseqs_search([seq(n, i) for i in tidx], [seq(p, i) for p, _, i in prot], args.work,
                            args.threads, 1, tag=f"{n}_train_vs_protected")
        drop = {tidx[k] for k in res["best"]}
        for i in drop:
            split[n][i] = "drop"
        hit = collections.Counter(f"{FILE_PREFIX[prot[t][0]]}_{prot[t][1]}" for t in res["targets"])
        total = collections.Counter(f"{FILE_PREFIX[p]}_{s}" for p, s, _ in prot)
        rep = {"before": len(tidx), "dropped": len(drop), "after": len(tidx) - len(drop),
               "protected": {k: {"sequences": total[k], "hit": hit[k]} for k in total}}
        report[n]["train"] = rep
        log(f"[leakage] {n} train: {rep['before']} -> {rep['after']} (dropped {len(drop)} hitting "
            f"{len(res['targets'])} of {len(prot)} protected valid/test sequences: "
            + ", ".join(f"{k} {hit[k]}/{total[k]}" for k in total) + ")")

    t0 = time.time()
    log(f"\n=== leakage filter ({LEAK_CRITERION}) ===")
    for n in SUPERVISED:
        if n in stages:
            filter_eval(n)
    for n in ("uniprot", "metastudent"):
        if n in stages:
            filter_train(n)
            filter_eval(n)
    log(f"[leakage] filter done in {time.time() - t0:.0f} s")
    return split, report


WRITERS = {"uniprot": write_uniprot, "gor4": write_gor4, "promod3": write_promod3,
           "localization": write_localization, "metastudent": write_metastudent}


def finalise(args, manifest: Manifest, summary: dict):
    stages = load_stages(args)
    if args.check_leakage and args.filter_leakage:
        split, report = leakage_filter(args, stages)
    else:
        split = {n: list(st["split"]) for n, st in stages.items()}
        report = {n: "not applied" for n in stages}
    for n in SET_ORDER:
        if n not in stages:
            continue
        st = stages[n]
        out = dict(st["summary"])
        if st["clusters"] is not None:
            out["splits_before_filter"] = print_split_counts(
                f"{n} (before filter)", st["split"], st["clusters"],
                [len(r[SEQ_FIELD[n]]) for r in st["records"]])
            out["splits"] = print_split_counts(n, split[n], st["clusters"],
                                               [len(r[SEQ_FIELD[n]]) for r in st["records"]])
        out["leakage_filter"] = report[n]
        out["samples"] = {}
        log(f"[write] {n}")
        WRITERS[n](args, st, split[n], manifest, out)
        summary[SUMMARY_KEY[n]] = out


# --------------------------------------------------------------------------
# Validation of written samples
# --------------------------------------------------------------------------
def validate_samples(samples: Path):
    problems = []
    for p in sorted(samples.glob("*.fasta.gz")):
        with gzip.open(p, "rt") as f:
            n = 0
            for h, s in read_fasta(f):
                n += 1
                if not h.split() or not s or not s.isalpha() or not s.isupper():
                    problems.append(f"{p.name}: bad record {h[:30]}")
        if n == 0:
            problems.append(f"{p.name}: empty")
    for p in sorted(samples.glob("ss*_*.csv")):
        with open(p, newline="") as f:
            r = csv.reader(f)
            if next(r) != SS_HEADER:
                problems.append(f"{p.name}: header")
            for row in r:
                s, d3, d8, dis, m = row
                if not s.isalpha() or len(d3) != len(s) or len(m) != len(s) \
                        or (d8 and len(d8) != len(s)) or (dis and len(dis) != len(s)):
                    problems.append(f"{p.name}: length mismatch")
    for p in sorted(samples.glob("localization_*.csv")):
        with open(p, newline="") as f:
            for row in csv.DictReader(f):
                if row["location"] not in DEEPLOC_CLASSES or not row["sequence"].isalpha() \
                        or row["membrane"] not in ("membrane", "soluble", ""):
                    problems.append(f"{p.name}: bad row {row['id']}")
    if problems:
        raise SystemExit("sample validation failed:\n  " + "\n  ".join(problems[:20]))
    log("[validate] samples OK")


def ensure_gitignore():
    gi = ROOT / ".gitignore"
    lines = gi.read_text().splitlines() if gi.exists() else []
    want = ["/target", "/runs", "data/full/", "data/work/"]
    add = [w for w in want if w not in lines]
    if add:
        gi.write_text("\n".join(lines + add) + "\n")


# --------------------------------------------------------------------------
def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "data/full", help="full sets (git-ignored)")
    ap.add_argument("--samples", type=Path, default=ROOT / "data/samples", help="small committed samples")
    ap.add_argument("--sets", default="sequences,secondary-structure,localization",
                    help="comma-separated subset of: sequences, secondary-structure, localization")
    ap.add_argument("--work", type=Path, default=ROOT / "data/work", help="downloads + scratch (git-ignored)")
    ap.add_argument("--with-metastudent", action="store_true",
                    help="also convert metastudent-data (225 MB .deb, 435k UniProt sequences) to full FASTA splits")
    ap.add_argument("--with-promod3", action="store_true",
                    help="also convert promod3's StructureDB (8-state DSSP; needs apt-get install python3-promod3 promod3-data)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--threads", type=int, default=2, help="mmseqs threads")
    ap.add_argument("--no-leakage-check", dest="check_leakage", action="store_false",
                    help="skip every leakage check: the mmseqs cluster check of p-scldata's splits and "
                         "the leakage filter")
    ap.add_argument("--no-leakage-filter", dest="filter_leakage", action="store_false",
                    help="skip only the leakage filter (mmseqs search of valid/test against train, "
                         "across gor4/promod3 and pretraining corpora); gives the splits of before the filter")
    ap.add_argument("--update-checksums", action="store_true",
                    help="record the observed SHA-256 of each archive in scripts/data_checksums.json")
    args = ap.parse_args()
    sets = [s.strip() for s in args.sets.split(",") if s.strip()]
    valid = {"sequences", "secondary-structure", "localization"}
    if set(sets) - valid:
        ap.error(f"unknown set(s) {set(sets) - valid}; choose from {sorted(valid)}")
    for p in (args.out, args.samples, args.work):
        p.mkdir(parents=True, exist_ok=True)
    ensure_gitignore()
    fx = Fetcher(args.work, args.update_checksums)
    manifest = Manifest()
    man_path = args.samples / "MANIFEST.json"
    old = json.loads(man_path.read_text()) if man_path.exists() else {}
    summary = dict(old.get("summary", {}))
    t0 = time.time()
    if "sequences" in sets:
        prepare_sequences(fx, args)
    if "secondary-structure" in sets:
        prepare_secondary_structure(fx, args)
    if "localization" in sets:
        prepare_localization(fx, args)
    if args.with_promod3:
        prepare_promod3(fx, args)
    if args.with_metastudent:
        prepare_metastudent(fx, args)
    finalise(args, manifest, summary)
    validate_samples(args.samples)
    files = dict(old.get("files", {}))
    files.update(manifest.files)
    # keep only entries whose files still exist
    files = {k: v for k, v in sorted(files.items()) if (args.samples / k).exists()}
    man = {"generated_by": "scripts/prepare_data.py", "seed": args.seed,
           "rebuild": "see data/README.md (default sets, then --with-metastudent, then --with-promod3)",
           "files": files, "summary": summary}
    man_path.write_text(json.dumps(man, indent=2) + "\n")
    total = sum(p.stat().st_size for p in args.samples.iterdir() if p.is_file())
    log(f"\n[done] in {time.time() - t0:.0f} s; samples dir {total} bytes")
    for k, v in files.items():
        log(f"  {k:32s} rows={v['rows']:5d} residues={v['residues']:8d} bytes={v['bytes']:8d} sha256={v['sha256'][:16]}")


if __name__ == "__main__":
    main()
