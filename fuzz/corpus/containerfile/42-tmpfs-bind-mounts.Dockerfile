FROM alpine
RUN --mount=type=tmpfs,target=/tmp,size=100m \
    --mount=type=bind,source=scripts,target=/scripts,readonly \
    sh /scripts/build.sh
RUN --mount=type=bind,from=alpine:3.19,source=/etc,target=/old-etc,rw ls /old-etc
