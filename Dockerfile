# syntax=docker/dockerfile:1
# Servify image: one image, three run modes (DESIGN §2). The entry point is the `servify` CLI:
#   docker run servify api | worker | all | migrate | apps import FILE | keys create ...
# See docker-compose.yml for a complete deployment (Postgres + pgvector, Redis, migrate, api, worker).

ARG NODE_IMAGE=node:24-bookworm-slim

# ---------------------------------------------------------------- build
FROM ${NODE_IMAGE} AS build
WORKDIR /app
ENV CI=true \
    NPM_CONFIG_UPDATE_NOTIFIER=false \
    NPM_CONFIG_FUND=false \
    NPM_CONFIG_AUDIT=false

# Dependencies first, so this layer is reused until the lockfile changes. `npm ci` runs the
# postinstall hook (prisma generate), which needs the schema and prisma.config.ts.
COPY package.json package-lock.json prisma.config.ts ./
COPY prisma/schema.prisma prisma/schema.prisma
COPY scripts/prisma-generate.mjs scripts/prisma-generate.mjs
RUN npm ci

# Sources, copied by name so that a host's node_modules or storage never enters the image.
COPY tsconfig.json ./
COPY prisma prisma
COPY src src
COPY workers workers
# Regenerate the Prisma client from the schema just copied (engine-free; no download needed),
# then drop dev dependencies (vitest, typescript, the `node` binary package ...). The sources run
# through tsx at runtime, so tsx must stay in "dependencies".
RUN node scripts/prisma-generate.mjs \
 && npm prune --omit=dev

# ---------------------------------------------------------------- runtime
FROM ${NODE_IMAGE} AS runtime
WORKDIR /app
ENV NODE_ENV=production \
    PORT=5001 \
    HOST=0.0.0.0 \
    STORAGE_DIR=/data/storage

COPY --from=build /app/node_modules node_modules
COPY --from=build /app/package.json /app/tsconfig.json ./
COPY --from=build /app/prisma prisma
COPY --from=build /app/src src
COPY --from=build /app/workers workers

# `servify ARGS` = `tsx src/cli/main.ts ARGS` (what `npx tsx src/cli/main.ts` runs, without an npm
# process in between: tsx relays SIGTERM to the app, whose ordered shutdown then runs).
RUN printf '#!/bin/sh\nexec /app/node_modules/.bin/tsx /app/src/cli/main.ts "$@"\n' > /usr/local/bin/servify \
 && chmod 0755 /usr/local/bin/servify \
 && mkdir -p /data/storage \
 && chown -R node:node /data

USER node
EXPOSE 5001
ENTRYPOINT ["servify"]
CMD ["all"]
