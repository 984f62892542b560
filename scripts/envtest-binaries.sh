#!/usr/bin/env bash
# Prints (last line of stdout) a directory holding `kube-apiserver`, `etcd` and
# `kubectl` for the e2e tests (test/e2e/control-plane.ts).
#
#  - If KUBEBUILDER_ASSETS is set and holds all three, it is printed as is.
#  - Otherwise the binaries are built from their published Go modules (Go module
#    proxy only, no GitHub downloads) at the versions pinned below, into
#      ${XDG_CACHE_HOME:-$HOME/.cache}/mesh-admission/envtest/<k8s>-etcd<etcd>/
#    and reused from there on later runs (each binary must exist and report the
#    pinned version).
#
# Measured wall clock on a 2-core machine (Go 1.26.8):
#   first build, empty Go build cache:            ~5 min  (298 s; 8.5 min with
#                                                 another Go build competing)
#   rebuild, warm Go build cache (link only):     ~18 s
#   cached run (binaries already installed):      ~0.1 s
# The Go build cache is the default one (note that Go, like this script, puts it
# under $XDG_CACHE_HOME when that is set).
#
# Usage: scripts/envtest-binaries.sh [--no-build]
#   --no-build  only report: exit 3 if the binaries are not already available.
#
# Progress goes to stderr. Exit codes: 0 ok, 1 build failure, 2 Go (or flock)
# missing, 3 not cached and --no-build given.
# Safe to run concurrently: builds are serialised with flock on a lock file in
# the cache directory, and installed atomically (built into a temp dir, then
# renamed into place).
set -euo pipefail

# ---- pinned versions ---------------------------------------------------------
K8S_VERSION="${ENVTEST_K8S_VERSION:-v1.37.2}"     # k8s.io/kubernetes (latest 1.37 patch on the proxy)
ETCD_VERSION="${ENVTEST_ETCD_VERSION:-v3.6.16}"   # go.etcd.io/etcd/server/v3 (latest 3.6 patch on the proxy)
# ------------------------------------------------------------------------------

NO_BUILD=0
for arg in "$@"; do
  case "$arg" in
    --no-build) NO_BUILD=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
    *) echo "unknown argument: $arg" >&2; exit 64 ;;
  esac
done

# Staging modules are published as v0.<minor>.<patch> for v1.<minor>.<patch>.
STAGING_VERSION="v0.${K8S_VERSION#v1.}"
BINARIES=(kube-apiserver etcd kubectl)

START_SECONDS=$SECONDS
LOG_PREFIX=envtest-binaries
# shellcheck source=lib/build-cache.sh
source "$(dirname "$0")/lib/build-cache.sh"

has_all() {
  local dir=$1 b
  [[ -n "$dir" && -d "$dir" ]] || return 1
  for b in "${BINARIES[@]}"; do [[ -x "$dir/$b" ]] || return 1; done
}

# True when every binary in $1 exists, runs, and reports the pinned version.
verify() {
  local dir=$1 out
  has_all "$dir" || return 1
  out=$("$dir/kube-apiserver" --version 2>&1) || return 1
  [[ "$out" == "Kubernetes $K8S_VERSION" ]] || { log "kube-apiserver reports '$out', want Kubernetes $K8S_VERSION"; return 1; }
  out=$("$dir/kubectl" version --client 2>&1) || return 1
  [[ "$out" == *"Client Version: $K8S_VERSION"* ]] || { log "kubectl reports '$out', want $K8S_VERSION"; return 1; }
  out=$("$dir/etcd" --version 2>&1) || return 1
  [[ "$out" == *"etcd Version: ${ETCD_VERSION#v}"* ]] || { log "etcd reports '$out', want ${ETCD_VERSION#v}"; return 1; }
}

if [[ -n "${KUBEBUILDER_ASSETS:-}" ]]; then
  if has_all "$KUBEBUILDER_ASSETS"; then
    log "using KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS"
    printf '%s\n' "$KUBEBUILDER_ASSETS"
    exit 0
  fi
  log "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS lacks one of: ${BINARIES[*]}; falling back to the cache"
fi

CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/mesh-admission/envtest"
NAME="${K8S_VERSION}-etcd${ETCD_VERSION}"
DEST="$CACHE_ROOT/$NAME"

exit_if_verified "$DEST" "$DEST" cached

[[ $NO_BUILD == 0 ]] || die "no valid binaries in $DEST and --no-build given (run scripts/envtest-binaries.sh to build them)" 3
command -v go >/dev/null 2>&1 || die "Go toolchain not found in PATH; cannot build ${BINARIES[*]} (set KUBEBUILDER_ASSETS instead)" 2
take_build_lock "$CACHE_ROOT" "$NAME" 7200
# Someone else may have finished the build while we waited.
exit_if_verified "$DEST" "$DEST" "cached (built by a concurrent run)"

make_build_dir "$CACHE_ROOT" "$NAME"
TMP=$BUILD_TMP
mkdir -p "$TMP/bin" "$TMP/k8s" "$TMP/etcd"

