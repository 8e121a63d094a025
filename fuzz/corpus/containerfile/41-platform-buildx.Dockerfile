ARG GO_VERSION=1.22
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-alpine AS build
ARG TARGETPLATFORM BUILDPLATFORM TARGETOS TARGETARCH
RUN echo "building on $BUILDPLATFORM for $TARGETPLATFORM"
FROM --platform=linux/amd64 alpine AS amd64-only
FROM alpine
COPY --from=build /etc/hostname /hostname
