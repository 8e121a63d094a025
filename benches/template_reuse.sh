#!/usr/bin/env bash
# Template reuse: the same toolbox built from scratch, and as a recipe with
# `template = "python-api"` once the template exists, in the local store or
# in a registry only (pulled into a store that lacks it).
#
# Stand-in for the python-api template (Ubuntu and the dev access layer's
# upstream files are not reachable here): a Debian bookworm minbase plus
# three steps (system packages; Python with venv and pip; a venv). The child
# adds two steps (ripgrep; a system git setting). "From scratch" is one recipe
# with all five steps on the minbase. Every timed build runs with --no-cache
# (each step that is the recipe's own runs, as on a first build) and
# --network none: a warm-up build fills the store's apt cache mounts from the
# Debian mirror first, so the timed steps install from the cache offline.
#
# Variants, medians of RUNS runs (RUNS_SCRATCH for the slow one):
#   scratch   minbase + 5 steps, all run
#   local     template = "python-api", boxwright/template-python-api in the store: 2 steps run
#   registry  the same, in a store without the template: pulled from a local
#             docker-registry (--template-registry), unpacked, then 2 steps run
#
#   benches/template_reuse.sh        (as root; needs docker-registry, mmdebstrap, cargo)
#   RUNS=1 RUNS_SCRATCH=1 BOXWRIGHT_BIN=target/debug/boxwright benches/template_reuse.sh   (a quick try)
set -euo pipefail

RUNS=${RUNS:-5}
RUNS_SCRATCH=${RUNS_SCRATCH:-3}
BENCH_DIR=${BENCH_DIR:-/var/tmp/boxwright-bench-template}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
for t in docker-registry mmdebstrap curl python3; do
  command -v "$t" >/dev/null || { echo "missing $t: apt-get install docker-registry mmdebstrap curl python3" >&2; exit 1; }
done

mkdir -p "$BENCH_DIR"
# The bench's own minbase (the tests' copy, if there is one, else mmdebstrap).
MINBASE=${MINBASE:-$BENCH_DIR/minbase.tar}
if [ ! -f "$MINBASE" ]; then
  tests_copy=/var/tmp/boxwright-test-cache/minbase.tar
  if [ -f "$tests_copy" ]; then
    flock /var/tmp/boxwright-test-cache/minbase.lock cp "$tests_copy" "$MINBASE.tmp"
  else
    echo "making a bookworm minbase in $BENCH_DIR (once)..." >&2
    SOURCE_DATE_EPOCH=0 TMPDIR="$BENCH_DIR" mmdebstrap --variant=minbase bookworm "$MINBASE.tmp.tar"
    mv "$MINBASE.tmp.tar" "$MINBASE.tmp"
  fi
  mv "$MINBASE.tmp" "$MINBASE"
fi

if [ -n "${BOXWRIGHT_BIN:-}" ]; then
  BW=$BOXWRIGHT_BIN   # e.g. a debug build, for a quick try with RUNS=1
else
  export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
  cargo build --release --locked --quiet --manifest-path "$ROOT/Cargo.toml"
  BW="$CARGO_TARGET_DIR/release/boxwright"
fi

