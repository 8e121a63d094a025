FROM alpine:3.20
COPY --chown=1000:1000 --chmod=755 bin/ /usr/local/bin/
COPY --link --from=ghcr.io/example/tools:latest /usr/bin/tool /usr/bin/tool
COPY --link=false a.txt b.txt /dest/
COPY ["file with spaces.txt", "/dest dir/"]
COPY *.go go.* /src/
