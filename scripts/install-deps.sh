#!/bin/sh
# Installs the Debian packages boxwright and its test suite use. Idempotent; needs root.
#
#   uidmap        newuidmap/newgidmap for rootless builds with subordinate ids
#   busybox-static  the tiny base of the demo and of most tests
#   mmdebstrap    Debian minbase bases for the apt tests and benches
#   docker-registry apache2-utils   local registries (plain and htpasswd auth) for tests
#   skopeo umoci oci-image-tool podman runc buildah   independent verifiers and bench peers
#   hyperfine     benchmarks
#   tmux python3-jsonschema   the tty display under a terminal; the progress-event schema check
#   chromium chromium-driver  a real headless browser for the Images page tests
#   git           ADD of a git repository (and git daemon serving one in its test)
set -eu
pkgs="uidmap busybox-static mmdebstrap docker-registry apache2-utils skopeo umoci oci-image-tool podman runc buildah hyperfine ca-certificates tar gzip zstd iproute2 libcap2-bin containernetworking-plugins curl openssl tmux python3-jsonschema chromium chromium-driver git"
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
if [ -z "$missing" ]; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "install-deps.sh: missing packages:$missing; run as root: sudo $0" >&2
    exit 2
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q $missing
