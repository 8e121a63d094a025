#!/bin/sh
# boxwright-entrypoint: the entrypoint of toolbox images (recipes/scripts/entrypoint.sh).
#
# At every boot it makes the SSH host keys (never baked into the image) and
# /run/sshd; at the first boot it writes the boot inventory that `fork`
# compares against (/var/lib/boxwright/boot-inventory.json). It then starts
# sshd (22), code-server (0.0.0.0:8443) and ttyd (7681, writable), restarting
# any that dies; $BOXWRIGHT_SSH_PORT, $BOXWRIGHT_CODE_SERVER_PORT and
# $BOXWRIGHT_TTYD_PORT move them (a rootless sandbox on the host's network
# cannot bind ports below net.ipv4.ip_unprivileged_port_start, 1024 by
# default: `boxwright run -d -e BOXWRIGHT_SSH_PORT=2222 IMAGE`). With no command the
# services are the sandbox; with a command, it is the main process: its exit
# status is the container's and the services stop with it. Under tini when
# the image has it, else this shell is the init: it reaps children in `wait`.
set -u

if [ "$$" = 1 ] && [ -z "${BOXWRIGHT_INIT:-}" ] && command -v tini >/dev/null 2>&1; then
  BOXWRIGHT_INIT=tini exec tini -- "$0" "$@"
fi
export BOXWRIGHT_INIT="${BOXWRIGHT_INIT:-sh}"

log() { echo "boxwright-entrypoint: $*" >&2; }

INVENTORY=/var/lib/boxwright/boot-inventory.json

# The boot inventory, in the format of `boxwright snapshot`
# (boxwright-inventory/1; docs/fork-report.md), read where boxwright's own
# reader (src/inventory/) reads: dpkg's packages; Python distributions in
# the site directories of PIP_SITES (src/inventory/pip.rs, SITE_PATTERNS);
# global npm packages in the prefixes of NPM_PREFIXES (src/inventory/npm.rs,
# PREFIX_PATTERNS); code-server's extensions. A section this image cannot
# read (its tool is missing while its files are there) is left out, not
# written empty: fork does not compare an absent section, where an empty one
# would make every package of the image look installed since boot.
# Not written, so not compared by fork: apt sources and keyrings (boxwright
# normalizes entries in ways not worth repeating in sh) and apk. code-server
# lists the extensions of the user this runs as only (root's), where
# boxwright also reads /home/*/ and the ~/.vscode-server and ~/.vscode dirs.
PIP_SITES='/usr/lib/python3*/site-packages /usr/lib/python3*/dist-packages
  /usr/local/lib/python3*/site-packages /usr/local/lib/python3*/dist-packages
  /usr/lib/python3/dist-packages /opt/*/lib/python3*/site-packages
  /root/.local/lib/python3*/site-packages /home/*/.local/lib/python3*/site-packages'
NPM_PREFIXES='/usr/lib/node_modules /usr/local/lib/node_modules /opt/*/lib/node_modules
  /root/.npm-global/lib/node_modules /home/*/.npm-global/lib/node_modules'
EXTENSION_DIRS='/root/.local/share/code-server/extensions /home/*/.local/share/code-server/extensions
  /root/.vscode-server/extensions /home/*/.vscode-server/extensions
  /root/.vscode/extensions /home/*/.vscode/extensions'

