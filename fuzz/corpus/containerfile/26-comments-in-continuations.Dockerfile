FROM ubuntu:22.04
RUN apt-get update && apt-get install -y \
    # compilers
    gcc \
    g++ \
    # tools
    make \
    cmake \
  # cleanup below
  && rm -rf /var/lib/apt/lists/*
