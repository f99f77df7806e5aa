#!/usr/bin/env python3
"""Write a randomly initialised, ProtBert-shaped `BertForMaskedLM` for embedding benchmarks.

Same shapes as Rostlab/prot_bert except the number of layers (prot_bert has 30):
vocab 30 (ProtBert vocab), hidden 1024, 16 heads, FFN 4096, 40000 positions, 2 token types,
GELU(erf), post-LN eps 1e-12, dropouts 0.1 in the config (eval mode ignores them), float32.
Weights are transformers' own init (`BertForMaskedLM(config)` after
`torch.manual_seed(seed)`: normal(0, initializer_range = 0.02) matrices and embeddings,
zero biases, LayerNorm 1/0), so a given (layers, seed) always gives the same weights.
Only the speed of such a model means anything, not its embeddings.

Written with `save_pretrained` (config.json + model.safetensors; the MLM decoder is tied to
the word embeddings and not stored), plus ProtBert's `vocab.txt` and
`tokenizer_config.json` so tokenizer-aware loaders find the vocabulary there.

Size: about 164 MB for the 40000 x 1024 position table plus about 50 MB per layer.

`--arch albert`: an `AlbertForMaskedLM` of ProtAlbert's released shape except depth and
vocabulary: vocab 30 (ProtBert's; vocab.txt written beside it, no spiece.model), embedding
size 128, hidden 4096, 64 heads, FFN 16384, GELU, 40000 positions, one layer group with one
layer (shared by all `--layers` passes). About 810 MB whatever `--layers` is.

`--arch electra`: an `ElectraForPreTraining` (discriminator) of ProtElectra's discriminator
shape: vocab 30 (ProtBert's; vocab.txt beside it), embedding size 1024, hidden 1024, 16 heads,
FFN 4096, GELU, 40000 positions. About 164 MB + 50 MB per layer.

`--arch xlnet`: an `XLNetLMHeadModel` of ProtXLNet's released shape except depth and
vocabulary: d_model 1024, 16 heads of 64, d_inner 4096, GELU, attn_type bi, mem_len 512,
dropout 0; vocabulary the 34 tokens prottrans trains XLNet with (`<unk> <s> </s> <cls> <sep>
<pad> <mask> <eod> <eop>`, then ProtBert's 25 residues), written as vocab.txt beside it (the
released 37-piece spiece.model is not published in full). About 50 MB per layer.

`--arch transfo_xl`: a `TransfoXLLMHeadModel` (only in transformers <= 4.x: run this with a
4.57 install) of ProtTXL's shape: d_model = d_embed 1024, 16 heads of 64, d_inner 4096,
div_val 1, no cutoffs (one adaptive-softmax cluster tied to the embeddings), mem_len 512,
clamp_len 1000, post-LN, untied r biases; vocab 30 (ProtBert's; vocab.txt beside it),
eos = [SEP]. About 50 MB per layer.

Usage:
  python benches/make_bench_model.py --out /tmp/bench-protbert --layers 4 [--seed 20240607]
      [--arch bert|t5|albert|electra|xlnet|transfo_xl]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
import transformers
from transformers import BertConfig, BertForMaskedLM

SEED = 20240607

# Rostlab/prot_bert vocab.txt, in id order (the order of the Rust `Vocabulary::prot_bert()`
# and of scripts/fixtures/make_fixtures.py).
PROTBERT_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
                  "L", "A", "G", "V", "E", "S", "I", "K", "R", "D", "T", "P", "N", "Q",
                  "F", "Y", "M", "H", "C", "W", "X", "U", "B", "Z", "O"]


def bench_config(layers: int) -> BertConfig:
    return BertConfig(
        vocab_size=len(PROTBERT_VOCAB),
        hidden_size=1024,
        num_hidden_layers=layers,
        num_attention_heads=16,
        intermediate_size=4096,
        max_position_embeddings=40000,
        type_vocab_size=2,
        hidden_act="gelu",
        layer_norm_eps=1e-12,
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
        initializer_range=0.02,
        pad_token_id=0,
        architectures=["BertForMaskedLM"],
    )


def albert_config(layers: int) -> transformers.AlbertConfig:
    """ProtAlbert's released shape (Rostlab/prot_albert) except vocabulary and depth."""
    return transformers.AlbertConfig(
        vocab_size=len(PROTBERT_VOCAB),
        embedding_size=128,
        hidden_size=4096,
        num_hidden_layers=layers,
        num_hidden_groups=1,
        inner_group_num=1,
        num_attention_heads=64,
        intermediate_size=16384,
        hidden_act="gelu",
        max_position_embeddings=40000,
        type_vocab_size=2,
        layer_norm_eps=1e-12,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        initializer_range=0.02,
        pad_token_id=0,
        bos_token_id=2,
        eos_token_id=3,
        architectures=["AlbertForMaskedLM"],
    )


