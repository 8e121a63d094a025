FROM alpine
RUN ["sh", "-c", \
     "echo one && echo two"]
ENTRYPOINT [ \
  "/usr/bin/env", \
  "python3" \
]
