#!/usr/bin/env bash
# The builds that take too long to make on every CI run (the GPU builds, the Debian package and
# the fuzz run, whose instrumented build is a build of everything; the Windows build joins them
# in .ci/inputs when it exists): each runs only when the content of
# its inputs (.ci/inputs) differs from what it last passed with.
#
#   scripts/builds.sh status             each build: due or not, and why
#   scripts/builds.sh digest NAME        the digest of a build's inputs as they are now
#   scripts/builds.sh run NAME…          runs those builds' checks; a pass is recorded
#   scripts/builds.sh light-check NAME   the lighter check that vouches for a due build whose
#                                        full build does not fit in CI, when only the program's
#                                        own code changed since its last pass
#   scripts/builds.sh ci SECONDS         CI: runs the due builds, longest waiting first, within
#                                        SECONDS from now; one that cannot finish in time runs
#                                        until then and goes on in the next CI from its build
#                                        folder (cut short: no pass)
#
# A pass is recorded in this machine's cache (CI's own record) and, when the inputs it passed
# with are committed, in .ci/passed/NAME: commit that file and a fresh CI machine knows the
# build passed with those inputs. A build cut short or failed records nothing.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${XDG_CACHE_HOME:-$HOME/.cache}/crossmodal/ci
cd "$root"

# How long a build takes when its build folder is new: estimates for a 2-core machine (earlier
# CI runs spent 25-40 minutes on both together without always finishing); each real pass's time
# is recorded and used instead once there is one.
cold_secs() {
  case $1 in
    vulkan) echo 1500 ;;
    cuda) echo 3000 ;;
    fuzz) echo 1200 ;;
    *) echo 1800 ;;
  esac
}

# Less time than this left in CI: a due build is not started at all.
MIN_PROGRESS_SECS=600

# The check that proves a build.
check() {
  case $1 in
    vulkan | cuda) scripts/gpu_builds.sh "$1" ;;
    fuzz)
      # The fixed fuzz run of ./test.sh (from the committed seeds, fixed runs and random seed):
      # its build instruments every dependency, so it is rebuilt from nothing on a new machine.
      command -v cargo-fuzz > /dev/null || cargo install cargo-fuzz --locked --version 0.13.2
      scripts/fuzz.sh ci
      ;;
    deb)
      # Made, linted, then installed, run and removed on this machine (root, as CI runs).
      local out
      out=$(mktemp -d)
      scripts/package.sh deb "$out" && scripts/package.sh check-deb "$out"/crossmodal_*_amd64.deb
      ;;
    windows)
      # Cross-built with MinGW-w64, packaged (NSIS installer and zip), then installed, run and
      # uninstalled under Wine.
      local out
      out=$(mktemp -d)
      scripts/package.sh windows "$out" && scripts/package.sh check-windows "$out"/crossmodal-*-setup.exe
      ;;
    *) echo "unknown build $1 (.ci/inputs lists: $(builds | tr '\n' ' '))" >&2; return 2 ;;
  esac
}

# The lighter check that vouches for a build whose full build does not fit in CI's time, when
# only the program's own code changed since its last pass (its scripts, Cargo files and
# toolchain as they were then). It fails when the change is one only the full build can judge.
light_check() {
  case $1 in
    vulkan | cuda)
      # The GPU builds compile the Rust the CPU build compiles (./test.sh built and tested it),
      # with whisper.cpp and candle built for the GPU: their C, CUDA and shader code comes from
      # Cargo.lock and the build scripts, unchanged since the last pass. Code compiled only with
      # the GPU feature is what the CPU build does not see: there must be none (`cfg!` branches,
      # compiled in every build, are fine).
      local gated
      gated=$(grep -rnE '#!?\[cfg(_attr)?\(.*feature *= *"'"$1"'"' src || true)
      if [ -n "$gated" ]; then
        echo "$1: code compiled only in the $1 build, which the CPU build does not check:" >&2
        echo "$gated" >&2
        return 1
      fi
      echo "$1: the Rust it compiles is the CPU build's (no code only for $1 in src); its other inputs are as when it last passed"
      ;;
    deb)
      # The package's binary is the tested program built for release; its own files (packaging/,
      # scripts/package.sh) are unchanged since the last pass.
      echo "deb: the packaged program is the one ./test.sh tested; the package's own files are as when it last passed"
      ;;
    windows)
      # The code only Windows compiles (#[cfg(windows)]): checked for the target, which is much
      # faster than the build, the installer and the run under Wine.
      CROSSMODAL_WINDOWS_CARGO=check scripts/windows_build.sh
      ;;
    fuzz)
      # The fuzz targets against the library as it is now.
      (cd fuzz && cargo check --locked --bins)
      ;;
    *) return 2 ;;
  esac
}

