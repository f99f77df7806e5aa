#!/usr/bin/env python3
"""ProtBert embedding throughput with transformers: the authors' embedding loop, timed.

The algorithm of Rostlab's ProtTrans embedding notebook / `prott5_embedder.py`, with
`transformers.BertModel` (ProtBert):

  1. read the FASTA (plain or .gz): id = first word of the header; sequence lines joined,
     ASCII whitespace removed, uppercased, one trailing `*` dropped, U/Z/O/B -> X (as the
     authors do); any other character outside the vocabulary becomes [UNK] (counted on
     stderr); --limit N keeps the first N records of the file;
  2. sort by length, longest first (stable: ties keep file order);
  3. batches (`--batching greedy`, the default): a protein longer than --alone-above
     residues runs alone; otherwise it joins the current batch unless that would take the
     batch over --max-residues residues or --max-batch proteins, in which case the current
     batch runs first. (`--batching rostlab` is the original loop verbatim: append, then run
     the batch once `len(batch) >= max_batch`, or `sum(lengths) + this length >=
     max_residues` (sic: the last length counts twice), or this protein is longer than
     --alone-above, or it is the last one.)
  4. each batch: `[CLS]=2 residues [SEP]=3`, right-padded with [PAD]=0, attention mask;
     `BertModel(input_ids, attention_mask).last_hidden_state` (`AlbertModel` /
     `ElectraModel` for an ALBERT / ELECTRA checkpoint, by config.json's model_type) in float32 under
     `torch.inference_mode()`; per-residue embedding of protein i = rows 1..L_i of its
     row, copied into its own numpy array (and averaged over residues with --per-protein);
     kept in memory to the end, as the original collects them before writing (or
     dropped at once with --discard).

XLNet (model_type `xlnet`, ids from `<model>/vocab.txt` with `<pad> <unk> <sep> <cls>`):
`residues <sep> <cls>`, LEFT-padded with <pad>; `XLNetModel(input_ids, attention_mask)`
without token_type_ids (as the authors embed ProtXLNet), mem_len = config.mem_len (512 when
unset or 0, as prottrans); per-residue = the real positions minus the last two.
Transformer-XL (model_type `transfo-xl`, transformers <= 4.x only, ProtBert's ids):
`[CLS] residues [SEP]`, right-padded, no attention mask (causal: padding on the right cannot
reach real positions); `TransfoXLModel(input_ids)` with mems=None (so mem_len zero
memories); per-residue = positions 1..L. For both, as prottrans: a protein longer than
mem_len tokens always runs alone and goes through in segments of mem_len tokens, each with
the memory (`mems`) of the previous ones (XLNet: use_mems=True, no attention mask); batches of
shorter proteins run in one pass. That is prottrans' default for Transformer-XL; XLNet runs in
one pass, as the ProtTrans authors embed, unless --segment-length asks for segments. Neither has an
sdpa attention in transformers: they need --attn eager.

Ids are ProtBert's `vocab.txt` order, read from `<model>/vocab.txt` when present, else
the built-in Rostlab/prot_bert order ([PAD] [UNK] [CLS] [SEP] [MASK] L A G V E S I K R D T
P N Q F Y M H C W X U B Z O = 0..29, as the Rust `Vocabulary::prot_bert()`).

Timing: model load and FASTA read are excluded; one warm-up forward pass on a short
sequence (the shortest protein, cropped to 32 residues) is run and not timed; then the wall
clock (time.perf_counter) from the start of the first batch (tokenisation included) to the
end of the last batch's copies. Prints ONE JSON line on stdout:

  {"impl": "transformers-<attn>", "proteins", "residues", "seconds", "residues_per_s",
   "proteins_per_s", "peak_rss_bytes", "threads", "torch", "transformers", "batches", ...}

peak_rss_bytes = getrusage(RUSAGE_SELF).ru_maxrss (whole process, model included).
--output FILE.npz writes the embeddings afterwards (not timed; key = protein id) to compare
numbers with another implementation.

Usage:
  python benches/embed_reference.py --model DIR --fasta FILE[.gz] [--threads 2]
      [--max-residues 4000] [--max-batch 100] [--alone-above 1000] [--limit N]
      [--per-protein] [--attn sdpa|eager] [--batching greedy|rostlab] [--discard]
      [--output FILE.npz]
"""

