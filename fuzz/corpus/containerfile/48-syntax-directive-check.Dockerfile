# syntax=docker/dockerfile:1
# check=skip=JSONArgsRecommended;error=true

# An ordinary comment after the directives.
FROM alpine
CMD echo hi
