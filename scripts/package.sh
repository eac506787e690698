#!/usr/bin/env bash
# Packages for people who install rather than build.
#
#   scripts/package.sh deb [DIR]        dist/crossmodal_<version>_amd64.deb (or in DIR): the portable
#                                       release binary (whisper.cpp for x86-64-v3 as .cargo/config.toml
#                                       says, not for this CPU), its desktop entry, icons and AppStream
#                                       metainfo; no model files (the store fetches them on first run).
#                                       Depends: the libraries the binary links (dpkg-shlibdeps) and
#                                       those it loads itself when its window opens (found by opening
#                                       it under Xvfb). Checked with desktop-file-validate,
#                                       appstreamcli and lintian (no errors).
#   scripts/package.sh check-deb FILE   as root: installs the package with apt, runs `crossmodal
#                                       status`, a transcription and the window from the desktop
#                                       entry, then removes it and checks that none of its files is
#                                       left. Refuses when crossmodal is already installed.
#   scripts/package.sh windows [DIR]    dist/crossmodal-<version>-windows-x86_64-setup.exe and .zip
#                                       (or in DIR): the release build for 64-bit Windows made here with
#                                       MinGW-w64 (scripts/windows_build.sh), the MinGW runtime DLLs it
#                                       needs (found in its import table), an icon; the installer is
#                                       NSIS's (makensis), with an uninstaller and a Start menu entry.
#   scripts/package.sh check-windows FILE
#                                       under Wine (a prefix of its own): installs the setup .exe
#                                       silently, runs `crossmodal.exe status`, transcribes every public
#                                       clip (the same words as the Linux build's, or it fails), adds
#                                       the public photos to a library and searches it (the same first
#                                       results as Linux), opens the window under Xvfb and keeps a
#                                       screenshot (WINDOWS_SCREENSHOT=FILE), then uninstalls and
#                                       checks that nothing is left in Program Files.
set -euo pipefail
source "$(dirname "$0")/setup.sh"
cd "$CROSSMODAL_ROOT"
cache=${XDG_CACHE_HOME:-$HOME/.cache}/crossmodal
id=io.github.crossmodal.Crossmodal
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)

say() { echo "== package: $*"; }

# The libraries the binary opens with dlopen itself (winit, wgpu, cpal): what opening the window
# loads, "dynamically loaded by" the binary, mapped to their Debian packages. The window is opened
# on X11 (Xvfb) and, where sway is installed, on Wayland (a headless sway, run as nobody: sway
# refuses root).
loaded_packages() {
  local bin=$1 log
  log=$(mktemp)
  LD_DEBUG=files LD_DEBUG_OUTPUT=$log xvfb-run -a "$bin" --first-frame > /dev/null 2>&1 || true
  if command -v sway > /dev/null && command -v setpriv > /dev/null; then
    local run sway_pid
    run=$(mktemp -d)
    chown 65534:65534 "$run" && chmod 700 "$run"
    echo "output HEADLESS-1 resolution 1280x800" > "$run/sway.conf"
    env -i PATH="$PATH" HOME="$run" XDG_RUNTIME_DIR="$run" WLR_BACKENDS=headless WLR_LIBINPUT_NO_DEVICES=1 \
      WLR_RENDERER=pixman setpriv --reuid=65534 --regid=65534 --clear-groups sway -c "$run/sway.conf" \
      > /dev/null 2>&1 &
    sway_pid=$!
    for _ in $(seq 100); do [ -S "$run/wayland-1" ] && break; sleep 0.1; done
    env -u DISPLAY WAYLAND_DISPLAY=wayland-1 XDG_RUNTIME_DIR="$run" LD_DEBUG=files LD_DEBUG_OUTPUT="$log" \
      "$bin" --first-frame > /dev/null 2>&1 || true
    kill "$sway_pid" 2> /dev/null; wait "$sway_pid" 2> /dev/null || true
    rm -rf "$run"
  fi
  sed -n "s/.*file=\([^ ]*\) \[0\];  dynamically loaded by ${bin//\//\\/} .*/\1/p" "$log".* \
    | sort -u | while read -r lib; do
      path=$(ldconfig -p | awk -v l="$lib" '$1 == l { print $NF; exit }')
      [ -n "$path" ] || continue
      dpkg -S "$(readlink -f "$path")" 2> /dev/null | head -n 1 | cut -d: -f1
    done | sort -u
  rm -f "$log" "$log".*
}

