#!/usr/bin/env python3
"""AntiBERTy's trained weights (PyPI wheel `antiberty==0.1.3`, MIT) as a user would hand them to
prottrans, and the `transformers` reference outputs the real-weights test compares against.

    scripts/antiberty.py model DIR
        Downloads the wheel (`pip download --no-deps`, cached in $PROTTRANS_CACHE or
        ~/.cache/prottrans) and assembles DIR = config.json + pytorch_model.bin + vocab.txt.
        Needs only the Python standard library and pip.

    scripts/antiberty.py fixture DIR
        Writes tests/fixtures/antiberty/{sequences.fasta,expected.safetensors} from the model in
        DIR with transformers' BertModel (scripts/fixtures/requirements.txt). Residues are
        encoded by vocabulary index: transformers 5.24's BertTokenizer maps every residue of
        this vocabulary to [UNK].
"""
import hashlib
import pathlib
import shutil
import subprocess
import sys
import zipfile

VERSION = "0.1.3"
WHEEL = f"antiberty-{VERSION}-py3-none-any.whl"
# The wheel as PyPI serves it; a different file is refused.
WHEEL_SHA256 = "30d910992b190013871bac49cdc032e01a19339f7d2b958ab99b0eb44638352a"
MEMBERS = {
    "config.json": "antiberty/trained_models/AntiBERTy_md_smooth/config.json",
    "pytorch_model.bin": "antiberty/trained_models/AntiBERTy_md_smooth/pytorch_model.bin",
    "vocab.txt": "antiberty/trained_models/vocab.txt",
}
ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "antiberty"

# Real antibody variable domains (heavy and light chains of two approved antibodies, as
# published), AntiBERTy's home ground.
SEQUENCES = {
    "trastuzumab_VH": "EVQLVESGGGLVQPGGSLRLSCAASGFNIKDTYIHWVRQAPGKGLEWVARIYPTNGYTRYADSVKGRFTISADTSKNTAYLQMNSLRAEDTAVYYCSRWGGDGFYAMDYWGQGTLVTVSS",
    "trastuzumab_VL": "DIQMTQSPSSLSASVGDRVTITCRASQDVNTAVAWYQQKPGKAPKLLIYSASFLYSGVPSRFSGSRSGTDFTLTISSLQPEDFATYYCQQHYTTPPTFGQGTKVEIK",
    "adalimumab_VH": "EVQLVESGGGLVQPGRSLRLSCAASGFTFDDYAMHWVRQAPGKGLEWVSAITWNSGHIDYADSVEGRFTISRDNAKNSLYLQMNSLRAEDTAVYYCAKVSYLSTASSLDYWGQGTLVTVSS",
    "adalimumab_VL": "DIQMTQSPSSLSASVGDRVTITCRASQGIRNYLAWYQQKPGKAPKLLIYAASTLQSGVPSRFSGSGSGTDFTLTISSLQPEDVATYYCQRYNRAPYTFGQGTKVEIK",
}
# Per-residue values committed: the first DIMS of each row (the whole [L, 512] would be ~1 MB).
DIMS = 32


def cache_dir() -> pathlib.Path:
    import os

    base = os.environ.get("PROTTRANS_CACHE") or pathlib.Path.home() / ".cache" / "prottrans"
    path = pathlib.Path(base) / "antiberty"
    path.mkdir(parents=True, exist_ok=True)
    return path


def wheel() -> pathlib.Path:
    path = cache_dir() / WHEEL
    if not path.is_file():
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
             f"antiberty=={VERSION}", "-d", str(path.parent)],
            check=True,
        )
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if WHEEL_SHA256 and digest != WHEEL_SHA256:
        sys.exit(f"{path}: sha256 {digest}, expected {WHEEL_SHA256}")
    return path


def assemble(out: pathlib.Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel()) as archive:
        for name, member in MEMBERS.items():
            with archive.open(member) as source, open(out / name, "wb") as target:
                shutil.copyfileobj(source, target)
    print(f"AntiBERTy {VERSION} assembled in {out}")


def fixture(model: pathlib.Path) -> None:
    import torch
    from safetensors.torch import save_file
    from transformers import BertModel

    vocab = (model / "vocab.txt").read_text().split()
    ids = {token: i for i, token in enumerate(vocab)}
    bert = BertModel.from_pretrained(model, add_pooling_layer=False).eval()
    tensors = {}
    FIXTURE.mkdir(parents=True, exist_ok=True)
    fasta = []
    with torch.no_grad():
        for index, (name, sequence) in enumerate(SEQUENCES.items()):
            tokens = [ids["[CLS]"]] + [ids[r] for r in sequence] + [ids["[SEP]"]]
            hidden = bert(torch.tensor([tokens])).last_hidden_state[0, 1:-1]
            tensors[f"per_residue_{index}"] = hidden[:, :DIMS].contiguous()
            tensors[f"per_protein_{index}"] = hidden.mean(0).contiguous()
            fasta.append(f">{name}\n{sequence}\n")
    save_file(tensors, FIXTURE / "expected.safetensors")
    (FIXTURE / "sequences.fasta").write_text("".join(fasta))
    print(f"wrote {FIXTURE} ({len(SEQUENCES)} proteins, first {DIMS} dims per residue)")


def main() -> None:
    if len(sys.argv) != 3 or sys.argv[1] not in ("model", "fixture"):
        sys.exit(__doc__)
    out = pathlib.Path(sys.argv[2])
    if sys.argv[1] == "model":
        assemble(out)
    else:
        fixture(out)


if __name__ == "__main__":
    main()