from __future__ import annotations

import argparse
import gzip
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch
import transformers

PROTBERT_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
                  "L", "A", "G", "V", "E", "S", "I", "K", "R", "D", "T", "P", "N", "Q",
                  "F", "Y", "M", "H", "C", "W", "X", "U", "B", "Z", "O"]
RARE = str.maketrans({"U": "X", "Z": "X", "O": "X", "B": "X"})
WARMUP_RESIDUES = 32
BERT_SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]")
# Special tokens of the XLNet vocab.txt prottrans trains with (make_bench_model.py --arch xlnet).
XLNET_SPECIALS = ("<pad>", "<unk>", "<cls>", "<sep>")
MEMORY_MODEL_TYPES = ("xlnet", "transfo-xl")  # segments with memory, as prottrans


def open_text(path: Path):
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="ascii", errors="replace")
    return open(path, "rt", encoding="ascii", errors="replace")


def read_fasta(path: Path, limit: int | None) -> list[tuple[str, str]]:
    records: list[tuple[str, list[str]]] = []
    with open_text(path) as f:
        for line in f:
            if line.startswith(">"):
                if limit is not None and len(records) == limit:
                    break
                header = line[1:].strip()
                records.append((header.split()[0] if header else "", []))
            elif records:
                records[-1][1].append("".join(line.split()))
            elif line.strip():
                raise SystemExit(f"{path}: sequence data before the first '>' header")
    out = []
    for rid, parts in records:
        seq = "".join(parts).upper()
        if seq.endswith("*"):
            seq = seq[:-1]
        out.append((rid, seq.translate(RARE)))
    empty = [rid for rid, s in out if not s]
    if empty:
        raise SystemExit(f"{path}: empty sequence(s): {empty[:5]}")
    return out


def load_vocab(model_dir: Path, specials: tuple[str, ...] = BERT_SPECIALS) -> dict[str, int]:
    vocab_file = model_dir / "vocab.txt"
    if not vocab_file.exists() and specials != BERT_SPECIALS:
        raise SystemExit(f"{model_dir}: no vocab.txt")
    tokens = vocab_file.read_text().split("\n") if vocab_file.exists() else PROTBERT_VOCAB
    tokens = [t.strip() for t in tokens if t.strip()]
    ids = {t: i for i, t in enumerate(tokens)}
    for special in specials:
        if special not in ids:
            raise SystemExit(f"vocabulary has no {special}")
    return ids


def plan_greedy(lengths: list[int], max_residues: int, max_batch: int, alone_above: int) -> list[list[int]]:
    """Indices (already sorted longest first) cut into batches; see the module docstring."""
    batches: list[list[int]] = []
    cur: list[int] = []
    cur_res = 0
    for i, n in enumerate(lengths):
        if n > alone_above:
            if cur:
                batches.append(cur)
                cur, cur_res = [], 0
            batches.append([i])
            continue
        if cur and (cur_res + n > max_residues or len(cur) + 1 > max_batch):
            batches.append(cur)
            cur, cur_res = [], 0
        cur.append(i)
        cur_res += n
    if cur:
        batches.append(cur)
    return batches


def plan_rostlab(lengths: list[int], max_residues: int, max_batch: int, alone_above: int) -> list[list[int]]:
    """The loop of Rostlab's embedder, verbatim (max_seq_len = alone_above)."""
    batches: list[list[int]] = []
    batch: list[int] = []
    for idx, seq_len in enumerate(lengths, 1):
        batch.append(idx - 1)
        n_res_batch = sum(lengths[j] for j in batch) + seq_len
        if (len(batch) >= max_batch or n_res_batch >= max_residues or idx == len(lengths)
                or seq_len > alone_above):
            batches.append(batch)
            batch = []
    return batches


