#!/usr/bin/env python3
"""Random proteins of a realistic length distribution, for scale tests of `prottrans embed`.

    python3 scripts/synthetic_fasta.py OUT.fasta N [--seed S]

Lengths are drawn (with replacement) from the 3,000 real UniProt proteins of
data/samples/uniprot_train.fasta.gz, residues from their amino-acid composition; ids are
`SYN0000001`, ... Standard library only.
"""

import argparse
import gzip
import random
from collections import Counter
from pathlib import Path

SAMPLE = Path(__file__).resolve().parent.parent / "data/samples/uniprot_train.fasta.gz"


def read_sample():
    lengths, composition, sequence = [], Counter(), []
    with gzip.open(SAMPLE, "rt") as f:
        for line in f:
            if line.startswith(">"):
                if sequence:
                    lengths.append(sum(map(len, sequence)))
                    sequence = []
            else:
                sequence.append(line.strip())
                composition.update(line.strip())
    if sequence:
        lengths.append(sum(map(len, sequence)))
    return lengths, composition


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("n", type=int)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    lengths, composition = read_sample()
    residues = "".join(sorted(composition))
    weights = [composition[r] for r in residues]
    rng = random.Random(args.seed)
    total = 0
    with open(args.out, "w") as f:
        for i in range(args.n):
            length = rng.choice(lengths)
            total += length
            sequence = "".join(rng.choices(residues, weights, k=length))
            f.write(f">SYN{i + 1:07d} synthetic length={length}\n")
            for start in range(0, length, 60):
                f.write(sequence[start : start + 60] + "\n")
    print(f"{args.out}: {args.n} proteins, {total} residues (mean {total / max(args.n, 1):.0f})")


if __name__ == "__main__":
    main()