# The commit of a build's last real pass (a record whose digest is that of its inputs at the
# commit it names), or nothing.
last_pass_commit() {
  local name=$1 file rec commit
  for file in "$cache/passed-$name" ".ci/passed/$name"; do
    [ -f "$file" ] || continue
    rec=$(cat "$file")
    commit=$(field "$rec" commit)
    git cat-file -e "$commit^{commit}" 2> /dev/null && git merge-base --is-ancestor "$commit" HEAD || continue
    [ "$(digest "$name" "$commit")" = "$(field "$rec" digest)" ] || continue
    echo "$commit"
    return 0
  done
  return 1
}

# True when only the program's own code changed since the build's last pass.
only_program_changed() {
  local commit
  commit=$(last_pass_commit "$1") || return 1
  [ "$(build_digest "$1" "$commit")" = "$(build_digest "$1")" ]
}

builds() { awk '!/^#/ && NF && $1 != "common" { print $1 }' .ci/inputs; }
inputs() { awk -v b="$1" '!/^#/ && ($1 == b || $1 == "common") { for (i = 2; i <= NF; i++) print $i }' .ci/inputs; }

# The digest of a build's inputs: the Rust toolchain (`rustc -V`) and each input file's git blob
# id with its path. Without COMMIT, the files as they are in the working tree (tracked and new
# ones, what .gitignore leaves out aside); with it, as they are in that commit. The same content
# gives the same digest on any machine, and a record's digest can be checked against its commit.
# The program's own code and what it embeds: ./test.sh compiles and tests it on this machine
# before any long build runs. A build whose other inputs (its scripts, the Cargo files, the
# toolchain) are as when it last passed, and only these changed, can be vouched for by a lighter
# check when its full build does not fit in CI's time (`light_check`).
PROGRAM_INPUTS=(src assets packaging/icons)

# The digest of a build's inputs without the program's own code (PROGRAM_INPUTS).
build_digest() { DIGEST_WITHOUT_PROGRAM=1 digest "$@"; }

