#!/usr/bin/env bash
# Prints (last line of stdout) the path of the `istio-oracle` binary that the
# differential test (test/e2e/istio-differential.e2e.ts) compares `check` with.
#
#  - If ISTIO_ORACLE is set and names an executable, it is printed as is.
#  - Otherwise test/istio-oracle/ is built against the istio.io/istio version
#    its go.mod pins (Go module proxy only), into
#      ${XDG_CACHE_HOME:-$HOME/.cache}/mesh-admission/istio-oracle/<version>/
#    and reused from there on later runs, as long as the binary reports that
#    version and was built from the same test/istio-oracle sources (their
#    sha256 is kept beside it).
#
# Measured wall clock on a 2-core machine (Go 1.26.8, CGO_ENABLED=0, -trimpath):
#   first build, empty Go build cache, modules
#   already in the module cache:                   ~2.6 min (156 s, 180% CPU)
#   first build, empty build and module caches
#   (downloads ~640 MB of modules from the proxy):  ~18 min (1071 s, with four other
#                                                  builds and test suites competing:
#                                                  load average 13; 343 s of CPU)
#   rebuild, warm Go build cache (link only):      ~9 s
#   cached run (binary already installed):         ~0.05 s
# Only the packages the program imports are compiled: the analyzers it runs,
# Istio's config model and their dependencies, without cgo.
#
# Usage: scripts/istio-oracle.sh [--no-build]
#   --no-build  only report: exit 3 if the binary is not already available.
#
# Progress goes to stderr. Exit codes: 0 ok, 1 build failure, 2 Go (or flock)
# missing, 3 not cached and --no-build given.
# Safe to run concurrently: builds are serialised with flock on a lock file in
# the cache directory, and installed atomically (built into a temp dir, then
# renamed into place).
set -euo pipefail

NO_BUILD=0
for arg in "$@"; do
  case "$arg" in
    --no-build) NO_BUILD=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
    *) echo "unknown argument: $arg" >&2; exit 64 ;;
  esac
done

SOURCE_DIR="$(cd "$(dirname "$0")/../test/istio-oracle" && pwd)"
# The pinned version is the one go.mod requires: one place to change it.
ISTIO_VERSION=$(sed -n 's/^[[:space:]]*\(require[[:space:]]*\)\{0,1\}istio\.io\/istio \(v[^[:space:]]*\).*/\2/p' "$SOURCE_DIR/go.mod")

START_SECONDS=$SECONDS
LOG_PREFIX=istio-oracle
# shellcheck source=lib/build-cache.sh
source "$(dirname "$0")/lib/build-cache.sh"

[[ -n "$ISTIO_VERSION" ]] || die "no 'require istio.io/istio vX' line in $SOURCE_DIR/go.mod"

if [[ -n "${ISTIO_ORACLE:-}" ]]; then
  [[ -x "$ISTIO_ORACLE" ]] || die "ISTIO_ORACLE=$ISTIO_ORACLE is not an executable file" 2
  log "using ISTIO_ORACLE=$ISTIO_ORACLE"
  printf '%s\n' "$ISTIO_ORACLE"
  exit 0
fi

source_hash() {
  (cd "$SOURCE_DIR" && cat go.mod go.sum ./*.go) | sha256sum | cut -d' ' -f1
}
SOURCE_HASH=$(source_hash)

CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/mesh-admission/istio-oracle"
DEST="$CACHE_ROOT/$ISTIO_VERSION"

# True when $1 holds a binary that runs, reports the pinned version, and was
# built from the current sources.
verify() {
  local dir=$1 out
  [[ -x "$dir/istio-oracle" && -f "$dir/source.sha256" ]] || return 1
  [[ "$(cat "$dir/source.sha256")" == "$SOURCE_HASH" ]] || { log "$dir was built from other sources"; return 1; }
  out=$("$dir/istio-oracle" version 2>&1) || return 1
  [[ "$out" == "$ISTIO_VERSION" ]] || { log "istio-oracle reports '$out', want $ISTIO_VERSION"; return 1; }
}

exit_if_verified "$DEST" "$DEST/istio-oracle" cached

[[ $NO_BUILD == 0 ]] || die "no valid binary in $DEST and --no-build given (run scripts/istio-oracle.sh to build it)" 3
command -v go >/dev/null 2>&1 || die "Go toolchain not found in PATH; cannot build istio-oracle (set ISTIO_ORACLE instead)" 2
take_build_lock "$CACHE_ROOT" "$ISTIO_VERSION" 3600
exit_if_verified "$DEST" "$DEST/istio-oracle" "cached (built by a concurrent run)"

make_build_dir "$CACHE_ROOT" "$ISTIO_VERSION"
TMP=$BUILD_TMP
mkdir -p "$TMP/bin"

# -mod=readonly: go.sum in the repo is the list of what may be downloaded.
export GOFLAGS=-mod=readonly CGO_ENABLED=0 GOWORK=off GO111MODULE=on
log "go: $(go version); building istio-oracle against istio.io/istio@$ISTIO_VERSION (a few minutes on 2 cores with a cold Go build cache, seconds when warm)"
t0=$SECONDS
(cd "$SOURCE_DIR" && go build -trimpath -ldflags "-s -w -X main.istioVersion=$ISTIO_VERSION" -o "$TMP/bin/istio-oracle" .) \
  || die "building istio-oracle failed (sources in $SOURCE_DIR)"
log "built istio-oracle in $((SECONDS - t0))s"
printf '%s\n' "$SOURCE_HASH" >"$TMP/bin/source.sha256"

verify "$TMP/bin" || die "the freshly built binary fails the version check"
install_build "$TMP/bin" "$DEST"
log "installed into $DEST (total $((SECONDS - START_SECONDS))s)"
printf '%s\n' "$DEST/istio-oracle"