# ProtT5 (sentencepiece, one piece per residue): `residues </s>`, no start token; the rare
# residues U Z O B are embedded as X, as prottrans' tokenizer does by default.
PROTT5_VOCAB = (["<pad>", "</s>", "<unk>"] + list("ALGVSREDTIPKFQNYMHWCXBOUZ")
                + [f"<extra_id_{i}>" for i in range(99, -1, -1)])


def encode(seq: str, vocab: dict[str, int], unknown: list[int]) -> list[int]:
    xlnet = "<cls>" in vocab  # `residues <sep> <cls>`
    t5 = "</s>" in vocab and not xlnet
    unk = vocab["<unk>" if t5 or xlnet else "[UNK]"]
    ids = [] if t5 or xlnet else [vocab["[CLS]"]]
    for c in seq:
        if t5 and c in "UZOB":
            c = "X"
        i = vocab.get(c)
        if i is None:
            unknown[0] += 1
            i = unk
        ids.append(i)
    if xlnet:
        ids += [vocab["<sep>"], vocab["<cls>"]]
    else:
        ids.append(vocab["</s>" if t5 else "[SEP]"])
    return ids


def make_batch(seqs: list[str], vocab: dict[str, int],
               unknown: list[int]) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """(input_ids, attention_mask, offsets): offsets[r] = column of row r's first token
    (XLNet pads on the left, everything else on the right)."""
    encoded = [encode(s, vocab, unknown) for s in seqs]
    t = max(len(e) for e in encoded)
    left = "<cls>" in vocab
    input_ids = torch.full((len(encoded), t), vocab.get("[PAD]", vocab.get("<pad>", 0)), dtype=torch.int64)
    mask = torch.zeros((len(encoded), t), dtype=torch.int64)
    offsets = []
    for r, e in enumerate(encoded):
        o = t - len(e) if left else 0
        input_ids[r, o : o + len(e)] = torch.tensor(e, dtype=torch.int64)
        mask[r, o : o + len(e)] = 1
        offsets.append(o)
    return input_ids, mask, offsets


def forward(model, model_type: str, ids: torch.Tensor, mask: torch.Tensor,
            segment: int | None) -> tuple[torch.Tensor, bool]:
    """last_hidden_state [B, T, d], and whether it ran in segments (see the module docstring)."""
    if model_type not in MEMORY_MODEL_TYPES:
        return model(input_ids=ids, attention_mask=mask).last_hidden_state, False
    padded = not bool(mask.all())
    extra = {"use_mems": True} if model_type == "xlnet" else {}
    if not padded and segment and ids.shape[1] > segment:
        outputs, mems = [], None
        for start in range(0, ids.shape[1], segment):
            out = model(input_ids=ids[:, start : start + segment], mems=mems, **extra)
            outputs.append(out.last_hidden_state)
            mems = out.mems
        return torch.cat(outputs, dim=1), True
    if model_type == "xlnet":  # no token_type_ids; no mask without padding (as prottrans)
        return model(input_ids=ids, attention_mask=mask if padded else None, **extra).last_hidden_state, False
    return model(input_ids=ids).last_hidden_state, False  # Transformer-XL: causal, mems=None


