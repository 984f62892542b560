# syntax=docker/dockerfile:1
# mesh-admission container image: `docker build -t REGISTRY/mesh-admission:TAG .`
# Runs `node dist/cli.js serve` as the numeric non-root user 65532; writes nothing outside
# mounted volumes and /tmp (the cert dir is a volume: an emptyDir or a mounted Secret).
# test/dockerfile.test.ts replays the steps of this file without Docker.

# ---- build: compile the TypeScript sources with the full (dev) dependencies --------------------
FROM node:24-bookworm AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# ---- runtime: production dependencies and the compiled output only ------------------------------
FROM node:24-bookworm-slim AS runtime
# Under steady HTTP/2 load V8's young generation (two semi-spaces, sized from the machine's
# memory unless capped) and the promoted garbage V8 lets pile up in the old generation before
# a full collection are most of the resident memory (`npm run bench` measures it; the
# buffers of HTTP/2 and TLS, outside the heap, stay under 6 MB with 64 streams in flight).
# --max-semi-space-size=4 keeps the semi-spaces at 8 MB in all; --max-old-space-size=128 makes
# V8 collect the old generation early, and long before the pod's 256 Mi limit instead of the
# container being OOM-killed at it. Together they took the bench's HTTP/2 peak from 200-276 MiB
# (16 or 8 MB semi-spaces, no cap) to 113-129 MiB; the CPU cost per request stayed within the
# run-to-run spread of a busy 2-core machine.
# MALLOC_ARENA_MAX=1: glibc gives each thread that allocates (V8's collector and compiler
# helpers, libuv's pool) an arena of its own, and memory freed in one stays resident for it.
# One arena took serve's peak with the caches of 20,000 Services from 124-127 to 117-121 MiB,
# audit's from 118-134 to 114-126 MiB, and the HTTP/2 benchmark's from 136-143 to 132-134 MiB,
# at the same requests per second.
ENV NODE_ENV=production \
    NODE_OPTIONS="--max-semi-space-size=4 --max-old-space-size=128" \
    MALLOC_ARENA_MAX=1 \
    MESH_ADMISSION_CERT_DIR=/var/run/mesh-admission/certs
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
# The default cert dir, owned by the runtime user so `docker run` works without a volume; the
# Helm chart mounts an emptyDir or the certificate Secret here instead.
RUN mkdir -p /var/run/mesh-admission/certs && chown 65532:65532 /var/run/mesh-admission/certs
VOLUME ["/var/run/mesh-admission/certs"]
USER 65532:65532
# 8443: webhook HTTPS; 9090: /healthz, /readyz, /metrics (plain HTTP).
EXPOSE 8443 9090
ENTRYPOINT ["node", "dist/cli.js"]
CMD ["serve"]
