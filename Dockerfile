# syntax=docker/dockerfile:1
# logout-relay: build the TypeScript in one stage; run only the production dependencies and the
# compiled output, as a non-root user, in the other.
#
# scripts/assemble-runtime.sh builds and assembles the runtime directory; test/deploy/runtime.test.ts
# runs the same script and starts the result with this file's CMD and HEALTHCHECK, so what is tested
# is what ships.
ARG NODE_IMAGE=node:22.23.3-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY scripts ./scripts
RUN sh scripts/assemble-runtime.sh /runtime

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    PORT=8080 \
    HOST=0.0.0.0
WORKDIR /app
# Owned by root and not writable by the service: it needs no file of its own at run time.
COPY --from=build /runtime ./
USER node
EXPOSE 8080
STOPSIGNAL SIGTERM
# Node itself asks /health/alive: the slim image has no curl or wget.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 CMD ["node", "dist/healthcheck.js"]
CMD ["node", "dist/server.js"]
