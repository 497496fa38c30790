#!/bin/sh
# bench/sync.sh - staff `refuge sync` of a large instance (issue 10: 100,000
# cases / 1,000,000 events, cold under 30 s on 2 cores, warm under 1 s) and
# `refuge cases` listing from the local cache (under 100 ms). A real server
# and team; the server's store filled directly (bench/syncfill.c: real
# sealed intakes and signed, sealed events, on every core), then a
# caseworker who has synced nothing syncs it all over HTTP. Printed beside
# the bare per-object public-key work measured in the same run (one sealed
# box open + one Ed25519 verify per event, on every core). See bench/sync.py.
#   bench/sync.sh [cases=10000] [events=100000]
# The default is a tenth of the issue's size so that `make bench` stays under
# 15 minutes on the 2-core machine (the full 100,000 / 1,000,000 fills in
# about 2.5 minutes but syncs cold in about 10 there); the cold time at full
# size is printed as an extrapolation, labelled as such. For the real thing:
#   bench/sync.sh 100000 1000000
# Environment: REFUGE_BUILD (default build), SYNC_BENCH_PERF (a perf.data
# path: profile the cold sync's client).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${REFUGE_BUILD:-$ROOT/build}
[ -x "$B/bench/refuge-bench-syncfill" ] || ninja -C "$B" bench/refuge-bench-syncfill >/dev/null
SYNC_BENCH_CASES=${1:-${SYNC_BENCH_CASES:-10000}} SYNC_BENCH_EVENTS=${2:-${SYNC_BENCH_EVENTS:-100000}} \
    REFUGE_BIN="$B/refuge" SYNC_BENCH_FILL="$B/bench/refuge-bench-syncfill" \
    exec python3 -u "$ROOT/bench/sync.py"
