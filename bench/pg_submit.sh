#!/bin/sh
# bench/pg_submit.sh - durable 2 KB submissions per second with 1, 2 and 3
# `refuge serve` processes on one PostgreSQL database (one data directory),
# beside one process on SQLite, in the same run (issue 11).
#
# PostgreSQL is a throwaway cluster made by scripts/pg-test for this run
# (127.0.0.1 only, fsync on, synchronous_commit on, full_page_writes on),
# stopped and removed at the end, on the same disk as the SQLite file. Every
# submission is acknowledged (303) only after its group commit's COMMIT (or
# fsync, on SQLite) returned. 5 caseworkers on the roster, as bench/submit.sh.
# Each process has its own logged-in people (person sessions live in one
# process) and its own wrk; the rates of the wrk runs of one phase are added.
# The three processes run all the time; a phase loads 1, 2 or 3 of them.
# The stored objects are counted in the database before and after each phase
# (stored = acknowledged: nothing is counted that is not durable).
#
# Usage: bench/pg_submit.sh [seconds per phase, default 8]
set -eu
ROOTFLAG=$([ "$(id -u)" = 0 ] && echo --allow-root || true)
SECS=${1:-8}
# logged in per process: a person may send 200 messages a day (session.h),
# and the first process serves all three phases
PEOPLE=400
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${REFUGE_BUILD:-$ROOT/build}
W=$(mktemp -d /tmp/refuge-bench.XXXXXX)
PGD=/tmp/refuge-pgbench-$$-$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')
PIDS=""
cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null || true; done
    sleep 0.3
    [ -d "$PGD" ] && "$ROOT/scripts/pg-test" stop "$PGD" >/dev/null 2>&1
    rm -rf "$W"
}
trap cleanup EXIT INT TERM
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

# serve DIR PORT LOG: a server in the background; its pid in $SRV
serve() {
    "$B/refuge" serve --data "$1" --listen "127.0.0.1:$2" $ROOTFLAG >"$3" 2>&1 &
    SRV=$!
    PIDS="$PIDS $SRV"
    for _ in $(seq 100); do grep -q listening "$3" 2>/dev/null && return 0; sleep 0.1; done
    echo "pg_submit.sh: refuge serve did not start:" >&2
    tail -5 "$3" >&2
    exit 1
}

