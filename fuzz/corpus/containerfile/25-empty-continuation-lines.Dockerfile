FROM debian:bookworm
RUN apt-get update && \

    apt-get install -y vim && \

    rm -rf /var/lib/apt/lists/*
