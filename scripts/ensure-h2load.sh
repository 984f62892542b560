#!/usr/bin/env bash
# Installs h2load (HTTP/2 load generator, Debian's nghttp2-client) when it is missing:
# `npm run bench` and `npm run bench:profile` drive the webhook with it.
set -euo pipefail
if ! command -v h2load >/dev/null 2>&1; then
  echo "[bench] installing h2load (nghttp2-client)" >&2
  (apt-get update -qq && apt-get install -y -qq nghttp2-client) >&2
fi
