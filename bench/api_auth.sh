#!/bin/sh
# api_auth.sh - build and run the signed API request benchmark (bench/api_auth.c).
#
#   bench/api_auth.sh [clients=8] [seconds=3]
#
# Like store_commit.sh, kept out of meson: it compiles bench/api_auth.c with
# cc against the static libraries of a release meson build directory (BUILD,
# default build-bench; created if missing). The data directory goes under
# BENCH_DIR (default $BUILD/bench-tmp, the repo's disk: not tmpfs, where
# fsync is free and the figures mean nothing).
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-bench}
BENCH_DIR=${BENCH_DIR:-$BUILD/bench-tmp}
[ -d "$BUILD" ] || meson setup "$BUILD" --buildtype=release >/dev/null
ninja -C "$BUILD" src/lib/librefuge_lib.a src/store/librefuge_store.a \
    src/server/librefuge_server.a src/client/librefuge_client.a >/dev/null
mkdir -p "$BENCH_DIR"
cc -std=c17 -O2 -D_GNU_SOURCE -Wall -Wextra -Werror -Isrc -I"$BUILD/src/server" \
    bench/api_auth.c "$BUILD/src/server/librefuge_server.a" "$BUILD/src/client/librefuge_client.a" \
    "$BUILD/src/store/librefuge_store.a" "$BUILD/src/lib/librefuge_lib.a" \
    $(pkg-config --cflags --libs libsodium sqlite3 libmicrohttpd jansson libcurl) \
    -lunistring -lm -pthread -o "$BUILD/api_auth"
exec "$BUILD/api_auth" "$BENCH_DIR" "${1:-8}" "${2:-3}"