def electra_config(layers: int) -> transformers.ElectraConfig:
    """ProtElectra discriminator's shape (Rostlab/prot_electra_discriminator_bfd) except depth."""
    return transformers.ElectraConfig(
        vocab_size=len(PROTBERT_VOCAB),
        embedding_size=1024,
        hidden_size=1024,
        num_hidden_layers=layers,
        num_attention_heads=16,
        intermediate_size=4096,
        hidden_act="gelu",
        max_position_embeddings=40000,
        type_vocab_size=2,
        layer_norm_eps=1e-12,
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
        initializer_range=0.02,
        pad_token_id=0,
        architectures=["ElectraForPreTraining"],
    )


# The vocabulary prottrans pretrains XLNet with (the Rust `Vocabulary::prottrans_xlnet()`):
# XLNet's special tokens at their conventional ids, then ProtBert's residues.
XLNET_VOCAB = (["<unk>", "<s>", "</s>", "<cls>", "<sep>", "<pad>", "<mask>", "<eod>", "<eop>"]
               + list("LAGVESIKRDTPNQFYMHCWXUBZO"))


def xlnet_config(layers: int) -> transformers.XLNetConfig:
    """ProtXLNet's released shape (Rostlab/prot_xlnet) except vocabulary and depth."""
    return transformers.XLNetConfig(
        vocab_size=len(XLNET_VOCAB),
        d_model=1024,
        n_layer=layers,
        n_head=16,
        d_inner=4096,
        ff_activation="gelu",
        untie_r=True,
        attn_type="bi",
        mem_len=512,
        reuse_len=None,
        bi_data=False,
        clamp_len=-1,
        same_length=False,
        dropout=0.0,
        layer_norm_eps=1e-12,
        initializer_range=0.02,
        pad_token_id=XLNET_VOCAB.index("<pad>"),
        bos_token_id=XLNET_VOCAB.index("<s>"),
        eos_token_id=XLNET_VOCAB.index("</s>"),
        architectures=["XLNetLMHeadModel"],
    )


def transfo_xl_config(layers: int):
    """ProtTXL's shape (the ProtTrans paper) with ProtBert's vocabulary; needs transformers 4.x."""
    return transformers.TransfoXLConfig(
        vocab_size=len(PROTBERT_VOCAB),
        cutoffs=[],
        d_model=1024,
        d_embed=1024,
        n_head=16,
        d_head=64,
        d_inner=4096,
        div_val=1,
        pre_lnorm=False,
        n_layer=layers,
        mem_len=512,
        clamp_len=1000,
        same_length=False,
        adaptive=True,
        dropout=0.0,
        dropatt=0.0,
        untie_r=True,
        eos_token_id=PROTBERT_VOCAB.index("[SEP]"),
        tie_word_embeddings=True,
        architectures=["TransfoXLLMHeadModel"],
    )