digest() {
  local name=$1 commit=${2:-} paths p
  mapfile -t paths < <(inputs "$name")
  if [ "${DIGEST_WITHOUT_PROGRAM:-0}" = 1 ]; then
    local kept=()
    for p in "${paths[@]}"; do
      [[ " ${PROGRAM_INPUTS[*]} " == *" $p "* ]] || kept+=("$p")
    done
    paths=("${kept[@]}")
  fi
  {
    rustc -V
    if [ -n "$commit" ]; then
      git ls-tree -r --full-tree "$commit" -- "${paths[@]}" | awk -F '\t' '{ split($1, m, " "); print m[3], $2 }'
    else
      local files=() f
      while IFS= read -r -d '' f; do [ -f "$f" ] && files+=("$f"); done \
        < <(git ls-files -z --cached --others --exclude-standard -- "${paths[@]}")
      [ ${#files[@]} -eq 0 ] || printf '%s\n' "${files[@]}" | git hash-object --stdin-paths \
        | paste -d ' ' - <(printf '%s\n' "${files[@]}")
    fi | LC_ALL=C sort -k 2
  } | sha256sum | cut -c 1-16
}

# A record: "digest=D commit=C by=ci|hand date=YYYY-MM-DD seconds=N". It counts as a pass for the
# tree under test only when D is the digest of its inputs now AND the digest of the same inputs in
# commit C, a commit of this history: a record written by hand, or on a tree with other inputs,
# or for a commit that is not here, is no pass. The machine's own record first, then the
# committed one.
field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p; s/^$2=\([^ ]*\).*/\1/p" <<< " $1" | head -n 1; }
record_for() {
  local name=$1 want=$2 file rec commit
  for file in "$cache/passed-$name" ".ci/passed/$name"; do
    [ -f "$file" ] || continue
    rec=$(cat "$file")
    [ "$(field "$rec" digest)" = "$want" ] || continue
    commit=$(field "$rec" commit)
    if ! git cat-file -e "$commit^{commit}" 2> /dev/null || ! git merge-base --is-ancestor "$commit" HEAD; then
      echo "$file names commit $commit, which is not in this history: not a pass" >&2
      continue
    fi
    if [ "$(digest "$name" "$commit")" != "$want" ]; then
      echo "$file: the inputs at commit $commit are not those its digest says: not a pass" >&2
      continue
    fi
    echo "$file $rec"
    return 0
  done
  return 1
}
latest_record() {
  local name=$1 file
  for file in "$cache/passed-$name" ".ci/passed/$name"; do
    [ -f "$file" ] && { echo "$file $(cat "$file")"; return 0; }
  done
  return 1
}

# Why a build is due, or nothing when it is not.
why_due() {
  local name=$1 d rec refused
  d=$(digest "$name")
  if rec=$(record_for "$name" "$d" 2> /dev/null); then
    echo "not due: its inputs are as when it passed at commit $(field "$rec" commit) on $(field "$rec" date) (${rec%% *})" >&2
    return 1
  fi
  refused=$(record_for "$name" "$d" 2>&1 > /dev/null | paste -sd ';' -) || true
  if [ -n "$refused" ]; then
    echo "a record has these inputs' digest but is no pass ($refused)"
  elif rec=$(latest_record "$name"); then
    echo "inputs changed since it passed at commit $(field "$rec" commit) on $(field "$rec" date)"
  else
    echo "no pass recorded"
  fi
}

record() {
  local name=$1 secs=$2 d commit line
  d=$(digest "$name")
  commit=$(git rev-parse --short=12 HEAD)
  line="digest=$d commit=$commit by=$([ "${CROSSMODAL_CI_HERE:-0}" = 1 ] && echo ci || echo hand) date=$(date -u +%F) seconds=$secs"
  mkdir -p "$cache" && echo "$line" > "$cache/passed-$name"
  local paths
  mapfile -t paths < <(inputs "$name")
  if [ -z "$(git status --porcelain -- "${paths[@]}")" ]; then
    mkdir -p .ci/passed && echo "$line" > ".ci/passed/$name"
    echo "$name: passed in $((secs / 60)) min $((secs % 60)) s; recorded in .ci/passed/$name (commit it)"
  else
    echo "$name: passed in $((secs / 60)) min $((secs % 60)) s with uncommitted inputs: recorded on this machine only"
  fi
}

run_one() {
  local name=$1 limit=${2:-} start rc=0 before
  start=$SECONDS
  # The inputs as the build starts: a pass counts only for what was built.
  before=$(digest "$name")
  if [ -n "$limit" ]; then
    timeout "$limit" "$0" check "$name" || rc=$?
  else
    check "$name" || rc=$?
  fi
  local took=$((SECONDS - start))
  case $rc in
    0)
      if [ "$(digest "$name")" != "$before" ]; then
        echo "$name: passed in $((took / 60)) min, but its inputs changed while it built: not recorded; run it again"
      else
        record "$name" "$took"
      fi
      ;;
    124) echo "$name: cut short after $((took / 60)) min: not a pass; it runs again in a later CI" ;;
    *) echo "$name: FAILED after $((took / 60)) min (exit $rc)" >&2; return 1 ;;
  esac
}

