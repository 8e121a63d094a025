FROM alpine AS one
RUN echo 1 > /one
FROM alpine AS Two
RUN echo 2 > /two
FROM alpine
COPY --from=0 /one /one
COPY --from=two /two /two
COPY --from=1 /two /two-again
