#!/usr/bin/env python3
"""PyTorch / transformers reference benchmark, for comparison with the Rust (burn) benchmark.

CPU, fp32, `torch.set_num_threads(--threads)`, `BertForMaskedLM` with both
`attn_implementation="eager"` (impl `pytorch-eager`) and `"sdpa"` (impl `pytorch-sdpa`).

Workloads (vocab 30 = ProtBert vocab, dropout 0, other BertConfig fields at their defaults:
GELU(erf), post-LN eps 1e-12, 2 token types):

  train_quickstart  hidden 64, 2 layers, 4 heads, FFN 256, 130 positions; batch 32 x 128 tokens
  train_small       hidden 256, 4 layers, 4 heads, FFN 1024, 512 positions; batch 16 x 256 tokens
  infer_small       as train_small but 514 positions; batch 8 x 512 tokens; eval + no_grad,
                    `model.bert(...)` last hidden state only

Batch: position 0 = 2 ([CLS]), last position = 3 ([SEP]), the others uniform in 5..=24
(the 20 standard amino acids in the ProtBert vocab), attention mask all ones, seeded.

Training step (model in train mode; everything below is inside the timed region):
  hidden = model.bert(input_ids, attention_mask).last_hidden_state      # [B, T, H]
  rows   = hidden.reshape(B*T, H).index_select(0, masked_flat_positions) # [M, H]
  logits = model.cls(rows)                                              # [M, V]
  loss   = cross_entropy(logits, original ids at those positions)       # mean over M
  loss.backward(); AdamW(lr=1e-3, eps=1e-8, weight_decay=0.01).step(); zero_grad()
M = round(0.15 * B * (T - 2)) residue positions (never [CLS]/[SEP]), drawn without
replacement from a seeded generator; a fresh draw per iteration (drawn before the
timer starts), same M every iteration. The input ids are NOT replaced by [MASK]
(that does not change the cost of the step).

Each workload: 3 warm-up iterations, then `--iters` timed iterations (time.perf_counter);
median and mean reported. One JSON object per (impl, workload) per line on stdout:
  {"impl", "workload", "median_ms", "mean_ms", "tokens_per_s", "threads", "torch", "transformers"}
tokens_per_s = B * T / median seconds.

Usage:
  python benches/torch_reference.py [--threads 2] [--iters 10]
      [--workloads train_quickstart,train_small,infer_small] [--impls eager,sdpa]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
import transformers
from transformers import BertConfig, BertForMaskedLM

SEED = 20240607
CLS_ID, SEP_ID = 2, 3
RESIDUE_LO, RESIDUE_HI = 5, 24  # inclusive
VOCAB = 30
MASK_FRACTION = 0.15
WARMUP = 3


@dataclass(frozen=True)
class Workload:
    name: str
    train: bool
    hidden: int
    layers: int
    heads: int
    ffn: int
    max_pos: int
    batch: int
    seq: int


WORKLOADS = {
    w.name: w
    for w in [
        Workload("train_quickstart", True, 64, 2, 4, 256, 130, 32, 128),
        Workload("train_small", True, 256, 4, 4, 1024, 512, 16, 256),
        Workload("infer_small", False, 256, 4, 4, 1024, 514, 8, 512),
    ]
}
IMPLS = ["eager", "sdpa"]


def make_config(w: Workload, attn: str) -> BertConfig:
    cfg = BertConfig(
        vocab_size=VOCAB,
        hidden_size=w.hidden,
        num_hidden_layers=w.layers,
        num_attention_heads=w.heads,
        intermediate_size=w.ffn,
        max_position_embeddings=w.max_pos,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    cfg._attn_implementation = attn
    return cfg


def build_model(w: Workload, attn: str) -> BertForMaskedLM:
    torch.manual_seed(SEED)
    cfg = make_config(w, attn)
    try:
        model = BertForMaskedLM._from_config(cfg, attn_implementation=attn)
    except TypeError:  # very old transformers
        model = BertForMaskedLM(cfg)
    got = getattr(model.config, "_attn_implementation", None)
    if got != attn:
        raise RuntimeError(f"asked for attn_implementation={attn!r}, model uses {got!r}")
    return model.to(torch.float32)


def make_batch(w: Workload, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.randint(RESIDUE_LO, RESIDUE_HI + 1, (w.batch, w.seq), generator=gen, dtype=torch.int64)
    ids[:, 0] = CLS_ID
    ids[:, -1] = SEP_ID
    mask = torch.ones_like(ids)
    return ids, mask


def n_masked(w: Workload) -> int:
    return max(1, int(round(MASK_FRACTION * w.batch * (w.seq - 2))))


def draw_masked_positions(w: Workload, gen: torch.Generator) -> torch.Tensor:
    """Flat positions b*T + t with 1 <= t <= T-2, M of them, without replacement."""
    residue_flat = (torch.arange(w.batch).unsqueeze(1) * w.seq + torch.arange(1, w.seq - 1)).reshape(-1)
    perm = torch.randperm(residue_flat.numel(), generator=gen)[: n_masked(w)]
    return residue_flat[perm].sort().values


def time_iters(step, prepare, iters: int) -> list[float]:
    for _ in range(WARMUP):
        step(*prepare())
    times = []
    for _ in range(iters):
        args = prepare()
        t0 = time.perf_counter()
        step(*args)
        times.append(time.perf_counter() - t0)
    return times


def bench_train(w: Workload, attn: str, iters: int) -> list[float]:
    model = build_model(w, attn)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, eps=1e-8, weight_decay=0.01)
    gen = torch.Generator().manual_seed(SEED)
    ids, mask = make_batch(w, gen)
    flat_ids = ids.reshape(-1)

    def prepare():
        pos = draw_masked_positions(w, gen)
        return pos, flat_ids.index_select(0, pos)

    def step(pos: torch.Tensor, labels: torch.Tensor) -> None:
        hidden = model.bert(input_ids=ids, attention_mask=mask).last_hidden_state
        rows = hidden.reshape(-1, hidden.shape[-1]).index_select(0, pos)
        logits = model.cls(rows)
        loss = F.cross_entropy(logits, labels)
        loss.backward()
        opt.step()
        opt.zero_grad()

    return time_iters(step, prepare, iters)


def bench_infer(w: Workload, attn: str, iters: int) -> list[float]:
    model = build_model(w, attn)
    model.eval()
    gen = torch.Generator().manual_seed(SEED)
    ids, mask = make_batch(w, gen)

    @torch.no_grad()
    def step() -> None:
        out = model.bert(input_ids=ids, attention_mask=mask).last_hidden_state
        assert out.shape == (w.batch, w.seq, w.hidden)

    return time_iters(step, lambda: (), iters)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    ap.add_argument("--iters", type=int, default=10, help="timed iterations per workload (default 10)")
    ap.add_argument("--workloads", default=",".join(WORKLOADS),
                    help=f"comma-separated subset of {list(WORKLOADS)} (default: all)")
    ap.add_argument("--impls", default=",".join(IMPLS),
                    help=f"comma-separated subset of {IMPLS} (default: both)")
    args = ap.parse_args(argv)

    names = [n.strip() for n in args.workloads.split(",") if n.strip()]
    impls = [n.strip() for n in args.impls.split(",") if n.strip()]
    bad = [n for n in names if n not in WORKLOADS] + [i for i in impls if i not in IMPLS]
    if bad:
        ap.error(f"unknown workload/impl {bad}; workloads {list(WORKLOADS)}, impls {IMPLS}")
    if args.iters < 1 or args.threads < 1:
        ap.error("--iters and --threads must be >= 1")

    torch.set_num_threads(args.threads)
    torch.set_default_dtype(torch.float32)

    for name in names:
        w = WORKLOADS[name]
        for attn in impls:
            times = (bench_train if w.train else bench_infer)(w, attn, args.iters)
            median_s = statistics.median(times)
            rec = {
                "impl": f"pytorch-{attn}",
                "workload": name,
                "median_ms": round(median_s * 1e3, 3),
                "mean_ms": round(statistics.fmean(times) * 1e3, 3),
                "tokens_per_s": round(w.batch * w.seq / median_s, 1),
                "threads": args.threads,
                "torch": torch.__version__,
                "transformers": transformers.__version__,
            }
            print(json.dumps(rec), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
