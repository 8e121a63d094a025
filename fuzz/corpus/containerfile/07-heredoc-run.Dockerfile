# syntax=docker/dockerfile:1.4
FROM ubuntu:24.04
RUN <<EOF
set -eux
apt-get update
apt-get install -y --no-install-recommends jq
rm -rf /var/lib/apt/lists/*
EOF
RUN <<'SCRIPT' bash
echo "no expansion here: $HOME"
SCRIPT
