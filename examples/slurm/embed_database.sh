#!/usr/bin/env bash
# Embed a FASTA file on a Slurm cluster in SHARDS array tasks, then merge the shards into one
# checked file, as one dependent job (it runs only if every task succeeded).
#
#   examples/slurm/embed_database.sh MODEL INPUT.fasta OUTPUT.npz SHARDS [embed options]
#
# Shards go to OUTPUT.shards/, logs to OUTPUT.logs/. Prints the two job ids; with WAIT=1 it
# waits for the merge and exits with its status. Extra sbatch options (partition, account,
# GPUs) come from SBATCH_OPTIONS, e.g. SBATCH_OPTIONS="--partition=gpu --gres=gpu:1" and the
# embed option `--device cuda`. A failed task leaves the merge pending (DependencyNeverSatisfied):
# resubmit the same command; finished shards are kept and unfinished ones resume.
set -euo pipefail
if [ "$#" -lt 4 ]; then
    echo "usage: $0 MODEL INPUT OUTPUT.npz SHARDS [embed options]" >&2
    exit 2
fi
model="$1" input="$2" output="$3" shards="$4"
shift 4
here="$(cd "$(dirname "$0")" && pwd)"
prottrans="${PROTTRANS:-$(command -v prottrans || true)}"
if [ -z "$prottrans" ]; then
    echo "prottrans is not on PATH; set PROTTRANS to the binary" >&2
    exit 2
fi
export PROTTRANS="$prottrans"
shard_dir="$output.shards"
logs="$output.logs"
mkdir -p "$shard_dir" "$logs"
read -r -a extra <<< "${SBATCH_OPTIONS:-}"
array_job="$(sbatch --parsable "${extra[@]}" --array="0-$((shards - 1))" \
    --output="$logs/embed-%A_%a.log" \
    "$here/embed_array.sbatch" "$model" "$input" "$shard_dir" "$@")"
merge_files=()
for i in $(seq 1 "$shards"); do
    merge_files+=("$shard_dir/shard-$(printf "%0${#shards}d-of-%s" "$i" "$shards").npz")
done
wait_flag=()
[ "${WAIT:-0}" = "1" ] && wait_flag=(--wait)
merge_job="$(sbatch --parsable "${extra[@]}" "${wait_flag[@]}" --job-name=prottrans-merge \
    --dependency="afterok:$array_job" --kill-on-invalid-dep=yes \
    --output="$logs/merge-%j.log" \
    --wrap="$(printf '%q ' "$prottrans" merge --input "$input" --output "$output" "${merge_files[@]}")")"
echo "embedding: array job $array_job ($shards tasks); merge: job $merge_job; logs in $logs"
