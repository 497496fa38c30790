#!/bin/sh
# bench/desk_board.sh - the desk's board with 10,000 cases and 200,000 events
# in the caseworker's local case database (issue 9: under 100 ms). A real
# server and team, the database filled with real sealed and signed objects
# (bench/deskfill.c, then the client's own verification and digests), a
# real `refuge desk`, the board fetched over HTTP: p50/p95 of the first
# board after a CLI change, of other filters, of a text filter, of GET / and
# GET /?stage=S, beside two references from the same run (the summary rows
# read with SQLite alone; `refuge cases --json`). See bench/desk_board.py.
#   bench/desk_board.sh [cases=10000] [events=200000]
# Environment: REFUGE_BUILD (default build), DESK_BENCH_REPEAT (default 30),
# DESK_BENCH_PERF (a perf.data path: profile the desk after each change).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${REFUGE_BUILD:-$ROOT/build}
[ -x "$B/bench/refuge-bench-deskfill" ] || ninja -C "$B" bench/refuge-bench-deskfill >/dev/null
DESK_BENCH_CASES=${1:-10000} DESK_BENCH_EVENTS=${2:-200000} REFUGE_BIN="$B/refuge" \
    exec python3 -u "$ROOT/bench/desk_board.py"