def write_protbert_vocab(out: Path) -> None:
    (out / "vocab.txt").write_text("\n".join(PROTBERT_VOCAB) + "\n")
    (out / "tokenizer_config.json").write_text(
        json.dumps({"do_lower_case": False, "tokenizer_class": "BertTokenizer"}, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="output directory (created)")
    ap.add_argument("--layers", type=int, default=4, help="encoder layers (default 4; prot_bert has 30)")
    ap.add_argument("--seed", type=int, default=SEED, help=f"torch.manual_seed before init (default {SEED})")
    ap.add_argument("--arch", choices=["bert", "t5", "albert", "electra", "xlnet", "transfo_xl"], default="bert",
                    help="bert: ProtBert shape (default); t5: the ProtT5-XL encoder shape as a "
                         "T5EncoderModel (d_model 1024, 32 heads of 128, d_ff 16384, ReLU; "
                         "24 layers released); albert: ProtAlbert shape as AlbertForMaskedLM "
                         "(hidden 4096, 64 heads, FFN 16384, one shared layer run --layers times; "
                         "12 released); electra: ProtElectra discriminator shape as "
                         "ElectraForPreTraining (hidden 1024, 16 heads, FFN 4096; 30 released); "
                         "xlnet: ProtXLNet shape as XLNetLMHeadModel (d_model 1024, 16 heads, "
                         "d_inner 4096, mem_len 512; 30 released); transfo_xl: ProtTXL shape as "
                         "TransfoXLLMHeadModel (d_model 1024, 16 heads, d_inner 4096, mem_len 512; "
                         "transformers 4.x only)")
    args = ap.parse_args(argv)
    if args.layers < 1:
        ap.error("--layers must be >= 1")
    if args.arch == "transfo_xl" and not hasattr(transformers, "TransfoXLLMHeadModel"):
        ap.error(f"--arch transfo_xl: transformers {transformers.__version__} has no Transformer-XL "
                 "(removed in 5.0); run with a 4.x install, e.g. PYTHONPATH=/tmp/tf457")

    torch.manual_seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.arch == "t5":
        config = transformers.T5Config(
            vocab_size=128, d_model=1024, d_kv=128, d_ff=16384, num_layers=args.layers,
            num_heads=32, relative_attention_num_buckets=32, relative_attention_max_distance=128,
            dropout_rate=0.1, layer_norm_epsilon=1e-6, feed_forward_proj="relu",
            is_encoder_decoder=False, architectures=["T5EncoderModel"])
        model = transformers.T5EncoderModel(config).to(torch.float32).eval()
        model.save_pretrained(str(args.out))
    elif args.arch == "albert":
        model = transformers.AlbertForMaskedLM(albert_config(args.layers)).to(torch.float32).eval()
        model.save_pretrained(str(args.out))
        write_protbert_vocab(args.out)
    elif args.arch == "electra":
        model = transformers.ElectraForPreTraining(electra_config(args.layers)).to(torch.float32).eval()
        model.save_pretrained(str(args.out))
        write_protbert_vocab(args.out)
    elif args.arch == "xlnet":
        model = transformers.XLNetLMHeadModel(xlnet_config(args.layers)).to(torch.float32).eval()
        model.save_pretrained(str(args.out))
        (args.out / "vocab.txt").write_text("\n".join(XLNET_VOCAB) + "\n")
    elif args.arch == "transfo_xl":
        model = transformers.TransfoXLLMHeadModel(transfo_xl_config(args.layers)).to(torch.float32).eval()
        model.save_pretrained(str(args.out), safe_serialization=True)
        (args.out / "vocab.txt").write_text("\n".join(PROTBERT_VOCAB) + "\n")
    else:
        model = BertForMaskedLM(bench_config(args.layers)).to(torch.float32)
        model.eval()
        model.save_pretrained(str(args.out))  # safetensors, float32
        (args.out / "vocab.txt").write_text("\n".join(PROTBERT_VOCAB) + "\n")
        (args.out / "tokenizer_config.json").write_text(
            json.dumps({"do_lower_case": False, "tokenizer_class": "BertTokenizer"}, indent=2) + "\n")

    n_params = sum(p.numel() for p in model.parameters())  # tied decoder counted once
    size = sum(p.stat().st_size for p in args.out.iterdir() if p.is_file())
    print(json.dumps({"out": str(args.out), "arch": args.arch, "layers": args.layers, "seed": args.seed,
                      "parameters": n_params, "bytes_on_disk": size,
                      "torch": torch.__version__, "transformers": transformers.__version__}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
