# bench/lib/nginx.sh - shared by the benchmarks that measure nginx beside refuge
# (sourced, not run).

# As root, nginx's workers would run as nobody and could not read the 0700
# temp directory the benchmarks make (every answer a 404): run them as the
# same user. Put "$NGINX_USER" in the main context of nginx.conf.
NGINX_USER=$([ "$(id -u)" = 0 ] && echo "user root;" || true)

# nginx_same URL FILE: exits the benchmark unless URL answers 200 with
# exactly FILE's bytes (the reference must serve what refuge served, or its
# ratio means nothing).
nginx_same() {
    _got=$(mktemp)
    _code=$(curl -s -o "$_got" -w '%{http_code}' "$1")
    if [ "$_code" != 200 ] || ! cmp -s "$_got" "$2"; then
        rm -f "$_got"
        echo "$(basename "$0"): nginx answered $1 with $_code, not the same bytes as refuge" >&2
        exit 1
    fi
    rm -f "$_got"
}
