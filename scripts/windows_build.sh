#!/usr/bin/env bash
# Cross-builds crossmodal for 64-bit Windows (x86_64-pc-windows-gnu) on Debian with MinGW-w64.
#
#   scripts/windows_build.sh [cargo build arguments]     e.g. --release
#   CROSSMODAL_WINDOWS_CARGO=check scripts/windows_build.sh   checks the code for Windows only
#
# The build folder is $CARGO_TARGET_DIR-windows (default target-windows), beside the Linux build's;
# the program is <that folder>/x86_64-pc-windows-gnu/<profile>/crossmodal.exe. What it takes:
# - MinGW-w64's "-posix" compilers (whisper.cpp's C++ needs std::thread and std::mutex, which the
#   "-win32" threading model lacks) as the C, C++ compilers and the linker;
# - bindgen parsing whisper.cpp's headers for the target (its own and MinGW's headers), else it
#   falls back to bindings made for Linux;
# - Debian 12's MinGW-w64 (10.0) headers lack THREAD_POWER_THROTTLING_STATE, which ggml uses to ask
#   Windows 11 not to park its threads on efficiency cores: packaging/windows/mingw_compat.h adds
#   the two constants and the struct (as Windows' SDK defines them) when the headers lack them;
# - rustc looks for lib<name>.a, and ggml drops the "lib" of its libraries' names on Windows;
# both handled in packaging/windows/whisper_cpp.cmake, which CMake reads after whisper.cpp's
# project().
set -euo pipefail
source "$(dirname "$0")/setup.sh"
root=$(cd "$(dirname "$0")/.." && pwd)
need_packages gcc-mingw-w64-x86-64-posix g++-mingw-w64-x86-64-posix cmake libclang-dev
target=x86_64-pc-windows-gnu
rustup target list --installed 2>/dev/null | grep -qx $target || rustup target add $target

export CC_x86_64_pc_windows_gnu=x86_64-w64-mingw32-gcc-posix
export CXX_x86_64_pc_windows_gnu=x86_64-w64-mingw32-g++-posix
export AR_x86_64_pc_windows_gnu=x86_64-w64-mingw32-gcc-ar-posix
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc-posix
mingw_include=$(echo | x86_64-w64-mingw32-gcc-posix -xc -E -v - 2>&1 \
  | sed -n '/^#include <...> search starts here:/,/^End of search list./p' | sed -n 's/^ \(.*mingw32.*include\)$/\1/p' | tail -1)
# libclang's own headers (stddef.h and the like), from the libclang bindgen loads.
clang_include=$(ls -d /usr/lib/llvm-*/lib/clang/*/include | sort -V | tail -1)
export BINDGEN_EXTRA_CLANG_ARGS_x86_64_pc_windows_gnu="--target=x86_64-w64-mingw32 -I$clang_include -I$mingw_include"
# whisper-rs-sys hands every CMAKE_* variable of the environment to whisper.cpp's CMake.
# ggml picks its x86 kernels (AVX2, FMA, F16C: .cargo/config.toml) only when it knows the processor.
export CMAKE_SYSTEM_NAME=Windows CMAKE_SYSTEM_PROCESSOR=x86_64
# Two fixes for MinGW (packaging/windows/whisper_cpp.cmake): ggml's libraries get their "lib"
# prefix back, and old MinGW headers get the declarations they lack.
export CMAKE_PROJECT_INCLUDE=$root/packaging/windows/whisper_cpp.cmake
# The portable instruction set (.cargo/config.toml), never this machine's.
export GGML_NATIVE=OFF
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}-windows
cd "$root"
# CROSSMODAL_WINDOWS_CARGO=check: the code checked for the target, nothing built or linked (CI's
# lighter check, scripts/builds.sh).
cargo "${CROSSMODAL_WINDOWS_CARGO:-build}" --locked --target $target --bin crossmodal "$@"
