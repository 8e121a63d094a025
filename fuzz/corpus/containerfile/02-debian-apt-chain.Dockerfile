FROM debian:bookworm-slim

# Build tools in one layer, lists removed in the same layer.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        build-essential \
        ca-certificates \
        curl \
        git \
        pkg-config \
        libssl-dev \
    && rm -rf /var/lib/apt/lists/*

ENV DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8
WORKDIR /src
CMD ["bash"]
