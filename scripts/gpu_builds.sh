#!/usr/bin/env bash
# The GPU builds this machine can make without a GPU, each run as far as it can be here. CI runs
# it after ./test.sh (which has built the CPU binary and fetched the models and the public set).
#
# vulkan  built with Debian 13's Vulkan headers (scripts/vulkan_build.sh), run on Mesa's lavapipe,
#         a Vulkan 1.3 device on the CPU. whisper.cpp passes CPU devices over unless told to take
#         one, so `status` must say Whisper found no GPU; told to (GGML_VK_VISIBLE_DEVICES=0),
#         Whisper must start on Vulkan0 and transcribe a public clip as the CPU build does.
# cuda    built with NVIDIA's compiler and libraries from PyPI (scripts/cuda_build.sh). There is no
#         NVIDIA driver here: the binary must ask for the driver by its soname, and, given only the
#         stub in its place, fall back to the CPU saying why, and still transcribe.
#
#   scripts/gpu_builds.sh [vulkan] [cuda]     (both when none is named)
set -euo pipefail
source "$(dirname "$0")/setup.sh"
cd "$CROSSMODAL_ROOT"
target=${CARGO_TARGET_DIR:-$CROSSMODAL_ROOT/target}
cpu_bin=$target/debug/crossmodal
clip=${CROSSMODAL_EVAL:?set CROSSMODAL_EVAL to the public set (./test.sh fetches it)}/speech/goforward.wav
[ -x "$cpu_bin" ] || cargo build --locked --bin crossmodal

fail() { echo "FAIL: $*" >&2; exit 1; }
# The words only: case, punctuation and spacing aside.
words() { tr '[:upper:]' '[:lower:]' | tr -c 'a-z0-9\n' ' ' | tr -s ' ' | sed 's/^ //; s/ $//'; }
expected=$("$cpu_bin" transcribe "$clip" 2> /dev/null | words)
echo "CPU build: \"$expected\""

check_vulkan() {
  scripts/vulkan_build.sh
  local bin=$target-vulkan/debug/crossmodal out text
  out=$("$bin" status 2>&1) || fail "vulkan build: status failed: $out"
  echo "$out"
  grep -q "^device: CPU (candle has no Vulkan backend" <<< "$out" || fail "vulkan build: the device line does not say why the encoders are on the CPU"
  grep -Eq "^whisper-tiny.en +ready on CPU \(whisper.cpp found no GPU\)" <<< "$out" \
    || fail "vulkan build: lavapipe is a CPU device, which whisper.cpp passes over: Whisper should say it found no GPU"
  out=$(GGML_VK_VISIBLE_DEVICES=0 "$bin" status 2>&1) || fail "vulkan build on lavapipe: status failed: $out"
  echo "$out"
  grep -Eq "^whisper-tiny.en +ready on Vulkan0$" <<< "$out" || fail "vulkan build on lavapipe: Whisper is not on Vulkan0"
  text=$(GGML_VK_VISIBLE_DEVICES=0 "$bin" transcribe "$clip" 2> /dev/null | words)
  echo "Vulkan on lavapipe: \"$text\""
  [ "$text" = "$expected" ] || fail "vulkan build on lavapipe transcribes \"$text\", the CPU build \"$expected\""
  echo "vulkan: ok"
}

check_cuda() {
  scripts/cuda_build.sh
  local bin=$target-cuda/debug/crossmodal tk=${CUDA_PATH:-${XDG_CACHE_HOME:-$HOME/.cache}/crossmodal/cuda-13.4}
  local stub out text
  out=$(objdump -p "$bin")
  grep -q "NEEDED *libcuda.so.1$" <<< "$out" || fail "cuda build: does not ask for the driver as libcuda.so.1"
  if [ -e /dev/nvidiactl ]; then
    echo "cuda: built; an NVIDIA driver is here, so the stub is not run"
    return 0
  fi
  # No driver: the stub answers for it, as a machine whose driver is missing or broken would.
  stub=$(mktemp -d)
  ln -s "$tk/lib/stubs/libcuda.so" "$stub/libcuda.so.1"
  out=$(RUST_BACKTRACE=1 LD_LIBRARY_PATH=$stub:$tk/lib "$bin" status 2>&1) || fail "cuda build without a driver: status failed: $out"
  echo "$out"
  grep -q "^device: CPU (CUDA did not start: " <<< "$out" || fail "cuda build without a driver: the device line does not say why"
  grep -Eq "^ +[0-9]+: " <<< "$out" && fail "cuda build without a driver: a backtrace follows the device line"
  grep -Eq "^whisper-tiny.en +ready on CPU" <<< "$out" || fail "cuda build without a driver: Whisper is not ready on the CPU"
  text=$(LD_LIBRARY_PATH=$stub:$tk/lib "$bin" transcribe "$clip" 2> /dev/null | words)
  rm -rf "$stub"
  echo "CUDA build, no driver: \"$text\""
  [ "$text" = "$expected" ] || fail "cuda build without a driver transcribes \"$text\", the CPU build \"$expected\""
  echo "cuda: ok"
}

for what in "${@:-vulkan cuda}"; do
  for w in $what; do
    case $w in
      vulkan) check_vulkan ;;
      cuda) check_cuda ;;
      *) fail "unknown build $w (vulkan, cuda)" ;;
    esac
  done
done
