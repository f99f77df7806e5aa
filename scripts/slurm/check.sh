#!/usr/bin/env bash
# End to end on a real Slurm: the bundled validation sample (300 UniProt proteins, up to 7,388
# residues) embedded by examples/slurm/embed_database.sh in SHARDS array tasks and merged must
# equal one `prottrans embed` of the same file: the same keys, the same arrays (within 1e-5:
# the shards batch other proteins together), checked by `prottrans verify` and numpy.
#
#   scripts/slurm/check.sh [SHARDS]   # default 4; needs target/release/prottrans
#
# Starts the one-node cluster with scripts/slurm/start.sh. PROTTRANS_PYTHON: a python with numpy.
set -euo pipefail
cd "$(dirname "$0")/../.."
shards="${1:-4}"
export PROTTRANS="$PWD/target/release/prottrans"
python="${PROTTRANS_PYTHON:-python3}"
started=$(date +%s)
# A cluster this script starts, it stops again.
if ! pgrep -x slurmctld > /dev/null; then
    trap 'scripts/slurm/start.sh --stop' EXIT
fi
scripts/slurm/start.sh > /dev/null
echo "slurm up in $(( $(date +%s) - started )) s"

work="$(mktemp -d "${TMPDIR:-/tmp}/prottrans-slurm.XXXXXX")"
chmod 755 "$work"
input="$work/valid.fasta.gz"
cp data/samples/uniprot_valid.fasta.gz "$input"
# A tiny random BERT with positions for the longest protein.
sed 's/^max_position_embeddings = .*/max_position_embeddings = 7400/' configs/tiny.toml > "$work/recipe.toml"
"$PROTTRANS" init-model --config "$work/recipe.toml" --out "$work/model" > /dev/null

"$PROTTRANS" embed --model "$work/model" --input "$input" --output "$work/single.npz" > /dev/null
started=$(date +%s)
WAIT=1 examples/slurm/embed_database.sh "$work/model" "$input" "$work/merged.npz" "$shards"
echo "array of $shards tasks and merge in $(( $(date +%s) - started )) s"
"$PROTTRANS" verify "$work/merged.npz" --input "$input"
for shard in "$work"/merged.npz.shards/*.npz; do
    "$PROTTRANS" verify "$shard" --input "$input" | sed "s|$work/||"
done
"$python" - "$work/single.npz" "$work/merged.npz" <<'PY'
import sys
import numpy as np
single, merged = (np.load(p) for p in sys.argv[1:3])
assert sorted(single.files) == sorted(merged.files), "different keys"
worst = max(float(np.abs(single[k] - merged[k]).max()) for k in single.files)
identical = sum(np.array_equal(single[k], merged[k]) for k in single.files)
print(f"merged = single-process: {len(single.files)} proteins, {identical} bit-identical, largest difference {worst:.2e}")
assert worst <= 1e-5, worst
PY
rm -rf "$work"