WORK=$(mktemp -d "$BENCH_DIR/run.XXXXXX")
REG_PID=
cleanup() {
  [ -n "$REG_PID" ] && kill "$REG_PID" 2>/dev/null && wait "$REG_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# The recipes: the template's steps, the child's, and both on the minbase.
APT='env = { DEBIAN_FRONTEND = "noninteractive" }'
TEMPLATE_STEPS="
[[steps]]
run = \"apt-get install -y --no-install-recommends git curl ca-certificates jq\"
$APT
[[steps]]
run = \"apt-get install -y --no-install-recommends python3 python3-venv python3-pip\"
$APT
[[steps]]
run = \"python3 -m venv /opt/venv && /opt/venv/bin/python -m pip --version\"
"
CHILD_STEPS="
[[steps]]
run = \"apt-get install -y --no-install-recommends ripgrep\"
$APT
[[steps]]
run = \"git config --system init.defaultBranch main && echo 'cd /workspace 2>/dev/null || true' > /etc/profile.d/workspace.sh\"
"
BASE="[image]
base = \"rootfs:$MINBASE\"
"
printf '%s%s' "$BASE" "$TEMPLATE_STEPS" > "$WORK/template.toml"
printf '%s%s%s' "$BASE" "$TEMPLATE_STEPS" "$CHILD_STEPS" > "$WORK/scratch.toml"
printf '[image]\ntemplate = "python-api"\n%s' "$CHILD_STEPS" > "$WORK/child.toml"
printf '%s[[steps]]\nrun = "apt-get update && apt-get install --download-only -y --no-install-recommends git curl ca-certificates jq python3 python3-venv python3-pip ripgrep"\n' \
  "$BASE" > "$WORK/warm.toml"

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
H=127.0.0.1:$PORT
cat > "$WORK/registry.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $WORK/registry-storage
http:
  addr: $H
EOF
docker-registry serve "$WORK/registry.yml" >"$WORK/registry.log" 2>&1 &
REG_PID=$!
for _ in $(seq 100); do
  curl -fs "http://$H/v2/" >/dev/null 2>&1 && break
  sleep 0.05
done
printf '[[registry]]\nhost = "%s"\ninsecure = true\n' "$H" > "$WORK/registries.toml"

A="$WORK/a" C="$WORK/c"
bw() { "$BW" --progress plain "$@"; }
quiet() { "$@" >"$WORK/out" 2>&1 || { cat "$WORK/out" >&2; exit 1; }; }

echo "warming the apt cache of the stores (Debian mirror)..." >&2
quiet bw build --store "$A" "$WORK/warm.toml"
echo "building the template and pushing it to $H/bench..." >&2
quiet bw build --store "$A" --network none -t boxwright/template-python-api "$WORK/template.toml"
quiet bw push --store "$A" --registries-conf "$WORK/registries.toml" \
  boxwright/template-python-api "$H/bench/boxwright/template-python-api:latest"
# Store C: the same apt cache, no template.
quiet bw images --store "$C"
cp -a "$A.state/mounts" "$C.state/"

# timed NAME CMD...: appends the wall time in seconds to $WORK/NAME.
timed() {
  local name=$1; shift
  local t0=$EPOCHREALTIME
  "$@" >"$WORK/out" 2>&1 || { cat "$WORK/out" >&2; exit 1; }
  echo "$EPOCHREALTIME $t0" | awk '{printf "%.3f\n", $1 - $2}' >> "$WORK/$name"
}

for run in $(seq "$RUNS"); do
  echo "run $run/$RUNS" >&2
  if [ "$run" -le "$RUNS_SCRATCH" ]; then
    timed scratch bw build --store "$A" --network none --no-cache -t scratch "$WORK/scratch.toml"
  fi
  timed local bw build --store "$A" --network none --no-cache -t child "$WORK/child.toml"
  grep -q "STEP 2/2" "$WORK/out" || { echo "the local child did not run exactly its 2 steps:" >&2; cat "$WORK/out" >&2; exit 1; }
  # Store C loses the template (and whatever only it used) before each run.
  bw rmi --store "$C" child "$H/bench/boxwright/template-python-api:latest" >/dev/null 2>&1 || true
  quiet bw gc --store "$C"
  timed registry bw build --store "$C" --registries-conf "$WORK/registries.toml" \
    --template-registry "$H/bench" --network none --no-cache -t child "$WORK/child.toml"
  grep -q "pulling $H/bench/boxwright/template-python-api:latest" "$WORK/out" \
    || { echo "the registry child did not pull the template:" >&2; cat "$WORK/out" >&2; exit 1; }
done

# The children's first layers are the template's, in both stores.
layers() { "$BW" inspect --store "$1" "$2" | python3 -c 'import json,sys; print(" ".join(l["digest"] for l in json.load(sys.stdin)["manifest"]["layers"]))'; }
tl=$(layers "$A" boxwright/template-python-api)
for s in "$A" "$C"; do
  case "$(layers "$s" child)" in "$tl "*) ;; *) echo "child in $s does not start with the template's layers" >&2; exit 1 ;; esac
done

size=$(du -sb "$WORK/registry-storage" | cut -f1)
med() { sort -n "$WORK/$1" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
s=$(med scratch) l=$(med local) r=$(med registry)
echo "template: minbase + 3 steps ($(( size / 1000000 )) MB compressed in the registry); child: 2 steps; medians"
printf '%-52s %9s %9s\n' variant median speedup
printf '%-52s %8ss %9s\n' "from scratch: one recipe, 5 steps ($RUNS_SCRATCH runs)" "$s" "1.0x"
printf '%-52s %8ss %8sx\n' "template in the store: 2 steps ($RUNS runs)" "$l" "$(awk "BEGIN {printf \"%.1f\", $s / $l}")"
printf '%-52s %8ss %8sx\n' "template pulled from a registry: 2 steps ($RUNS runs)" "$r" "$(awk "BEGIN {printf \"%.1f\", $s / $r}")"
