#!/usr/bin/env bash
# The window driven as a person drives it, with the keyboard, on a desktop with no file-dialog
# helper (Xvfb, no portal, no zenity) and a real audio server (PulseAudio, a null sink as the
# microphone and the speakers): each panel's main job, a screenshot per step, and a check of
# what each step must have produced. Fails at the first step that did not.
#
#   scripts/walkthrough.sh [FOLDER]     screenshots go to FOLDER (default target/walkthrough)
#
# Needs the debug binary (./test.sh builds it), the default models, the public evaluation set
# ($CROSSMODAL_EVAL) and xvfb, xdotool, ffmpeg, pulseaudio, pulseaudio-utils (./test.sh
# installs them). CI runs it after ./test.sh.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
shots=${1:-$root/target/walkthrough}
bin=${CROSSMODAL_BIN:-${CARGO_TARGET_DIR:-$root/target}/debug/crossmodal}
eval=${CROSSMODAL_EVAL:?set CROSSMODAL_EVAL to the public set (./test.sh fetches it)}
for tool in Xvfb xdotool ffmpeg pulseaudio pactl paplay parec; do
  command -v "$tool" > /dev/null || { echo "walkthrough: $tool is missing (./test.sh installs it)" >&2; exit 1; }
done
[ -x "$bin" ] || { echo "walkthrough: no binary at $bin (cargo build first)" >&2; exit 1; }
mkdir -p "$shots"
rm -f "$shots"/*.png
work=$(mktemp -d)
width=1000 height=720
step=0
app= xvfb=

finish() {
  [ -n "$app" ] && kill "$app" 2> /dev/null
  [ -n "$xvfb" ] && kill "$xvfb" 2> /dev/null
  wait 2> /dev/null || true
  rm -rf "$work"
}
trap finish EXIT

shot() {
  step=$((step + 1))
  local file
  file=$(printf '%s/%02d-%s.png' "$shots" "$step" "$1")
  ffmpeg -loglevel error -y -f x11grab -video_size "${width}x${height}" -i "$DISPLAY" -frames:v 1 "$file"
  echo "  screenshot $file"
}
fail() {
  shot failed
  echo "walkthrough FAILED: $*" >&2
  echo "--- the app's log:" >&2
  tail -n 30 "$work/app.log" >&2
  exit 1
}
key() { xdotool key --window "$wid" --clearmodifiers "$@"; sleep 0.4; }
# Types into the field that has the keyboard, replacing what is there.
type_over() {
  key ctrl+a
  xdotool type --window "$wid" --delay 20 "$1"
  sleep 0.3
}
# Waits up to $1 seconds for a command to succeed. Every step waits for what it needs this way
# (a line in the app's log, a file, a sound); the few short sleeps left only let a frame be
# drawn before a screenshot.
within() {
  local limit=$1 t=0
  shift
  until "$@" 2> /dev/null; do
    t=$((t + 1))
    [ "$t" -le "$limit" ] || return 1
    sleep 1
  done
}

echo "== audio: PulseAudio with a null sink as microphone and speakers"
if ! pactl info > /dev/null 2>&1; then
  pulseaudio -D --exit-idle-time=-1 2> /dev/null || true
  within 10 pactl info > /dev/null || { echo "walkthrough: PulseAudio did not start" >&2; exit 1; }
fi
pactl list short sinks | cut -f 2 | grep -qx virt || pactl load-module module-null-sink sink_name=virt > /dev/null
pactl set-default-source virt.monitor
pactl set-default-sink virt
pactl list short modules | grep -q module-suspend-on-idle && pactl unload-module module-suspend-on-idle || true

echo "== the window under Xvfb, ${width}x${height}"
# Xvfb picks a free display and writes its number once it accepts clients.
exec 3> "$work/display"
Xvfb -displayfd 3 -screen 0 "${width}x${height}x24" -nolisten tcp > /dev/null 2>&1 &
xvfb=$!
exec 3>&-
within 10 grep -q . "$work/display" || { echo "walkthrough: Xvfb did not start" >&2; exit 1; }
export DISPLAY=:$(head -n 1 "$work/display")
mkdir -p "$work/config" "$work/speech"
cp "$eval/speech/goforward.wav" "$eval/speech/librivox_0880.wav" "$work/speech/"
# Its own config and data folders: nothing this machine's user saved (a model, a theme) counts.
CROSSMODAL_CONFIG=$work/config XDG_DATA_HOME=$work/data CROSSMODAL_LOG=warn,crossmodal=info \
  "$bin" --gallery "$work/library.sqlite" > "$work/app.log" 2>&1 &
app=$!
within 30 xdotool search --name '^crossmodal$' > /dev/null || fail "the window did not open"
wid=$(xdotool search --name '^crossmodal$' | head -n 1)
xdotool windowsize "$wid" "$width" "$height" windowmove "$wid" 0 0 windowfocus "$wid"
logged() { grep -q -- "$1" "$work/app.log"; }
within 60 logged 'engine ready' || fail "the engine did not start"
sleep 1
shot start

echo "== Transcribe: Record, speak, Stop, save the transcript (Ctrl+S) as SRT"
key space
within 30 logged 'recording from' || fail "Space did not start a recording"
paplay -d virt "$eval/speech/goforward.wav"
within 60 logged 'line .* s: .*[Ff]orward' || fail "the recording showed no line of what was said"
key space
within 30 logged 'recording ended' || fail "Space did not stop the recording"
shot record
key ctrl+s
type_over "$work/recording.srt"
key Return
within 10 grep -q -- ' --> ' "$work/recording.srt" || fail "Ctrl+S did not save an SRT file at $work/recording.srt"
shot saved
grep -qi 'forward' "$work/recording.srt" || fail "the recording's transcript lacks what was said: $(cat "$work/recording.srt")"

echo "== Commands: add one (Ctrl+N), save it (Ctrl+S), Listen (Space), say it"
key ctrl+n
xdotool type --window "$wid" --delay 20 "card"
key Tab
xdotool type --window "$wid" --delay 20 "ten of clubs"
key Escape
key ctrl+s
grep -q 'name = "card"' "$work/config/commands.toml" 2> /dev/null || fail "the new command was not saved to the user's commands.toml"
key space
within 30 logged 'listening for commands' || fail "Space did not start listening for commands"
paplay -d virt "$eval/speech/cards_001.wav"
within 15 grep -q 'at .* s: card ' "$work/app.log" || fail "the new command did not fire when said"
shot commands
key space

echo "== Library: add a folder of photographs and one of recordings (Ctrl+O), search"
key ctrl+3
key ctrl+o
type_over "$eval/images"
key Return
sleep 1
key ctrl+o
type_over "$work/speech"
key Return
found() {
  "$bin" search "move ahead ten metres" --gallery "$work/library.sqlite" --json --top 3 2> /dev/null \
    | grep -q 'goforward.wav' && "$bin" search "the moon" --gallery "$work/library.sqlite" --kind image --json 2> /dev/null | grep -q 'moon.png'
}
within 90 found || fail "the folders were not added to the library"
key ctrl+f
type_over "move ahead ten metres"
key Return
sleep 3
shot search

echo "== Library: play the best spoken moment (Space), hear it"
parec -d virt.monitor --raw --format=s16le --rate=16000 --channels=1 > "$work/heard.raw" &
listening=$!
# The samples louder than 600 of 32767 that came out of the speakers so far.
loud() {
  python3 -c 'import sys, array; b = open(sys.argv[1], "rb").read(); a = array.array("h"); a.frombytes(b[: len(b) // 2 * 2]); print(sum(1 for x in a if abs(x) > 600))' "$work/heard.raw"
}
heard() { [ "$(loud)" -gt 1000 ]; }
key space
within 20 heard || { kill "$listening" 2> /dev/null; fail "nothing came out of the speakers when the moment played ($(loud) loud samples)"; }
shot play
kill "$listening" 2> /dev/null || true
key space

echo "== Space and Settings"
key ctrl+4
sleep 3
shot space
key ctrl+5
sleep 1
shot settings

echo "== a narrow window (560x420)"
width=560 height=420
xdotool windowsize "$wid" "$width" "$height"
key ctrl+1
sleep 1
shot narrow
kill -0 "$app" 2> /dev/null || fail "the app is gone"
echo "walkthrough passed: $step screenshots in $shots"
