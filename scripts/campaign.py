#!/usr/bin/env python3
"""The bad-input campaign: runs a prottrans binary on some two hundred bad or unusual inputs, as a
new user would give them, and sorts every result by verdict.

    python3 scripts/campaign.py [--binary target/release/prottrans] [--json OUT.json]
                                [--only GROUP] [--show VERDICT] [--check]

Each case states what a serious tool must do with its input:
  error   refuse it: a nonzero exit whose message names the file (or the option) and the place;
  ok      take it: exit 0 with a right result (checked where a check is given);
  either  a clear refusal or a right result, both fine.
Verdicts:
  clear error        refused, and the message names everything the case expects;
  handled            taken, and the result checks out;
  unclear error      refused, but the message leaves out the file, the place or the option;
  panic or abort     "panicked" in the output, a signal, or exit code 101/134;
  silent success     a bad input taken with exit 0 (wrong or meaningless result);
  wrong result       a good input taken, but the result fails its check;
  refused valid      a good input refused;
  lost data          a file that existed before the command was changed or removed;
  timeout            no answer within the case's limit;
  setup failed       the files the case needs could not be made with this binary.

Needs only Python 3's standard library; the cases take two to four minutes on 2 cores. Run it
against an older build with --binary to compare before and after (options an older build lacks
make its cases count as "clear error" through clap, so compare like with like).
"""

import argparse
import array
import ast
import gzip
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "data" / "samples"
FIXTURES = REPO / "tests" / "fixtures"
VERDICTS = [
    "clear error",
    "handled",
    "unclear error",
    "panic or abort",
    "silent success",
    "wrong result",
    "refused valid",
    "lost data",
    "timeout",
    "setup failed",
]


# ---- reading outputs ----------------------------------------------------------------------------


def npz_arrays(path):
    """{key: (shape, values as an array of floats)} of an f32 .npz written by prottrans embed."""
    arrays = {}
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            raw = archive.read(name)
            header_len = struct.unpack("<H", raw[8:10])[0]
            header = ast.literal_eval(raw[10 : 10 + header_len].decode("latin1"))
            values = array.array("f")
            values.frombytes(raw[10 + header_len :])
            arrays[name[: -len(".npy")]] = (tuple(header["shape"]), values)
    return arrays


def finite(values):
    return all(v == v and abs(v) != float("inf") for v in values)


def embedded(expect):
    """A check that OUTPUT holds exactly the proteins {id: length} with finite values."""

    def check(case, output, text):
        try:
            arrays = npz_arrays(case.out)
        except (OSError, zipfile.BadZipFile, ValueError, struct.error) as error:
            return f"output unreadable: {error}"
        if set(arrays) != set(expect):
            return f"keys {sorted(arrays)[:5]} instead of {sorted(expect)[:5]}"
        for key, length in expect.items():
            shape, values = arrays[key]
            if length is not None and shape[0] != length:
                return f"{key}: {shape[0]} positions for {length} residues"
            if not finite(values):
                return f"{key}: non-finite values"
        return None

    return check


def mentions(*words):
    """A check that the command's output mentions one of WORDS (a notice of what it did)."""

    def check(case, output, text):
        lower = text.lower()
        return None if any(w in lower for w in words) else f"no notice ({' / '.join(words)})"

    return check


def exists(*names):
    def check(case, output, text):
        missing = [n for n in names if not (case.work / n).exists()]
        return f"missing {missing}" if missing else None

    return check


def all_of(*checks):
    def check(case, output, text):
        for c in checks:
            reason = c(case, output, text)
            if reason:
                return reason
        return None

    return check


def any_of(*checks):
    def check(case, output, text):
        reasons = [c(case, output, text) for c in checks]
        return None if any(r is None for r in reasons) else "; ".join(reasons)

    return check


# ---- the cases ----------------------------------------------------------------------------------


class Case:
    def __init__(self, group, name, args, expect, names=(), check=None, protect=(), timeout=300):
        self.group, self.name, self.args, self.expect = group, name, args, expect
        self.names, self.check, self.protect, self.timeout = list(names), check, protect, timeout
        self.work = None
        self.out = None


def write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    path.write_bytes(data)
    return path


def copy_dir(source, target, **replace_json):
    """A copy of checkpoint SOURCE, with config.json keys set (None: removed)."""
    shutil.copytree(source, target, dirs_exist_ok=True)
    if replace_json:
        config = json.loads((target / "config.json").read_text())
        for key, value in replace_json.items():
            if value is None:
                config.pop(key, None)
            else:
                config[key] = value
        (target / "config.json").write_text(json.dumps(config))
    return target


def safetensors_edit(path, edit):
    """Rewrites the safetensors file at PATH through EDIT(header dict, data bytearray)."""
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + n])
    data = bytearray(raw[8 + n :])
    edit(header, data)
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + bytes(data))


