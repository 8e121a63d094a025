from alpine:3.20 as builder
run apk add --no-cache make
copy . /src
workdir /src
run make
from alpine:3.20
copy --from=builder /src/out /usr/bin/out
entrypoint ["/usr/bin/out"]
