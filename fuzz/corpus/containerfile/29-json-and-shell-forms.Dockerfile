FROM alpine
RUN ["/bin/sh", "-c", "echo exec form"]
RUN echo shell form
RUN [ -d /tmp ] && echo "test brackets are shell form"
CMD ["echo", "exec"]
CMD echo shell
ENTRYPOINT ["/bin/sh", "-c"]
ENTRYPOINT exec /bin/sh
