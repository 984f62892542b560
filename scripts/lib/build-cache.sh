# Shared by the scripts that build test binaries into a cache outside the repo
# (envtest-binaries.sh, istio-oracle.sh): progress lines, serialised builds and
# atomic installs. Sourced; the caller sets LOG_PREFIX and START_SECONDS=$SECONDS.

log() { printf '[%s +%ss] %s\n' "$LOG_PREFIX" "$((SECONDS - START_SECONDS))" "$*" >&2; }
die() { log "ERROR: $1"; exit "${2:-1}"; }

# When the caller's verify() accepts DIR: says so (HOW: "cached", ...), prints
# RESULT (the last line of stdout, what the caller's callers read) and exits.
exit_if_verified() {
  local dir=$1 result=$2 how=$3
  verify "$dir" || return 0
  log "$how: $result"
  printf '%s\n' "$result"
  exit 0
}

# Takes the build lock of cache entry NAME in ROOT (file descriptor 9, held until
# the script exits), waiting at most SECONDS for a concurrent build to finish.
take_build_lock() {
  local root=$1 name=$2 seconds=$3
  command -v flock >/dev/null 2>&1 || die "flock not found in PATH" 2
  mkdir -p "$root"
  exec 9>"$root/.$name.lock"
  if ! flock -n 9; then
    log "another build holds $root/.$name.lock; waiting (up to ${seconds}s)"
    flock -w "$seconds" 9 || die "timed out waiting for the build lock"
  fi
}

# Sets BUILD_TMP to a fresh directory in ROOT for building entry NAME, removed on exit.
make_build_dir() {
  BUILD_TMP=$(mktemp -d "$1/.build-$2.XXXXXX")
  # shellcheck disable=SC2064 # the path is fixed now, on purpose
  trap "rm -rf '$BUILD_TMP'" EXIT
}

# Moves the built directory BUILT to DEST in one rename, setting aside whatever
# was there (stale or broken) into BUILD_TMP, which is removed on exit.
install_build() {
  local built=$1 dest=$2
  if [[ -e "$dest" ]]; then
    mv "$dest" "$BUILD_TMP/old"
  fi
  mv "$built" "$dest"
}
