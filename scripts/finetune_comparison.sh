#!/usr/bin/env bash
# The book's fine-tuning comparison: on one checkpoint, the baseline (one-hot / composition),
# a head on frozen embeddings, LoRA and full fine-tuning, each trained on the same seeded
# subset of the full converted training sets (`python3 scripts/prepare_data.py`), early-stopped
# on the validation split and scored on the held-out test split, proteins above MAX_LENGTH left
# out everywhere.
#
#   scripts/finetune_comparison.sh OUT MODEL MAX_LENGTH
#   scripts/finetune_comparison.sh runs/finetune_cmp/quickstart runs/quickstart/model 128
#
# Then `python3 scripts/finetune_table.py OUT` prints the table. Every command is printed, with
# its wall time and peak memory (GNU time) in OUT/<task>/<row>/time.txt.
# Environment: PROTTRANS (binary, default target/release/prottrans), TRAIN_PROTEINS (1000),
# EPOCHS (fine-tuning, 30), MAX_TOKENS (padded tokens per fine-tuning batch, 4096), TASKS ("secondary-structure localization"), DATA (data/full).
set -euo pipefail
out=$1; model=$2; max_length=$3
bin=${PROTTRANS:-target/release/prottrans}
train_n=${TRAIN_PROTEINS:-1000}
epochs=${EPOCHS:-30}
max_tokens=${MAX_TOKENS:-4096}
data=${DATA:-data/full}
mkdir -p "$out/data"
# The proteins of at most MAX_LENGTH residues, so that every row sees the same ones and the
# subset is drawn among them.
python3 - "$data" "$out/data" "$max_length" <<'PY'
import csv, sys
src, dst, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
for name in ["ss8_train", "ss8_valid", "ss8_test", "localization_train", "localization_valid", "localization_test"]:
    with open(f"{src}/{name}.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    column = "input" if name.startswith("ss8") else "sequence"
    kept = [r for r in rows if len(r[column]) <= limit]
    with open(f"{dst}/{name}.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(kept)
    print(f"{name}: {len(kept)} of {len(rows)} proteins of at most {limit} residues", file=sys.stderr)
PY
data=$out/data

timed() { local dir=$1; shift; mkdir -p "$dir"; echo "+ $*" >&2
  /usr/bin/time -o "$dir/time.txt" -f "%e s, %M KiB peak" "$@"; cat "$dir/time.txt" >&2; }

for task in ${TASKS:-secondary-structure localization}; do
  case $task in
    secondary-structure) set=ss8; baseline=(--features one-hot) ;;
    localization) set=localization; baseline=(--features composition) ;;
  esac
  common=(--task "$task" --train "$data/${set}_train.csv" --valid "$data/${set}_valid.csv"
          --limit-train "$train_n")
  dir="$out/$task"
  rm -rf "$dir"
  timed "$dir/baseline" "$bin" train-head "${common[@]}" "${baseline[@]}" --epochs 30 --patience 4 --out "$dir/baseline/run"
  timed "$dir/frozen" "$bin" train-head "${common[@]}" --model "$model" --epochs 30 --patience 4 --out "$dir/frozen/run"
  timed "$dir/lora" "$bin" finetune "${common[@]}" --model "$model" --epochs "$epochs" --patience 3 --max-tokens "$max_tokens" --out "$dir/lora/run"
  timed "$dir/full" "$bin" finetune "${common[@]}" --model "$model" --full --epochs "$epochs" --patience 3 --max-tokens "$max_tokens" --out "$dir/full/run"
  for row in baseline frozen lora full; do
    "$bin" evaluate --head "$dir/$row/run" --test "$data/${set}_test.csv" --no-tsne --out "$dir/$row/test" > "$dir/$row/test.txt"
  done
done