def peak_rss_bytes() -> int:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024  # macOS: bytes, Linux: KiB


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, required=True, help="checkpoint directory (BertModel, BertForMaskedLM, "
                    "AlbertForMaskedLM, ElectraForPreTraining, T5EncoderModel, T5ForConditionalGeneration, "
                    "XLNetLMHeadModel or TransfoXLLMHeadModel)")
    ap.add_argument("--fasta", type=Path, required=True, help="FASTA file, plain or .gz")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    ap.add_argument("--max-residues", type=int, default=4000, help="residues per batch (default 4000)")
    ap.add_argument("--max-batch", type=int, default=100, help="proteins per batch (default 100)")
    ap.add_argument("--alone-above", type=int, default=1000,
                    help="proteins longer than this run alone (default 1000)")
    ap.add_argument("--limit", type=int, default=None, help="first N records of the FASTA only")
    ap.add_argument("--per-protein", action="store_true", help="also average over residues")
    ap.add_argument("--attn", choices=["sdpa", "eager"], default="sdpa",
                    help="transformers attention implementation (default sdpa)")
    ap.add_argument("--batching", choices=["greedy", "rostlab"], default="greedy",
                    help="batch rule (default greedy; see the module docstring)")
    ap.add_argument("--segment-length", type=int, default=None,
                    help="XLNet / Transformer-XL: proteins longer than this many tokens run alone in "
                         "segments with memory (0: one pass); default as prottrans: one pass for "
                         "XLNet, mem_len for Transformer-XL")
    ap.add_argument("--dtype", choices=["f32", "bf16"], default="f32",
                    help="weights and activations in float32 (default) or bfloat16; outputs are float32")
    ap.add_argument("--discard", action="store_true", help="drop each embedding after copying it")
    ap.add_argument("--output", type=Path, default=None,
                    help="write the embeddings to this .npz after timing (key = protein id)")
    args = ap.parse_args(argv)
    if min(args.threads, args.max_residues, args.max_batch, args.alone_above) < 1:
        ap.error("--threads, --max-residues, --max-batch and --alone-above must be >= 1")
    if args.limit is not None and args.limit < 1:
        ap.error("--limit must be >= 1")
    if args.output is not None and args.discard:
        ap.error("--output needs the embeddings; drop --discard")

    torch.set_num_threads(args.threads)
    torch.set_default_dtype(torch.float32)

    records = read_fasta(args.fasta, args.limit)
    if not records:
        raise SystemExit(f"{args.fasta}: no records")
    model_type = json.loads((args.model / "config.json").read_text()).get("model_type")
    is_t5 = model_type == "t5"
    if is_t5:
        vocab = {tok: i for i, tok in enumerate(PROTT5_VOCAB)}
        model = transformers.T5EncoderModel.from_pretrained(
            str(args.model), dtype=torch.float32, attn_implementation=args.attn)
    elif model_type in ("albert", "electra"):
        # Same tokenisation as BERT ([CLS] residues [SEP], ids from vocab.txt). AlbertModel
        # without the pooler (AlbertForMaskedLM has none); ElectraModel takes the `electra.`
        # tower of an ElectraForPreTraining checkpoint. Every encoder weight must be there.
        vocab = load_vocab(args.model)
        cls = transformers.AlbertModel if model_type == "albert" else transformers.ElectraModel
        extra = {"add_pooling_layer": False} if model_type == "albert" else {}
        model, info = cls.from_pretrained(
            str(args.model), dtype=torch.float32, attn_implementation=args.attn,
            output_loading_info=True, **extra)
        if info.get("missing_keys"):
            raise SystemExit(f"{args.model}: weights missing for {cls.__name__}: {sorted(info['missing_keys'])}")
    elif model_type in MEMORY_MODEL_TYPES:
        if args.attn != "eager":
            raise SystemExit(f"{model_type}: transformers has no {args.attn} attention for it; use --attn eager")
        if model_type == "xlnet":
            vocab = load_vocab(args.model, XLNET_SPECIALS)
            cls = transformers.XLNetModel
        else:
            if not hasattr(transformers, "TransfoXLModel"):
                raise SystemExit(f"transfo-xl: transformers {transformers.__version__} has no Transformer-XL "
                                 "(removed in 5.0); run with a 4.x install, e.g. PYTHONPATH=/tmp/tf457")
            vocab = load_vocab(args.model)
            cls = transformers.TransfoXLModel
        model, info = cls.from_pretrained(
            str(args.model), dtype=torch.float32, attn_implementation=args.attn, output_loading_info=True)
        if info.get("missing_keys"):
            raise SystemExit(f"{args.model}: weights missing for {cls.__name__}: {sorted(info['missing_keys'])}")
        if model_type == "xlnet":  # prottrans: the config's mem_len, 512 when unset or 0
            model.mem_len = model.config.mem_len = model.config.mem_len or 512
    else:
        vocab = load_vocab(args.model)
        model = transformers.BertModel.from_pretrained(
            str(args.model), dtype=torch.float32, attn_implementation=args.attn)
    first = 0 if is_t5 or model_type == "xlnet" else 1  # T5 and XLNet have no start token
    if model_type not in MEMORY_MODEL_TYPES:
        segment = None
    elif args.segment_length is not None:
        segment = args.segment_length or None
    else:  # prottrans' default: XLNet in one pass (as the authors), Transformer-XL by mem_len
        segment = (model.config.mem_len or None) if model_type == "transfo-xl" else None
    got = getattr(model.config, "_attn_implementation", None)
    if got != args.attn:
        raise SystemExit(f"asked for attn_implementation={args.attn!r}, model uses {got!r}")
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    model = model.to(dtype).eval()

    order = sorted(range(len(records)), key=lambda i: -len(records[i][1]))  # stable
    ids_sorted = [records[i][0] for i in order]
    seqs_sorted = [records[i][1] for i in order]
    lengths = [len(s) for s in seqs_sorted]
    plan = (plan_greedy if args.batching == "greedy" else plan_rostlab)(
        lengths, args.max_residues, args.max_batch, args.alone_above)
    assert sorted(i for b in plan for i in b) == list(range(len(records)))

    unknown = [0]
    with torch.inference_mode():
        warm = min(seqs_sorted, key=len)[:WARMUP_RESIDUES]
        ids, mask, _ = make_batch([warm], vocab, unknown)
        forward(model, model_type, ids, mask, segment)
        unknown[0] = 0

        results: dict[str, np.ndarray] = {}
        padded_tokens = 0
        segmented = 0
        t0 = time.perf_counter()
        if segment:
            # As prottrans: a protein longer than one segment runs alone, through the memory,
            # whatever it was batched with.
            framed = 2  # both layouts add two special tokens
            split = []
            for batch in plan:
                long = [i for i in batch if lengths[i] + framed > segment]
                split += [[i] for i in long]
                rest = [i for i in batch if lengths[i] + framed <= segment]
                if rest:
                    split.append(rest)
            plan = split
        for batch in plan:
            ids, mask, offsets = make_batch([seqs_sorted[i] for i in batch], vocab, unknown)
            padded_tokens += ids.numel()
            hidden, in_segments = forward(model, model_type, ids, mask, segment)
            segmented += len(batch) if in_segments else 0
            for row, i in enumerate(batch):
                start = offsets[row] + first
                emb = hidden[row, start : start + lengths[i]].float().numpy().copy()  # [L, d], own memory
                if args.per_protein:
                    emb = emb.mean(axis=0)
                if not args.discard:
                    results[ids_sorted[i]] = emb
            del hidden
        seconds = time.perf_counter() - t0

    if unknown[0]:
        print(f"note: {unknown[0]} residue(s) outside the vocabulary were embedded as [UNK]",
              file=sys.stderr)
    if args.output is not None:
        np.savez(args.output, **results)

    residues = sum(lengths)
    rec = {
        "impl": f"transformers-{args.attn}" + ("-bf16" if args.dtype == "bf16" else ""),
        "dtype": args.dtype,
        "proteins": len(records),
        "residues": residues,
        "seconds": round(seconds, 4),
        "residues_per_s": round(residues / seconds, 2),
        "proteins_per_s": round(len(records) / seconds, 3),
        "peak_rss_bytes": peak_rss_bytes(),
        "threads": args.threads,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "batches": len(plan),
        "padded_tokens": padded_tokens,
        "max_residues": args.max_residues,
        "max_batch": args.max_batch,
        "alone_above": args.alone_above,
        "batching": args.batching,
        "per_protein": args.per_protein,
        "hidden_size": model.config.hidden_size,
        "layers": model.config.num_hidden_layers,
        "model_type": model_type,
        "segment_length": segment,
        "segmented_proteins": segmented,
    }
    print(json.dumps(rec), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
