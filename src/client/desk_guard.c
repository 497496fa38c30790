/*
 * desk_guard.c - the desk's per-request gate (see desk_guard.h). The order
 * of the checks matters: Host first (a rebound name learns nothing, not even
 * whether a token is right), then Origin, then the token or the session,
 * then CSRF for state changes.
 */
#include "client/desk_guard.h"
#include "lib/err.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

static void fresh(char out[RF_DESK_SECRET_B64])
{
    uint8_t raw[RF_DESK_SECRET_BYTES];
    randombytes_buf(raw, sizeof(raw));
    sodium_bin2base64(out, RF_DESK_SECRET_B64, raw, sizeof(raw),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof(raw));
}

int rf_desk_guard_init(struct rf_desk_guard *g, uint16_t port)
{
    if (g == NULL || port == 0)
        return RF_ERR_INVALID;
    memset(g, 0, sizeof(*g));
    g->port = port;
    fresh(g->token);
    return 0;
}

void rf_desk_guard_end(struct rf_desk_guard *g)
{
    uint16_t port = g->port;
    sodium_memzero(g, sizeof(*g));
    g->port = port;
    g->token_spent = 1;
}

/* Constant-time equality of a presented secret with ours (both NUL-ended;
 * ours is always RF_DESK_SECRET_B64 - 1 characters). */
static int secret_eq(const char *given, const char *ours)
{
    size_t n = strlen(ours);
    if (given == NULL || n == 0 || strnlen(given, n + 1) != n)
        return 0;
    return sodium_memcmp(given, ours, n) == 0;
}

/* Whether s is exactly prefix + one of our two names + ":" + port. */
static int is_us(const char *s, const char *prefix, uint16_t port)
{
    static const char *const names[] = {"127.0.0.1", "localhost"};
    char want[64];
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(want, sizeof(want), "%s%s:%u", prefix, names[i], (unsigned)port);
        if (strcmp(s, want) == 0)
            return 1;
    }
    return 0;
}

enum rf_desk_verdict rf_desk_guard_check(struct rf_desk_guard *g, const struct rf_desk_req *r)
{
    if (r->host == NULL || !is_us(r->host, "", g->port))
        return RF_DESK_DENY_HOST;
    if (r->origin != NULL && !is_us(r->origin, "http://", g->port))
        return RF_DESK_DENY_ORIGIN;
    if (r->path != NULL && strcmp(r->path, "/open") == 0) {
        if (r->method == NULL || strcmp(r->method, "GET") != 0 || g->token_spent ||
            !secret_eq(r->token, g->token))
            return RF_DESK_DENY_TOKEN;
        g->token_spent = 1;
        sodium_memzero(g->token, sizeof(g->token));
        fresh(g->cookie);
        fresh(g->csrf);
        g->session = 1;
        return RF_DESK_REDEEM;
    }
    if (!g->session || !secret_eq(r->cookie, g->cookie))
        return RF_DESK_DENY_COOKIE;
    if (r->method == NULL || (strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0 &&
                              !secret_eq(r->csrf, g->csrf)))
        return RF_DESK_DENY_CSRF;
    return RF_DESK_ALLOW;
}

const char *rf_desk_verdict_str(enum rf_desk_verdict v)
{
    switch (v) {
    case RF_DESK_ALLOW:
        return "allowed";
    case RF_DESK_REDEEM:
        return "session started";
    case RF_DESK_DENY_HOST:
        return "wrong Host header (DNS rebinding?)";
    case RF_DESK_DENY_ORIGIN:
        return "request from another site";
    case RF_DESK_DENY_TOKEN:
        return "missing, wrong or already used one-time token";
    case RF_DESK_DENY_COOKIE:
        return "no desk session";
    case RF_DESK_DENY_CSRF:
        return "missing or wrong CSRF token";
    }
    return "refused";
}
