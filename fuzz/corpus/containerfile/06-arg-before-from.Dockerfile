ARG BASE=ubuntu
ARG TAG=24.04
ARG VARIANT

FROM ${BASE}:${TAG} AS build
ARG TAG
RUN echo "building on $TAG"

FROM ${BASE}:${TAG}${VARIANT:+-$VARIANT}
COPY --from=build /etc/os-release /tmp/os-release