# load N PORT...: wrk on each port at once (64 connections in all, 2 threads
# in all), SECS seconds; sets rate (303s per second, summed), bad (other
# answers, summed), lat (the first wrk's)
load() {
    n=$1
    shift
    if [ "$n" = 1 ]; then T=2 C=64; else T=1 C=$(((64 + n - 1) / n)); fi
    i=0
    wpids=""
    for p in "$@"; do
        i=$((i + 1))
        REFUGE_SESSIONS="$W/sessions-$p.lua" wrk -t$T -c$C -d"${SECS}s" \
            -s "$ROOT/bench/submit.lua" "http://127.0.0.1:$p" >"$W/wrk-$n-$i.out" 2>&1 &
        wpids="$wpids $!"
    done
    for w in $wpids; do wait "$w"; done
    # acknowledged (303) per second: every wrk's answers less its other
    # answers (a person's daily quota, busy), over its own duration
    rate=$(cat "$W"/wrk-$n-*.out | awk '/requests in/ {r = $1; d = $4 + 0}
        /Non-2xx or 3xx/ {r -= $5} /Transfer\/sec/ {s += r / d; r = 0} END {printf "%.0f", s}')
    bad=$(cat "$W"/wrk-$n-*.out | awk '/Non-2xx or 3xx/ {s += $5} END {printf "%d", s}')
    lat=$(awk '/Latency/ {print $2" avg, "$4" max"}' "$W/wrk-$n-1.out")
}

# ---- SQLite, one process
"$B/refuge" server init --data "$W/sq" --kdf-ops 1 --kdf-mem 8 >/dev/null 2>&1
"$B/bench/refuge-bench-roster" "$W/sq" 5
SQPORT=$(port)
serve "$W/sq" "$SQPORT" "$W/sq.log"
SQSRV=$SRV
python3 "$ROOT/bench/sessions.py" "http://127.0.0.1:$SQPORT" $PEOPLE "$W/sessions-$SQPORT.lua"
b0=$(sqlite3 "$W/sq/refuge.db" 'SELECT count(*) FROM objects')
load 1 "$SQPORT"
sq_rate=$rate sq_bad=$bad sq_lat=$lat
sq_stored=$(($(sqlite3 "$W/sq/refuge.db" 'SELECT count(*) FROM objects') - b0))
kill "$SQSRV"
wait "$SQSRV" 2>/dev/null || true

# ---- PostgreSQL, 1, 2 and 3 processes on one database and one DIR
URL=$("$ROOT/scripts/pg-test" start "$PGD") || { echo "pg_submit.sh: no PostgreSQL cluster" >&2; exit 1; }
count() { psql -X -qAt "$URL" -c 'SELECT count(*) FROM objects'; }
"$B/refuge" server init --data "$W/pg" --db "$URL" --kdf-ops 1 --kdf-mem 8 >/dev/null 2>&1
"$B/bench/refuge-bench-roster" "$W/pg" 5
P1=$(port) P2=$(port) P3=$(port)
for p in $P1 $P2 $P3; do serve "$W/pg" "$p" "$W/pg-$p.log"; done
spids=""
for p in $P1 $P2 $P3; do
    python3 "$ROOT/bench/sessions.py" "http://127.0.0.1:$p" $PEOPLE "$W/sessions-$p.lua" &
    spids="$spids $!"
done
for s in $spids; do wait "$s"; done
for p in $P1 $P2 $P3; do [ -s "$W/sessions-$p.lua" ] || { echo "pg_submit.sh: no sessions on $p" >&2; exit 1; }; done

b0=$(count)
load 1 $P1
pg1_rate=$rate pg1_bad=$bad pg1_lat=$lat
b1=$(count)
load 2 $P1 $P2
pg2_rate=$rate pg2_bad=$bad pg2_lat=$lat
b2=$(count)
load 3 $P1 $P2 $P3
pg3_rate=$rate pg3_bad=$bad pg3_lat=$lat
b3=$(count)
settings=$(psql -X -qAt "$URL" -c "SELECT string_agg(name || '=' || setting, ', ' ORDER BY name) FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes', 'wal_sync_method')")
pgver=$(psql -X -qAt "$URL" -c 'SHOW server_version' | cut -d' ' -f1)

ratio() { echo "$1 $2" | awk '{ if ($2 > 0) printf "%.2f", $1/$2; else print "-" }'; }
echo "sqlite_1_process_per_s $sq_rate  (stored $sq_stored, non-303 $sq_bad, latency $sq_lat)"
echo "postgresql_1_process_per_s $pg1_rate  (stored $((b1 - b0)), non-303 $pg1_bad, latency $pg1_lat)"
echo "postgresql_2_processes_per_s $pg2_rate  (stored $((b2 - b1)), non-303 $pg2_bad, latency $pg2_lat)"
echo "postgresql_3_processes_per_s $pg3_rate  (stored $((b3 - b2)), non-303 $pg3_bad, latency $pg3_lat)"
echo "ratio_postgresql_1_to_sqlite $(ratio "$pg1_rate" "$sq_rate")"
echo "ratio_postgresql_2_to_1 $(ratio "$pg2_rate" "$pg1_rate")"
echo "ratio_postgresql_3_to_1 $(ratio "$pg3_rate" "$pg1_rate")"
echo "ratio_postgresql_3_to_sqlite $(ratio "$pg3_rate" "$sq_rate")"
echo "postgresql $pgver on 127.0.0.1 (throwaway cluster, same disk): $settings"
echo "($SECS s per phase, 64 connections in all, $PEOPLE people per process, 5 caseworkers; $(nproc) CPUs for servers, PostgreSQL and wrk together)"
