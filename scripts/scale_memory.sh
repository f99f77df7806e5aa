#!/usr/bin/env bash
# Memory and time of embedding, merging and verifying N synthetic proteins (realistic lengths,
# scripts/synthetic_fasta.py) through a tiny random BERT, per residue: one process, then SHARDS
# shards merged. The figures in book/src/scale.md come from
#
#   scripts/scale_memory.sh OUT 100000 4
#
# Needs target/release/prottrans (or $PROTTRANS) and GNU time; writes OUT/table.tsv (step, seconds, peak KiB,
# output bytes). Disk: about 3x the per-residue output (N x mean length x 32 x 4 bytes).
set -euo pipefail
cd "$(dirname "$0")/.."
out="$1" n="$2" shards="${3:-4}"
prottrans="${PROTTRANS:-$PWD/target/release/prottrans}"
mkdir -p "$out"
input="$out/synthetic.fasta"
[ -s "$input" ] || python3 scripts/synthetic_fasta.py "$input" "$n"
if [ ! -d "$out/model" ]; then
    sed 's/^max_position_embeddings = .*/max_position_embeddings = 7400/' configs/tiny.toml > "$out/recipe.toml"
    "$prottrans" init-model --config "$out/recipe.toml" --out "$out/model" > /dev/null
fi
table="$out/table.tsv"
printf 'step\tseconds\tpeak_kib\toutput_bytes\n' > "$table"
timed() {
    local step="$1" output="$2"; shift 2
    /usr/bin/time -o "$out/time.txt" -f "%e\t%M" "$@" > "$out/$step.log" 2>&1 || { cat "$out/$step.log"; exit 1; }
    printf '%s\t%s\t%s\n' "$step" "$(cat "$out/time.txt")" "$(stat -c %s "$output" 2> /dev/null || echo 0)" | tee -a "$table"
}
rm -rf "$out"/single.npz* "$out"/merged.npz "$out"/shard-*
timed embed-single "$out/single.npz" "$prottrans" embed --model "$out/model" --input "$input" --output "$out/single.npz"
timed verify-single "$out/single.npz" "$prottrans" verify "$out/single.npz" --input "$input"
rm -f "$out/single.npz"
for i in $(seq 1 "$shards"); do
    timed "embed-shard-$i" "$out/shard-$i-of-$shards.npz" "$prottrans" embed --model "$out/model" --input "$input" \
        --output "$out/shard-{shard}.npz" --shard "$i/$shards"
done
files=("$out"/shard-*-of-"$shards".npz)
timed merge "$out/merged.npz" "$prottrans" merge --input "$input" --output "$out/merged.npz" "${files[@]}"
rm -f "${files[@]}"
timed verify-merged "$out/merged.npz" "$prottrans" verify "$out/merged.npz" --input "$input"
rm -f "$out/merged.npz"
