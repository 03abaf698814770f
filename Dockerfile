# syntax=docker/dockerfile:1
# Sluice gateway image: docker build -t sluice . (see README "Deployment").

# --- dependencies: production only; better-sqlite3 compiles here when no prebuilt binary fits.
FROM node:20-bookworm-slim AS deps
WORKDIR /app
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
# npm ci needs every workspace's manifest, even though the gateway does not run the n8n node.
COPY connectors/n8n/package.json connectors/n8n/package.json
ENV SCARF_ANALYTICS=false
RUN npm ci --omit=dev --no-audit --no-fund

# --- runtime: no compiler, no dev dependencies, an unprivileged user.
FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    SLUICE_HOST=0.0.0.0 \
    SLUICE_PORT=8080 \
    SLUICE_DATA_DIR=/data
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json package-lock.json ./
COPY bin ./bin
COPY src ./src
COPY connectors ./connectors
COPY catalog ./catalog
COPY mappings ./mappings
COPY scripts ./scripts
# npm start bundles the gateway into node_modules/.cache (scripts/start.mjs): done here, where
# node_modules is writable; at run time the bundle of the same code is found and imported.
RUN node scripts/start.mjs --build
RUN mkdir -p /data && chown node:node /data
USER node
# The SQLite database and the generated master key file (back both up, or set SLUICE_MASTER_KEY).
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.SLUICE_PORT || 8080) + '/readyz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# What npm start runs; node directly, so SIGTERM reaches the gateway and drains in-flight deliveries.
CMD ["node", "--max-old-space-size=128", "scripts/start.mjs"]
