#!/bin/sh
# bench/rss.sh - the server's resident memory: idle (started, nothing asked),
# after the landing page was served, and while 1,000 idle keep-alive
# connections are held open (each made one request, then waits) - beside
# nginx serving the same page under the same load in the same run. While the
# 1,000 are held, new requests must still be answered: the time of a fresh
# connection's landing request is printed.
# Targets (DESIGN.md): idle under 10 MB RSS; 1,000 idle connections held
# without starving new ones. Usage: bench/rss.sh [connections]
set -eu
ROOTFLAG=$([ "$(id -u)" = 0 ] && echo --allow-root || true)
N=${1:-1000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/lib/nginx.sh"
B=${REFUGE_BUILD:-$ROOT/build}
W=$(mktemp -d /tmp/refuge-bench.XXXXXX)
cleanup() {
    [ -n "${SRV:-}" ] && kill "$SRV" 2>/dev/null || true
    [ -f "$W/nginx.pid" ] && kill "$(cat "$W/nginx.pid")" 2>/dev/null || true
    sleep 0.3; rm -rf "$W"
}
trap cleanup EXIT INT TERM
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
rss_of() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

"$B/refuge" server init --data "$W/data" >/dev/null 2>&1
P1=$(free_port)
"$B/refuge" serve --data "$W/data" --listen 127.0.0.1:$P1 $ROOTFLAG >"$W/serve.out" 2>&1 &
SRV=$!
for _ in $(seq 50); do grep -q listening "$W/serve.out" 2>/dev/null && break; sleep 0.1; done
sleep 2
idle=$(rss_of $SRV)
curl -s -o "$W/index.html" "http://127.0.0.1:$P1/"
after_landing=$(rss_of $SRV)

# nginx, one worker, the same page.
mkdir -p "$W/www" && cp "$W/index.html" "$W/www/index.html"
P2=$(free_port)
cat >"$W/nginx.conf" <<NGX
worker_processes 1;
$NGINX_USER
pid $W/nginx.pid;
error_log $W/nginx-error.log;
events { worker_connections 4096; use epoll; }
http {
    access_log off;
    keepalive_timeout 300s;
    server { listen 127.0.0.1:$P2; root $W/www; }
}
NGX
nginx -c "$W/nginx.conf" -p "$W" 2>/dev/null
sleep 0.5
nginx_same "http://127.0.0.1:$P2/" "$W/www/index.html"

# Holds N keep-alive connections (one request each), then times a fresh
# connection's request, and prints the RSS of the given PIDs.
hold() {
    python3 - "$1" "$N" "$2" <<'PY'
import os, resource, socket, sys, time
port, n, pids = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3].split(",")
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 100), hard))
req = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n"
socks, answered = [], 0
for _ in range(n):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(req)
        socks.append(s)
    except OSError:
        pass
for s in socks:
    try:
        if s.recv(65536).startswith(b"HTTP/1.1 200"):
            answered += 1
    except OSError:
        pass
time.sleep(1)
t0 = time.monotonic()
try:
    f = socket.create_connection(("127.0.0.1", port), timeout=10)
    f.sendall(req.replace(b"keep-alive", b"close"))
    ok = f.recv(65536).startswith(b"HTTP/1.1 200")
except OSError:
    ok = False
ms = (time.monotonic() - t0) * 1000
rss = 0
for p in pids:
    for pid in [p] + [c for c in os.popen("pgrep -P %s" % p).read().split()]:
        with open("/proc/%s/status" % pid) as st:
            rss += int([l.split()[1] for l in st if l.startswith("VmRSS")][0])
print(answered, rss, "%.1f" % ms if ok else "no-answer")
PY
}
set -- $(hold $P1 $SRV)
r_ans=$1 r_rss=$2 r_new=$3
set -- $(hold $P2 "$(cat "$W/nginx.pid")")
n_ans=$1 n_rss=$2 n_new=$3

echo "idle_rss_kb $idle  (target < 10240)"
echo "rss_after_landing_kb $after_landing"
echo "rss_with_${N}_idle_connections_kb $r_rss  (answered $r_ans of $N; a new connection's request: $r_new ms)"
echo "reference_nginx_rss_with_${N}_idle_connections_kb $n_rss  (master + worker; answered $n_ans of $N; new: $n_new ms)"
echo "ratio_rss_to_nginx $(echo "$r_rss $n_rss" | awk '{printf "%.2f", $1/$2}')"
