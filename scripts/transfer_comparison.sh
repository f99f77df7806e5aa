#!/usr/bin/env bash
# The book's transfer comparison: the paper's heads on one feature source, trained on a seeded
# subset of the full converted sets (`python3 scripts/prepare_data.py --with-promod3`) and
# scored on the whole held-out test splits.
#
#   scripts/transfer_comparison.sh OUT NAME FEATURE-ARGS...
#   scripts/transfer_comparison.sh runs/transfer one-hot --features one-hot
#   scripts/transfer_comparison.sh runs/transfer random --model runs/random_small
#   scripts/transfer_comparison.sh runs/transfer pretrained --model runs/pretrain_small/model
#
# Then `python3 scripts/transfer_table.py runs/transfer` prints the table.
# Environment: PROTTRANS (binary, default target/release/prottrans), TRAIN_PROTEINS (4000),
# MAX_LENGTH (1022: every source sees the same proteins, the small models' positions allow 1,024).
set -euo pipefail
out=$1; name=$2; shift 2
bin=${PROTTRANS:-target/release/prottrans}
train_n=${TRAIN_PROTEINS:-4000}
max_length=${MAX_LENGTH:-1022}
data=${DATA:-data/full}
mkdir -p "$out"

run() { echo "+ $*" >&2; /usr/bin/time -f "%e s, %M KiB peak" "$@"; }

ss="$out/$name/secondary_structure"
rm -rf "$ss"
run "$bin" train-head --task secondary-structure "$@" \
  --train "$data/ss8_train.csv" --valid "$data/ss8_valid.csv" --limit-train "$train_n" \
  --max-length "$max_length" --epochs 30 --patience 4 --out "$ss/head"
run "$bin" evaluate --head "$ss/head" --test "$data/ss8_test.csv" --out "$ss/test"

loc="$out/$name/localization"
rm -rf "$loc"
if [ "$1" = "--features" ]; then loc_features=(--features composition); else loc_features=("$@"); fi
run "$bin" train-head --task localization "${loc_features[@]}" \
  --train "$data/localization_train.csv" --valid "$data/localization_valid.csv" --limit-train "$train_n" \
  --max-length "$max_length" --epochs 60 --patience 6 --out "$loc/head"
run "$bin" evaluate --head "$loc/head" --test "$data/localization_test.csv" --out "$loc/test"
