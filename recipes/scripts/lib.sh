# Helpers for boxwright's component steps (recipes/scripts/lib.sh). Each
# generated step script starts with this file, then its own lines.
set -eu
bw_die() { echo "boxwright: $*" >&2; exit 1; }
bw_os() {
  ID=unknown; VERSION_ID=; PRETTY_NAME=
  if [ -r /etc/os-release ]; then . /etc/os-release; fi
  BW_DISTRO="${ID:-unknown}:${VERSION_ID:-}"
  BW_PRETTY="${PRETTY_NAME:-$BW_DISTRO}"
}
# Sets BW_PM to the base's package manager, or stops naming the distro.
bw_pm() {
  if command -v apt-get >/dev/null 2>&1; then BW_PM=apt
  elif command -v apk >/dev/null 2>&1; then BW_PM=apk
  elif command -v dnf >/dev/null 2>&1; then BW_PM=dnf
  elif command -v microdnf >/dev/null 2>&1; then BW_PM=microdnf
  else
    bw_os
    bw_die "the base image ($BW_PRETTY, /etc/os-release ID=$ID) has no supported package manager: boxwright knows apt-get, apk, dnf and microdnf"
  fi
  # Only apt's sources are redirected to download mirrors: under --offline,
  # apk and dnf would reach their upstream repositories.
  if [ "$BW_PM" != apt ] && [ "${BOXWRIGHT_OFFLINE:-}" = 1 ]; then
    bw_os
    bw_die "--offline: the base image ($BW_PRETTY) installs with $BW_PM, whose repositories boxwright cannot send to a mirror (only apt's): build without --offline, or on an apt-based base"
  fi
}
BW_APT_UPDATED=
bw_apt_update() {
  if [ -z "$BW_APT_UPDATED" ]; then apt-get update; BW_APT_UPDATED=1; fi
}
# Installs packages with the base's package manager. apt's downloads and
# lists go to boxwright's cache mounts; dnf's and apk's caches are dropped.
bw_pkg_install() {
  [ $# -gt 0 ] || return 0
  bw_pm
  case "$BW_PM" in
    apt) bw_apt_update
         DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" ;;
    apk) apk add --no-cache "$@" ;;
    dnf) dnf install -y --setopt=install_weak_deps=False "$@" && dnf clean all ;;
    microdnf) microdnf install -y "$@" && microdnf clean all ;;
  esac
}
# Installs the first of the candidates the package manager knows.
bw_pkg_install_first() {
  bw_pm
  for p in "$@"; do
    case "$BW_PM" in
      apt) bw_apt_update; apt-cache show "$p" >/dev/null 2>&1 || continue ;;
      apk) apk info -e "$p" >/dev/null 2>&1 || apk search -e "$p" 2>/dev/null | grep -q . || continue ;;
      *) ;;
    esac
    if bw_pkg_install "$p"; then return 0; fi
  done
  return 1
}
# bw_untar ARCHIVE DEST STRIP: unpacks a .tar.gz or .tar.xz into DEST.
bw_untar() {
  case "$1" in
    *.xz) command -v xz >/dev/null 2>&1 || bw_pkg_install_first xz-utils xz ;;
  esac
  mkdir -p "$2"
  tar -x -f "$1" -C "$2" --strip-components="$3" --no-same-owner
}
# bw_unzip ZIP DEST
bw_unzip() {
  command -v unzip >/dev/null 2>&1 || bw_pkg_install unzip
  mkdir -p "$2"
  unzip -q -o "$1" -d "$2"
}
bw_need_cc() {
  command -v cc >/dev/null 2>&1 && return 0
  bw_pm
  case "$BW_PM" in
    apt) bw_pkg_install gcc libc6-dev ;;
    apk) bw_pkg_install gcc musl-dev ;;
    *) bw_pkg_install gcc ;;
  esac
}
bw_need_java() {
  command -v java >/dev/null 2>&1 && return 0
  bw_pkg_install_first default-jre-headless openjdk21-jre-headless java-21-openjdk-headless
}
# bw_rustup RUSTUP_INIT TOOLCHAIN
bw_rustup() {
  bw_need_cc
  install -m 0755 "$1" /tmp/rustup-init
  RUSTUP_HOME=/opt/boxwright/rustup CARGO_HOME=/opt/boxwright/cargo \
    /tmp/rustup-init -y --no-modify-path --profile minimal --default-toolchain "$2"
  rm -f /tmp/rustup-init
}
# bw_ruby_from_source TARBALL VERSION: builds Ruby into /opt/boxwright/ruby.
bw_ruby_from_source() {
  bw_pm
  [ "$BW_PM" = apt ] || bw_die "building Ruby from source needs apt-get for its build dependencies"
  bw_pkg_install gcc make libc6-dev libssl-dev libyaml-dev zlib1g-dev libffi-dev libreadline-dev libgmp-dev xz-utils
  rm -rf "/tmp/ruby-$2"
  tar -x -f "$1" -C /tmp --no-same-owner
  (cd "/tmp/ruby-$2" && ./configure --prefix=/opt/boxwright/ruby --disable-install-doc \
     && make -j"$(nproc 2>/dev/null || echo 2)" && make install)
  rm -rf "/tmp/ruby-$2"
}
