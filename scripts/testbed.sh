#!/bin/sh
# Prepares this machine for boxwright's test suite; needs root. Idempotent.
#
#   scripts/testbed.sh users        create the unprivileged test users:
#                                   bwsub    (with /etc/subuid and /etc/subgid ranges)
#                                   bwsingle (without ranges: the single-id mode)
#   scripts/testbed.sh registries   start two docker-registry servers on 127.0.0.1:
#                                   :5000 open (deletes enabled), :5001 htpasswd (user bwtest)
#   scripts/testbed.sh stop         stop the registries started here
#   scripts/testbed.sh all          users + registries
#
# Tests that need a registry and find none at BOXWRIGHT_TEST_REGISTRY start
# their own; the ones here exist so a CI log shows a registry that outlives
# each test binary.
set -eu
state=${BOXWRIGHT_TESTBED_DIR:-/tmp/boxwright-testbed}

need_root() {
    if [ "$(id -u)" != 0 ]; then
        echo "testbed.sh: run as root (it creates users and starts services)" >&2
        exit 2
    fi
}

users() {
    need_root
    id bwsub >/dev/null 2>&1 || useradd -m -s /bin/sh bwsub
    grep -q '^bwsub:' /etc/subuid || usermod --add-subuids 100000-165535 bwsub
    grep -q '^bwsub:' /etc/subgid || usermod --add-subgids 100000-165535 bwsub
    id bwsingle >/dev/null 2>&1 || useradd -m -s /bin/sh bwsingle
    sed -i '/^bwsingle:/d' /etc/subuid /etc/subgid
}

start_one() {
    name=$1 port=$2 auth=$3
    dir=$state/$name
    if [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
        return 0
    fi
    mkdir -p "$dir/storage"
    {
        printf 'version: 0.1\nlog:\n  level: info\n'
        printf 'storage:\n  filesystem:\n    rootdirectory: %s/storage\n  delete:\n    enabled: true\n' "$dir"
        if [ "$auth" = yes ]; then
            htpasswd -Bbn bwtest bwtest-secret > "$dir/htpasswd"
            printf 'auth:\n  htpasswd:\n    realm: boxwright-test\n    path: %s/htpasswd\n' "$dir"
        fi
        printf 'http:\n  addr: 127.0.0.1:%s\n' "$port"
    } > "$dir/config.yml"
    # setsid: the registry must survive the shell that started it.
    setsid docker-registry serve "$dir/config.yml" > "$dir/log" 2>&1 < /dev/null &
    echo $! > "$dir/pid"
    i=0
    until curl -s -o /dev/null "http://127.0.0.1:$port/v2/"; do
        i=$((i + 1))
        if [ $i -gt 100 ]; then
            echo "testbed.sh: registry $name did not answer on 127.0.0.1:$port; its log:" >&2
            cat "$dir/log" >&2
            exit 1
        fi
        sleep 0.1
    done
    echo "registry $name on 127.0.0.1:$port (log $dir/log)"
}

registries() {
    command -v docker-registry >/dev/null || {
        echo "testbed.sh: docker-registry is missing: apt-get install docker-registry" >&2
        exit 2
    }
    start_one open "${BOXWRIGHT_TEST_REGISTRY_PORT:-5000}" no
    start_one auth "${BOXWRIGHT_TEST_REGISTRY_AUTH_PORT:-5001}" yes
}

stop() {
    for name in open auth; do
        if [ -f "$state/$name/pid" ]; then
            kill "$(cat "$state/$name/pid")" 2>/dev/null || true
            rm -f "$state/$name/pid"
        fi
    done
}

case "${1:-all}" in
    users) users ;;
    registries) registries ;;
    stop) stop ;;
    all) users; registries ;;
    *) echo "usage: $0 users|registries|stop|all" >&2; exit 2 ;;
esac
