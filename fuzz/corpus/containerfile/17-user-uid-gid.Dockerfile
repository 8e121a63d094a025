FROM debian:bookworm-slim
ARG UID=1000
ARG GID=1000
RUN groupadd -g ${GID} app && useradd -m -u ${UID} -g ${GID} app
USER ${UID}:${GID}
USER app
USER 1001:0
