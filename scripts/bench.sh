#!/usr/bin/env bash
# `npm run bench`: builds the production bundle, makes sure h2load (HTTP/2 load generator,
# Debian's nghttp2-client) is installed, then runs bench/run.ts, which prints a markdown
# report to stdout (progress on stderr). Bounded: bench/run.ts stops itself after
# BENCH_DEADLINE_S seconds (default 290), and `timeout` backs that up.
# Options are environment variables; see the header of bench/run.ts.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/ensure-h2load.sh

# Node 24 from the project's own devDependency when the machine's default node is older.
export PATH="$PWD/node_modules/.bin:$PATH"

echo "[bench] npm run build" >&2
npm run --silent build >&2

exec timeout --kill-after=10 "${BENCH_TIMEOUT_S:-298}" node bench/run.ts "$@"
