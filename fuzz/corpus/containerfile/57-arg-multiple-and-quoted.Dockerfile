ARG A=1 B="two words" C
FROM alpine
ARG A
ARG D='single quoted' E=
RUN echo "$A $B $D"
