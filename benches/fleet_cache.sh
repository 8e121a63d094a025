#!/bin/sh
# A runner with an empty store and a warm registry step cache (its image
# kept here, and pushed to the cache's registry, where the cached layers are
# mounted and never downloaded), side by side with a cold build, a fully
# local cached rebuild, and buildah's registry
# cache (`buildah build --layers --cache-from/--cache-to`) on the same
# 4-step Containerfile, in one hyperfine run (medians).
#
#   benches/fleet_cache.sh      (as root; needs a registry on 127.0.0.1:5000:
#                                scripts/testbed.sh registry)
#   RANDOM_LAYERS=1 benches/fleet_cache.sh   (incompressible layers)
set -eu
cd "$(dirname "$0")/.."
for t in hyperfine buildah curl python3; do
    command -v $t >/dev/null || { echo "$t is missing: apt-get install $t" >&2; exit 2; }
done
reg=${BOXWRIGHT_TEST_REGISTRY:-127.0.0.1:5000}
curl -sf "http://$reg/v2/" >/dev/null || { echo "no registry at $reg: run scripts/testbed.sh registry" >&2; exit 2; }
cargo build --release --locked --quiet
bw=$PWD/target/release/boxwright
rootfs-fixtures/make-busybox.sh >/dev/null
work=$(mktemp -d /var/tmp/boxwright-bench.XXXXXX)
export STORAGE_DRIVER=vfs
# The test registry is plain HTTP: buildah reads that from registries.conf.
export CONTAINERS_REGISTRIES_CONF=$PWD/tests/testbed/registries.conf
trap 'buildah rm --all >/dev/null 2>&1 || true; buildah rmi -f localhost/fleet-bench >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
run=$(date +%s)

# The base, in the registry for both tools.
printf '[image]\nbase = "rootfs:%s"\n' "$PWD/rootfs-fixtures/busybox.tar" > "$work/base.toml"
"$bw" build --store "$work/seed" -q -t base "$work/base.toml" >/dev/null
"$bw" --store "$work/seed" push base "$reg/bench/fleet-base:$run" >/dev/null
mkdir "$work/ctx"
# Each step writes 8 MB: of one letter (8 KB of gzip), or with
# RANDOM_LAYERS=1 of random bytes (8 MB to download: what a registry-cached
# build that is pushed never downloads).
if [ "${RANDOM_LAYERS:-0}" = 1 ]; then
    src='head -c 8000000 /dev/urandom'
else
    src="head -c 8000000 /dev/zero | tr '\\0' x"
fi
cat > "$work/ctx/Containerfile" <<EOF
FROM $reg/bench/fleet-base:$run
RUN $src > /one
RUN $src > /two
RUN $src > /three
RUN echo done > /four
EOF
bwc="$reg/bench/fleet-cache-$run"
buc="$reg/bench/fleet-buildah-cache-$run"
# Runner A fills the registry cache; its store is the local-cached case.
"$bw" build --store "$work/a" -q -t fleet --cache-to "$bwc" "$work/ctx" >/dev/null
buildah build --isolation chroot --layers --pull=never -q -t fleet-bench --cache-to "$buc" "$work/ctx" >/dev/null 2>&1 \
    || buildah build --isolation chroot --layers -q -t fleet-bench --cache-to "$buc" "$work/ctx" >/dev/null

# The downloads runner B truly needs: the image's layers, pulled into an
# empty store (the floor under any registry cache).
"$bw" --store "$work/a" push fleet "$reg/bench/fleet-img:$run" >/dev/null

# hyperfine wants one --prepare per command (or one for all).
hyperfine --warmup 1 --runs 5 --export-json "$work/r.json" \
    -n "boxwright cold (--no-cache)" --prepare true \
      "$bw build --store $work/a -q -t fleet --no-cache $work/ctx" \
    -n "boxwright local cached" --prepare true \
      "$bw build --store $work/a -q -t fleet $work/ctx" \
    -n "boxwright empty store, --cache-from" --prepare "rm -rf $work/b" \
      "$bw build --store $work/b -q -t fleet --cache-from $bwc $work/ctx" \
    -n "boxwright empty store, --cache-from, --push to the cache's registry" --prepare "rm -rf $work/l" \
      "$bw build --store $work/l -q -t $reg/bench/fleet-lazy:$run --push --cache-from $bwc $work/ctx" \
    -n "boxwright pull of the result into an empty store" --prepare "rm -rf $work/p" \
      "$bw --store $work/p pull $reg/bench/fleet-img:$run" \
    -n "buildah cold (--no-cache)" --prepare true \
      "buildah build --isolation chroot --layers --no-cache -q -t fleet-bench $work/ctx" \
    -n "buildah empty storage, --cache-from" --prepare "buildah rmi -a -f >/dev/null 2>&1 || true" \
      "buildah build --isolation chroot --layers -q -t fleet-bench --cache-from $buc $work/ctx"
python3 - "$work/r.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
by = {x["command"]: x["median"] for x in r}
cold = r[0]["median"]
print("| command | median | vs boxwright cold |\n|---|---:|---:|")
for x in r:
    print(f"| {x['command']} | {x['median'] * 1000:.0f} ms | {x['median'] / cold:.2f} |")
# The target: registry-cached within 2x of local-cached plus the downloads.
floor = by["boxwright local cached"] + by["boxwright pull of the result into an empty store"]
cached = by["boxwright empty store, --cache-from"]
print(f"\nregistry-cached / (local cached + pull) = {cached / floor:.2f} (target: <= 2)")
PY
