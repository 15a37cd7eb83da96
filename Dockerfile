# syntax=docker/dockerfile:1
# headroom image: build with the full toolchain, ship only the compiled agent and its production
# dependencies on a distroless Node.js base (no shell, no package manager), as UID 65532.
#
#   docker build -t registry.example.com/headroom:0.1.0 .
#
# test/e2e/image.test.ts rebuilds the runtime stage's file layout without a container engine and runs
# the agent from it as UID 65532.

# 1. build: compile TypeScript to dist/agent.
FROM node:22-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# Scripts skipped here: "prepare" runs tsc, and the sources are not copied yet.
RUN npm ci --ignore-scripts
COPY tsconfig.json ./
COPY agent ./agent
RUN npm run build

# 2. production dependencies only. --ignore-scripts again: "prepare" would run tsc, which is a dev
# dependency and is not installed here.
FROM node:22-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force

# 3. runtime. The distroless Node.js image's entrypoint is node, so CMD is the script.
FROM gcr.io/distroless/nodejs22-debian12:nonroot
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="headroom" \
      org.opencontainers.image.description="Memory-profiling sidecar for Kubernetes: working set vs page cache, unreclaimable memory, PSI, OOM kills, and a warning before the OOMKill, as Prometheus metrics." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="gcr.io/distroless/nodejs22-debian12:nonroot"
ENV NODE_ENV=production
WORKDIR /app
# package.json is needed at run time: "type": "module" makes dist/*.js ES modules, and the agent
# reads its version from it.
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist/agent ./dist/agent
COPY package.json ./
# Numeric, so Kubernetes can verify runAsNonRoot without a passwd lookup. In a pod, set runAsUser to
# the app's UID instead (see deploy/kustomize/components/headroom).
USER 65532:65532
EXPOSE 9847
# Node flags, measured with scripts/bench.mjs (docs/benchmarks.md): --lite-mode (no optimizing JIT:
# less code memory, and less CPU for this steady, tiny workload), a 1 MiB young generation, and a
# heap cap well above what the agent uses. --no-expose-wasm: lite mode turns WebAssembly off anyway,
# and without it V8 prints a non-JSON warning line into the JSON log at every start.
CMD ["--lite-mode", "--no-expose-wasm", "--max-semi-space-size=1", "--max-old-space-size=64", "dist/agent/main.js"]
