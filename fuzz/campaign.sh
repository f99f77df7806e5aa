#!/usr/bin/env bash
# A fuzzing campaign: every target (or those named) for SECONDS each, JOBS at a time, then a
# summary line per target (executions, coverage, corpus, findings) in fuzz/runs/DATE.tsv.
#
#   fuzz/campaign.sh [SECONDS=600] [JOBS=2] [TARGET...]
#
# Needs a nightly toolchain and cargo-fuzz (cargo install cargo-fuzz). New corpus entries land in
# fuzz/corpus/TARGET (shrink with `cargo +nightly fuzz cmin` before committing); a finding is
# written to fuzz/artifacts/TARGET/ and named in the summary.
set -euo pipefail
cd "$(dirname "$0")"

seconds="${1:-600}"
jobs="${2:-2}"
shift $(( $# > 2 ? 2 : $# ))
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
    mapfile -t targets < <(cargo +nightly fuzz list)
fi

cargo +nightly fuzz build -O --sanitizer none
mkdir -p runs logs
summary="runs/$(date -u +%Y-%m-%d).tsv"
[ -f "$summary" ] || printf 'target\tseconds\texecutions\texec/s\tcoverage\tfeatures\tcorpus\tfindings\tcpu\n' > "$summary"
cpu="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"

run_target() {
    local target="$1" log="logs/$1.log"
    # The scratch files each input is written to go to memory, not the disk.
    TMPDIR=/dev/shm cargo +nightly fuzz run -O --sanitizer none "$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=4096 -malloc_limit_mb=2048 -timeout=20 \
        -print_final_stats=1 > "$log" 2>&1 || true
    local done_line execs rate cov ft corp findings
    done_line="$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 || true)"
    execs="$(grep -m1 '^stat::number_of_executed_units' "$log" | awk '{print $2}')"
    rate="$(grep -m1 '^stat::average_exec_per_sec' "$log" | awk '{print $2}')"
    cov="$(sed -nE 's/.*cov: ([0-9]+).*/\1/p' <<< "$done_line")"
    ft="$(sed -nE 's/.*ft: ([0-9]+).*/\1/p' <<< "$done_line")"
    corp="$(sed -nE 's/.*corp: ([0-9]+\/[0-9]+[a-zA-Z]*).*/\1/p' <<< "$done_line")"
    findings="$(ls "artifacts/$target" 2> /dev/null | tr '\n' ' ')"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$target" "$seconds" "${execs:-?}" "${rate:-?}" \
        "${cov:-?}" "${ft:-?}" "${corp:-?}" "${findings:-none}" "$cpu" >> "$summary"
    echo "$target: ${execs:-?} executions, coverage ${cov:-?}, findings: ${findings:-none}"
}

running=0
for target in "${targets[@]}"; do
    run_target "$target" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
        wait -n
        running=$((running - 1))
    fi
done
wait
echo "summary: fuzz/$summary"