deb() {
  local out=${1:-dist}
  need_packages dpkg-dev lintian desktop-file-utils appstream xvfb xauth sway
  need_rust
  # Portable: .cargo/config.toml's x86-64-v3 whisper.cpp, not -march=native; a build folder of its
  # own so that the native one of ./run.sh and ./test.sh is not rebuilt each time.
  export GGML_NATIVE=OFF
  export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$cache/target}-deb
  whisper_flags_current
  say "release build (portable) in $CARGO_TARGET_DIR"
  cargo build --release --locked
  local bin=$CARGO_TARGET_DIR/release/crossmodal
  local work
  work=$(mktemp -d)
  trap 'rm -rf "$work"' RETURN
  local root=$work/crossmodal_${version}_amd64
  install -D -m 755 "$bin" "$root/usr/bin/crossmodal"
  strip --strip-unneeded --remove-section=.comment --remove-section=.note "$root/usr/bin/crossmodal"
  install -D -m 644 "packaging/$id.desktop" "$root/usr/share/applications/$id.desktop"
  install -D -m 644 "packaging/$id.metainfo.xml" "$root/usr/share/metainfo/$id.metainfo.xml"
  install -D -m 644 "packaging/icons/$id.svg" "$root/usr/share/icons/hicolor/scalable/apps/$id.svg"
  for png in packaging/icons/*/"$id.png"; do
    size=$(basename "$(dirname "$png")")
    install -D -m 644 "$png" "$root/usr/share/icons/hicolor/$size/apps/$id.png"
  done
  local doc=$root/usr/share/doc/crossmodal
  install -D -m 644 packaging/copyright "$doc/copyright"
  printf 'crossmodal (%s) unstable; urgency=medium\n\n  * Built from commit %s.\n\n -- crossmodal developers <crossmodal@users.noreply.github.com>  %s\n' \
    "$version" "$(git rev-parse --short=12 HEAD)" "$(date -R -d "@$(git log -1 --format=%ct)")" \
    | gzip -9n > "$doc/changelog.gz"
  "$bin" --help > /dev/null # the binary runs at all
  mkdir -p "$root/usr/share/man/man1"
  man_page "$bin" | gzip -9n > "$root/usr/share/man/man1/crossmodal.1.gz"

  # Depends: what the binary links (dpkg-shlibdeps reads its NEEDED entries and the shlibs files
  # of the packages that provide them), then what it loads itself.
  mkdir -p "$work/debian"
  printf 'Source: crossmodal\n\nPackage: crossmodal\nArchitecture: amd64\n' > "$work/debian/control"
  local linked loaded depends
  linked=$(cd "$work" && dpkg-shlibdeps -O "$root/usr/bin/crossmodal" | sed -n 's/^shlibs:Depends=//p')
  loaded=$(loaded_packages "$bin" | paste -sd, | sed 's/,/, /g')
  say "linked: $linked"
  say "loaded when the window opens: ${loaded:-none}"
  depends=$linked${loaded:+, $loaded}
  local size
  size=$(du -k -s "$root/usr" | cut -f 1)
  mkdir -p "$root/DEBIAN"
  cat > "$root/DEBIAN/control" << EOF
Package: crossmodal
Version: $version
Architecture: amd64
Maintainer: crossmodal developers <crossmodal@users.noreply.github.com>
Installed-Size: $size
Depends: $depends
Recommends: python3-pip, libasound2-plugins, pulseaudio-utils
Section: sound
Priority: optional
Description: speech, text and images in one searchable space
 Live transcription, spoken voice commands, push-to-talk dictation, and one
 library where images and spoken moments are found by what you type, say or
 drop. Every model runs on this computer; the model files are downloaded on
 first use (the Hugging Face hub, or the Python package index through pip).
EOF
  find "$root" -type d -exec chmod 755 {} +
  mkdir -p "$out"
  local deb=$out/crossmodal_${version}_amd64.deb
  dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" > /dev/null
  say "made $deb ($(du -h "$deb" | cut -f 1))"
  desktop-file-validate "packaging/$id.desktop"
  appstreamcli validate --no-net "packaging/$id.metainfo.xml"
  # Errors fail the package; warnings are printed.
  lintian --fail-on error --suppress-tags no-manual-page "$deb"
  say "desktop-file-validate, appstreamcli validate and lintian: no errors"
}

# A manual page from the program's own help, so that `man crossmodal` says what --help says.
man_page() {
  local bin=$1
  printf '.TH CROSSMODAL 1 "%s" "crossmodal %s" "User Commands"\n' "$(date -u -d "@$(git log -1 --format=%ct)" +%F)" "$version"
  printf '.SH NAME\ncrossmodal \\- speech, text and images in one searchable space\n'
  printf '.SH SYNOPSIS\n.B crossmodal\n[\\fICOMMAND\\fR] [\\fIOPTIONS\\fR]\n'
  printf '.SH DESCRIPTION\nWith no command, crossmodal opens its window. The commands:\n.PP\n.nf\n'
  "$bin" --help | sed 's/\\/\\\\/g; s/^\./\\\&./'
  printf '.fi\n'
}

check_deb() {
  local deb=${1:?usage: scripts/package.sh check-deb FILE}
  [ "$(id -u)" -eq 0 ] || { echo "check-deb installs a package: run it as root" >&2; return 1; }
  if dpkg-query -W -f='${Status}' crossmodal 2> /dev/null | grep -q "install ok installed"; then
    echo "crossmodal is already installed here: not touching it" >&2
    return 1
  fi
  need_packages xvfb xauth xdotool
  local files work
  work=$(mktemp -d)
  files=$(dpkg-deb -c "$deb" | awk '{ print substr($6, 2) }' | grep -v '/$')
  say "installing $deb with apt"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$(realpath "$deb")" > "$work/apt.log" 2>&1 \
    || { cat "$work/apt.log"; return 1; }
  local ok=1
  command -v crossmodal | grep -qx /usr/bin/crossmodal || { echo "crossmodal is not on PATH" >&2; ok=0; }
  say "crossmodal status"
  crossmodal status || ok=0
  say "crossmodal transcribe (public clip)"
  local words
  words=$(crossmodal transcribe --format txt "${CROSSMODAL_EVAL:-$cache/eval}/speech/librivox_0880.wav") || ok=0
  echo "$words"
  # "he was not an ill disposed young man": whisper-tiny.en hears "ill disposed" otherwise.
  grep -qi "was not an .*young man" <<< "$words" || { echo "the transcript is not the clip's sentence" >&2; ok=0; }
  say "the window, started as the desktop entry says"
  local exec
  exec=$(sed -n 's/^Exec=//p' "/usr/share/applications/$id.desktop")
  if ! xvfb-run -a -s "-screen 0 1280x800x24" bash -c "
      $exec & app=\$!
      found=0
      for _ in \$(seq 60); do
        xdotool search --name '^crossmodal\$' > /dev/null 2>&1 && { found=1; break; }
        kill -0 \$app 2> /dev/null || break
        sleep 1
      done
      kill \$app 2> /dev/null; wait \$app 2> /dev/null
      [ \$found = 1 ]"; then
    echo "the window did not open from the desktop entry's Exec ($exec)" >&2
    ok=0
  fi
  say "removing"
  DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq crossmodal > "$work/apt.log" 2>&1 \
    || { cat "$work/apt.log"; ok=0; }
  local left=0
  while read -r f; do
    [ -e "$f" ] && { echo "left behind after apt remove: $f" >&2; left=1; }
  done <<< "$files"
  dpkg-query -W -f='${Status}' crossmodal 2> /dev/null | grep -q "install ok installed" \
    && { echo "still installed" >&2; left=1; }
  rm -rf "$work"
  [ "$ok" = 1 ] && [ "$left" = 0 ] || return 1
  say "installed, ran (status, transcription, window) and removed cleanly"
}

# The DLLs a Windows program imports that are not Windows' own: MinGW's runtime, searched for in
# the cross compilers' folders, and what those import in turn.
mingw_dlls() {
  local exe=$1 dirs dll found
  dirs=("$(dirname "$(x86_64-w64-mingw32-g++-posix -print-libgcc-file-name)")" /usr/x86_64-w64-mingw32/lib)
  x86_64-w64-mingw32-objdump -p "$exe" | sed -n 's/^\s*DLL Name: //p' | while read -r dll; do
    for d in "${dirs[@]}"; do
      if [ -f "$d/$dll" ]; then
        echo "$d/$dll"
        mingw_dlls "$d/$dll"
        break
      fi
    done
  done | sort -u
}

windows() {
  local out=${1:-dist}
  need_packages nsis zip imagemagick
  local exe stage base
  scripts/windows_build.sh --release
  exe=${CARGO_TARGET_DIR:-$CROSSMODAL_ROOT/target}-windows/x86_64-pc-windows-gnu/release/crossmodal.exe
  base=crossmodal-$version-windows-x86_64
  stage=$(mktemp -d)/$base
  mkdir -p "$stage" "$out"
  cp "$exe" "$stage/"
  x86_64-w64-mingw32-strip "$stage/crossmodal.exe"
  mingw_dlls "$exe" | while read -r dll; do
    cp "$dll" "$stage/"
    x86_64-w64-mingw32-strip --strip-unneeded "$stage/$(basename "$dll")"
  done
  convert packaging/icons/{16x16,32x32,48x48,256x256}/$id.png "$stage/crossmodal.ico"
  {
    echo "crossmodal $version for 64-bit Windows 10 and 11"
    echo
    echo "Run crossmodal.exe for the window, or crossmodal.exe --help in a terminal for the command line."
    echo "Models are fetched on first use into your own folder (crossmodal.exe models list)."
  } | sed 's/$/\r/' > "$stage/README.txt"
  say "DLLs beside the program: $(cd "$stage" && ls ./*.dll | xargs -n1 basename | tr '\n' ' ')"
  out=$(realpath "$out")
  makensis -V2 -DVERSION="$version" -DSTAGE="$stage" -DOUTFILE="$out/$base-setup.exe" packaging/windows/crossmodal.nsi
  rm -f "$out/$base.zip"
  (cd "$(dirname "$stage")" && zip -qr "$out/$base.zip" "$base")
  rm -rf "$(dirname "$stage")"
  say "made $out/$base-setup.exe and $out/$base.zip"
}

check_windows() {
  local setup=${1:?usage: scripts/package.sh check-windows FILE}
  need_packages wine wine64 xvfb xauth xdotool imagemagick mesa-vulkan-drivers
  export WINEPREFIX=$cache/wine WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
  local eval_dir=${CROSSMODAL_EVAL:-$cache/eval} models=${CROSSMODAL_MODELS:-$cache/models}
  local work linux ok=1
  work=$(mktemp -d)
  # The Linux build to compare with: the one this checkout builds.
  linux=${CARGO_TARGET_DIR:-$CROSSMODAL_ROOT/target}/debug/crossmodal
  [ -x "$linux" ] || cargo build --quiet --bin crossmodal
  say "Wine prefix $WINEPREFIX"
  xvfb-run -a wineboot -i > /dev/null 2>&1 || true
  # Wine 8 has no bcryptprimitives.dll (Windows 10's, which Rust's standard library uses): a
  # stand-in for this prefix only (packaging/windows/wine_bcryptprimitives.c).
  local prng="$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll"
  if [ ! -f "$prng" ]; then
    need_packages gcc-mingw-w64-x86-64-posix
    x86_64-w64-mingw32-gcc-posix -O2 -shared -o "$prng" packaging/windows/wine_bcryptprimitives.c -ladvapi32
  fi
  local program="$WINEPREFIX/drive_c/Program Files/crossmodal"
  rm -rf "$program"
  say "installing $(basename "$setup") silently"
  xvfb-run -a wine "$(realpath "$setup")" /S > /dev/null 2>&1
  [ -f "$program/crossmodal.exe" ] || { echo "the installer put no crossmodal.exe in $program" >&2; return 1; }
  local exe="$program/crossmodal.exe"
  win() { CROSSMODAL_MODELS=$(winepath -w "$models") wine "$exe" "$@" 2> "$work/stderr" | tr -d '\r'; }
  say "crossmodal.exe status"
  win status || { cat "$work/stderr"; ok=0; }
  say "crossmodal.exe transcribe: the public clips, beside the Linux build"
  local clip wwords lwords
  for clip in $(cd "$eval_dir/speech" && ls ./*.wav | xargs -n1 basename | sed 's/\.wav$//'); do
    wwords=$(win transcribe --format txt "$(winepath -w "$eval_dir/speech/$clip.wav")") || { cat "$work/stderr"; ok=0; }
    lwords=$(CROSSMODAL_MODELS=$models "$linux" transcribe --format txt "$eval_dir/speech/$clip.wav" 2> /dev/null)
    if [ "$(tr -s '[:space:]' ' ' <<< "$wwords" | sed 's/ $//')" = "$(tr -s '[:space:]' ' ' <<< "$lwords" | sed 's/ $//')" ]; then
      echo "  $clip: same words: $wwords"
    else
      echo "  $clip: Windows heard \"$wwords\", Linux \"$lwords\"" >&2
      ok=0
    fi
  done
  say "crossmodal.exe add + search: the public photos"
  local wgal lgal wtop ltop
  wgal=$(winepath -w "$work/windows.gallery")
  lgal=$work/linux.gallery
  win add --gallery "$wgal" "$(winepath -w "$eval_dir/images")" > /dev/null || { cat "$work/stderr"; ok=0; }
  CROSSMODAL_MODELS=$models "$linux" add --gallery "$lgal" "$eval_dir/images" > /dev/null 2>&1
  for query in "an astronaut" "a cup of coffee" "a cat"; do
    wtop=$(win search --gallery "$wgal" --kind image "$query" | grep -m3 -oE '[A-Za-z0-9_]+\.(png|jpg)' | tr '\n' ' ')
    ltop=$(CROSSMODAL_MODELS=$models "$linux" search --gallery "$lgal" --kind image "$query" 2> /dev/null \
      | grep -m3 -oE '[A-Za-z0-9_]+\.(png|jpg)' | tr '\n' ' ')
    if [ -n "$wtop" ] && [ "$wtop" = "$ltop" ]; then
      echo "  \"$query\": $wtop"
    else
      echo "  \"$query\": Windows found \"$wtop\", Linux \"$ltop\"" >&2
      ok=0
    fi
  done
  # wgpu's first choice on Windows, Direct3D 12, needs a shader compiler Wine 8 does not have
  # (D3DCompile: "not implemented"); Vulkan through Wine reaches Mesa's lavapipe here.
  say "the window, under Wine and Xvfb (wgpu on Vulkan)"
  local shot=${WINDOWS_SCREENSHOT:-$work/window.png}
  local winmodels
  winmodels=$(winepath -w "$models")
  # A Wine server started without a display (the commands above, winepath too) would serve the
  # window none.
  wineserver -k 2> /dev/null || true
  if ! xvfb-run -a -s "-screen 0 1280x800x24" bash -c "
      (CROSSMODAL_MODELS='$winmodels' WGPU_BACKEND=vulkan wine '$exe' > /dev/null 2>&1; true) & app=\$!
      found=0
      for _ in \$(seq 90); do
        xdotool search --name '^crossmodal\$' > /dev/null 2>&1 && { found=1; break; }
        kill -0 \$app 2> /dev/null || break
        sleep 1
      done
      [ \$found = 1 ] && sleep 5 && import -window \"\$(xdotool search --name '^crossmodal\$' | head -n 1)\" '$shot'
      wineserver -k; { wait \$app; } 2> /dev/null
      [ \$found = 1 ]"; then
    echo "the window did not open under Wine" >&2
    ok=0
  else
    echo "  screenshot: $shot"
  fi
  say "uninstalling"
  wine "$program/uninstall.exe" /S > /dev/null 2>&1 || true
  for _ in $(seq 60); do [ -e "$program" ] || break; sleep 1; done
  wineserver -w 2> /dev/null || true
  if [ -e "$program" ]; then
    echo "left behind after uninstalling: $(ls -A "$program")" >&2
    ok=0
  fi
  rm -rf "$work"
  [ "$ok" = 1 ] || return 1
  say "installed, ran (status, transcriptions, library search, window) and uninstalled cleanly under Wine"
}

case ${1:-} in
  deb) deb "${2:-}" ;;
  check-deb) check_deb "${2:-}" ;;
  windows) windows "${2:-}" ;;
  check-windows) check_windows "${2:-}" ;;
  *)
    echo "usage: scripts/package.sh deb [DIR] | check-deb FILE | windows [DIR] | check-windows FILE" >&2
    exit 2
    ;;
esac
