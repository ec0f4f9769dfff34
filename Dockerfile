# syntax=docker/dockerfile:1
#
# Steward's API image.
#   docker build -t steward .
#   docker run -p 4000:4000 \
#     -e DATABASE_URL=postgres://user:pass@host:5432/steward \
#     -e TOKEN_SIGNING_KEY=... -e ENCRYPTION_MASTER_KEY=... steward
# NODE_ENV=production: both secrets are required (32 random bytes, base64:
#   node -e "console.log(require('crypto').randomBytes(32).toString('base64'))").
# See docker-compose.yml for PostgreSQL and two replicas sharing it.

ARG NODE_IMAGE=node:20-bookworm-slim

# ---- build: all dependencies, compile, then drop the dev dependencies ----
FROM ${NODE_IMAGE} AS build
# argon2's install script rebuilds its native addon with node-gyp (the shipped prebuild crashes on Node 20).
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# node-gyp uses the image's own headers (/usr/local/include/node) instead of downloading them.
ENV npm_config_nodedir=/usr/local
COPY package.json package-lock.json .npmrc ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY migrations ./migrations
COPY dashboard ./dashboard
COPY graphiql ./graphiql
COPY codegen.ts ./
COPY scripts ./scripts
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund \
 && npm cache clean --force

# ---- runtime: production dependencies (argon2 already compiled above) and dist/ ----
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=4000 \
    STEWARD_HOME=/var/lib/steward
WORKDIR /app
COPY --from=build --chown=root:root /app/package.json ./package.json
COPY --from=build --chown=root:root /app/node_modules ./node_modules
COPY --from=build --chown=root:root /app/dist ./dist
# The code stays root-owned and read-only to the process; the writable place is STEWARD_HOME:
# attachments, and the embedded PostgreSQL's data when no DATABASE_URL is given.
# attachments/ exists in the image so a named volume mounted there starts owned by `node`.
# audit/ likewise: the audit checkpoints and their signing key (docker-compose.yml mounts a volume there).
RUN mkdir -p /var/lib/steward/attachments /var/lib/steward/audit && chown -R node:node /var/lib/steward
USER node
EXPOSE 4000
# /metrics, when METRICS_PORT=9464 (docker-compose.yml sets it; publish it only to your scraper).
EXPOSE 9464
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 4000) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# Node handles SIGTERM itself (graceful shutdown: drains HTTP and WebSockets, closes pools, within 20 s).
# A larger young generation: GC was 30–44% of CPU on the dashboard query with the default.
CMD ["node", "--max-semi-space-size=64", "dist/src/main.js"]