def cases(w):
    """Every case, with the files it reads made under W."""
    m, t5 = str(w / "model"), str(w / "t5")
    ok_fasta = write(w / "ok.fasta", ">a\nMKTAYIAKQR\n>b\nMKVLA\n")
    out = lambda name: w / "out" / name  # noqa: E731
    c = []

    # -- FASTA through embed --------------------------------------------------------------------
    def fasta(name, text, expect, names=(), check=None, extra=(), model=m):
        f = write(w / "fasta" / name, text)
        o = out(Path(name).stem + ".npz")
        case = Case("fasta", name, ["embed", "--model", model, "--input", str(f), "--output", str(o), *extra], expect, names, check)
        case.out = o
        c.append(case)

    fasta("empty.fasta", "", "error", ["empty.fasta"])
    fasta("blank.fasta", "\n\n  \n", "error", ["blank.fasta"])
    fasta("no-header.fasta", "MKTAY\n", "error", ["no-header.fasta:1"])
    fasta("header-only.fasta", ">a\n", "error", ["header-only.fasta:1", "no residues"])
    fasta("empty-record.fasta", ">a\nMKT\n>b\n>c\nMKV\n", "error", ["empty-record.fasta", "'b'"])
    fasta("duplicate-id.fasta", ">a\nMKT\n>a\nMKV\n", "error", ["duplicate-id.fasta", "'a'"])
    fasta("lowercase.fasta", ">a\nmktay\n", "ok", check=embedded({"a": 5}))
    fasta("crlf.fasta", ">a\r\nMKTAY\r\nIAK\r\n", "ok", check=embedded({"a": 8}))
    fasta("trailing-space.fasta", ">a\nMKTAY  \n", "ok", check=embedded({"a": 5}))
    fasta("inner-space.fasta", ">a\nMKT AY\n", "either", ["inner-space.fasta:2"], embedded({"a": 5}))
    fasta("tab.fasta", ">a\nMKT\tAY\n", "either", ["tab.fasta:2"], embedded({"a": 5}))
    fasta("digits.fasta", ">a\nMKT1AY\n", "error", ["digits.fasta:2", "'1'"])
    fasta("stop-codon.fasta", ">a\nMKTAY*\n", "either", ["stop-codon.fasta:2", "'*'"], any_of(embedded({"a": 5}), mentions("unknown", "[unk]")))
    fasta("gap.fasta", ">a\nMK-TAY\n", "either", ["gap.fasta:2", "'-'"], any_of(embedded({"a": 5}), mentions("unknown", "[unk]")))
    fasta("x.fasta", ">a\nMKXXAY\n", "ok", check=embedded({"a": 6}))
    fasta("rare.fasta", ">a\nMUZOBK\n", "ok", check=embedded({"a": 6}))
    fasta("j.fasta", ">a\nMKJL\n", "either", ["j.fasta:2", "'J'"], all_of(embedded({"a": 4}), mentions("unknown", "residue(s)")))
    fasta("description.fasta", ">sp|P1|X_HUMAN some protein OS=Homo\nMKTAY\n", "ok", check=embedded({"sp|P1|X_HUMAN": 5}))
    fasta("latin1.fasta", b">ok\nMKT\n>caf\xe9\nMKV\n", "error", ["latin1.fasta:3"])
    fasta("bom.fasta", "\ufeff>a\nMKTAY\n", "either", ["bom.fasta:1"], embedded({"a": 5}))
    fasta("garbage.fasta", bytes(range(256)) * 4, "error", ["garbage.fasta"])
    fasta("reads.fasta", "@r1\nACGT\n+\nIIII\n", "error", ["reads.fasta:1"])
    fasta("genbank.fasta", "LOCUS       X 5 aa\nORIGIN\n        1 mktay\n//\n", "error", ["genbank.fasta:1"])
    fasta("comment.fasta", ";old comment\n>a\nMKTAY\n", "either", ["comment.fasta:1"], embedded({"a": 5}))
    fasta("empty-id.fasta", ">\nMKTAY\n", "error", ["empty-id.fasta:1"])
    fasta("space-id.fasta", ">   \nMKTAY\n", "error", ["space-id.fasta:1"])
    fasta("long-header.fasta", ">a " + "d" * 100_000 + "\nMKTAY\n", "ok", check=embedded({"a": 5}))
    fasta("one-residue.fasta", ">a\nM\n", "ok", check=embedded({"a": 1}))
    # Keys as the ProtTrans embedder names its h5 datasets ('/' and '.' to '_'), with a notice.
    fasta("slash-id.fasta", ">a/b\nMKTAY\n", "either", ["slash-id.fasta", "'a/b'"], all_of(embedded({"a_b": 5}), mentions("under keys with")))
    fasta("dot-id.fasta", ">../a\nMKTAY\n", "either", ["dot-id.fasta", "'../a'"], all_of(embedded({"___a": 5}), mentions("under keys with")))
    fasta("colliding-ids.fasta", ">a/b\nMKTAY\n>a_b\nMKV\n", "error", ["colliding-ids.fasta:3", "'a_b'"])
    many = "".join(f">p{i}\nMKTAY\n" for i in range(10_000))
    fasta("many.fasta", many, "ok", check=embedded({f"p{i}": 5 for i in range(10_000)}))
    # Longer than the quickstart model's 130 positions: refused with the option, or cut with a notice.
    fasta("past-positions.fasta", ">a\n" + "MKTAYIAKQR" * 30 + "\n", "either", ["past-positions.fasta:1", "'a'", "--skip-long"], any_of(embedded({"a": 300}), all_of(embedded({"a": None}), mentions("cut", "crop", "truncat", "longer"))))
    fasta("t5-50k.fasta", ">long\n" + "MKTAYIAKQR" * 5000 + "\n", "either", ["t5-50k.fasta", "'long'"], embedded({"long": 50_000}), model=t5)
    fasta("t5-lowercase.fasta", ">a\nmktay\n", "ok", check=embedded({"a": 5}), model=t5)
    gz = gzip.compress(b">a\nMKTAY\n>b\nMKV\n")
    fasta("ok.fasta.gz", gz, "ok", check=embedded({"a": 5, "b": 3}))
    fasta("cut.fasta.gz", gzip.compress(many.encode())[:700], "error", ["cut.fasta.gz"])
    fasta("not-gzip.fasta.gz", ">a\nMKTAY\n", "either", ["not-gzip.fasta.gz"], embedded({"a": 5}))
    fasta("angle-in-seq.fasta", ">a\nMKT>AY\n", "error", ["angle-in-seq.fasta:2"])

    def embed(name, extra, expect, names=(), check=None, inp=ok_fasta, model=m, output=None, protect=()):
        o = output or out(name + ".npz")
        case = Case("embed options", name, ["embed", "--model", model, "--input", str(inp), "--output", str(o), *extra], expect, names, check, protect)
        case.out = o
        c.append(case)

    both = {"a": 10, "b": 5}
    embed("max-batch-0", ["--max-batch", "0"], "error", ["--max-batch"])
    embed("max-residues-0", ["--max-residues", "0"], "error", ["--max-residues"])
    embed("max-residues-3", ["--max-residues", "3"], "either", ["--max-residues"], embedded(both))
    embed("alone-above-0", ["--alone-above", "0"], "either", ["--alone-above"], embedded(both))
    embed("precision-f8", ["--precision", "f8"], "error", ["f8"])
    embed("device-unknown", ["--device", "gpu9"], "error", ["gpu9"])
    embed("device-cuda", ["--device", "cuda"], "error", ["cuda"])
    embed("max-length-0", ["--max-length", "0"], "error", ["--max-length"])
    embed("max-length-3", ["--max-length", "3"], "either", ["--max-length", "'a'"], any_of(embedded(both), mentions("skip", "longer", "cut")))
    embed("segment-length-bert", ["--segment-length", "10"], "error", ["--segment-length"])
    embed("attention-gib-negative", ["--max-attention-gib=-1"], "error", ["--max-attention-gib"])
    embed("attention-gib-nan", ["--max-attention-gib", "NaN"], "error", ["--max-attention-gib"])
    embed("output-txt", [], "error", ["o.txt"], output=out("o.txt"))
    embed("output-h5", [], "error", ["o.h5", "hdf5"], output=out("o.h5"))
    embed("output-new-dir", [], "either", ["new-dir"], embedded(both), output=w / "out" / "new-dir" / "o.npz")
    write(w / "out" / "a-dir.npz" / "keep", "x")
    embed("output-is-dir", [], "error", ["a-dir.npz"], output=w / "out" / "a-dir.npz")
    embed("output-unwritable", [], "error", ["/proc/nope"], output=Path("/proc/nope/o.npz"))
    embed("summary-json-new-dir", ["--summary-json", str(w / "out" / "nodir" / "s.json")], "either", ["s.json"], embedded(both))
    embed("model-missing", [], "error", ["no-such-model"], model=str(w / "no-such-model"))
    embed("input-missing", [], "error", ["missing.fasta"], inp=w / "missing.fasta")
    embed("input-dir", [], "error", ["fasta"], inp=w / "fasta")
    embed("input-dev-null", [], "error", ["/dev/null"], inp=Path("/dev/null"))
    # Outputs that exist: never replaced or mixed silently.
    done = out("done.npz")
    for name, extra in [
        ("exists-no-resume", []),
        ("resume-other-precision", ["--resume", "--precision", "bf16"]),
        ("resume-per-protein", ["--resume", "--per-protein"]),
    ]:
        embed(name, extra, "error", ["done.npz"], output=done, protect=[done])
    embed("resume-other-model", ["--resume"], "error", ["done.npz"], model=str(w / "model-b"), output=done, protect=[done])
    embed("resume-same-settings", ["--resume"], "ok", check=embedded({"a": 10, "b": 5, "c": 3}), inp=write(w / "abc.fasta", ">a\nMKTAYIAKQR\n>b\nMKVLA\n>c\nMKV\n"), output=out("grow.npz"))

    # -- Shards: embed --shard, merge, verify ---------------------------------------------------
    embed("shard-zero", ["--shard", "0/2"], "error", ["0/2"])
    embed("shard-auto-outside-slurm", ["--shard", "auto"], "error", ["SLURM_ARRAY_TASK_ID"])
    embed("shard-placeholder-alone", [], "error", ["{shard}"], output=out("o-{shard}.npz"))
    embed("shard-more-than-proteins", ["--shard", "3/3"], "ok", check=exists("out/e-3-of-3.npz"), output=out("e-{shard}.npz"))
    ab, abc = w / "ab.fasta", w / "abc.fasta"
    s1, s2, pp2 = out("s-1-of-2.npz"), out("s-2-of-2.npz"), out("pp-2-of-2.npz")
    bad_npz = write(w / "bad.npz", b"PK\x03\x04 not a zip at all")

    def merge_shards(name, shards, expect, names=(), check=None, inp=ab, output=None, protect=()):
        o = output or out(name + ".npz")
        c.append(Case("shards", name, ["merge", "--input", str(inp), "--output", str(o), *map(str, shards)], expect, names, check, protect))

    merge_shards("merge-ok", [s1, s2], "ok", check=exists("out/merge-ok.npz"))
    merge_shards("merge-missing-shard", [s2], "error", ["1/2 not given", "missing\t"])
    merge_shards("merge-twice", [s1, s1], "error", ["s-1-of-2.npz", "as is"])
    merge_shards("merge-mixed-pooling", [s1, pp2], "error", ["pp-2-of-2.npz", "per_protein"])
    merge_shards("merge-whole-and-shard", [done, s1], "error", ["done.npz", "no shard"])
    merge_shards("merge-other-input", [s1, s2], "error", ["abc.fasta"], inp=abc)
    merge_shards("merge-corrupt-shard", [s1, bad_npz], "error", ["bad.npz"])
    merge_shards("merge-txt-output", [s1, s2], "error", ["m.txt"], output=out("m.txt"))
    merge_shards("merge-into-existing", [s1, s2], "error", ["done.npz", "already exists"], output=done, protect=[done])
    merge_shards("merge-no-shards", [], "error", ["<SHARDS>"])
    merge_shards("merge-missing-input", [s1, s2], "error", ["missing.fasta"], inp=w / "missing.fasta")

    def verify(name, output, inp, expect, names=(), check=None):
        c.append(Case("shards", name, ["verify", str(output), "--input", str(inp)], expect, names, check))

    verify("verify-ok", done, ab, "ok", check=mentions("complete"))
    verify("verify-shard-alone", s1, ab, "ok", check=mentions("complete"))
    verify("verify-missing-protein", done, abc, "error", ["abc.fasta", "missing\tc\t"])
    verify("verify-changed-length", done, write(w / "ab-longer.fasta", ">a\nMKTAYIAKQRA\n>b\nMKVLA\n"), "error", ["'a'", "has shape"])
    verify("verify-corrupt-output", bad_npz, ab, "error", ["bad.npz"])
    verify("verify-missing-input", done, w / "missing.fasta", "error", ["missing.fasta"])
    verify("verify-garbage-input", done, write(w / "garbage-in.fasta", bytes(range(256)) * 4), "error", ["garbage-in.fasta"])

    # -- LoRA adapters (PEFT layout) through embed --adapter ------------------------------------
    bert_tiny, t5_tiny = FIXTURES / "bert_tiny", FIXTURES / "t5_relu_tiny"

    def adapter(name, model, make, expect="error", names=(), check=None, extra=(), output=None, protect=()):
        d = w / "adapters" / name
        make(d)
        o = output or out("a-" + name + ".npz")
        case = Case("adapters", name, ["embed", "--model", str(model), "--adapter", str(d), "--input", str(ok_fasta), "--output", str(o), *extra], expect, names or [name], check, protect)
        case.out = o
        c.append(case)

    def rename_key(old_suffix, new_suffix):
        def edit(header, data):
            key = next(k for k in header if k.endswith(old_suffix))
            header[key[: -len(old_suffix)] + new_suffix] = header.pop(key)
        return edit

    def adapter_copy(source, **config):
        def make(d):
            shutil.copytree(FIXTURES / source, d, dirs_exist_ok=True)
            if config:
                path = d / "adapter_config.json"
                value = json.loads(path.read_text())
                value.update(config)
                path.write_text(json.dumps(value))
        return make

    adapter("bert-lora", bert_tiny, adapter_copy("bert_tiny_lora"), "ok", check=embedded({"a": 10, "b": 5}))
    adapter("t5-lora-on-bert", bert_tiny, adapter_copy("t5_relu_tiny_lora"), names=["adapter_model.safetensors", "another model"])
    adapter("empty-dir", bert_tiny, lambda d: d.mkdir(parents=True), names=["empty-dir", "adapter_config.json"])
    adapter("dora", bert_tiny, adapter_copy("bert_tiny_lora", use_dora=True), names=["adapter_config.json", "DoRA"])
    adapter("prefix-tuning", bert_tiny, adapter_copy("bert_tiny_lora", peft_type="PREFIX_TUNING"), names=["adapter_config.json", "PREFIX_TUNING"])
    adapter("rank-zero", bert_tiny, adapter_copy("bert_tiny_lora", r=0), names=["adapter_config.json", "r must"])
    adapter("rank-mismatch", bert_tiny, adapter_copy("bert_tiny_lora", r=8), names=["adapter_model.safetensors", "rank"])
    adapter("config-bad-json", bert_tiny, lambda d: (adapter_copy("bert_tiny_lora")(d), write(d / "adapter_config.json", "{oops")), names=["adapter_config.json", "line 1"])
    adapter("weights-truncated", bert_tiny, lambda d: (adapter_copy("bert_tiny_lora")(d), (d / "adapter_model.safetensors").write_bytes((FIXTURES / "bert_tiny_lora" / "adapter_model.safetensors").read_bytes()[:3000])), names=["adapter_model.safetensors"])
    adapter("half-pair", bert_tiny, lambda d: (adapter_copy("bert_tiny_lora")(d), safetensors_edit(d / "adapter_model.safetensors", rename_key("query.lora_B.weight", "query2.lora_B.weight"))), names=["adapter_model.safetensors", "pairs"])
    lora_head = w / "heads" / "lora-head"
    loc_train_csv, loc_valid_csv = SAMPLES / "localization_train.csv", SAMPLES / "localization_valid.csv"

    def records_adapter(case, output, text):
        try:
            spec = json.loads((lora_head / "head.json").read_text())["features"]
        except (OSError, ValueError, KeyError) as error:
            return f"head.json: {error}"
        return None if str(spec.get("adapter", "")).endswith("bert-lora") else f"no adapter in {spec}"

    c.append(Case("adapters", "train-head-with-adapter", ["train-head", "--task", "localization", "--train", str(loc_train_csv), "--valid", str(loc_valid_csv), "--model", str(bert_tiny), "--adapter", str(w / "adapters" / "bert-lora"), "--max-length", "62", "--epochs", "1", "--out", str(lora_head)], "ok", check=records_adapter))
    c.append(Case("adapters", "predict-with-adapter-head", ["predict", "--head", str(lora_head), "--input", str(ok_fasta), "--output", str(out("lora.tsv"))], "ok", check=exists("out/lora.tsv")))
    c.append(Case("adapters", "train-head-adapter-without-model", ["train-head", "--task", "localization", "--train", str(loc_train_csv), "--valid", str(loc_valid_csv), "--features", "one-hot", "--adapter", str(w / "adapters" / "bert-lora"), "--out", str(w / "heads" / "x2")], "error", ["--adapter", "--model"]))
    def merge(name, model, adapter_dir, expect, names=(), check=None, out_dir=None, extra=(), protect=()):
        o = out_dir or w / "merged" / name
        c.append(Case("adapters", "merge-" + name, ["merge-adapter", "--model", str(model), "--adapter", str(adapter_dir), "--out", str(o), *extra], expect, names, check, protect))

    merge("bert", bert_tiny, FIXTURES / "bert_tiny_lora", "ok", check=exists("merged/bert/model.safetensors", "merged/bert/config.json"))
    merge("over-existing", bert_tiny, FIXTURES / "bert_tiny_lora", "error", ["merged/bert", "--force"], out_dir=w / "merged" / "bert", protect=[w / "merged" / "bert" / "model.safetensors"])
    merge("t5-adapter-on-bert", bert_tiny, FIXTURES / "t5_relu_tiny_lora", "error", ["model.safetensors", "another model"])
    merge("pytorch-base", FIXTURES / "bert_tiny_pt", FIXTURES / "bert_tiny_lora", "error", ["bert_tiny_pt", "model.safetensors"])
    lora_done = out("lora-done.npz")
    adapter("resume-without-adapter-output", bert_tiny, adapter_copy("bert_tiny_lora"), names=["lora-done.npz", "adapter"], extra=["--resume"], output=lora_done, protect=[lora_done])

    # -- fine-tuning -----------------------------------------------------------------------------
    def finetune(name, extra, expect="error", names=(), check=None, model=bert_tiny, out_name=None, max_length=("--max-length", "62"), protect=()):
        o = w / "finetune" / (out_name or name)
        c.append(Case("finetune", name, ["finetune", "--model", str(model), "--task", "secondary-structure", "--train", str(SAMPLES / "ss8_train.csv"), "--valid", str(SAMPLES / "ss8_valid.csv"), *max_length, "--epochs", "1", "--out", str(o), *extra], expect, names, check, protect))

    finetune("lora", [], "ok", check=exists("finetune/lora/adapter/adapter_model.safetensors", "finetune/lora/head.json", "finetune/lora/finetune.json"))
    finetune("full-t5", ["--full"], "ok", model=t5_tiny, check=exists("finetune/full-t5/model/model.safetensors"))
    finetune("merge", ["--merge", "--lora-targets", "q,v,ffn"], "ok", check=exists("finetune/merge/model/model.safetensors", "finetune/merge/adapter/adapter_config.json"))
    finetune("again-without-resume", [], "error", ["finetune/lora", "--resume"], out_name="lora")
    finetune("resume-other-rank", ["--resume", "--lora-rank", "8"], "error", ["--resume", "only --epochs"], out_name="lora")
    finetune("unknown-target", ["--lora-targets", "q,query"], "error", ["--lora-targets", "query", "q, k, v, o, ffn"])
    finetune("rank-zero", ["--lora-rank", "0"], "error", ["--lora-rank"])
    finetune("head-lr-nan", ["--head-learning-rate", "nan"], "error", ["learning rate", "NaN"])
    finetune("too-long-for-positions", [], "error", ["bert_tiny", "--max-length 62"], max_length=())
    finetune("max-tokens-below-a-protein", ["--max-tokens", "10"], "error", ["--max-tokens", "10"])
    finetune("full-with-lora-rank", ["--full", "--lora-rank", "4"], "error", ["--full", "--lora-rank"])
    finetune("accumulation-zero", ["--accumulation", "0"], "error", ["--accumulation"])
    c.append(Case("finetune", "evaluate-finetuned-head", ["evaluate", "--head", str(w / "finetune" / "lora"), "--test", str(SAMPLES / "ss8_test.csv"), "--no-tsne"], "ok", check=mentions("q3")))
    c.append(Case("finetune", "predict-with-missing-adapter", ["predict", "--head", str(w / "finetune" / "lora"), "--adapter", str(w / "no-such-adapter"), "--input", str(ok_fasta), "--output", str(out("ft.tsv"))], "error", ["no-such-adapter"]))

    # -- checkpoint directories -----------------------------------------------------------------
    base = w / "model"

    def model_case(name, make, expect="error", names=(), check=None):
        d = w / "models" / name
        make(d)
        o = out("m-" + name + ".npz")
        case = Case("checkpoints", name, ["embed", "--model", str(d), "--input", str(ok_fasta), "--output", str(o)], expect, names or [name], check)
        case.out = o
        c.append(case)

    def set_config(**kv):
        return lambda d: copy_dir(base, d, **kv)

    def raw_config(text):
        def make(d):
            copy_dir(base, d)
            (d / "config.json").write_text(text)

        return make

    def weights(edit):
        def make(d):
            copy_dir(base, d)
            safetensors_edit(d / "model.safetensors", edit)

        return make

    def replace_file(name, data):
        def make(d):
            copy_dir(base, d)
            if data is None:
                (d / name).unlink()
            else:
                write(d / name, data)

        return make

    model_case("empty-dir", lambda d: d.mkdir(parents=True), names=["empty-dir", "config.json"])
    model_case("config-bad-json", raw_config("{ not json"), names=["config-bad-json/config.json", "line 1"])
    model_case("config-empty", raw_config(""), names=["config-empty/config.json"])
    model_case("config-array", raw_config("[1, 2]"), names=["config-array/config.json"])
    model_case("hidden-size-string", set_config(hidden_size="64"), names=["config.json", "hidden_size"])
    model_case("hidden-size-negative", set_config(hidden_size=-64), names=["config.json", "hidden_size"])
    model_case("hidden-size-zero", set_config(hidden_size=0), names=["config.json", "hidden_size"])
    model_case("heads-zero", set_config(num_attention_heads=0), names=["config.json", "num_attention_heads"])
    model_case("heads-not-dividing", set_config(num_attention_heads=5), names=["config.json", "num_attention_heads"])
    model_case("model-type-unknown", set_config(model_type="gpt2", architectures=["GPT2Model"]), names=["config.json", "gpt2"])
    model_case("model-type-missing", set_config(model_type=None), "either", ["config.json", "model_type"], embedded({"a": 10, "b": 5}))
    model_case("vocab-size-small", set_config(vocab_size=5), names=["vocab_size"])
    model_case("positions-zero", set_config(max_position_embeddings=0), names=["max_position_embeddings"])
    model_case("layers-zero", set_config(num_hidden_layers=0), "either", ["num_hidden_layers"], None)
    model_case("layers-many", set_config(num_hidden_layers=40), names=["model.safetensors", "missing"])
    model_case("hidden-act-unknown", set_config(hidden_act="swish2"), names=["config.json", "swish2"])
    model_case("dropout-out-of-range", set_config(hidden_dropout_prob=1.5), "either", ["hidden_dropout_prob"], embedded({"a": 10, "b": 5}))
    model_case("layer-norm-eps-negative", set_config(layer_norm_eps=-1.0), "either", ["layer_norm_eps"], embedded({"a": 10, "b": 5}))
    model_case("key-typo", lambda d: (copy_dir(base, d), (d / "config.json").write_text((d / "config.json").read_text().replace('"num_hidden_layers"', '"num_hidden_layer"'))), names=["num_hidden_layer"])
    model_case("extra-key", set_config(my_custom_note="hello"), "ok", check=embedded({"a": 10, "b": 5}))
    model_case("weights-missing", replace_file("model.safetensors", None), names=["weights-missing", "model.safetensors"])
    model_case("weights-empty", replace_file("model.safetensors", b""), names=["model.safetensors"])
    model_case("weights-truncated", lambda d: (copy_dir(base, d), (d / "model.safetensors").write_bytes((base / "model.safetensors").read_bytes()[:5000])), names=["model.safetensors"])
    model_case("weights-garbage", replace_file("model.safetensors", b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all"), names=["model.safetensors"])
    model_case("weights-huge-header", replace_file("model.safetensors", struct.pack("<Q", 1 << 60) + b"{}"), names=["model.safetensors"])
    model_case("weights-other-model", lambda d: (copy_dir(base, d), shutil.copy(w / "model-b" / "model.safetensors", d / "model.safetensors")), names=["model.safetensors"])

    def dtype_int(header, data):
        key = next(k for k in header if k.endswith("query.weight"))
        header[key]["dtype"] = "I32"

    model_case("weights-int-dtype", weights(dtype_int), names=["model.safetensors", "query.weight"])

    def offsets_past_end(header, data):
        key = next(k for k in header if k != "__metadata__")
        start, end = header[key]["data_offsets"]
        header[key]["data_offsets"] = [start, end + 10_000_000]

    model_case("weights-offsets-past-end", weights(offsets_past_end), names=["model.safetensors"])

    def nan_weights(header, data):
        key = next(k for k in header if k.endswith("embeddings.word_embeddings.weight"))
        start, end = header[key]["data_offsets"]
        nan = struct.pack("<f", float("nan"))
        data[start:end] = nan * ((end - start) // 4)

    model_case("weights-nan", weights(nan_weights), "either", ["weights-nan", "'a'", "non-finite"], any_of(embedded({"a": 10, "b": 5}), mentions("non-finite", "not finite")))

    def shape_swap(header, data):
        key = next(k for k in header if k.endswith("attention.self.query.weight"))
        header[key]["shape"] = list(reversed(header[key]["shape"])) + [1]

    model_case("weights-wrong-rank", weights(shape_swap), names=["model.safetensors", "query.weight"])
    model_case("vocab-missing", replace_file("vocab.txt", None), "either", ["vocab.txt"], all_of(embedded({"a": 10, "b": 5}), mentions("built-in")))
    model_case("vocab-empty", replace_file("vocab.txt", ""), names=["vocab.txt"])
    model_case("vocab-no-specials", replace_file("vocab.txt", "\n".join("LAGVESIKRDTPNQFYMHCWXUBZO")), names=["vocab.txt"])
    model_case("vocab-too-big", lambda d: (copy_dir(base, d), write(d / "vocab.txt", (base / "vocab.txt").read_text() + "".join(f"extra{i}\n" for i in range(200)))), names=["vocab.txt", "vocab_size"])
    model_case("vocab-duplicate", lambda d: (copy_dir(base, d), write(d / "vocab.txt", (base / "vocab.txt").read_text().replace("\nL\n", "\nA\n", 1))), names=["vocab.txt"])
    model_case("pytorch-garbage", lambda d: (copy_dir(base, d), (d / "model.safetensors").unlink(), write(d / "pytorch_model.bin", b"PK\x03\x04garbage")), names=["pytorch_model.bin"])
    model_case("t5-buckets-zero", lambda d: copy_dir(w / "t5", d, relative_attention_num_buckets=0), names=["relative_attention_num_buckets"])
    model_case("t5-spiece-garbage", lambda d: (copy_dir(w / "t5", d), write(d / "spiece.model", b"\x0a\x05garbage")), names=["spiece.model"])
    model_case("t5-d-kv-zero", lambda d: copy_dir(w / "t5", d, d_kv=0), names=["d_kv"])

    # -- recipes: init-model and pretrain ------------------------------------------------------
    tiny = (REPO / "configs" / "tiny.toml").read_text()
    train_fa, valid_fa = str(SAMPLES / "uniprot_train.fasta.gz"), str(SAMPLES / "uniprot_valid.fasta.gz")

    def recipe(name, text, expect="error", names=None, command="pretrain", check=None):
        f = write(w / "recipes" / name, text)
        if command == "pretrain":
            args = ["pretrain", "--config", str(f), "--train", train_fa, "--valid", valid_fa, "--out", str(w / "runs" / name)]
        else:
            args = ["init-model", "--config", str(f), "--out", str(w / "inits" / name)]
        c.append(Case("recipes", name, args, expect, names if names is not None else [name], check))

    def edit(old, new):
        assert old in tiny, old
        return tiny.replace(old, new)

    def add(section, line):
        return edit(f"[{section}]", f"[{section}]\n{line}")

    recipe("broken.toml", "[model\n", names=["broken.toml", "line 1"])
    recipe("empty.toml", "", names=["empty.toml"])
    recipe("unknown-key.toml", add("model", "hidden_sise = 3"), names=["unknown-key.toml", "hidden_sise"])
    recipe("wrong-type.toml", edit("hidden_size = 32", 'hidden_size = "32"'), names=["wrong-type.toml", "hidden_size"])
    recipe("steps-zero.toml", edit("steps = 60", "steps = 0"), names=["steps-zero.toml", "steps"])
    recipe("lr-negative.toml", edit("learning_rate = 0.003", "learning_rate = -0.1"), names=["lr-negative.toml", "learning_rate"])
    recipe("lr-nan.toml", edit("learning_rate = 0.003", "learning_rate = nan"), names=["lr-nan.toml", "learning_rate"])
    recipe("lr-inf.toml", edit("learning_rate = 0.003", "learning_rate = inf"), names=["lr-inf.toml", "learning_rate"])
    recipe("beta1.toml", add("optimizer", "beta_1 = 1.5"), names=["beta1.toml", "beta_1"])
    recipe("beta2.toml", add("optimizer", "beta_2 = -0.1"), names=["beta2.toml", "beta_2"])
    recipe("epsilon.toml", add("optimizer", "epsilon = 0.0"), names=["epsilon.toml", "epsilon"])
    recipe("decay.toml", add("optimizer", "weight_decay = -0.1"), names=["decay.toml", "weight_decay"])
    recipe("clip.toml", add("optimizer", "grad_clip_norm = -1.0"), names=["clip.toml", "grad_clip_norm"])
    recipe("accumulation.toml", add("optimizer", "grad_accumulation = 0"), names=["accumulation.toml", "grad_accumulation"])
    recipe("optimizer-kind.toml", add("optimizer", 'kind = "sgd9"'), names=["optimizer-kind.toml", "sgd9"])
    recipe("loss-scale.toml", add("optimizer", "loss_scale = -4.0"), names=["loss-scale.toml", "loss_scale"])
    recipe("warmup.toml", edit("warmup_steps = 6", "warmup_steps = 600"), names=["warmup.toml", "warmup_steps"])
    recipe("checkpoint-every.toml", edit("checkpoint_every = 20", "checkpoint_every = 0"), names=["checkpoint-every.toml", "checkpoint_every"])
    recipe("max-tokens.toml", edit("max_tokens = 2048", "max_tokens = 0"), names=["max-tokens.toml", "max_tokens"])
    recipe("max-tokens-small.toml", edit("max_tokens = 2048", "max_tokens = 10"), names=["max-tokens-small.toml", "max_tokens"])
    recipe("max-sequences.toml", edit("max_sequences = 64", "max_sequences = 0"), names=["max-sequences.toml", "max_sequences"])
    recipe("max-residues.toml", edit("max_residues = 62", "max_residues = 0"), names=["max-residues.toml", "max_residues"])
    recipe("crop-past-positions.toml", edit("max_residues = 62", "max_residues = 500"), names=["crop-past-positions.toml", "max_position_embeddings"])
    recipe("workers.toml", edit("num_workers = 1", "num_workers = 0"), "either", ["workers.toml", "num_workers"], check=exists("runs/workers.toml/model/config.json"))
    recipe("hidden-zero.toml", edit("hidden_size = 32", "hidden_size = 0"), names=["hidden-zero.toml", "hidden_size"], command="init-model")
    recipe("layers-zero.toml", edit("num_hidden_layers = 2", "num_hidden_layers = 0"), "either", ["layers-zero.toml", "num_hidden_layers"], command="init-model")
    recipe("heads.toml", edit("num_attention_heads = 4", "num_attention_heads = 5"), names=["heads.toml", "num_attention_heads"], command="init-model")
    recipe("dropout.toml", add("model", "hidden_dropout_prob = 1.5"), names=["dropout.toml", "hidden_dropout_prob"])
    recipe("mask-probability.toml", tiny + "\n[masking]\nprobability = 1.5\nmask_fraction = 0.8\nrandom_fraction = 0.1\n", names=["mask-probability.toml", "probability"])
    recipe("mask-zero.toml", tiny + "\n[masking]\nprobability = 0.0\nmask_fraction = 0.8\nrandom_fraction = 0.1\n", names=["mask-zero.toml", "probability"])
    recipe("mask-fractions.toml", tiny + "\n[masking]\nprobability = 0.15\nmask_fraction = 0.8\nrandom_fraction = 0.5\n", names=["mask-fractions.toml", "random_fraction"])
    recipe("architecture.toml", edit('architecture = "bert"', 'architecture = "gpt2"'), names=["architecture.toml", "gpt2"])
    recipe("electra-on-bert.toml", tiny + "\n[electra]\ndiscriminator_weight = 50.0\n", "either", ["electra-on-bert.toml", "electra"], command="init-model")
    recipe("seed-negative.toml", add("data", "seed = -1"), names=["seed-negative.toml", "seed"])
    recipe("positions-zero.toml", edit("max_position_embeddings = 66", "max_position_embeddings = 0"), names=["positions-zero.toml", "max_position_embeddings"], command="init-model")
    c.append(Case("recipes", "config-missing", ["init-model", "--config", str(w / "nope.toml"), "--out", str(w / "inits" / "x")], "error", ["nope.toml"]))
    c.append(Case("recipes", "config-is-dir", ["init-model", "--config", str(w / "recipes"), "--out", str(w / "inits" / "y")], "error", ["recipes"]))
    c.append(Case("recipes", "init-over-model", ["init-model", "--config", str(REPO / "configs" / "quickstart.toml"), "--out", m], "error", ["model"], protect=[base / "model.safetensors"]))

    # -- pretraining data and resumption --------------------------------------------------------
    tiny_recipe = write(w / "recipes" / "short.toml", edit("steps = 60", "steps = 8").replace("checkpoint_every = 20", "checkpoint_every = 4").replace("warmup_steps = 6", "warmup_steps = 2"))

    def pretrain(name, train, valid, expect, names, extra=(), out_dir=None, check=None, protect=(), config=tiny_recipe):
        o = out_dir or w / "runs" / name
        c.append(Case("pretrain", name, ["pretrain", "--config", str(config), "--train", str(train), "--valid", str(valid), "--out", str(o), *extra], expect, names, check, protect))

    empty = write(w / "fasta-empty.fasta", "")
    pretrain("train-empty", empty, valid_fa, "error", ["fasta-empty.fasta"])
    pretrain("valid-empty", train_fa, empty, "error", ["fasta-empty.fasta"])
    pretrain("train-missing", w / "nope.fasta", valid_fa, "error", ["nope.fasta"])
    pretrain("train-bad-letter", write(w / "bad-train.fasta", ">a\nMKT1AY\n"), valid_fa, "error", ["bad-train.fasta:2"])
    pretrain("train-is-valid", valid_fa, valid_fa, "either", ["same"], check=mentions("same", "overlap", "identical"))
    pretrain("train-all-x", write(w / "all-x.fasta", "".join(f">x{i}\n{'X' * 40}\n" for i in range(50))), valid_fa, "either", ["all-x.fasta"])
    pretrain("precision-f8", train_fa, valid_fa, "error", ["f8"], ["--precision", "f8"])
    pretrain("device-unknown", train_fa, valid_fa, "error", ["gpu9"], ["--device", "gpu9"])
    pretrain("ddp-on-cpu", train_fa, valid_fa, "error", ["ddp", "CUDA"], ["--device", "cpu,cpu", "--strategy", "ddp"])
    pretrain("strategy-unknown", train_fa, valid_fa, "error", ["ring"], ["--strategy", "ring"])
    finished = w / "runs" / "finished"
    protect = [finished / "model" / "model.safetensors"]
    pretrain("over-finished-run", train_fa, valid_fa, "error", ["finished"], out_dir=finished, protect=protect)
    changed = write(w / "recipes" / "short-lr.toml", tiny_recipe.read_text().replace("learning_rate = 0.003", "learning_rate = 0.01"))
    pretrain("resume-changed-lr", train_fa, valid_fa, "error", ["learning_rate"], ["--resume"], out_dir=finished, protect=protect, config=changed)
    pretrain("resume-nothing", train_fa, valid_fa, "either", ["never-ran"], ["--resume"], out_dir=w / "runs" / "never-ran", check=exists("runs/never-ran/model/config.json"))
    damaged = w / "runs" / "damaged"
    pretrain("resume-damaged-checkpoints", train_fa, valid_fa, "error", ["checkpoint", ".bpk"], ["--resume"], out_dir=damaged)
    grown = write(w / "recipes" / "short-more.toml", tiny_recipe.read_text().replace("steps = 8", "steps = 12"))
    pretrain("resume-more-steps", train_fa, valid_fa, "ok", [], ["--resume"], out_dir=w / "runs" / "grow", check=exists("runs/grow/model/config.json"), config=grown)

    # -- heads: train-head, predict, evaluate ---------------------------------------------------
    ss_head, loc_head = "input,dssp3,dssp8,disorder,cb513_mask\n", "id,sequence,location,membrane,split\n"
    ss_train, ss_valid = str(SAMPLES / "ss8_train.csv"), str(SAMPLES / "ss8_valid.csv")
    loc_train, loc_valid = str(SAMPLES / "localization_train.csv"), str(SAMPLES / "localization_valid.csv")

    def head(name, task, train, valid, extra, expect, names, check=None, out_dir=None, protect=()):
        o = out_dir or w / "heads" / name
        args = ["train-head", "--task", task, "--train", str(train), "--valid", str(valid), "--out", str(o)]
        if not any(e in ("--embeddings", "--model") for e in extra):
            args += ["--features", "one-hot"]
        c.append(Case("train-head", name, args + list(extra), expect, names, check, protect))

    def csv(name, text):
        return write(w / "csv" / name, text)

    head("csv-empty", "localization", csv("empty.csv", ""), loc_valid, [], "error", ["empty.csv"])
    head("csv-header-only", "localization", csv("header.csv", loc_head), loc_valid, [], "error", ["header.csv"])
    head("csv-wrong-header", "localization", csv("wrong-header.csv", "name,seq,where\nA1,MKT,Nucleus\n"), loc_valid, [], "error", ["wrong-header.csv", "location"])
    head("csv-ss-letter", "secondary-structure", csv("letter.csv", ss_head + "MKTAY,CCHZC,,,\n"), ss_valid, [], "error", ["letter.csv:2", "'Z'"])
    head("csv-ss-length", "secondary-structure", csv("length.csv", ss_head + "MKTAY,CCH,,,\n"), ss_valid, [], "error", ["length.csv:2"])
    head("csv-ss-mask-length", "secondary-structure", csv("mask.csv", ss_head + "MKTAY,CCHHC,CCHHC,,11\n"), ss_valid, [], "error", ["mask.csv:2"])
    head("csv-duplicate", "localization", csv("duplicate.csv", loc_head + "A1,MKTAY,Nucleus,soluble,train\nA1,MKTAY,Nucleus,soluble,train\n"), loc_valid, [], "error", ["duplicate.csv:3"])
    head("csv-short-row", "localization", csv("short.csv", loc_head + "A1,MKTAY,Nucleus,soluble\n"), loc_valid, [], "error", ["short.csv:2"])
    head("csv-unknown-class", "localization", csv("mars.csv", loc_head + "A1,MKTAY,Mars,soluble,train\n"), loc_valid, [], "error", ["mars.csv:2", "Mars"])
    head("csv-unknown-membrane", "localization", csv("maybe.csv", loc_head + "A1,MKTAY,Nucleus,maybe,train\n"), loc_valid, [], "error", ["maybe.csv:2", "maybe"])
    head("csv-bad-residue", "localization", csv("digit.csv", loc_head + "A1,MKT1Y,Nucleus,soluble,train\n"), loc_valid, [], "error", ["digit.csv:2", "'1'"])
    head("csv-latin1", "localization", csv("latin1.csv", (loc_head + "caf").encode() + b"\xe9,MKTAY,Nucleus,soluble,train\n"), loc_valid, [], "error", ["latin1.csv:2"])
    head("csv-quoted", "localization", csv("quoted.csv", loc_head + "".join(f'"Q{i}","MKTAY{"A" * i}","Nucleus","soluble","train"\n' for i in range(20))), loc_valid, ["--epochs", "1"], "ok", [], exists("heads/csv-quoted/head.json"))
    head("csv-crlf", "localization", csv("crlf.csv", (SAMPLES / "localization_train.csv").read_text().replace("\n", "\r\n")), loc_valid, ["--epochs", "1"], "ok", [], exists("heads/csv-crlf/head.json"))
    head("csv-ss-for-localization", "localization", ss_train, loc_valid, [], "error", ["ss8_train.csv"])
    head("csv-localization-for-ss", "secondary-structure", loc_train, ss_valid, [], "error", ["localization_train.csv"])
    head("valid-header-only", "localization", loc_train, csv("vheader.csv", loc_head), [], "error", ["vheader.csv"])
    head("train-is-valid", "localization", loc_valid, loc_valid, ["--epochs", "1"], "either", ["same"], mentions("same", "overlap", "identical"))
    for option, value in [("--dropout", "1.5"), ("--dropout", "-0.1"), ("--learning-rate", "NaN"), ("--learning-rate", "inf"), ("--learning-rate", "-1"), ("--weight-decay", "-1"), ("--epochs", "0"), ("--batch-size", "0"), ("--limit-train", "0"), ("--max-length", "0"), ("--loss-weights", "x,y"), ("--loss-weights", "1,-1"), ("--pooling", "median"), ("--features", "word2vec"), ("--seed", "-3")]:
        head(f"option{option}={value}", "localization", loc_train, loc_valid, [f"{option}={value}"], "error", [option.lstrip("-").split("-")[0]])
    c.append(Case("train-head", "task-unknown", ["train-head", "--task", "folding", "--train", loc_train, "--valid", loc_valid, "--features", "one-hot", "--out", str(w / "heads" / "x")], "error", ["folding"]))
    head("patience-0", "localization", loc_train, loc_valid, ["--patience", "0", "--epochs", "2"], "either", ["--patience"], exists("heads/patience-0/head.json"))
    head("lr-huge", "localization", loc_train, loc_valid, ["--learning-rate", "1e30"], "error", ["lr-huge", "step"])
    head("over-finished-head", "localization", loc_train, loc_valid, [], "error", ["loc-head"], out_dir=w / "loc-head", protect=[w / "loc-head" / "head.safetensors"])
    head("protein-embeddings-for-ss", "secondary-structure", ss_train, ss_valid, ["--embeddings", str(w / "ss-protein.npz"), "--valid-embeddings", str(w / "ss-protein.npz")], "error", ["ss-protein.npz"])
    head("embeddings-missing-ids", "localization", loc_train, loc_valid, ["--embeddings", str(w / "out" / "done.npz"), "--valid-embeddings", str(w / "out" / "done.npz")], "error", ["done.npz"])
    head("embeddings-not-npz", "localization", loc_train, loc_valid, ["--embeddings", str(ok_fasta), "--valid-embeddings", str(ok_fasta)], "error", ["ok.fasta"])
    head("model-and-features", "localization", loc_train, loc_valid, ["--model", m, "--features", "composition"], "error", ["--features"])

    fasta_in = write(w / "predict.fasta", ">A0A088MIT0\nMKTAYIAKQR\n>x2\nMKVLA\n")

    def predict(name, head_dir, extra, expect, names, inp=fasta_in, check=None, output=None, protect=()):
        o = output or out(name + ".tsv")
        c.append(Case("predict/evaluate", name, ["predict", "--head", str(head_dir), "--input", str(inp), "--output", str(o), *extra], expect, names, check, protect))

    def head_copy(name, head_dir, **head_json):
        d = w / "heads-edited" / name
        shutil.copytree(head_dir, d, dirs_exist_ok=True)
        if head_json:
            config = json.loads((d / "head.json").read_text())
            for path, value in head_json.items():
                node = config
                *parents, leaf = path.split("__")
                for p in parents:
                    node = node[p]
                node[leaf] = value
            (d / "head.json").write_text(json.dumps(config))
        return d

    predict("empty-fasta", w / "loc-head", [], "error", ["fasta-empty.fasta"], inp=empty)
    predict("head-missing", w / "no-head", [], "error", ["no-head"])
    predict("head-json-bad", w / "bad-head", [], "error", ["bad-head/head.json"])
    predict("head-weights-garbage", w / "cut-head", [], "error", ["cut-head/head.safetensors"])
    predict("fasta-digits", w / "loc-head", [], "error", ["digits.fasta:2"], inp=w / "fasta" / "digits.fasta")
    predict("output-exists", w / "loc-head", [], "error", ["kept.tsv"], output=w / "kept.tsv", protect=[w / "kept.tsv"])
    predict("ss-one-hot", w / "ss-head", [], "ok", [], check=exists("out/ss-one-hot.tsv"))
    predict("embeddings-other-width", w / "ss-emb-head", ["--embeddings", str(w / "t5-res.npz")], "error", ["t5-res.npz"], inp=w / "res.fasta")
    predict("protein-embeddings-into-ss", w / "ss-emb-head", ["--embeddings", str(w / "res-protein.npz")], "error", ["res-protein.npz"], inp=w / "res.fasta")
    predict("embeddings-missing-ids", w / "ss-emb-head", ["--embeddings", str(w / "out" / "done.npz")], "error", ["done.npz"], inp=w / "res.fasta")
    predict("json-output-dir-missing", w / "loc-head", ["--json", str(w / "nodir" / "p.json")], "either", ["p.json"], check=exists("out/json-output-dir-missing.tsv", "nodir/p.json"))
    for key, value in [("dropout", 1.5)]:
        predict(f"head-json-{key}", head_copy(f"edited-{key}", w / "loc-head", **{key: value}), [], "error", ["head.json", key])
    predict("head-json-task-swapped", w / "heads-edited" / "task-swapped", [], "error", ["head.json"])

    def evaluate(name, head_dir, test, extra, expect, names, check=None):
        c.append(Case("predict/evaluate", "evaluate-" + name, ["evaluate", "--head", str(head_dir), "--test", str(test), "--out", str(w / "eval" / name), "--no-tsne", *extra], expect, names, check))

    evaluate("empty", w / "loc-head", csv("e-empty.csv", ""), [], "error", ["e-empty.csv"])
    evaluate("header-only", w / "loc-head", csv("e-header.csv", loc_head), [], "error", ["e-header.csv"])
    evaluate("ss-csv-on-loc-head", w / "loc-head", ss_train, [], "error", ["ss8_train.csv"])
    evaluate("unlabelled", w / "loc-head", csv("e-unlabelled.csv", "id,sequence\nA1,MKTAY\n"), [], "error", ["e-unlabelled.csv"])
    evaluate("embeddings-missing-ids", w / "ss-emb-head", SAMPLES / "ss8_test.csv", ["--embeddings", str(w / "out" / "done.npz")], "error", ["done.npz"])
    evaluate("ok", w / "loc-head", SAMPLES / "localization_test.csv", [], "ok", [], exists("eval/ok/report.json"))

    # -- masked-LM tools, generation, inspection -------------------------------------------------
    def tool(name, args, expect, names, check=None):
        c.append(Case("tools", name, args, expect, names, check))

    wt = write(w / "wt.fasta", ">wt\nMKTAYIAKQR\n")
    two = write(w / "two.fasta", ">a\nMKT\n>b\nMKV\n")
    txl = str(FIXTURES / "transfo_xl_tiny")
    tool("fill-mask-none-hidden", ["fill-mask", "--model", m, "--sequence", "MKTAY"], "error", ["hidden"])
    tool("fill-mask-t5", ["fill-mask", "--model", t5, "--sequence", "MK_"], "error", ["masked-LM"])
    tool("fill-mask-top-k-0", ["fill-mask", "--model", m, "--sequence", "MK_AY", "--top-k", "0"], "error", ["--top-k"])
    tool("fill-mask-top-k-huge", ["fill-mask", "--model", m, "--sequence", "MK_AY", "--top-k", "1000"], "ok", [])
    tool("fill-mask-bad-letter", ["fill-mask", "--model", m, "--sequence", "MK_1Y"], "error", ["'1'"])
    tool("fill-mask-empty", ["fill-mask", "--model", m, "--sequence", ""], "error", ["empty"])
    tool("fill-mask-all-hidden", ["fill-mask", "--model", m, "--sequence", "_____"], "ok", [])
    for variant, names in [("K4G", ["K4G", "position 4"]), ("A0G", ["A0G"]), ("A40G", ["A40G"]), ("", ["''"]), ("M1M", ["M1M"]), ("K2Z1", ["K2Z1"]), ("K2R:K2A", ["K2"])]:
        tool(f"score-{variant or 'empty'}", ["score", "--model", m, "--input", str(wt), "--mutations", variant], "error" if variant != "M1M" else "either", names)
    tool("score-two-proteins", ["score", "--model", m, "--input", str(two), "--mutations", "K2R"], "error", ["two.fasta", "--protein"])
    tool("score-protein-unknown", ["score", "--model", m, "--input", str(two), "--mutations", "K2R", "--protein", "zz"], "error", ["zz"])
    tool("score-mutations-file-missing", ["score", "--model", m, "--input", str(wt), "--mutations-file", str(w / "nope.txt")], "error", ["nope.txt"])
    tool("score-mutations-file-bad", ["score", "--model", m, "--input", str(wt), "--mutations-file", str(write(w / "muts.txt", "K2R\nQQQ\n"))], "error", ["muts.txt:2"])
    tool("score-t5", ["score", "--model", t5, "--input", str(wt)], "error", ["masked-LM"])
    for rate in ["0", "1.5", "NaN", "-0.1"]:
        tool(f"recover-rate-{rate}", ["recover", "--model", m, "--input", str(wt), f"--rate={rate}"], "error", ["rate"])
    tool("recover-at-unknown", ["recover", "--model", m, "--input", str(wt), "--at", str(write(w / "at.tsv", "id\tposition\nnobody\t3\n"))], "error", ["at.tsv:2", "nobody"])
    tool("recover-at-past-end", ["recover", "--model", m, "--input", str(wt), "--at", str(write(w / "at2.tsv", "id\tposition\nwt\t300\n"))], "error", ["at2.tsv:2"])
    tool("generate-bert", ["generate", "--model", m, "--sequence", "MKT"], "error", ["fill-mask"])
    for option, value in [("--num-samples", "0"), ("--temperature", "0"), ("--temperature", "NaN"), ("--top-k", "0")]:
        tool(f"generate{option}={value}", ["generate", "--model", txl, "--sequence", "MKT", f"{option}={value}"], "ok" if value == "0" and option == "--top-k" else "error", [option])
    tool("generate-max-new-0", ["generate", "--model", txl, "--sequence", "MKT", "--max-new-tokens", "0"], "either", ["--max-new-tokens"])
    tool("generate-bad-prompt", ["generate", "--model", txl, "--sequence", "MK1"], "error", ["'1'"])
    tool("inspect-missing", ["inspect", str(w / "nothing")], "error", ["nothing"])
    tool("inspect-file", ["inspect", str(ok_fasta)], "error", ["ok.fasta"])
    tool("inspect-empty-dir", ["inspect", str(w / "models" / "empty-dir")], "error", ["config.json"])
    tool("inspect-truncated", ["inspect", str(w / "models" / "weights-truncated")], "error", ["model.safetensors"])
    tool("csv-to-fasta-bad", ["csv-to-fasta", "--task", "localization", "--input", str(w / "csv" / "short.csv"), "--output", str(out("c.fasta"))], "error", ["short.csv:2"])
    tool("unknown-command", ["fold", "--model", m], "error", ["fold"])
    return c


def setup(binary, w):
    """The models, heads and outputs the cases read, made with the binary under test."""
    def run(*args):
        result = subprocess.run([binary, *map(str, args)], capture_output=True, text=True, errors="replace", timeout=900)
        if result.returncode != 0:
            raise RuntimeError(f"setup: prottrans {' '.join(map(str, args))}\n{result.stdout}{result.stderr}")

    quick = REPO / "configs" / "quickstart.toml"
    run("init-model", "--config", quick, "--out", w / "model")
    run("init-model", "--config", REPO / "configs" / "tiny.toml", "--out", w / "model-b")
    shutil.copytree(FIXTURES / "t5_relu_tiny", w / "t5")
    (w / "out").mkdir()
    write(w / "ab.fasta", ">a\nMKTAYIAKQR\n>b\nMKVLA\n")
    run("embed", "--model", w / "model", "--input", w / "ab.fasta", "--output", w / "out" / "done.npz")
    for shard in ("1/2", "2/2"):
        run("embed", "--model", w / "model", "--input", w / "ab.fasta", "--output", w / "out" / "s-{shard}.npz", "--shard", shard)
    run("embed", "--model", w / "model", "--input", w / "ab.fasta", "--output", w / "out" / "pp-{shard}.npz", "--shard", "2/2", "--per-protein")
    run("embed", "--model", FIXTURES / "bert_tiny", "--input", w / "ab.fasta", "--output", w / "out" / "lora-done.npz")
    write(w / "kept.tsv", "something the user wrote\n")
    loc = [SAMPLES / "localization_train.csv", SAMPLES / "localization_valid.csv"]
    ss = [SAMPLES / "ss8_train.csv", SAMPLES / "ss8_valid.csv"]
    run("train-head", "--task", "localization", "--train", loc[0], "--valid", loc[1], "--features", "one-hot", "--epochs", "1", "--out", w / "loc-head")
    run("train-head", "--task", "secondary-structure", "--train", ss[0], "--valid", ss[1], "--features", "one-hot", "--epochs", "1", "--out", w / "ss-head")
    for name, make in [("bad-head", lambda d: write(d / "head.json", "{oops")), ("cut-head", lambda d: write(d / "head.safetensors", b"not safetensors"))]:
        shutil.copytree(w / "loc-head", w / name)
        make(w / name)
    swapped = w / "heads-edited" / "task-swapped"
    shutil.copytree(w / "ss-head", swapped)
    shutil.copy(w / "loc-head" / "head.json", swapped / "head.json")
    # A head on per-residue embeddings of the quickstart model, and embeddings of other widths.
    rows = (SAMPLES / "ss8_train.csv").read_text().splitlines(True)
    short_rows = [r for r in rows[1:] if len(r.split(",")[0]) <= 120][:40]
    small_ss = write(w / "ss-small.csv", rows[0] + "".join(short_rows))
    run("csv-to-fasta", "--task", "secondary-structure", "--input", small_ss, "--output", w / "res.fasta")
    run("embed", "--model", w / "model", "--input", w / "res.fasta", "--output", w / "res.npz")
    run("embed", "--model", w / "model", "--input", w / "res.fasta", "--output", w / "res-protein.npz", "--per-protein")
    run("embed", "--model", w / "t5", "--input", w / "res.fasta", "--output", w / "t5-res.npz")
    run("embed", "--model", w / "model", "--input", w / "res.fasta", "--output", w / "ss-protein.npz", "--per-protein")
    run("train-head", "--task", "secondary-structure", "--train", small_ss, "--valid", small_ss, "--embeddings", w / "res.npz", "--valid-embeddings", w / "res.npz", "--epochs", "1", "--out", w / "ss-emb-head")
    tiny_short = (REPO / "configs" / "tiny.toml").read_text().replace("steps = 60", "steps = 8").replace("checkpoint_every = 20", "checkpoint_every = 4").replace("warmup_steps = 6", "warmup_steps = 2")
    recipe = write(w / "recipes" / "short.toml", tiny_short)
    for name in ["finished", "damaged"]:
        run("pretrain", "--config", recipe, "--train", SAMPLES / "uniprot_train.fasta.gz", "--valid", SAMPLES / "uniprot_valid.fasta.gz", "--out", w / "runs" / name)
    for bpk in (w / "runs" / "damaged" / "checkpoint").glob("*.bpk"):
        bpk.write_bytes(bpk.read_bytes()[: bpk.stat().st_size // 2])
    grow = write(w / "recipes" / "short-more.toml", tiny_short)
    run("pretrain", "--config", grow, "--train", SAMPLES / "uniprot_train.fasta.gz", "--valid", SAMPLES / "uniprot_valid.fasta.gz", "--out", w / "runs" / "grow")


def digest(path):
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def verdict(case, binary):
    before = {p: digest(p) for p in case.protect}
    try:
        result = subprocess.run([binary, *case.args], capture_output=True, timeout=case.timeout, cwd=case.work)
    except subprocess.TimeoutExpired:
        return "timeout", "", None
    text = (result.stdout + result.stderr).decode("utf-8", "replace")
    rc = result.returncode
    if "panicked" in text or rc < 0 or rc in (101, 134):
        return "panic or abort", text, rc
    if any(digest(p) != d for p, d in before.items()):
        return "lost data", text, rc
    if rc != 0:
        if case.expect == "ok":
            return "refused valid", text, rc
        missing = [n for n in case.names if n not in text]
        return ("unclear error" if missing else "clear error"), text, rc
    if case.expect == "error":
        return "silent success", text, rc
    reason = case.check(case, None, text) if case.check else None
    if reason:
        return "wrong result", text + f"\n[check] {reason}", rc
    return "handled", text, rc


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--binary", default=str(REPO / "target" / "release" / "prottrans"))
    parser.add_argument("--json", help="write every case with its verdict and output here")
    parser.add_argument("--only", help="run one group of cases")
    parser.add_argument("--show", action="append", default=[], help="print the output of cases with this verdict")
    parser.add_argument("--check", action="store_true", help="exit 1 unless every case is a clear error or handled (CI)")
    args = parser.parse_args()
    binary = str(Path(args.binary).resolve())
    with tempfile.TemporaryDirectory(prefix="prottrans-campaign-") as tmp:
        w = Path(tmp)
        try:
            setup(binary, w)
            ready = True
        except RuntimeError as error:
            print(error, file=sys.stderr)
            ready = False
        all_cases = cases(w)
        results = []
        for case in all_cases:
            if args.only and case.group != args.only:
                continue
            case.work = w
            if ready:
                v, text, rc = verdict(case, binary)
            else:
                v, text, rc = "setup failed", "", None
            results.append({"group": case.group, "case": case.name, "expect": case.expect, "verdict": v, "exit": rc, "output": text[-2000:]})
            if v in args.show or (v not in ("clear error", "handled") and not args.show):
                print(f"[{v}] {case.group} / {case.name} (exit {rc})")
                for line in text.strip().splitlines()[-4:]:
                    print("    " + line[:220])
    counts = Counter(r["verdict"] for r in results)
    print(f"\n{len(results)} cases, {binary}")
    for v in VERDICTS:
        if counts[v]:
            print(f"  {v:16} {counts[v]}")
    by_group = Counter((r["group"], r["verdict"]) for r in results)
    groups = sorted({r["group"] for r in results})
    print("\n| group | " + " | ".join(v for v in VERDICTS if counts[v]) + " |")
    print("|---|" + "---:|" * sum(1 for v in VERDICTS if counts[v]))
    for g in groups:
        print(f"| {g} | " + " | ".join(str(by_group[(g, v)]) for v in VERDICTS if counts[v]) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps({"binary": binary, "counts": counts, "cases": results}, indent=1))
    bad = sum(n for v, n in counts.items() if v not in ("clear error", "handled"))
    return 1 if args.check and bad else 0


if __name__ == "__main__":
    sys.exit(main())
