#!/usr/bin/env bash
# Registry push/pull benchmark: boxwright's registry client side by side with
# skopeo, against a local docker-registry (distribution 2.8) on 127.0.0.1.
#
# Image: a Debian bookworm minbase (mmdebstrap) plus generated data, ~280 MB
# uncompressed, as an OCI layout made with umoci (cached in $BENCH_DIR).
# Per run, each tool gets a fresh registry and does:
#   first push  -> repo a      (all blobs uploaded)
#   re-push     -> repo a      (all blobs present)
#   second repo -> repo b      (boxwright mounts; skopeo per its own cache)
#   pull        <- repo a      (into an empty OCI layout)
# Prints medians of RUNS runs (default 5) and peak RSS.
# BIG=1 also pushes and pulls an image with one 1 GB layer, for peak memory.
#
# Needs: docker-registry skopeo umoci mmdebstrap (apt-get install ...), cargo.
set -euo pipefail

RUNS=${RUNS:-5}
BENCH_DIR=${BENCH_DIR:-/var/tmp/boxwright-bench-registry}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
for t in docker-registry skopeo umoci mmdebstrap /usr/bin/time; do
  command -v "$t" >/dev/null || { echo "missing $t: apt-get install docker-registry skopeo umoci mmdebstrap time" >&2; exit 1; }
done

mkdir -p "$BENCH_DIR"
LAYOUT="$BENCH_DIR/layout"
if [ ! -f "$LAYOUT/index.json" ]; then
  echo "building the bench image in $BENCH_DIR (once)..." >&2
  if [ ! -f "$BENCH_DIR/base.tar" ]; then
    SOURCE_DATE_EPOCH=1700000000 TMPDIR="$BENCH_DIR" mmdebstrap --variant=minbase bookworm "$BENCH_DIR/base.tar"
  fi
  # ~110 MB of generated data: half incompressible, half text.
  rm -rf "$BENCH_DIR/data" && mkdir -p "$BENCH_DIR/data/opt/gen"
  head -c 55000000 /dev/urandom > "$BENCH_DIR/data/opt/gen/random.bin"
  seq 1 1900000 | sed "s/$/ boxwright bench line/" > "$BENCH_DIR/data/opt/gen/text.txt"
  tar -C "$BENCH_DIR/data" -cf "$BENCH_DIR/data.tar" opt
  rm -rf "$LAYOUT"
  umoci init --layout "$LAYOUT"
  umoci new --image "$LAYOUT:bench"
  umoci raw add-layer --image "$LAYOUT:bench" "$BENCH_DIR/base.tar"
  umoci raw add-layer --image "$LAYOUT:bench" "$BENCH_DIR/data.tar"
  umoci config --image "$LAYOUT:bench" --config.cmd /bin/bash --os linux --architecture amd64
  umoci gc --layout "$LAYOUT"
fi

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
cargo build --release --example registry_bench --manifest-path "$ROOT/Cargo.toml" >&2
BW="$CARGO_TARGET_DIR/release/examples/registry_bench"

