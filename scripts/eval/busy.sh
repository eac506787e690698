#!/usr/bin/env bash
# Whisper beside other busy programs: the public clips transcribed (tiny.en, full window, the
# same work every run) with whisper.cpp's threads waiting for each other asleep (OMP_WAIT_POLICY=
# passive, the program's default on Linux) and spinning (active, as ggml's own barrier does),
# on an idle machine and beside LOAD busy loops (`yes > /dev/null`). Prints each run's seconds
# and the median of ROUNDS.
#
#   scripts/eval/busy.sh [ROUNDS] [LOAD] [THREADS]      defaults: 5 2 2
set -euo pipefail
rounds=${1:-5} load=${2:-2} threads=${3:-2}
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${CROSSMODAL_BIN:-${CARGO_TARGET_DIR:-$root/target}/debug/crossmodal}
clips=("${CROSSMODAL_EVAL:?set CROSSMODAL_EVAL to the public set}"/speech/*.wav)
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
run() {
  local policy=$1 times=() i start
  for ((i = 0; i < rounds; i++)); do
    start=$(date +%s.%N)
    OMP_WAIT_POLICY=$policy "$bin" transcribe --threads "$threads" --full-window "${clips[@]}" > /dev/null
    times+=("$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')")
  done
  printf '%-8s %-8s %s  median %s s\n' "$2" "$policy" "$(printf '%.2f ' "${times[@]}")" "$(printf '%s\n' "${times[@]}" | median)"
}
echo "${#clips[@]} clips, $threads threads, $rounds rounds; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"
for policy in passive active; do run "$policy" idle; done
pids=()
for ((i = 0; i < load; i++)); do yes > /dev/null & pids+=($!); done
trap 'kill "${pids[@]}" 2> /dev/null' EXIT
for policy in passive active; do run "$policy" "busy×$load"; done
