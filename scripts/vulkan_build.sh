#!/usr/bin/env bash
# Builds crossmodal with `--features vulkan` (Whisper on whisper.cpp's Vulkan backend) on Debian
# 12, whose Vulkan headers (1.3.239) are older than whisper.cpp 1.8.3 compiles against (1.3.261):
# the headers come from Debian 13's libvulkan-dev package (1.4.309), unpacked into a folder laid
# out as a Vulkan SDK is, beside Debian 12's own Vulkan loader and glslc shader compiler. On a
# system with new enough headers (a current distribution, the LunarG SDK) plain
# `cargo build --features vulkan` does it; VULKAN_SDK=<folder> here uses that SDK instead.
#
#   scripts/vulkan_build.sh [cargo build arguments]     e.g. --release
#
# The build folder is $CARGO_TARGET_DIR-vulkan (default target-vulkan), beside the CPU build's.
set -euo pipefail
source "$(dirname "$0")/setup.sh"
need_packages glslc libvulkan1 mesa-vulkan-drivers
cache=${XDG_CACHE_HOME:-$HOME/.cache}/crossmodal
debian=${CROSSMODAL_DEBIAN_MIRROR:-http://deb.debian.org/debian}
# The headers are pinned (this file is one of the build's inputs, .ci/inputs): a new version is
# a change that makes the build run again.
VULKAN_DEV_VERSION=1.4.309.0-1

# Debian 13's libvulkan-dev: found in its package index, checked against the index's SHA-256.
assemble_sdk() {
  local sdk=$1 tmp line file sum
  [ -f "$sdk/include/vulkan/vulkan.hpp" ] && [ -x "$sdk/bin/glslc" ] \
    && [ "$(cat "$sdk/version" 2> /dev/null)" = "$VULKAN_DEV_VERSION" ] && return 0
  echo "Assembling Vulkan headers from Debian 13's libvulkan-dev into $sdk" >&2
  tmp=$(mktemp -d)
  curl -fsSL "$debian/dists/trixie/main/binary-amd64/Packages.xz" | xz -dc > "$tmp/Packages"
  line=$(awk -v want="$VULKAN_DEV_VERSION" '/^Package: /{p=$2} /^Version: /{v=$2} /^Filename: /{f=$2}
    /^SHA256: /{if (p == "libvulkan-dev" && v == want) {print f, $2; exit}}' "$tmp/Packages")
  read -r file sum <<< "$line"
  [ -n "$file" ] || {
    echo "Debian 13's index has no libvulkan-dev $VULKAN_DEV_VERSION (it lists: $(awk '/^Package: /{p=$2} /^Version: /{if (p == "libvulkan-dev") print $2}' "$tmp/Packages")): set VULKAN_DEV_VERSION in $0 to one it has" >&2
    return 1
  }
  curl -fsSL -o "$tmp/dev.deb" "$debian/$file"
  echo "$sum  $tmp/dev.deb" | sha256sum --check --quiet
  dpkg-deb -x "$tmp/dev.deb" "$tmp/x"
  rm -rf "$sdk" && mkdir -p "$sdk/lib" "$sdk/bin"
  mv "$tmp/x/usr/include" "$sdk/include"
  echo "$VULKAN_DEV_VERSION" > "$sdk/version"
  rm -rf "$tmp"
  # The loader and the shader compiler are Debian 12's own.
  ln -s "$(dpkg -L libvulkan1 | grep -m1 '/libvulkan\.so\.1$')" "$sdk/lib/libvulkan.so"
  ln -s "$(command -v glslc)" "$sdk/bin/glslc"
}

if [ -z "${VULKAN_SDK:-}" ]; then
  VULKAN_SDK=$cache/vulkan-sdk
  assemble_sdk "$VULKAN_SDK"
fi
grep -m1 '#define VK_HEADER_VERSION ' "$VULKAN_SDK/include/vulkan/vulkan_core.h" >&2

export VULKAN_SDK PATH=$VULKAN_SDK/bin:$PATH
# whisper-rs-sys names the loader but not where it lies; the linker is told here.
export RUSTFLAGS="${RUSTFLAGS:-} -L native=$VULKAN_SDK/lib"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$CROSSMODAL_ROOT/target}-vulkan
whisper_flags_current
cd "$CROSSMODAL_ROOT"
cargo build --locked --features vulkan "$@"
