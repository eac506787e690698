#!/usr/bin/env bash
# Whisper beside other busy programs: the same work every run (tiny.en, full window) with
# whisper.cpp's OpenMP threads waiting for each other three ways: the program's own setting
# (a short spin, GOMP_SPINCOUNT=1000, then asleep), asleep at once (OMP_WAIT_POLICY=passive) and
# libgomp's default (a spin of 300,000 rounds), on an idle machine and beside LOAD busy loops
# (`yes > /dev/null`). Prints each run's seconds and the median of ROUNDS. FILES: the audio
# (default: the public clips; a long recording from scripts/eval/make-long.py shows the idle cost
# of waiting asleep).
#
#   scripts/eval/busy.sh [ROUNDS] [LOAD] [THREADS] [FILES...]      defaults: 5 2 2 the public clips
set -euo pipefail
rounds=${1:-5} load=${2:-2} threads=${3:-2}
shift $(($# < 3 ? $# : 3))
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${CROSSMODAL_BIN:-${CARGO_TARGET_DIR:-$root/target}/debug/crossmodal}
if (($#)); then clips=("$@"); else clips=("${CROSSMODAL_EVAL:?set CROSSMODAL_EVAL to the public set}"/speech/*.wav); fi
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
run() {
  local setting=$1 times=() i start
  for ((i = 0; i < rounds; i++)); do
    start=$(date +%s.%N)
    env $setting "$bin" transcribe --threads "$threads" --full-window "${clips[@]}" > /dev/null
    times+=("$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')")
  done
  printf '%-8s %-28s %s  median %s s\n' "$2" "${setting:-the program's own}" "$(printf '%.2f ' "${times[@]}")" "$(printf '%s\n' "${times[@]}" | median)"
}
echo "${#clips[@]} clips, $threads threads, $rounds rounds; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"
settings=("" OMP_WAIT_POLICY=passive GOMP_SPINCOUNT=300000)
for setting in "${settings[@]}"; do run "$setting" idle; done
pids=()
for ((i = 0; i < load; i++)); do yes > /dev/null & pids+=($!); done
trap 'kill "${pids[@]}" 2> /dev/null' EXIT
for setting in "${settings[@]}"; do run "$setting" "busy×$load"; done