WORK=$(mktemp -d "$BENCH_DIR/run.XXXXXX")
REG_PID=
cleanup() {
  [ -n "$REG_PID" ] && kill "$REG_PID" 2>/dev/null && wait "$REG_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

start_registry() {
  [ -n "$REG_PID" ] && { kill "$REG_PID"; wait "$REG_PID" 2>/dev/null || true; }
  rm -rf "$WORK/storage"
  PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  cat > "$WORK/registry.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $WORK/storage
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$PORT
EOF
  docker-registry serve "$WORK/registry.yml" >"$WORK/registry.log" 2>&1 &
  REG_PID=$!
  for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$PORT/v2/" >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "registry did not start" >&2; cat "$WORK/registry.log" >&2; exit 1
}

# timed NAME CMD...: appends "seconds peak_kb" to $WORK/NAME, echoes the tool's stdout to stderr.
timed() {
  local name=$1; shift
  /usr/bin/time -f "%e %M" -o "$WORK/t" "$@" > "$WORK/out" 2>"$WORK/err" || { cat "$WORK/err" >&2; exit 1; }
  cat "$WORK/t" >> "$WORK/$name"
  [ -s "$WORK/out" ] && echo "  $name: $(cat "$WORK/out")" >&2 || true
}

SK="skopeo --insecure-policy"
for run in $(seq "$RUNS"); do
  echo "run $run/$RUNS" >&2
  start_registry; H=127.0.0.1:$PORT
  export BW_BLOB_CACHE="$WORK/bw-cache-$run.json"
  timed bw_first  "$BW" push "$LAYOUT" bench "$H/bench/a:v1"
  timed bw_repush "$BW" push "$LAYOUT" bench "$H/bench/a:v1"
  timed bw_second "$BW" push "$LAYOUT" bench "$H/bench/b:v1"
  rm -rf "$WORK/pull-bw"
  timed bw_pull   "$BW" pull "$H/bench/a:v1" "$WORK/pull-bw"

  start_registry; H=127.0.0.1:$PORT
  timed sk_first  $SK copy -q --dest-tls-verify=false "oci:$LAYOUT:bench" "docker://$H/bench/a:v1"
  timed sk_repush $SK copy -q --dest-tls-verify=false "oci:$LAYOUT:bench" "docker://$H/bench/a:v1"
  timed sk_second $SK copy -q --dest-tls-verify=false "oci:$LAYOUT:bench" "docker://$H/bench/b:v1"
  rm -rf "$WORK/pull-sk"
  timed sk_pull   $SK copy -q --src-tls-verify=false "docker://$H/bench/a:v1" "oci:$WORK/pull-sk:pulled"
done

# Same content both ways: the pulled manifests match the layout's.
want=$(python3 -c "import json,sys; print([m['digest'] for m in json.load(open('$LAYOUT/index.json'))['manifests']][0])")
for d in pull-bw pull-sk; do
  got=$(python3 -c "import json; print(json.load(open('$WORK/$d/index.json'))['manifests'][-1]['digest'])")
  [ "$got" = "$want" ] || { echo "$d pulled $got, expected $want" >&2; exit 1; }
done

size=$(du -sb "$LAYOUT/blobs" | cut -f1)
echo "image: $(( size / 1000000 )) MB compressed in $LAYOUT; $RUNS runs; medians (peak RSS)"
printf '%-14s %14s %14s\n' step boxwright skopeo
med() { sort -n -k1,1 "$WORK/$1" | awk '{a[NR]=$1; m[NR]=$2} END {i=int((NR+1)/2); printf "%.3fs (%dMB)", a[i], m[i]/1024}'; }
for step in first repush second pull; do
  printf '%-14s %14s %14s\n' "$step" "$(med bw_$step)" "$(med sk_$step)"
done

if [ "${BIG:-0}" = 1 ]; then
  BIGL="$BENCH_DIR/big-layout"
  if [ ! -f "$BIGL/index.json" ]; then
    rm -rf "$BENCH_DIR/big" "$BIGL" && mkdir -p "$BENCH_DIR/big"
    head -c 1000000000 /dev/urandom > "$BENCH_DIR/big/blob.bin"
    tar -C "$BENCH_DIR/big" -cf "$BENCH_DIR/big.tar" blob.bin && rm -rf "$BENCH_DIR/big"
    umoci init --layout "$BIGL" && umoci new --image "$BIGL:big"
    umoci raw add-layer --image "$BIGL:big" "$BENCH_DIR/big.tar" && rm -f "$BENCH_DIR/big.tar"
    umoci config --image "$BIGL:big" --os linux --architecture amd64 && umoci gc --layout "$BIGL"
  fi
  start_registry; H=127.0.0.1:$PORT
  export BW_BLOB_CACHE="$WORK/bw-cache-big.json"
  timed bw_big_push "$BW" push "$BIGL" big "$H/big/a:v1"
  rm -rf "$WORK/pull-big"
  timed bw_big_pull "$BW" pull "$H/big/a:v1" "$WORK/pull-big"
  rm -rf "$WORK/pull-big"
  start_registry; H=127.0.0.1:$PORT
  timed sk_big_push $SK copy -q --dest-tls-verify=false "oci:$BIGL:big" "docker://$H/big/a:v1"
  timed sk_big_pull $SK copy -q --src-tls-verify=false "docker://$H/big/a:v1" "oci:$WORK/pull-big:pulled"
  rm -rf "$WORK/pull-big"
  echo "1 GB layer (one run):"
  printf '%-14s %14s %14s\n' push "$(med bw_big_push)" "$(med sk_big_push)"
  printf '%-14s %14s %14s\n' pull "$(med bw_big_pull)" "$(med sk_big_pull)"
fi
