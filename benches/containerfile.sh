#!/bin/sh
# A 5-instruction Debian Containerfile (apt install, COPY, RUN, ENV, CMD)
# built by boxwright and by `buildah build --layers`, side by side in one
# hyperfine run (medians): cold (--no-cache on both; boxwright's package
# caches are store cache mounts and stay warm, which is the point of them),
# fully cached, and the size of the images' own layers (gzip, as pushed).
#
#   benches/containerfile.sh            (as root: buildah needs it here)
set -eu
cd "$(dirname "$0")/.."
for t in hyperfine buildah mmdebstrap python3; do
    command -v $t >/dev/null || { echo "$t is missing: apt-get install $t" >&2; exit 2; }
done
cargo build --release --locked --quiet
bw=$PWD/target/release/boxwright
work=$(mktemp -d /var/tmp/boxwright-bench.XXXXXX)
export STORAGE_DRIVER=vfs
trap 'buildah rm --all >/dev/null 2>&1 || true; buildah rmi -f localhost/cf-bench localhost/cf-bench-base >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
base=${BOXWRIGHT_TEST_CACHE:-/var/tmp/boxwright-test-cache}/minbase.tar
[ -s "$base" ] || { mkdir -p "$(dirname "$base")"; SOURCE_DATE_EPOCH=0 mmdebstrap --variant=minbase bookworm "$base"; }

# The same Debian rootfs as each tool's base.
printf '[image]\nbase = "rootfs:%s"\n' "$base" > "$work/base.toml"
"$bw" build --store "$work/store" -q -t cf-bench-base "$work/base.toml" >/dev/null
# A copy with the base only (no package caches yet), for truly cold builds.
cp -a "$work/store" "$work/store-base"
buildah from --name deb scratch >/dev/null
buildah add deb "$base" / >/dev/null
buildah commit -q deb localhost/cf-bench-base >/dev/null

mkdir "$work/ctx"
printf '#!/bin/sh\necho "hello from $APP"\n' > "$work/ctx/app.sh"
cat > "$work/ctx/Containerfile" <<'EOF'
ARG BASE
FROM ${BASE}
RUN apt-get update && apt-get install -y --no-install-recommends hello
COPY app.sh /usr/local/bin/app.sh
RUN chmod 755 /usr/local/bin/app.sh && hello > /greeting
ENV APP=bench
CMD ["/usr/local/bin/app.sh"]
EOF
# buildah takes no flag after the context: flags go first, the context last.
bwb="$bw build --store $work/store -q -t cf-bench --build-arg BASE=cf-bench-base"
bub="buildah build --isolation chroot --layers --pull=never -q -t cf-bench --build-arg BASE=localhost/cf-bench-base"
$bwb "$work/ctx" >/dev/null
$bub "$work/ctx" >/dev/null

hyperfine --warmup 1 --runs 5 --export-json "$work/cold.json" \
    -n "boxwright build --no-cache" "$bwb --no-cache $work/ctx" \
    -n "buildah build --layers --no-cache" "$bub --no-cache $work/ctx" \
    -n "boxwright build, fresh store (apt downloads too)" \
    --prepare "rm -rf $work/fresh && cp -a $work/store-base $work/fresh" \
    "$bw build --store $work/fresh -q -t cf-bench --build-arg BASE=cf-bench-base $work/ctx"
hyperfine --warmup 3 --runs 20 --export-json "$work/cached.json" \
    -n "boxwright build (cached)" "$bwb $work/ctx" \
    -n "buildah build --layers (cached)" "$bub $work/ctx"

# Sizes: the layers above the base, gzip-compressed as each tool pushes them
# (boxwright's store is an OCI layout already; buildah's image is pushed to one).
"$bw" --store "$work/store" inspect cf-bench > "$work/bw.json"
buildah push -q localhost/cf-bench "oci:$work/bu-oci:x" >/dev/null
python3 - "$work" <<'PY'
import json, os, sys
w = sys.argv[1]
def layers(layout):
    idx = json.load(open(f"{layout}/index.json"))
    d = idx["manifests"][0]["digest"].split(":")[1]
    m = json.load(open(f"{layout}/blobs/sha256/{d}"))
    return [l["size"] for l in m["layers"]]
bw = [l["size"] for l in json.load(open(f"{w}/bw.json"))["manifest"]["layers"]]
bu = layers(f"{w}/bu-oci")
bw_own, bu_own = sum(bw[1:]), sum(bu[1:])
for name in ("cold", "cached"):
    r = json.load(open(f"{w}/{name}.json"))["results"]
    a, b = r[0]["median"] * 1000, r[1]["median"] * 1000
    print(f"{name:>6}: boxwright {a:8.1f} ms  buildah {b:8.1f} ms  ratio {a / b:.2f}x")
    if len(r) > 2:
        c = r[2]["median"] * 1000
        print(f"        boxwright, fresh store {c:8.1f} ms  ratio {c / b:.2f}x")
print(f"  size: layers above the base: boxwright {bw_own} B  buildah {bu_own} B  "
      f"({100 * (1 - bw_own / bu_own):.0f}% smaller)")
PY