export GOFLAGS=-mod=mod CGO_ENABLED=0 GOWORK=off GO111MODULE=on
log "go: $(go version); building into $TMP (k8s $K8S_VERSION, etcd $ETCD_VERSION)"

# ---- kube-apiserver + kubectl -------------------------------------------------
t0=$SECONDS
K8S_JSON=$(cd "$TMP" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION") \
  || die "go mod download k8s.io/kubernetes@$K8S_VERSION failed: $K8S_JSON"
K8S_GOMOD=$(sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p' <<<"$K8S_JSON")
K8S_INFO=$(sed -n 's/^[[:space:]]*"Info": "\(.*\)",\{0,1\}$/\1/p' <<<"$K8S_JSON")
[[ -f "$K8S_GOMOD" ]] || die "could not locate go.mod of k8s.io/kubernetes@$K8S_VERSION"
log "downloaded k8s.io/kubernetes@$K8S_VERSION in $((SECONDS - t0))s"

# Every module that k8s.io/kubernetes replaces with ./staging/src/... is
# published as its own module at $STAGING_VERSION; replace directives of a
# dependency are ignored, so the temp main module must repeat them.
mapfile -t STAGING < <(go mod edit -json "$K8S_GOMOD" \
  | tr -d ' \t\n' | grep -o '"Old":{"Path":"[^"]*"},"New":{"Path":"\./staging/[^"]*"' \
  | sed 's/^"Old":{"Path":"\([^"]*\)".*/\1/' | sort -u)
if [[ ${#STAGING[@]} -eq 0 ]]; then
  # Fallback for an unexpected JSON layout: read the go.mod text.
  mapfile -t STAGING < <(sed -n 's#^[[:space:]]*\(k8s\.io/[^[:space:]]*\)[[:space:]]*=>[[:space:]]*\./staging/.*#\1#p' "$K8S_GOMOD" | sort -u)
fi
[[ ${#STAGING[@]} -gt 0 ]] || die "found no ./staging replace directives in $K8S_GOMOD"
log "replacing ${#STAGING[@]} staging modules with $STAGING_VERSION"

GO_LINE=$(grep -m1 '^go ' "$K8S_GOMOD" || true)
{
  echo "module mesh-admission.local/envtest-k8s"
  echo
  echo "${GO_LINE:-go 1.25.0}"
  grep '^godebug ' "$K8S_GOMOD" || true
  echo
  echo "require k8s.io/kubernetes $K8S_VERSION"
  echo
  echo "replace ("
  for m in "${STAGING[@]}"; do echo "	$m => $m $STAGING_VERSION"; done
  echo ")"
} >"$TMP/k8s/go.mod"

BUILD_DATE=$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "$K8S_INFO" 2>/dev/null || true)
[[ -n "$BUILD_DATE" ]] || BUILD_DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
MAJOR=${K8S_VERSION#v}; MAJOR=${MAJOR%%.*}
MINOR=${K8S_VERSION#v*.}; MINOR=${MINOR%%.*}
LDFLAGS="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  LDFLAGS+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=$MAJOR -X $pkg.gitMinor=$MINOR"
  LDFLAGS+=" -X $pkg.gitTreeState=archive -X $pkg.buildDate=$BUILD_DATE"
done

t0=$SECONDS
log "building kube-apiserver and kubectl (~5 min on 2 cores with a cold Go build cache, seconds when warm)"
(cd "$TMP/k8s" && go build -trimpath -ldflags "$LDFLAGS" -o "$TMP/bin/" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl) \
  || die "building kube-apiserver/kubectl failed (module in $TMP/k8s)"
log "built kube-apiserver and kubectl in $((SECONDS - t0))s"

# ---- etcd -------------------------------------------------------------------
# The etcd binary's main (go.etcd.io/etcd/v3, the repository root module) only
# calls etcdmain.Main and carries ./-relative replace directives, so build an
# equivalent main against the published server module instead.
t0=$SECONDS
cat >"$TMP/etcd/go.mod" <<EOF
module mesh-admission.local/envtest-etcd

go 1.24

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
EOF
cat >"$TMP/etcd/main.go" <<'EOF'
// Command etcd is the etcd server, built from go.etcd.io/etcd/server/v3.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
EOF
log "building etcd $ETCD_VERSION"
(cd "$TMP/etcd" && go mod tidy >&2 && go build -trimpath -ldflags "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=${ETCD_VERSION}" -o "$TMP/bin/etcd" .) \
  || die "building etcd failed (module in $TMP/etcd)"
log "built etcd in $((SECONDS - t0))s"

# ---- install ------------------------------------------------------------------
verify "$TMP/bin" || die "freshly built binaries fail the version check"
install_build "$TMP/bin" "$DEST"
log "installed into $DEST (total $((SECONDS - START_SECONDS))s)"
printf '%s\n' "$DEST"