# The time a build is expected to take: its last pass's when its build folder is still here.
expected_secs() {
  local name=$1 rec target=${CARGO_TARGET_DIR:-$root/target} dir
  dir=$target-$name
  [ "$name" = fuzz ] && dir=${CROSSMODAL_FUZZ_TARGET:-$(dirname "$target")/fuzz-target}
  if [ -d "$dir" ] && rec=$(latest_record "$name") && [ -n "$(field "$rec" seconds)" ]; then
    echo $(( $(field "$rec" seconds) + 120 ))
  else
    cold_secs "$name"
  fi
}

case ${1:-status} in
  status)
    for b in $(builds); do
      if why=$(why_due "$b" 2> /dev/null); then
        echo "$b: due: $why"
      else
        why=$(why_due "$b" 2>&1) || true
        echo "$b: $why"
      fi
    done
    ;;
  check)
    check "$2"
    ;;
  light-check)
    light_check "$2"
    ;;
  digest)
    digest "${2:?usage: scripts/builds.sh digest NAME}"
    ;;
  run)
    shift
    [ $# -gt 0 ] || { echo "usage: scripts/builds.sh run NAME… ($(builds | tr '\n' ' '))" >&2; exit 2; }
    for b in "$@"; do run_one "$b"; done
    ;;
  ci)
    budget=${2:?usage: scripts/builds.sh ci SECONDS}
    deadline=$((SECONDS + budget))
    failed=0
    # Longest waiting first: never passed, then the oldest pass; ties in .ci/inputs' order.
    order=$(for b in $(builds); do
      rec=$(latest_record "$b" 2> /dev/null) || rec=
      date=$(field "$rec" date)
      echo "${date:-0000-00-00} $b"
    done | sort -s -k1,1 | awk '{ print $2 }')
    for b in $order; do
      if ! why=$(why_due "$b" 2>&1 > /dev/null); then
        echo "build $b: $why"
        continue
      fi
      why=$(why_due "$b" 2> /dev/null)
      need=$(expected_secs "$b")
      left=$((deadline - SECONDS))
      if [ "$left" -lt "$MIN_PROGRESS_SECS" ]; then
        echo "build $b: due ($why) but not run: CI has $((left / 60)) min left; not a pass, it runs in a later CI"
        continue
      fi
      if [ "$need" -gt "$left" ] && only_program_changed "$b"; then
        # Only the program's code changed since the last pass: the lighter check vouches for
        # it now, and the full build stays due (it runs when a CI has the time).
        echo "build $b: lighter check: $why, only in the program's own code; the full build takes about $((need / 60)) min and CI has $((left / 60)) min left, so it stays due"
        rc=0
        timeout "$left" "$0" light-check "$b" || rc=$?
        case $rc in
          0) echo "build $b: lighter check passed (not a pass of the full build, which stays due)" ;;
          124) echo "build $b: FAILED: its lighter check did not end in CI's time" >&2; failed=1 ;;
          *) echo "build $b: FAILED: its lighter check failed (exit $rc)" >&2; failed=1 ;;
        esac
        continue
      fi
      if [ "$need" -gt "$left" ]; then
        # Its build folder keeps what was compiled: the next CI goes on from there.
        echo "build $b: running until CI's time is up: $why; it takes about $((need / 60)) min and CI has $((left / 60)) min left, so it may be cut short (no pass) and go on in the next CI"
      else
        echo "build $b: running: $why"
      fi
      run_one "$b" "$left" || failed=1
    done
    exit "$failed"
    ;;
  *)
    echo "usage: scripts/builds.sh status | run NAME… | ci SECONDS" >&2
    exit 2
    ;;
esac
