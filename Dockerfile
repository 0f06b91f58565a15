# syntax=docker/dockerfile:1
# qwen-sentinel: one image for every subcommand (exporter, remediator, sim, ...).
#
#   docker build -t qwen-sentinel .
#   docker run --rm qwen-sentinel --help
#
# Prometheus, Alertmanager and Grafana run from their own images (docker-compose.yml); so
# `qwen-sentinel stack`, which starts local prometheus/alertmanager binaries, is not meant for
# this image.

# Node 24 LTS, the same release as the `node` devDependency in package.json.
ARG NODE_IMAGE=node:24.21.0-bookworm-slim

# --- build: install everything (npm ci runs the `prepare` script: tsc -p tsconfig.build.json
# compiles src/ to dist/). -------------------------------------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm ci --no-audit --no-fund \
 && test -f dist/cli.js

# --- runtime: production dependencies, the compiled code and the shipped assets. -------------
FROM ${NODE_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` needs the dev dependencies (tsc); dist/ comes from the build stage.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY bin ./bin
COPY prometheus ./prometheus
COPY grafana ./grafana
COPY examples ./examples
# `qwen-sentinel` on PATH, so a remediation command such as [qwen-sentinel, sim, ...] resolves.
RUN chmod 0755 bin/qwen-sentinel.js \
 && ln -s /app/bin/qwen-sentinel.js /usr/local/bin/qwen-sentinel

# The remediator's state directory, owned by the user it runs as (a new named volume mounted
# here takes this ownership).
RUN mkdir -p /var/lib/qwen-sentinel/remediator && chown -R node:node /var/lib/qwen-sentinel
# The official image's unprivileged user (uid 1000); the remediator's children run as it too.
USER node
# exporter, remediator, and the simulator's default port.
EXPOSE 19150 19151 8000
# The exporter on its default address (the image has no curl: Node's fetch). Other subcommands
# bring their own: docker-compose.yml sets one per service (`docker run --health-cmd=...`, or
# `--no-healthcheck`, elsewhere).
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:19150/-/healthy', { signal: AbortSignal.timeout(4000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "/app/bin/qwen-sentinel.js"]
CMD ["--help"]
