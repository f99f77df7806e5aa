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

        Also writes antibodies.fasta, 40 heavy and 40 light variable domains of published HIV-1
        broadly neutralising antibodies, translated from the nucleotide test data of the PyPI
        wheel `abstar==0.8.0` (MIT), and recovery.tsv: BertForMaskedLM's prediction and
        log-probability at 15% of their residues (drawn with Python's random.Random(0), all of
        a protein's masked at once), for `prottrans recover --at`.
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
# Real variable domains in quantity: the nucleotide test data of an antibody annotation package.
ABSTAR = ("abstar", "0.8.0", "c3c25dd4c0ebcd8173fdd4737539957dfd2f5ca25a0a71cc7a1f2643cdb898f4")
ABSTAR_FILES = {
    "VH": "abstar/test_data/test_hiv_bnab_hcs.fasta",
    "VL": "abstar/test_data/test_hiv_bnab_lcs.fasta",
}
ANTIBODIES_PER_CHAIN = 40
RECOVERY_RATE = 0.15

# Per-residue values committed: the first DIMS of each row (the whole [L, 512] would be ~1 MB).
DIMS = 32


def cache_dir() -> pathlib.Path:
    import os

    base = os.environ.get("PROTTRANS_CACHE") or pathlib.Path.home() / ".cache" / "prottrans"
    path = pathlib.Path(base) / "antiberty"
    path.mkdir(parents=True, exist_ok=True)
    return path


def download(package: str, version: str, sha256: str) -> pathlib.Path:
    """A pinned wheel from PyPI, downloaded once into the cache; a different file is refused."""
    path = cache_dir() / f"{package}-{version}-py3-none-any.whl"
    if not path.is_file():
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
             f"{package}=={version}", "-d", str(path.parent)],
            check=True,
        )
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != sha256:
        sys.exit(f"{path}: sha256 {digest}, expected {sha256}")
    return path


def wheel() -> pathlib.Path:
    return download("antiberty", VERSION, WHEEL_SHA256)


def read_fasta(text: str):
    name, lines = None, []
    for line in text.splitlines():
        if line.startswith(">"):
            if name is not None:
                yield name, "".join(lines)
            name, lines = line[1:].split()[0], []
        elif line.strip():
            lines.append(line.strip())
    if name is not None:
        yield name, "".join(lines)


def translate(nucleotides: str, frame: int) -> str:
    bases = "TCAG"
    table = "FFLLSSSSYY**CC*WLLLLPPPPHHQQRRRRIIIMTTTTNNKKSSRRVVVVAAAADDEEGGGG"
    codons = {a + b + c: table[16 * i + 4 * j + k]
              for i, a in enumerate(bases) for j, b in enumerate(bases)
              for k, c in enumerate(bases)}
    nt = nucleotides.upper()
    return "".join(codons.get(nt[i:i + 3], "X") for i in range(frame, len(nt) - 2, 3))


def variable_domain(nucleotides: str, chain: str):
    """The V(D)J protein: the reading frame that ends in the J motif (WGxG... for heavy chains,
    FGxG... for light), cut after it; None when no frame reads through cleanly."""
    import re

    motif, tail = (r"WG.G", 11) if chain == "VH" else (r"FG.G", 10)
    best = None
    for frame in range(3):
        protein = translate(nucleotides, frame)
        hits = list(re.finditer(motif, protein))
        if not hits:
            continue
        domain = protein[:hits[-1].start() + tail]
        if set(domain) <= set("ACDEFGHIKLMNPQRSTVWY") and (best is None or len(domain) > len(best)):
            best = domain
    if best is None or not 95 <= len(best) <= 140:
        return None
    # The conserved cysteines and tryptophan of a variable domain; no second J motif in CDR3.
    if "C" not in best[15:30] or "W" not in best[30:50] or "C" not in best[80:-5]:
        return None
    cdr3 = best[best.rfind("C", 0, len(best) - 8) + 1:len(best) - tail]
    if re.search(r"G.GT[KRQ][LVI]", cdr3):
        return None
    return best


def antibodies() -> list:
    """Paired heavy and light variable domains of the first antibodies whose both chains
    translate cleanly, no sequence twice."""
    import re

    with zipfile.ZipFile(download(*ABSTAR)) as archive:
        chains = {
            chain: {name: domain for name, nt in read_fasta(archive.read(member).decode())
                    if (domain := variable_domain(nt, chain))}
            for chain, member in ABSTAR_FILES.items()
        }
    picked, seen = [], set()
    for name in chains["VH"]:
        pair = (chains["VH"][name], chains["VL"].get(name))
        if pair[1] is None or pair[0] in seen or pair[1] in seen:
            continue
        seen.update(pair)
        picked.append(name)
        if len(picked) == ANTIBODIES_PER_CHAIN:
            break
    safe = lambda n: re.sub(r"[^A-Za-z0-9.\-]", "_", n)
    return [(f"{safe(n)}_{chain}", chains[chain][n]) for chain in ("VH", "VL") for n in picked]


def recovery(model: pathlib.Path, proteins: list) -> None:
    """BertForMaskedLM at RECOVERY_RATE of the residues, with the unigram baseline."""
    import math
    import random

    import torch
    from transformers import BertForMaskedLM

    vocab = (model / "vocab.txt").read_text().split()
    ids = {token: i for i, token in enumerate(vocab)}
    residue_ids = [i for i, t in enumerate(vocab) if len(t) == 1]
    mlm = BertForMaskedLM.from_pretrained(model).eval()
    rng = random.Random(0)
    counts = {}
    for _, sequence in proteins:
        for r in sequence:
            counts[r] = counts.get(r, 0) + 1
    total = sum(counts.values())
    frequent = max(counts, key=lambda r: (counts[r], -ids[r]))
    rows, correct, nll, unigram_correct, unigram_nll = [], 0, 0.0, 0, 0.0
    with torch.no_grad():
        for name, sequence in proteins:
            chosen = [i for i in range(len(sequence)) if rng.random() < RECOVERY_RATE]
            if not chosen:
                chosen = [rng.randrange(len(sequence))]
            tokens = [ids["[CLS]"]] + [ids[r] for r in sequence] + [ids["[SEP]"]]
            for i in chosen:
                tokens[i + 1] = ids["[MASK]"]
            logits = mlm(torch.tensor([tokens])).logits[0]
            log_probs = torch.log_softmax(logits.double(), dim=-1)
            for i in chosen:
                lp = log_probs[i + 1]
                predicted = vocab[max(residue_ids, key=lambda t: lp[t].item())]
                truth = sequence[i]
                correct += predicted == truth
                unigram_correct += frequent == truth
                nll -= lp[ids[truth]].item()
                unigram_nll -= math.log(counts[truth] / total)
                rows.append(f"{name}\t{i + 1}\t{truth}\t{predicted}\t{lp[ids[truth]].item():.6f}\n")
    n = len(rows)
    (FIXTURE / "recovery.tsv").write_text("id\tposition\tresidue\tpredicted\tlog_prob\n" + "".join(rows))
    print(f"transformers recovery: {n} positions, {100 * correct / n:.2f}% (cross-entropy "
          f"{nll / n:.4f}); unigram (always {frequent}) {100 * unigram_correct / n:.2f}% "
          f"({unigram_nll / n:.4f})")


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
    proteins = antibodies()
    (FIXTURE / "antibodies.fasta").write_text("".join(f">{n}\n{s}\n" for n, s in proteins))
    recovery(model, proteins)


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
