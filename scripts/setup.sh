#!/usr/bin/env bash
# Shared set-up for run.sh and test.sh: system packages (installed when run as root, otherwise
# the exact apt-get line is printed) and a Rust toolchain check. Sourced, not run.
set -euo pipefail

CROSSMODAL_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# whisper.cpp for this machine's CPU: these scripts build the binary where it runs, so ggml may
# use every instruction the CPU has (AVX-512 where present: on an Intel Xeon with AVX-512 the
# public clips transcribed 1.3-1.4x faster than with .cargo/config.toml's portable x86-64-v3 set;
# docs/BENCHMARKS.md). GGML_NATIVE=OFF builds the portable binary, as plain `cargo build` does.
export GGML_NATIVE=${GGML_NATIVE:-ON}

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

# whisper.cpp's build flags live in .cargo/config.toml (a flag set in the environment wins, as
# cargo lets it), but whisper-rs-sys's build script does not run again when they change: a build
# folder whose whisper.cpp was configured otherwise is cleaned of it, so that the flags asked for
# are the ones built. A native build is also cleaned when the CPU is not the one it was made for
# (a build folder can outlive a machine's processor).
whisper_flags_current() {
  local target=${CARGO_TARGET_DIR:-$CROSSMODAL_ROOT/target} cache flag value stale= cpu stamp
  cpu=$(grep -m 1 '^flags' /proc/cpuinfo 2> /dev/null | cksum | cut -d ' ' -f 1)
  stamp=$target/whisper-cpu
  for cache in "$target"/*/build/whisper-rs-sys-*/out/build/CMakeCache.txt; do
    [ -f "$cache" ] || continue
    while IFS='=' read -r flag value; do
      flag=$(echo "$flag" | tr -d ' ') value=$(echo "$value" | tr -d ' "')
      value=${!flag:-$value}
      grep -q "^$flag:BOOL=$value\$" "$cache" || stale=1
    done < <(grep '^GGML_' "$CROSSMODAL_ROOT/.cargo/config.toml")
    if grep -q '^GGML_NATIVE:BOOL=ON$' "$cache" && [ "$(cat "$stamp" 2> /dev/null)" != "$cpu" ]; then
      stale=1
    fi
  done
  if [ -n "$stale" ]; then
    echo "whisper.cpp was built with other flags or for another CPU: building it again" >&2
    (cd "$CROSSMODAL_ROOT" && cargo clean -p whisper-rs-sys --quiet && cargo clean -p whisper-rs-sys --release --quiet)
  fi
  mkdir -p "$target" && echo "$cpu" > "$stamp"
}
