#!/bin/sh
# bench/landing_pinned.sh - the landing page with the server limited to one
# CPU (taskset -c 0, as a container's cpuset does), at 128, 512 and 1,000
# keep-alive connections, against nginx serving the same bytes with the same
# headers, pinned the same way, in the same run. wrk runs on the other CPUs.
# Target (issue 10): refuge >= 0.8 of nginx at every count, and every
# connection answered (wrk's timeouts are printed).
# Usage: bench/landing_pinned.sh [seconds]   (REFUGE_BIN: the binary)
set -eu
ROOTFLAG=$([ "$(id -u)" = 0 ] && echo --allow-root || true)
SECS=${1:-10}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/lib/nginx.sh"
BIN=${REFUGE_BIN:-$ROOT/build/refuge}
NCPU=$(nproc --all)
[ "$NCPU" -ge 2 ] || { echo "needs 2 CPUs (one for the server, one for wrk)"; exit 1; }
CLIENT_CPUS=1-$((NCPU - 1))
W=$(mktemp -d /tmp/refuge-bench.XXXXXX)
cleanup() {
    [ -n "${SRV:-}" ] && kill "$SRV" 2>/dev/null || true
    [ -f "$W/nginx.pid" ] && kill "$(cat "$W/nginx.pid")" 2>/dev/null || true
    sleep 0.3; rm -rf "$W"
}
trap cleanup EXIT INT TERM
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

"$BIN" server init --data "$W/data" >"$W/init.out" 2>&1
P1=$(free_port)
taskset -c 0 "$BIN" serve --data "$W/data" --listen 127.0.0.1:$P1 $ROOTFLAG >"$W/serve.out" 2>&1 &
SRV=$!
for _ in $(seq 50); do grep -q listening "$W/serve.out" 2>/dev/null && break; sleep 0.1; done

mkdir -p "$W/www"
curl -s -D "$W/h.txt" -o "$W/www/index.html" "http://127.0.0.1:$P1/"
hdrs=$(grep -i -E '^(content-security-policy|referrer-policy|cache-control|pragma|x-content-type-options|x-frame-options|cross-origin-opener-policy|cross-origin-resource-policy|permissions-policy):' "$W/h.txt" |
    tr -d '\r' | sed -E 's/^([^:]+): (.*)$/        add_header \1 "\2" always;/')
P2=$(free_port)
cat >"$W/nginx.conf" <<NGX
worker_processes auto;
$NGINX_USER
worker_rlimit_nofile 8192;
pid $W/nginx.pid;
error_log $W/nginx-error.log;
events { worker_connections 4096; use epoll; }
http {
    access_log off;
    server_tokens off;
    default_type text/html;
    charset utf-8;
    server {
        listen 127.0.0.1:$P2 backlog=4096;
        root $W/www;
        location = / {
            try_files /index.html =404;
$hdrs
        }
    }
}
NGX
taskset -c 0 nginx -c "$W/nginx.conf" -p "$W"
sleep 0.5
nginx_same "http://127.0.0.1:$P2/" "$W/www/index.html"
ulimit -n 8192 2>/dev/null || true

# "rate timeouts" of one wrk run (2 client threads, on the non-server CPUs)
run() {
    taskset -c "$CLIENT_CPUS" wrk -t2 -c"$2" -d"${SECS}s" --timeout 5s "$1" 2>/dev/null |
        awk '/Requests\/sec/ {r=$2} /Socket errors/ {t=$NF} END {printf "%s %s\n", r, (t==""?0:t)}'
}
median3() { printf '%s\n' "$@" | sort -g | sed -n 2p; }
echo "server and nginx on CPU 0, wrk on CPUs $CLIENT_CPUS; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-12s %12s %12s %8s %10s\n' connections refuge nginx ratio timeouts
for c in 128 512 1000; do
    set -- $(run "http://127.0.0.1:$P1/" $c); r1=$1; t1=$2
    set -- $(run "http://127.0.0.1:$P2/" $c); n1=$1
    set -- $(run "http://127.0.0.1:$P2/" $c); n2=$1
    set -- $(run "http://127.0.0.1:$P1/" $c); r2=$1; t2=$2
    set -- $(run "http://127.0.0.1:$P1/" $c); r3=$1; t3=$2
    set -- $(run "http://127.0.0.1:$P2/" $c); n3=$1
    r=$(median3 "$r1" "$r2" "$r3"); n=$(median3 "$n1" "$n2" "$n3")
    printf '%-12s %12s %12s %8s %10s\n' "$c" "$r" "$n" "$(echo "$r $n" | awk '{printf "%.2f", $1/$2}')" \
        "$((t1 + t2 + t3))"
done
echo "(median of 3 runs of ${SECS}s each; timeouts: refuge requests wrk gave up on after 5 s, all runs)"
