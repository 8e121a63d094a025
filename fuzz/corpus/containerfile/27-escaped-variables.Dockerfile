FROM alpine
ENV LITERAL=\$HOME MIXED="\$notexpanded $HOME"
RUN echo \$HOME is not expanded by Docker but by the shell
RUN echo '$HOME' "${HOME}" \${HOME}
LABEL price="\$5"
