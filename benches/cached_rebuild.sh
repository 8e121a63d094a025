#!/bin/sh
# A fully cached rebuild of a 5-step recipe with boxwright, side by side with
# `buildah bud --layers` rebuilding a cached 2-step Containerfile on the same
# busybox base, measured by hyperfine in one run (medians).
#
#   benches/cached_rebuild.sh            (as root: buildah needs it here)
set -eu
cd "$(dirname "$0")/.."
for t in hyperfine buildah; do
    command -v $t >/dev/null || { echo "$t is missing: apt-get install $t" >&2; exit 2; }
done
cargo build --release --locked --quiet
bw=$PWD/target/release/boxwright
rootfs-fixtures/make-busybox.sh >/dev/null
work=$(mktemp -d /var/tmp/boxwright-bench.XXXXXX)
trap 'buildah rm --all >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

cat > "$work/recipe.toml" <<EOT
[image]
base = "rootfs:$PWD/rootfs-fixtures/busybox.tar"
[[steps]]
run = "echo one > /one"
[[steps]]
run = "echo two > /two"
[[steps]]
run = "echo three > /three"
[[steps]]
run = "echo four > /four"
[[steps]]
run = "echo five > /five"
EOT
"$bw" build --store "$work/store" -t bench "$work/recipe.toml" >/dev/null 2>&1

# buildah's base: the same busybox tarball, imported once.
export STORAGE_DRIVER=vfs
buildah --storage-driver vfs from --name bb scratch >/dev/null
buildah --storage-driver vfs add bb rootfs-fixtures/busybox.tar / >/dev/null
buildah --storage-driver vfs commit bb localhost/bench-base >/dev/null
printf 'FROM localhost/bench-base\nRUN echo one > /one\nRUN echo two > /two\n' > "$work/Containerfile"
buildah --storage-driver vfs bud --isolation chroot --layers -q -t bench -f "$work/Containerfile" "$work" >/dev/null

hyperfine --warmup 3 --runs 30 --export-json "$work/result.json" \
    -n "boxwright build (5 steps, all cached)" "$bw build --store $work/store -t bench $work/recipe.toml" \
    -n "buildah bud --layers (2 steps, all cached)" "buildah --storage-driver vfs bud --isolation chroot --layers -q -t bench -f $work/Containerfile $work"
python3 - "$work/result.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
bw, peer = r[0]["median"] * 1000, r[1]["median"] * 1000
print(f"| command | median | ratio |\n|---|---:|---:|")
print(f"| {r[0]['command']} | {bw:.1f} ms | 1.00 |")
print(f"| {r[1]['command']} | {peer:.1f} ms | {peer / bw:.1f}x |")
PY
