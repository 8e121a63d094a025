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
#   python3-venv  the venv below
#
# Then, from PyPI, into its own venv: schemathesis, pinned, for
# tests/serve_schemathesis.rs (the API against its OpenAPI document).
set -eu
pkgs="uidmap busybox-static mmdebstrap docker-registry apache2-utils skopeo umoci oci-image-tool podman runc buildah hyperfine ca-certificates tar gzip zstd iproute2 libcap2-bin containernetworking-plugins curl openssl tmux python3-jsonschema chromium chromium-driver git python3-venv"
venv=/opt/boxwright-venv
schemathesis_version=4.32.5

missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
have_schemathesis() {
    [ -x "$venv/bin/schemathesis" ] &&
        "$venv/bin/pip" show schemathesis 2>/dev/null | grep -qx "Version: $schemathesis_version"
}
if [ -z "$missing" ] && have_schemathesis; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    [ -n "$missing" ] && echo "install-deps.sh: missing packages:$missing; run as root: sudo $0" >&2
    have_schemathesis || echo "install-deps.sh: missing $venv with schemathesis==$schemathesis_version; run as root: sudo $0" >&2
    exit 2
fi
if [ -n "$missing" ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    # shellcheck disable=SC2086
    apt-get install -y -q $missing
fi
if ! have_schemathesis; then
    # Debian's python3 (not whichever python3 is first on PATH): the one
    # python3-venv is for.
    [ -x "$venv/bin/pip" ] || /usr/bin/python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "schemathesis==$schemathesis_version"
fi
