ARG VERSION=1.2.3
FROM alpine
ARG VERSION
ARG FILE=archive.tar.gz
ENV MAJOR=${VERSION%%.*} \
    EXT=${FILE##*.} \
    BASE=${FILE%.tar.gz} \
    NOVER=${VERSION/./-} \
    ALLDASH=${VERSION//./-} \
    DEF=${UNSET:-fallback} \
    ALT=${VERSION:+has-version} \
    REQ=${VERSION:?VERSION must be set}
LABEL version="${VERSION}"