json_rows() {
  # stdin: TAB-separated lines; arguments: the key of each column.
  # Package names, versions and paths hold no quotes or backslashes: any
  # that appear are dropped rather than escaped (awks disagree on escapes).
  awk -F '\t' -v keys="$*" '
    function esc(s) { gsub(/["\\]/, "", s); return s }
    BEGIN { n = split(keys, k, " "); printf "[" }
    NF >= 2 {
      printf "%s{", (rows++ ? "," : "")
      for (i = 1; i <= n; i++) printf "%s\"%s\":\"%s\"", (i > 1 ? "," : ""), k[i], esc($i)
      printf "}"
    }
    END { printf "]" }'
}

# existing_dirs PATTERN...: the directories the glob patterns name, one per line.
existing_dirs() {
  for pattern in "$@"; do
    for d in $pattern; do
      [ -d "$d" ] && printf '%s\n' "$d"
    done
  done | sort -u
}

# Each prints its section's JSON list, or nothing when it cannot tell.
dpkg_section() {
  if command -v dpkg-query >/dev/null 2>&1; then
    out=$(dpkg-query -W -f='${db:Status-Status}\t${Package}\t${Version}\t${Architecture}\n' 2>/dev/null) || return 0
    printf '%s\n' "$out" | awk -F '\t' '$1 == "installed" { print $2 "\t" $3 "\t" $4 }' |
      json_rows name version arch
  elif [ ! -e /var/lib/dpkg/status ]; then
    printf '[]'
  fi
}

pip_section() {
  # shellcheck disable=SC2086 # the patterns are globbed here
  sites=$(existing_dirs $PIP_SITES)
  [ -n "$sites" ] || { printf '[]'; return 0; }
  command -v python3 >/dev/null 2>&1 || return 0
  out=$(printf '%s\n' "$sites" | python3 -c 'import sys, re, importlib.metadata as m
for site in sys.stdin.read().splitlines():
    for d in m.distributions(path=[site]):
        try:
            n, v = d.metadata["Name"], d.version
        except Exception:
            continue
        if n and v:
            print(re.sub(r"[-_.]+", "-", n).lower(), v, site, sep="\t")' 2>/dev/null) || return 0
  printf '%s\n' "$out" | json_rows name version site
}

npm_section() {
  # shellcheck disable=SC2086 # the patterns are globbed here
  prefixes=$(existing_dirs $NPM_PREFIXES)
  [ -n "$prefixes" ] || { printf '[]'; return 0; }
  # Not `npm ls -g`, which knows one prefix; code-server brings a node of its own.
  node=$(command -v node 2>/dev/null || true)
  [ -n "$node" ] || [ ! -x /opt/boxwright/code-server/lib/node ] || node=/opt/boxwright/code-server/lib/node
  [ -n "$node" ] || return 0
  out=$(printf '%s\n' "$prefixes" | "$node" -e '
const fs = require("fs"), path = require("path");
const list = d => { try { return fs.readdirSync(d).filter(n => !n.startsWith(".")); } catch (e) { return []; } };
const show = (dir, fallback, prefix) => {
  let m; try { m = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8")); } catch (e) { return; }
  const str = v => (typeof v === "string" ? v.trim() : "");
  if (str(m.version)) console.log([str(m.name) || fallback, str(m.version), prefix].join("\t"));
};
for (const prefix of fs.readFileSync(0, "utf8").split("\n").filter(Boolean))
  for (const e of list(prefix))
    if (e.startsWith("@")) for (const n of list(path.join(prefix, e))) show(path.join(prefix, e, n), e + "/" + n, prefix);
    else show(path.join(prefix, e), e, prefix);' 2>/dev/null) || return 0
  printf '%s\n' "$out" | json_rows name version prefix
}

vscode_section() {
  # shellcheck disable=SC2086 # the patterns are globbed here
  dirs=$(existing_dirs $EXTENSION_DIRS)
  if [ -z "$dirs" ]; then
    printf '[]'
    return 0
  fi
  # code-server lists its own user's directory only: the section is written
  # only when that is the one directory there is (else it is unknown, left
  # out, and fork does not compare it).
  [ "$dirs" = "${HOME:-/root}/.local/share/code-server/extensions" ] || return 0
  command -v code-server >/dev/null 2>&1 || return 0
  out=$(code-server --list-extensions --show-versions 2>/dev/null) || return 0
  printf '%s\n' "$out" | sed 's/@/\t/' | json_rows id version
}

write_inventory() {
  mkdir -p /var/lib/boxwright
  json='{"format":"boxwright-inventory/1"'
  for section in dpkg pip npm vscode_extensions; do
    case $section in
      dpkg) list=$(dpkg_section) ;;
      pip) list=$(pip_section) ;;
      npm) list=$(npm_section) ;;
      *) list=$(vscode_section) ;;
    esac
    [ -z "$list" ] || json="$json,\"$section\":$list"
  done
  tmp="$INVENTORY.tmp"
  printf '%s}\n' "$json" >"$tmp"
  mv "$tmp" "$INVENTORY"
}

# supervise NAME COMMAND...: runs COMMAND in the background, restarting it
# when it exits.
supervise() {
  name=$1
  shift
  (
    trap 'exit 0' TERM INT
    while :; do
      "$@"
      log "$name exited with status $?; restarting in 2 seconds"
      sleep 2
    done
  ) &
}

stop_all() {
  log "stopping"
  # Ignore the signal here first: `kill 0` reaches this shell too.
  trap '' TERM INT
  kill -TERM 0 2>/dev/null
  exit 0
}
trap stop_all TERM INT

SSHD=$(command -v sshd 2>/dev/null || true)
[ -n "$SSHD" ] || [ ! -x /usr/sbin/sshd ] || SSHD=/usr/sbin/sshd
# sshd needs root for port 22, host keys and privilege separation; an image
# whose USER is someone else (kept by BYOI) gets the other services only.
if [ -n "$SSHD" ] && [ "$(id -u)" != 0 ]; then
  log "running as $(id -un 2>/dev/null || id -u), not root: sshd is not started"
  SSHD=
fi
if [ -n "$SSHD" ]; then
  mkdir -p /run/sshd
  chmod 0755 /run/sshd
  ssh-keygen -A >/dev/null
fi

[ -e "$INVENTORY" ] || write_inventory || log "could not write $INVENTORY"

if [ -n "$SSHD" ]; then
  supervise sshd "$SSHD" -D -e -p "${BOXWRIGHT_SSH_PORT:-22}"
fi
if command -v code-server >/dev/null 2>&1; then
  supervise code-server code-server --bind-addr "0.0.0.0:${BOXWRIGHT_CODE_SERVER_PORT:-8443}" --disable-telemetry
fi
if command -v ttyd >/dev/null 2>&1; then
  shell=$(command -v bash 2>/dev/null || echo /bin/sh)
  supervise ttyd ttyd --writable --port "${BOXWRIGHT_TTYD_PORT:-7681}" "$shell" -l
fi

if [ $# -gt 0 ]; then
  # Without job control, sh points an asynchronous command's stdin at
  # /dev/null before its redirections, so `<&0` would copy that: keep the
  # container's stdin (podman run -i) on fd 3 and hand that over.
  exec 3<&0
  "$@" <&3 3<&- &
  exec 3<&-
  cmd=$!
  # The command is the main process, as with any entrypoint wrapper: a stop
  # signal goes to it, the container ends when it does, with its status,
  # and the services beside it are stopped then.
  trap 'kill -TERM "$cmd" 2>/dev/null' TERM INT
  wait "$cmd"
  status=$?
  # A trapped signal ends `wait` early: wait again until the command is gone.
  while kill -0 "$cmd" 2>/dev/null; do
    wait "$cmd"
    status=$?
  done
  log "command exited with status $status; stopping the dev access services"
  trap '' TERM INT
  kill -TERM 0 2>/dev/null
  exit "$status"
fi

while :; do
  wait
  sleep 1
done
