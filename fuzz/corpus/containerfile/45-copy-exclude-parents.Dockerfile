# syntax=docker/dockerfile:1.7-labs
FROM alpine
COPY --exclude=*.md --exclude=**/testdata . /src/
COPY --parents ./services/*/config.yaml /etc/
COPY --parents=true --exclude=node_modules ./packages/*/package.json /app/
