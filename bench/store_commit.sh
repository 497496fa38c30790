#!/bin/sh
# store_commit.sh - build and run the group-commit benchmark (bench/store_commit.c).
#
#   bench/store_commit.sh [threads=16] [seconds=3] [postgresql://...]
#
# With a URL the store is that PostgreSQL database (an empty one, or a fresh
# schema: ...?options=-csearch_path%3DNAME), e.g. a scripts/pg-test cluster.
#
# Kept out of meson on purpose: it compiles bench/store_commit.c with cc
# against the static libraries of a meson build directory (BUILD, default
# build-store; created with `meson setup` if missing) - only
# src/lib/librefuge_lib.a and src/store/librefuge_store.a are built, so a
# half-written server or client does not stop it. The data directory goes
# under BENCH_DIR (default: $BUILD/bench-tmp, i.e. the repo's disk; do not
# point it at tmpfs, where fsync is free and the figures mean nothing).
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-store}
BENCH_DIR=${BENCH_DIR:-$BUILD/bench-tmp}
[ -d "$BUILD" ] || meson setup "$BUILD" >/dev/null
ninja -C "$BUILD" src/lib/librefuge_lib.a src/store/librefuge_store.a >/dev/null
mkdir -p "$BENCH_DIR"
cc -std=c17 -O2 -D_GNU_SOURCE -Wall -Wextra -Werror -Isrc \
    bench/store_commit.c "$BUILD/src/store/librefuge_store.a" "$BUILD/src/lib/librefuge_lib.a" \
    $(pkg-config --cflags --libs libsodium sqlite3 libpq) -lunistring -pthread \
    -o "$BUILD/store_commit"
case "$(stat -f -c %T "$BENCH_DIR")" in
tmpfs | ramfs) echo "store_commit.sh: warning: $BENCH_DIR is in memory; fsync costs nothing there" >&2 ;;
esac
exec "$BUILD/store_commit" "$BENCH_DIR" "${1:-16}" "${2:-3}" "${3:-}"
