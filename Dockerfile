# The eob CLI (server, worker, bench, chaos) for docker-compose.yml. TypeScript runs through tsx, which is a
# runtime dependency, so there is no build step. Needs an image registry (node:20-slim), so it is not built
# here; docker/app/Dockerfile (make docker-images) is the registry-free image that make test-docker runs.
FROM node:20-slim

WORKDIR /app
ENV NODE_ENV=production

# Dependencies first, so source edits do not reinstall them. Optional native builds (cpu-features, under
# dockerode's ssh2) may fail without a compiler; npm skips them and nothing here needs them.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

COPY tsconfig.json ./
COPY bin ./bin
COPY src ./src

USER node
ENTRYPOINT ["node", "bin/eob.js"]
CMD ["--help"]
