FROM node:20
ONBUILD ARG NODE_ENV=production
ONBUILD ENV NODE_ENV=$NODE_ENV
ONBUILD RUN --mount=type=cache,target=/root/.npm npm ci
ONBUILD HEALTHCHECK CMD curl -f http://localhost:3000/ || exit 1
