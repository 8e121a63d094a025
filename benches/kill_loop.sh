#!/usr/bin/env bash
# Crash-consistency soak: tests/kill_loop.rs with many more SIGKILLs than the
# 50 of a test run (KILLS, default 500) over build, push, pull and gc, then
# the kills per command that hit a running process, and how many killed
# pushes and pulls had got as far as their tag.
#
#   benches/kill_loop.sh              # 500 kills (about 7 minutes on 2 cores)
#   KILLS=2000 benches/kill_loop.sh
#
# Needs what the test needs: root, docker-registry, busybox-static, cargo.
set -euo pipefail

KILLS=${KILLS:-500}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT

started=$(date +%s)
status=0
BOXWRIGHT_KILLS=$KILLS cargo test --manifest-path "$ROOT/Cargo.toml" --test kill_loop \
  -- --nocapture --test-threads 1 >"$LOG" 2>&1 || status=$?
elapsed=$(( $(date +%s) - started ))

if [ "$status" -ne 0 ]; then
  tail -n 40 "$LOG" >&2
  echo "kill_loop failed (exit $status) after ${elapsed}s" >&2
  exit "$status"
fi
echo "$KILLS kills asked for, ${elapsed}s (build included)"
# The first line follows the harness's "test NAME ... " on the same line.
grep -oE '(kill delays drawn below|kills of |kills that hit a running process).*' "$LOG"
