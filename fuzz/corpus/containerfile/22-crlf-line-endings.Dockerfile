FROM alpine:3.20
RUN apk add --no-cache \
    curl \
    jq
# comment
ENV A=1
COPY . /app
