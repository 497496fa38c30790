#!/bin/sh
# bench/sync.sh - staff `refuge sync` of a large instance (issue 10: 100,000
# cases / 1,000,000 events, cold under 30 s on 2 cores, warm under 1 s) and
# `refuge cases` listing from the local cache (under 100 ms). A real server
# and team; the server's store filled directly (bench/syncfill.c: real
# sealed intakes, a case key per case and signed events sealed under it, an
# admin's checkpoint, on every core: the team's format 2), then a
# caseworker who has synced nothing syncs it all over HTTP. Printed beside
# the bare public-key work of that format measured in the same run (one
# sealed box open per intake and per case key, on every core). See
# bench/sync.py.
#   bench/sync.sh [cases=100000] [events=1000000]
# The default is the issue's size (it fills in about 35 s and syncs in under
# a minute on the 2-core machine). A smaller size prints the full size's
# cold time as an extrapolation, labelled as such.
# Environment: REFUGE_BUILD (default build), SYNC_BENCH_PERF (a perf.data
# path: profile the cold sync's client), SYNC_BENCH_FORMAT=1 (version 1
# events, one envelope each).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${REFUGE_BUILD:-$ROOT/build}
[ -x "$B/bench/refuge-bench-syncfill" ] || ninja -C "$B" bench/refuge-bench-syncfill >/dev/null
SYNC_BENCH_CASES=${1:-${SYNC_BENCH_CASES:-100000}} SYNC_BENCH_EVENTS=${2:-${SYNC_BENCH_EVENTS:-1000000}} \
    REFUGE_BIN="$B/refuge" SYNC_BENCH_FILL="$B/bench/refuge-bench-syncfill" \
    exec python3 -u "$ROOT/bench/sync.py"
