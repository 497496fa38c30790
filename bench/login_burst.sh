#!/bin/sh
# bench/login_burst.sh - logins in a burst (issue 10): bursts of 100, 300 and
# 1,000 logins sent at once (time to the last success, how many refused
# busy), the landing page's p50/p99 during the burst of 100, and the cost of
# one login against bare crypto_pwhash with the instance's parameters
# (bench/pwhash.c), each printed with its ratio. Targets: the burst of 100
# all in within 30 s, none 503; landing p99 < 50 ms; ratio >= 0.90.
# Usage: bench/login_burst.sh   (REFUGE_BUILD: a release build dir, default build)
set -eu
ROOTFLAG=$([ "$(id -u)" = 0 ] && echo --allow-root || true)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${REFUGE_BUILD:-$ROOT/build}
[ -d "$B" ] || meson setup "$B" --buildtype=release >/dev/null
ninja -C "$B" refuge bench/refuge-bench-roster bench/refuge-bench-pwhash >/dev/null
W=$(mktemp -d /tmp/refuge-bench.XXXXXX)
cleanup() { [ -n "${SRV:-}" ] && kill "$SRV" 2>/dev/null || true; sleep 0.3; rm -rf "$W"; }
trap cleanup EXIT INT TERM
ulimit -n 8192 2>/dev/null || true
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
OPS=3 MEM=$((64 * 1024 * 1024)) # refuge server init's defaults (lib/source.h)
"$B/refuge" server init --data "$W/data" --kdf-ops $OPS --kdf-mem $((MEM >> 20)) >"$W/init.out" 2>&1
"$B/bench/refuge-bench-roster" "$W/data" 5
"$B/refuge" serve --data "$W/data" --listen 127.0.0.1:$PORT $ROOTFLAG >"$W/serve.out" 2>&1 &
SRV=$!
for _ in $(seq 100); do grep -q listening "$W/serve.out" 2>/dev/null && break; sleep 0.1; done
echo "$(nproc) CPUs; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
grep -E "threads=|derivation" "$W/serve.out" | sed 's/^refuge: info: /server: /'
python3 "$ROOT/bench/login_burst.py" "http://127.0.0.1:$PORT" "$B/bench/refuge-bench-pwhash" $OPS $MEM 10
