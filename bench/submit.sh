#!/bin/sh
# bench/submit.sh - durable 2 KB submissions per second with 5 caseworkers on
# the roster, each acknowledged (303) only after its group commit's fsync.
# Printed beside two references measured in the same run: the sealing ceiling
# (cores / cost of sealing one message to 5 recipients) and the disk's raw
# write+fdatasync rate (what one-fsync-per-submission would allow).
# Then the same with the server limited to 1 CPU and to 2 CPUs (taskset), so
# a bigger machine shows how it scales.
# Target (DESIGN.md): >= 2,000/s on 2 cores. Usage: bench/submit.sh [seconds]
set -eu
# as root, a throwaway instance is served as root (see refuge serve --help)
ROOTFLAG=$([ "$(id -u)" = 0 ] && echo --allow-root || true)
SECS=${1:-10}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${REFUGE_BUILD:-$ROOT/build}
W=$(mktemp -d /tmp/refuge-bench.XXXXXX)
cleanup() { [ -n "${SRV:-}" ] && kill "$SRV" 2>/dev/null; sleep 0.3; rm -rf "$W"; }
trap cleanup EXIT INT TERM
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')

"$B/refuge" server init --data "$W/data" --kdf-ops 1 --kdf-mem 8 >/dev/null 2>&1
"$B/bench/refuge-bench-roster" "$W/data" 5
NCPU=$(nproc)

# One phase: a fresh server limited to the CPUs in $1 ("" for all), 300
# people logged in, wrk for SECS seconds. Sets rate, bad, stored, lat, rss.
phase() {
    if [ -n "$1" ]; then PIN="taskset -c $1"; else PIN=""; fi
    : >"$W/serve.out"
    $PIN "$B/refuge" serve --data "$W/data" --listen 127.0.0.1:$PORT $ROOTFLAG >"$W/serve.out" 2>&1 &
    SRV=$!
    for _ in $(seq 50); do grep -q listening "$W/serve.out" 2>/dev/null && break; sleep 0.1; done
    python3 "$ROOT/bench/sessions.py" "http://127.0.0.1:$PORT" 300 "$W/sessions.lua"
    before=$(sqlite3 "$W/data/refuge.db" 'SELECT count(*) FROM objects' 2>/dev/null || echo 0)
    REFUGE_SESSIONS="$W/sessions.lua" wrk -t2 -c64 -d"${SECS}s" -s "$ROOT/bench/submit.lua" \
        "http://127.0.0.1:$PORT" >"$W/wrk.out" 2>&1
    rate=$(awk '/Requests\/sec/ {print $2}' "$W/wrk.out")
    bad=$(awk '/Non-2xx or 3xx/ {print $5}' "$W/wrk.out")
    after=$(sqlite3 "$W/data/refuge.db" 'SELECT count(*) FROM objects' 2>/dev/null || echo 0)
    stored=$((after - before))
    lat=$(awk '/Latency/ {print $2" avg, "$4" max"}' "$W/wrk.out")
    rss=$(awk '/VmRSS/ {print $2}' /proc/$SRV/status)
    kill "$SRV"; wait "$SRV" 2>/dev/null || true; SRV=
}

phase ""
rate_all=$rate bad_all=$bad stored_all=$stored lat_all=$lat rss_all=$rss
phase 0
rate_1=$rate bad_1=$bad
if [ "$NCPU" -ge 2 ]; then phase 0,1; rate_2=$rate bad_2=$bad; fi

seal=$("$B/bench/refuge-bench-seal" 5 2000)
ceiling=$(echo "$seal" | awk '/seal_ceiling_per_s/ {print $2}')
sealus=$(echo "$seal" | awk '/seal_us_per_msg/ {print $2}')
fs=$(python3 - "$W" <<'PY'
import os, sys, time
p = os.path.join(sys.argv[1], "fsync.probe")
fd = os.open(p, os.O_WRONLY | os.O_CREAT, 0o600)
n, t0 = 0, time.time()
while time.time() - t0 < 2:
    os.write(fd, b"x" * 2048); os.fdatasync(fd); n += 1
print(int(n / (time.time() - t0)))
PY
)
per_core=$(echo "$sealus" | awk '{printf "%d", 1000000/$1}')
echo "submissions_per_s $rate_all  (server on all $NCPU CPUs; stored $stored_all, non-303 ${bad_all:-0}, latency $lat_all)"
echo "reference_seal_ceiling_per_s $ceiling  (sealing 2 KB to 5: ${sealus} us/msg, on $NCPU CPUs)"
echo "reference_raw_fdatasync_per_s $fs"
echo "ratio_to_seal_ceiling $(echo "$rate_all $ceiling" | awk '{printf "%.2f", $1/$2}')"
echo "ratio_to_fsync_rate $(echo "$rate_all $fs" | awk '{printf "%.2f", $1/$2}')"
echo "submissions_per_s_1_cpu $rate_1  (taskset -c 0; non-303 ${bad_1:-0}; ratio to one CPU's seal ceiling $per_core: $(echo "$rate_1 $per_core" | awk '{printf "%.2f", $1/$2}'))"
if [ -n "${rate_2:-}" ]; then
    echo "submissions_per_s_2_cpus $rate_2  (taskset -c 0,1; non-303 ${bad_2:-0})"
    echo "ratio_2_cpus_to_1_cpu $(echo "$rate_2 $rate_1" | awk '{printf "%.2f", $1/$2}')"
fi
echo "rss_kb_after $rss_all"
