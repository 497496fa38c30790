#!/bin/sh
# bench/landing.sh - requests/s of the landing and login pages, side by side
# with nginx serving the same bytes with the same headers, in the same run.
# Target (DESIGN.md): refuge >= nginx. Usage: bench/landing.sh [seconds]
# REFUGE_SERVE_FLAGS: more flags for refuge serve (e.g. "--metrics
# 127.0.0.1:9464", to measure the metrics' cost on the hot path).
set -eu
# as root, a throwaway instance is served as root (see refuge serve --help)
ROOTFLAG=$([ "$(id -u)" = 0 ] && echo --allow-root || true)
SECS=${1:-10}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/lib/nginx.sh"
BIN=${REFUGE_BIN:-$ROOT/build/refuge}
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
"$BIN" serve --data "$W/data" --listen 127.0.0.1:$P1 $ROOTFLAG ${REFUGE_SERVE_FLAGS:-} >"$W/serve.out" 2>&1 &
SRV=$!
for _ in $(seq 50); do grep -q listening "$W/serve.out" 2>/dev/null && break; sleep 0.1; done

# The same bytes and headers for nginx.
mkdir -p "$W/www"
curl -s -D "$W/h.txt" -o "$W/www/index.html" "http://127.0.0.1:$P1/"
curl -s -o "$W/www/login.html" "http://127.0.0.1:$P1/login"
hdrs=$(grep -i -E '^(content-security-policy|referrer-policy|cache-control|pragma|x-content-type-options|x-frame-options|cross-origin-opener-policy|cross-origin-resource-policy|permissions-policy):' "$W/h.txt" |
    tr -d '\r' | sed -E 's/^([^:]+): (.*)$/        add_header \1 "\2" always;/')
P2=$(free_port)
cat >"$W/nginx.conf" <<NGX
worker_processes auto;
$NGINX_USER
pid $W/nginx.pid;
error_log $W/nginx-error.log;
events { worker_connections 4096; use epoll; }
http {
    access_log off;
    server_tokens off;
    default_type text/html;
    charset utf-8;
    server {
        listen 127.0.0.1:$P2;
        root $W/www;
        location = / {
            try_files /index.html =404;
$hdrs
        }
        location = /login {
            try_files /login.html =404;
$hdrs
        }
    }
}
NGX
nginx -c "$W/nginx.conf" -p "$W"
sleep 0.5
nginx_same "http://127.0.0.1:$P2/" "$W/www/index.html"
nginx_same "http://127.0.0.1:$P2/login" "$W/www/login.html"

rate() { wrk -t2 -c64 -d"${SECS}s" "$1" 2>/dev/null | awk '/Requests\/sec/ {print $2}'; }
median3() { printf '%s\n' "$@" | sort -g | sed -n 2p; }
# Three rounds, refuge and nginx alternating, medians reported: on 2 shared
# cores a single run varies by +-20%.
printf '%-10s %12s %12s %8s  (%s bytes, median of 3 runs of %ss)\n' page refuge nginx ratio \
    "$(wc -c <"$W/www/index.html")" "$SECS"
for page in / /login; do
    r1=$(rate "http://127.0.0.1:$P1$page"); n1=$(rate "http://127.0.0.1:$P2$page")
    n2=$(rate "http://127.0.0.1:$P2$page"); r2=$(rate "http://127.0.0.1:$P1$page")
    r3=$(rate "http://127.0.0.1:$P1$page"); n3=$(rate "http://127.0.0.1:$P2$page")
    r=$(median3 "$r1" "$r2" "$r3")
    n=$(median3 "$n1" "$n2" "$n3")
    printf '%-10s %12s %12s %8s\n' "$page" "$r" "$n" "$(echo "$r $n" | awk '{printf "%.2f", $1/$2}')"
done
echo "rss_kb_after $(awk '/VmRSS/ {print $2}' /proc/$SRV/status)"
