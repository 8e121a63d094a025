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
# (boxwright-inventory/1; docs/fork-report.md): what dpkg, pip, npm and
# code-server report, each as [{"name": ..., "version": ...}].
json_pairs() {
  # stdin: NAME<TAB>VERSION lines; $1: the name key ("name" or "id").
  # Package names and versions hold no quotes or backslashes: any that
  # appear are dropped rather than escaped (awks disagree on escapes).
  awk -F '\t' -v key="$1" '
    function esc(s) { gsub(/["\\]/, "", s); return s }
    NF >= 2 { printf "%s{\"%s\":\"%s\",\"version\":\"%s\"}", (n++ ? "," : ""), key, esc($1), esc($2) }
    BEGIN { printf "[" } END { printf "]" }'
}

write_inventory() {
  mkdir -p /var/lib/boxwright
  dpkg=$(if command -v dpkg-query >/dev/null 2>&1; then
           dpkg-query -W -f='${db:Status-Status}\t${Package}\t${Version}\n' 2>/dev/null |
             awk -F '\t' '$1 == "installed" { print $2 "\t" $3 }'
         fi | json_pairs name)
  pip=$(if command -v python3 >/dev/null 2>&1; then
          python3 -c 'import importlib.metadata as m, re
for d in m.distributions():
    n = d.metadata["Name"]
    if n: print(re.sub(r"[-_.]+", "-", n).lower() + "\t" + d.version)' 2>/dev/null
        fi | json_pairs name)
  npm=$(if command -v npm >/dev/null 2>&1 && command -v node >/dev/null 2>&1; then
          npm ls -g --json --depth=0 2>/dev/null | node -e '
let s = ""; process.stdin.on("data", d => s += d).on("end", () => {
  let deps = {}; try { deps = JSON.parse(s).dependencies || {}; } catch (e) {}
  for (const [n, v] of Object.entries(deps)) console.log(n + "\t" + (v.version || ""));
});' 2>/dev/null
        fi | json_pairs name)
  ext=$(if command -v code-server >/dev/null 2>&1; then
          code-server --list-extensions --show-versions 2>/dev/null | sed 's/@/\t/'
        fi | json_pairs id)
  tmp="$INVENTORY.tmp"
  printf '{"format":"boxwright-inventory/1","dpkg":%s,"pip":%s,"npm":%s,"vscode_extensions":%s}\n' \
    "$dpkg" "$pip" "$npm" "$ext" >"$tmp"
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
