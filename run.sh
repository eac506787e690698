#!/usr/bin/env bash
# Builds crossmodal (release), fetches the default models and opens the window.
# Extra arguments go to the program: `./run.sh transcribe clip.wav` runs a job headless.
set -euo pipefail
source "$(dirname "$0")/scripts/setup.sh"
need_packages
need_rust
whisper_flags_current
cd "$CROSSMODAL_ROOT"
cargo build --release --locked
bin="${CARGO_TARGET_DIR:-target}/release/crossmodal"
"$bin" models fetch
exec "$bin" "$@"
