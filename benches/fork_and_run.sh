#!/bin/sh
# Sandboxes and fork, each side by side with a peer measured in the same run
# (hyperfine medians):
#
#  1. fork of a sandbox in which 20 files changed, on images of 10k and of
#     100k files: `fork --dry-run` (the diff: inventories + one walk of the
#     upperdir) and `fork -t` (end to end: a layer and an image), against a
#     full-tree comparison of the same sandbox with its image, which is what
#     snapshotting builders do (one stat walk of the merged tree: a lower
#     bound of their cost, no hashing);
#  2. `boxwright run --rm IMAGE true` against `podman run --rm IMAGE true` on
#     the same image (both without a network).
#
#   benches/fork_and_run.sh            (as root: podman's test configuration needs it)
set -eu
cd "$(dirname "$0")/.."
for t in hyperfine podman; do
    command -v $t >/dev/null || { echo "$t is missing: apt-get install $t" >&2; exit 2; }
done
cargo build --release --locked --quiet
bw=${CARGO_TARGET_DIR:-$PWD/target}/release/boxwright
rootfs-fixtures/make-busybox.sh >/dev/null
work=$(mktemp -d /var/tmp/boxwright-bench.XXXXXX)
pod=$work/podman
mkdir -p "$pod"
sed -e "s#/tmp/boxwright-test-podman#$pod#" tests/testbed/containers.conf > "$pod/containers.conf"
# hyperfine runs commands through sh, where a function would not exist.
podcmd="env CONTAINERS_CONF=$pod/containers.conf podman --root $pod/root --runroot $pod/runroot"
podman() { $podcmd "$@"; }
cleanup() {
    for n in s10000 s100000; do "$bw" --store "$work/store" rm -f "$n" >/dev/null 2>&1 || true; done
    podman system reset -f >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
store="--store $work/store"

for n in 10000 100000; do
    cat > "$work/img$n.toml" <<EOT
[image]
base = "rootfs:$PWD/rootfs-fixtures/busybox.tar"
[[steps]]
run = "mkdir -p /data && cd /data && seq 1 $n | xargs touch && for i in \$(seq 1 200); do echo \$i > /data/c\$i; done"
EOT
    "$bw" $store build -t "img$n" "$work/img$n.toml" >/dev/null 2>&1
    # The sandbox: 20 files changed (10 new, 10 rewritten).
    "$bw" $store run --name "s$n" "img$n" sh -c \
        'for i in $(seq 1 10); do echo new > /data/new$i; echo changed > /data/c$i; done' >/dev/null
    # The peer's input: the sandbox's merged tree, flattened (image + changes).
    mkdir -p "$work/tree$n"
    "$bw" $store save "img$n" -o "$work/img$n.tar" >/dev/null 2>&1
    mkdir -p "$work/oci$n" && tar -xf "$work/img$n.tar" -C "$work/oci$n"
    umoci unpack --rootless --image "$work/oci$n:img$n:latest" "$work/bundle$n" >/dev/null 2>&1 ||
        umoci unpack --image "$work/oci$n:img$n:latest" "$work/bundle$n" >/dev/null
    cp -a "$work/store.state/sandboxes/s$n/upper/." "$work/bundle$n/rootfs/"
done

hyperfine --warmup 2 --runs 10 --export-json "$work/fork.json" \
    -n "fork --dry-run, 10k-file image" "$bw $store fork s10000 --dry-run" \
    -n "fork --dry-run, 100k-file image" "$bw $store fork s100000 --dry-run" \
    -n "fork -t (end to end), 10k-file image" "$bw $store fork s10000 -t f10000" \
    -n "fork -t (end to end), 100k-file image" "$bw $store fork s100000 -t f100000" \
    -n "full-tree stat walk, 10k-file image" "find $work/bundle10000/rootfs -xdev -printf '%p %s %T@ %m\n' > /dev/null" \
    -n "full-tree stat walk, 100k-file image" "find $work/bundle100000/rootfs -xdev -printf '%p %s %T@ %m\n' > /dev/null" \
    >/dev/null

# run: the same image for both.
"$bw" $store save img10000 -o "$work/run.tar" >/dev/null 2>&1
id=$(podman load -q -i "$work/run.tar" | sed -n 's/.*: //p' | tail -n1)
hyperfine --warmup 3 --runs 20 --export-json "$work/run.json" \
    -n "boxwright run --rm IMAGE true" "$bw $store run --rm --network none img10000 true" \
    -n "podman run --rm IMAGE true" "$podcmd run --rm --network none $id true" \
    >/dev/null

python3 - "$work/fork.json" "$work/run.json" <<'PY'
import json, sys
def rows(path):
    return {r["command"]: r["median"] * 1000 for r in json.load(open(path))["results"]}
f, r = rows(sys.argv[1]), rows(sys.argv[2])
print("| fork of a sandbox with 20 changed files | 10k-file image | 100k-file image |")
print("|---|---:|---:|")
for what in ["fork --dry-run", "fork -t (end to end)", "full-tree stat walk"]:
    a, b = f[f"{what}, 10k-file image"], f[f"{what}, 100k-file image"]
    print(f"| {what} | {a:.0f} ms | {b:.0f} ms |")
bw, pm = r["boxwright run --rm IMAGE true"], r["podman run --rm IMAGE true"]
print()
print("| start to exit | median | ratio |")
print("|---|---:|---:|")
print(f"| boxwright run --rm IMAGE true | {bw:.0f} ms | 1.00 |")
print(f"| podman run --rm IMAGE true | {pm:.0f} ms | {pm / bw:.2f}x |")
PY
