#!/usr/bin/env bash
# Resource limits: a SIZE_GB layer (default 10 GB of incompressible data) and
# a FILES-file tree (default 1,000,000 empty files in 1000 dirs) built, pushed
# and pulled, with each command's wall time and peak RSS (GNU time, the
# process and the children it waited for) beside a peer measured in the same
# run: `buildah build` for the build, `skopeo copy` for push and pull. The
# point is that memory stays flat whatever the layer's size or file count.
#
#   benches/resource_limits.sh                       (as root: buildah needs it here)
#   SIZE_GB=1 FILES=200000 benches/resource_limits.sh   (a quicker look)
#
# Needs: buildah skopeo docker-registry busybox-static time, about 4 × SIZE_GB
# of free disk under BENCH_DIR (default /var/tmp) and as much again where
# buildah keeps its storage, cargo.
set -euo pipefail
SIZE_GB=${SIZE_GB:-10}
FILES=${FILES:-1000000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
for t in buildah skopeo docker-registry busybox /usr/bin/time curl; do
    command -v "$t" >/dev/null || { echo "missing $t: apt-get install buildah skopeo docker-registry busybox-static time curl" >&2; exit 2; }
done
if [ -z "${BW:-}" ]; then
    cargo build --release --locked --quiet --manifest-path "$ROOT/Cargo.toml"
    BW=${CARGO_TARGET_DIR:-$ROOT/target}/release/boxwright
fi
BUSYBOX=$("$ROOT/rootfs-fixtures/make-busybox.sh")
WORK=$(mktemp -d "${BENCH_DIR:-/var/tmp}/boxwright-limits.XXXXXX")
export STORAGE_DRIVER=vfs
REG_PIDS=()
cleanup() {
    for p in "${REG_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    buildah rmi -f localhost/limits-big localhost/limits-files >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# One registry per tool, so that neither finds the other's blobs there.
start_registry() { # NAME -> sets PORT
    PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    cat > "$WORK/$1.yml" <<EOF
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $WORK/$1-storage}}
http: {addr: 127.0.0.1:$PORT}
EOF
    docker-registry serve "$WORK/$1.yml" >"$WORK/$1.log" 2>&1 &
    REG_PIDS+=($!)
    for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PORT/v2/" >/dev/null && return 0; sleep 0.05; done
    echo "registry did not start" >&2; exit 1
}
start_registry bw; H=127.0.0.1:$PORT
start_registry sk; HS=127.0.0.1:$PORT

mkdir -p "$WORK/big" "$WORK/files"
cat > "$WORK/big/Containerfile" <<EOF
FROM rootfs:$BUSYBOX
RUN dd if=/dev/urandom of=/big bs=1M count=$((SIZE_GB * 1024)) 2>/dev/null
EOF
cat > "$WORK/files/Containerfile" <<EOF
FROM rootfs:$BUSYBOX
RUN for d in \$(seq 1 $((FILES / 1000))); do mkdir -p /t/\$d && cd /t/\$d && seq 1 1000 | xargs touch; done
EOF
# buildah has no rootfs: base; the same busybox tree as a scratch image.
buildah from --name limits-base scratch >/dev/null
buildah add limits-base "$BUSYBOX" / >/dev/null
buildah commit -q limits-base localhost/limits-base >/dev/null
buildah rm limits-base >/dev/null
for c in big files; do
    sed "s|^FROM rootfs:.*|FROM localhost/limits-base|" "$WORK/$c/Containerfile" > "$WORK/$c/Containerfile.buildah"
done

printf '%-8s %-28s %10s %14s\n' CASE COMMAND SECONDS "PEAK RSS (MB)" > "$WORK/table"
# timed CASE NAME CMD...: one row of the table.
timed() {
    local case=$1 name=$2; shift 2
    /usr/bin/time -f "%e %M" -o "$WORK/t" "$@" >"$WORK/out" 2>"$WORK/err" || { cat "$WORK/err" >&2; exit 1; }
    read -r secs kb < "$WORK/t"
    printf '%-8s %-28s %10s %14s\n' "$case" "$name" "$secs" "$((kb / 1024))" >> "$WORK/table"
    echo "$case $name: ${secs}s, $((kb / 1024)) MB" >&2
}

# Each tool's copies are deleted as soon as its side is measured, so the
# disk holds at most about 4 × SIZE_GB at once (store: layer dir and blob;
# a registry; a pulled copy).
for c in big files; do
    timed "$c" "boxwright build" "$BW" --store "$WORK/store" build -q -t "limits-$c" "$WORK/$c"
    timed "$c" "boxwright push" "$BW" --store "$WORK/store" push "limits-$c" "$H/limits/$c:bw"
    timed "$c" "boxwright pull" "$BW" --store "$WORK/pulled" pull "$H/limits/$c:bw"
    rm -rf "$WORK/pulled" "$WORK/pulled.state" "$WORK/bw-storage"
    timed "$c" "skopeo copy (push)" skopeo --insecure-policy copy -q --dest-tls-verify=false \
        "oci:$WORK/store:limits-$c:latest" "docker://$HS/limits/$c:sk"
    timed "$c" "skopeo copy (pull)" skopeo --insecure-policy copy -q --src-tls-verify=false \
        "docker://$HS/limits/$c:sk" "oci:$WORK/skopeo-pulled:$c"
    rm -rf "$WORK/skopeo-pulled" "$WORK/sk-storage" "$WORK/store" "$WORK/store.state"
    timed "$c" "buildah build" buildah build --isolation chroot --pull=never -q -t "localhost/limits-$c" \
        -f "$WORK/$c/Containerfile.buildah" "$WORK/$c"
    buildah rmi -f "localhost/limits-$c" >/dev/null 2>&1 || true
done
buildah rmi -f localhost/limits-base >/dev/null 2>&1 || true
echo "SIZE_GB=$SIZE_GB FILES=$FILES"
cat "$WORK/table"
