#!/usr/bin/env bash
# Runs the fuzz targets (fuzz/fuzz_targets/) from the committed seeds (fuzz/seeds/TARGET).
#
#   scripts/fuzz.sh [SECONDS=60] [TARGET…]   explore: SECONDS each, growing a corpus kept
#                                             outside the clone (~/.cache/crossmodal/fuzz-corpus)
#   scripts/fuzz.sh ci [TARGET…]              the CI run: a fixed number of runs from the seeds
#                                             alone with a fixed random seed, so a run's outcome
#                                             depends on the code, not on luck
#
# A crash stops the run with the failing input in fuzz/artifacts/TARGET/; keep it in
# fuzz/seeds/TARGET/ once fixed. Needs cargo-fuzz (`cargo install cargo-fuzz --locked`).
# libFuzzer runs without a sanitizer on the stable toolchain; Rust's bounds and overflow checks
# are on (debug assertions).
set -euo pipefail
mode=${1:-60}
shift || true
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${CROSSMODAL_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/crossmodal}
target_dir=${CROSSMODAL_FUZZ_TARGET:-$cache/fuzz-target}
cd "$root/fuzz"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo fuzz list)
cargo fuzz build -s none --debug-assertions --target-dir "$target_dir"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for t in "${targets[@]}"; do
    if [ "$mode" = ci ]; then
        corpus="$scratch/$t"
        limits=(-seed=1 -runs=20000)
        echo "== fuzzing $t: 20000 runs from the seeds"
    else
        corpus="$cache/fuzz-corpus/$t"
        limits=(-max_total_time="$mode")
        echo "== fuzzing $t for ${mode}s"
    fi
    mkdir -p "$corpus"
    log="$scratch/$t.log"
    if ! cargo fuzz run -s none --debug-assertions --target-dir "$target_dir" "$t" "$corpus" "seeds/$t" -- \
        "${limits[@]}" -max_len=65536 -rss_limit_mb=4096 -timeout=20 -print_final_stats=1 \
        > "$log" 2>&1; then
        # The end of the log says why: panics the decoder caught are printed all along.
        grep -E "panicked|thread '|^ +[0-9]+: |SUMMARY|ERROR|Timeout|Test unit written|memory allocation" "$log" \
            | cut -c1-300 | tail -40
        echo "fuzz target $t failed: the input is in fuzz/artifacts/$t/" >&2
        exit 1
    fi
    grep -E "^Done|stat::number_of_executed_units|stat::new_units_added|stat::peak_rss_mb" "$log" || true
done
