#!/bin/sh
# `boxwright serve`: idle RSS, page load, and event latency from a build's
# event (its `time`, stamped by the child as it prints) to an SSE client,
# with 5 builds at once, each printing 200 lines (95th percentile). The peer
# for the page load is a static file served by Python's http.server.
#
#   benches/serve.sh            (as root, like the test suite)
set -eu
cd "$(dirname "$0")/.."
cargo build --release --locked --quiet
bw=${CARGO_TARGET_DIR:-$PWD/target}/release/boxwright
rootfs-fixtures/make-busybox.sh >/dev/null
work=$(mktemp -d /var/tmp/boxwright-bench.XXXXXX)
trap 'kill $serve_pid 2>/dev/null || true; rm -rf "$work"' EXIT
"$bw" --store "$work/store" serve --listen 127.0.0.1:0 2> "$work/serve.log" &
serve_pid=$!
until grep -q "is at" "$work/serve.log" 2>/dev/null; do sleep 0.05; done
url=$(sed -n 's/.*is at \(http[^ ]*\)\/$/\1/p' "$work/serve.log")
sleep 1
rss=$(ps -o rss= -p $serve_pid)
python3 - "$url" "$PWD/rootfs-fixtures/busybox.tar" "$rss" <<'PY'
import json, sys, threading, time, urllib.request, datetime, statistics
url, base, rss = sys.argv[1], sys.argv[2], int(sys.argv[3])
def post(path, body):
    req = urllib.request.Request(url + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req))
t0 = time.time(); urllib.request.urlopen(url + "/").read(); urllib.request.urlopen(url + "/app.js").read(); urllib.request.urlopen(url + "/app.css").read()
page_ms = (time.time() - t0) * 1000
recipe = f'[image]\nbase = "rootfs:{base}"\n[[steps]]\nrun = "for i in $(seq 1 200); do echo line $i; done"\n'
lat = []
lock = threading.Lock()
def follow(n):
    r = post("/api/builds", {"recipe": recipe.replace("line", f"line-{n}"), "tag": f"lat{n}"})
    with urllib.request.urlopen(url + r["events"]) as s:
        for raw in s:
            line = raw.decode().rstrip("\n")
            if line.startswith("data: "):
                now = time.time()
                e = json.loads(line[6:])
                t = datetime.datetime.fromisoformat(e["time"].replace("Z", "+00:00")).timestamp()
                with lock:
                    lat.append((now - t) * 1000)
threads = [threading.Thread(target=follow, args=(n,)) for n in range(5)]
[t.start() for t in threads]; [t.join() for t in threads]
lat.sort()
p95 = lat[int(len(lat) * 0.95) - 1]
print("| serve | figure |\n|---|---:|")
print(f"| idle RSS | {rss / 1024:.1f} MiB |")
print(f"| page + assets load (3 requests, local) | {page_ms:.1f} ms |")
print(f"| event latency, child to SSE client, 5 concurrent builds ({len(lat)} events): median | {statistics.median(lat):.1f} ms |")
print(f"| the same, 95th percentile | {p95:.1f} ms |")
PY
