#!/usr/bin/env bash
# Runs each fuzz target (fuzz/fuzz_targets/) for SECONDS, starting from the committed seeds
# (fuzz/seeds/TARGET) and a working corpus kept outside the clone. A crash stops the run with
# the failing input in fuzz/artifacts/TARGET/.
#
#   scripts/fuzz.sh [SECONDS=20] [TARGET…]
#
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`). libFuzzer's sanitizer-free mode runs
# on the stable toolchain; the Rust code is checked by its own bounds and overflow checks
# (debug assertions are on in fuzz builds).
set -euo pipefail
seconds=${1:-20}
shift || true
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${CROSSMODAL_CACHE_DIR:-$HOME/.cache/crossmodal}
target_dir=${CROSSMODAL_FUZZ_TARGET:-$cache/fuzz-target}
cd "$root/fuzz"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo fuzz list)
cargo fuzz build -s none --debug-assertions --target-dir "$target_dir"
for t in "${targets[@]}"; do
    corpus="$cache/fuzz-corpus/$t"
    mkdir -p "$corpus"
    echo "== fuzzing $t for ${seconds}s"
    log="$cache/fuzz-$t.log"
    if ! cargo fuzz run -s none --debug-assertions --target-dir "$target_dir" "$t" "$corpus" "seeds/$t" -- \
        -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=4096 -timeout=20 -print_final_stats=1 \
        > "$log" 2>&1; then
        grep -E "panicked|thread '|^ +[0-9]+: |SUMMARY|ERROR|Test unit written" "$log" | cut -c1-300 | head -40
        echo "fuzz target $t failed: the input is in fuzz/artifacts/$t/" >&2
        exit 1
    fi
    grep -E "^Done|stat::number_of_executed_units|stat::new_units_added|stat::peak_rss_mb" "$log" || true
done
