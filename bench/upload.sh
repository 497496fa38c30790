#!/bin/sh
# bench/upload.sh - one large upload through the person's page (POST /send,
# multipart, a file of SIZE_MB megabytes), sealed and written to the blob
# store, acknowledged only after fsync; beside `dd conv=fsync` writing the same
# number of bytes to the same directory in the same run, and the server's peak
# RSS growth while it streamed (VmHWM after - VmRSS before): an upload is never
# held in memory.
# Targets (issue 10): RSS growth under 16 MB, at least 0.5 of the dd rate.
# Usage: bench/upload.sh [SIZE_MB]   (default 1000)
set -eu
ROOTFLAG=$([ "$(id -u)" = 0 ] && echo --allow-root || true)
MB=${1:-1000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${REFUGE_BUILD:-$ROOT/build}
W=$(mktemp -d /tmp/refuge-bench.XXXXXX)
cleanup() { [ -n "${SRV:-}" ] && kill "$SRV" 2>/dev/null; sleep 0.3; rm -rf "$W"; }
trap cleanup EXIT INT TERM
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')

"$B/refuge" server init --data "$W/data" --kdf-ops 1 --kdf-mem 8 >/dev/null 2>&1
"$B/bench/refuge-bench-roster" "$W/data" 5
"$B/refuge" serve --data "$W/data" --listen 127.0.0.1:$PORT $ROOTFLAG \
    --upload-max $(((MB + 1) * 1000000)) >"$W/serve.out" 2>&1 &
SRV=$!
for _ in $(seq 50); do grep -q listening "$W/serve.out" 2>/dev/null && break; sleep 0.1; done
python3 "$ROOT/bench/sessions.py" "http://127.0.0.1:$PORT" 1 "$W/sessions.lua"
cookie=$(sed -n 's/.*cookie = "\([^"]*\)".*/\1/p' "$W/sessions.lua")
csrf=$(sed -n 's/.*csrf = "\([^"]*\)".*/\1/p' "$W/sessions.lua")

# The file: MB megabytes of zeros in memory (/dev/shm, a tmpfs), so that the
# client is not what is measured: a sparse file is not in the page cache,
# and reading its holes held curl to about 200 MB/s on this machine. The
# server seals it, so what lands on disk is random.
SHM=$(mktemp -d /dev/shm/refuge-bench.XXXXXX 2>/dev/null || mktemp -d /tmp/refuge-bench-up.XXXXXX)
cleanup() { [ -n "${SRV:-}" ] && kill "$SRV" 2>/dev/null; sleep 0.3; rm -rf "$W" "$SHM"; }
head -c $((MB * 1000000)) /dev/zero >"$SHM/upload.bin"
rss0=$(awk '/VmRSS/ {print $2}' /proc/$SRV/status)
cpu0=$(awk '{print $14 + $15}' /proc/$SRV/stat)
t0=$(date +%s.%N)
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: $cookie" \
    -F "csrf=$csrf" -F "text=the file" -F "file=@$SHM/upload.bin;type=application/octet-stream" \
    "http://127.0.0.1:$PORT/send")
t1=$(date +%s.%N)
hwm=$(awk '/VmHWM/ {print $2}' /proc/$SRV/status)
cpu1=$(awk '{print $14 + $15}' /proc/$SRV/stat)
stored=$(du -sk "$W/data" | awk '{print $1}')
rm -f "$SHM/upload.bin"

# Reference: the same bytes written and fsynced by dd in the same directory.
dd_out=$(dd if=/dev/zero of="$W/data/dd.bin" bs=1M count=$((MB * 1000000 / 1048576)) conv=fsync 2>&1 | tail -1)
rm -f "$W/data/dd.bin"
dd_s=$(echo "$dd_out" | awk -F, '{print $(NF-1)}' | awk '{print $1}')

up_mbs=$(echo "$MB $t0 $t1" | awk '{printf "%.1f", $1/($3-$2)}')
dd_mbs=$(echo "$MB $dd_s" | awk '{printf "%.1f", ($1*1000000/1048576*1048576/1000000)/$2}')
echo "upload_size_mb $MB  (answer $code, data dir after ${stored} KB)"
echo "upload_mb_per_s $up_mbs  ($(echo "$t0 $t1" | awk '{printf "%.1f", $2-$1}') s)"
echo "server_cpu_s_per_gb $(echo "$cpu0 $cpu1 $MB $(getconf CLK_TCK)" | awk '{printf "%.2f", ($2-$1)/$4*1000/$3}')  (user+system, all its threads)"
echo "reference_dd_fsync_mb_per_s $dd_mbs  (dd conv=fsync, same directory)"
echo "ratio_to_dd $(echo "$up_mbs $dd_mbs" | awk '{printf "%.2f", $1/$2}')"
echo "rss_kb_before $rss0  peak_rss_kb $hwm  growth_kb $((hwm - rss0))  (target < 16384)"
[ "$code" = 303 ] || { echo "upload.sh: the upload was answered $code, not 303" >&2; exit 1; }
