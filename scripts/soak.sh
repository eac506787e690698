#!/usr/bin/env bash
# Soak: `crossmodal listen` with commands on over MINUTES of audio (the public clips looped,
# each followed by a second of silence), played through the virtual microphone at SPEED × real
# time. Samples resident memory every 10 s and reports the first and last samples, the peak,
# and how many utterances were heard and answered (none may be dropped).
#
#   scripts/soak.sh [MINUTES=60] [SPEED=2] [BINARY=target/release/crossmodal]
#
# Needs sox and the evaluation set ($CROSSMODAL_EVAL, else ~/.cache/crossmodal-eval).
set -euo pipefail
minutes=${1:-60}
speed=${2:-2}
bin=${3:-${CARGO_TARGET_DIR:-target}/release/crossmodal}
eval_dir=${CROSSMODAL_EVAL:-$HOME/.cache/crossmodal-eval}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# One round of all clips, 16 kHz mono 16-bit, a second of silence after each.
i=0
for clip in "$eval_dir"/speech/*.wav; do
    sox "$clip" -r 16000 -c 1 -b 16 "$work/part_$(printf %02d $i).wav" pad 0 1
    i=$((i + 1))
done
sox "$work"/part_*.wav "$work/round.wav"
round=$(soxi -D "$work/round.wav")
repeats=$(python3 -c "import math; print(max(0, math.ceil($minutes * 60 / $round) - 1))")
sox "$work/round.wav" "$work/soak.wav" repeat "$repeats"
rounds=$((repeats + 1))
echo "audio: $(soxi -d "$work/soak.wav") ($rounds rounds of $i clips), played at ${speed}x"

# The command clips' sentences as commands; the read sentences must not match.
python3 - "$eval_dir/manifest.json" > "$work/commands.toml" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
for c in m["speech"]:
    if c["kind"] == "command":
        print('[[command]]\nname = "%s"\nphrases = ["%s"]\n' % (c["text"], c["text"]))
PY

"$bin" listen --input "$work/soak.wav" --speed "$speed" --commands "$work/commands.toml" --dry-run --json \
    > "$work/out.jsonl" 2> "$work/err.log" &
pid=$!
: > "$work/rss.tsv"
start=$(date +%s)
while kill -0 "$pid" 2> /dev/null; do
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status" 2> /dev/null || true)
    [ -n "$rss" ] && printf '%s\t%s\n' $(( $(date +%s) - start )) "$rss" >> "$work/rss.tsv"
    sleep 10
done
wait "$pid" && status=0 || status=$?
echo "exit status: $status, wall: $(( $(date +%s) - start )) s"
tail -n 1 "$work/err.log"
grep -c '"command":"' "$work/out.jsonl" | sed 's/^/decisions with a command: /' || true
grep -c '"command":null' "$work/out.jsonl" | sed 's/^/decisions with no match: /' || true
awk 'NR==1 {first=$2} {last=$2; if ($2>peak) peak=$2} END {
    printf "RSS: first sample %.0f MB, last %.0f MB, peak %.0f MB (%d samples)\n", first/1024, last/1024, peak/1024, NR }' "$work/rss.tsv"
# After the first round the model and caches are warm: compare its end with the last sample.
awk -v t="$(python3 -c "print(int($round / $speed) + 10)")" '$1 >= t && !w {w=$2} {last=$2} END {
    printf "RSS after the first round %.0f MB, at the end %.0f MB\n", w/1024, last/1024 }' "$work/rss.tsv"
cp "$work/rss.tsv" "${SOAK_RSS_OUT:-/dev/null}" 2> /dev/null || true
exit "$status"
