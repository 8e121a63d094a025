#!/bin/sh
# Makes a tiny, reproducible busybox root filesystem tarball from Debian's
# busybox-static package: no network, well under a second.
#
#   rootfs-fixtures/make-busybox.sh [OUT.tar]     (default: rootfs-fixtures/busybox.tar)
#
# The tar is bit-identical on every run and machine with the same busybox
# binary: sorted names, numeric root ownership, mtimes at the epoch.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/busybox.tar}
bb=${BUSYBOX:-/bin/busybox}

# A dynamically linked busybox would not run inside the fixture root.
if ! "$bb" --list-full >/dev/null 2>&1 ||
   ! (LC_ALL=C ldd "$bb" 2>&1 || true) | grep -q 'not a dynamic executable'; then
    echo "make-busybox.sh: $bb is not a static busybox; install it with: apt-get install busybox-static" >&2
    exit 2
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
mkdir -p "$root"
for d in bin sbin usr/bin usr/sbin etc root tmp var/tmp home proc sys dev run; do
    mkdir -p "$root/$d"
done
chmod 1777 "$root/tmp" "$root/var/tmp"
chmod 0700 "$root/root"
cp "$bb" "$root/bin/busybox"
chmod 0755 "$root/bin/busybox"
# Applet links are relative so they resolve inside any root.
"$bb" --list-full | while read -r applet; do
    case "$applet" in
        bin/busybox) continue ;;
    esac
    [ -e "$root/$applet" ] && continue
    case "$applet" in
        */*/*) up=../.. ;;
        *) up=.. ;;
    esac
    ln -s "$up/bin/busybox" "$root/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
printf 'busybox fixture\n' > "$root/etc/hostname"

tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
    --format=posix --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
    -C "$root" -cf "$out.tmp.$$" .
mv "$out.tmp.$$" "$out"
echo "$out"
