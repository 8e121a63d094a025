FROM debian:bookworm
MAINTAINER Jane Doe <jane@example.com>
STOPSIGNAL SIGTERM
STOPSIGNAL 9
