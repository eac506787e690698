#!/usr/bin/env bash
# Shared set-up for run.sh and test.sh: system packages (installed when run as root, otherwise
# the exact apt-get line is printed) and a Rust toolchain check. Sourced, not run.
set -euo pipefail

CROSSMODAL_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export GGML_NATIVE=${GGML_NATIVE:-OFF}   # portable whisper.cpp build

# Build: cmake + libclang (whisper-rs-sys bindgen), ALSA headers (cpal), pkg-config.
# Run: X11/Wayland client libraries and a Vulkan driver for the window.
# Tests: xvfb (the window headless), sox/unzip (evaluation data), pip (the model mirror).
need_packages() {
  local wanted=(build-essential cmake pkg-config libclang-dev libasound2-dev
    libxkbcommon-x11-0 libxkbcommon-dev libx11-xcb1 libxcursor1 libxi6 libxrandr2 libvulkan1 mesa-vulkan-drivers
    python3-pip "$@")
  local missing=()
  for p in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  # pip may come from elsewhere (pyenv, a venv): only ask for Debian's when none runs.
  if command -v pip >/dev/null || command -v pip3 >/dev/null; then
    local kept=(); for p in "${missing[@]}"; do [ "$p" = python3-pip ] || kept+=("$p"); done
    missing=("${kept[@]}")
  fi
  [ ${#missing[@]} -eq 0 ] && return 0
  if ! command -v apt-get >/dev/null; then
    echo "Missing system packages: ${missing[*]} (install their equivalents for your system)" >&2
    return 1
  fi
  if [ "$(id -u)" -eq 0 ]; then
    echo "Installing: ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "Missing system packages. Run:" >&2
    echo "  sudo apt-get install -y ${missing[*]}" >&2
    return 1
  fi
}

need_rust() {
  if ! command -v cargo >/dev/null; then
    echo "No Rust toolchain found. Install one (https://rustup.rs), then run this again:" >&2
    echo "  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh" >&2
    return 1
  fi
}

# whisper.cpp's build flags live in .cargo/config.toml, but whisper-rs-sys's build script does
# not run again when they change: a build folder whose whisper.cpp was configured otherwise is
# cleaned of it, so that the flags in the tree are the ones built.
whisper_flags_current() {
  local target=${CARGO_TARGET_DIR:-$CROSSMODAL_ROOT/target} cache flag value stale=
  for cache in "$target"/*/build/whisper-rs-sys-*/out/build/CMakeCache.txt; do
    [ -f "$cache" ] || continue
    while IFS='=' read -r flag value; do
      flag=$(echo "$flag" | tr -d ' ') value=$(echo "$value" | tr -d ' "')
      grep -q "^$flag:BOOL=$value\$" "$cache" || stale=1
    done < <(grep '^GGML_' "$CROSSMODAL_ROOT/.cargo/config.toml")
  done
  if [ -n "$stale" ]; then
    echo "whisper.cpp was built with other flags than .cargo/config.toml's: building it again" >&2
    (cd "$CROSSMODAL_ROOT" && cargo clean -p whisper-rs-sys --quiet && cargo clean -p whisper-rs-sys --release --quiet)
  fi
}
