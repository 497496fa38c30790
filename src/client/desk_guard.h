/*
 * desk_guard.h - who may talk to the desk (refuge desk), decided per request
 * before anything else runs. Pure: no socket, no clock, no I/O, so every
 * decision is unit-tested (tests/unit/desk_guard_test.c).
 *
 * The desk listens on 127.0.0.1 only, but any web page the caseworker opens
 * can make their browser send requests there, and a DNS name rebound to
 * 127.0.0.1 makes them same-origin to that page. So:
 *   - Host must be exactly 127.0.0.1:PORT or localhost:PORT (a rebound name
 *     carries its own name in Host: refused);
 *   - an Origin header, when present, must be http://127.0.0.1:PORT or
 *     http://localhost:PORT (another site's fetch or form: refused);
 *   - the session starts only by trading the one-time token printed on the
 *     terminal (GET /open?t=TOKEN): once, after which the token is dead; it
 *     gives a random session cookie (HttpOnly, SameSite=Strict, host-only)
 *     and a CSRF token bound to it;
 *   - every other request needs the session cookie; every POST also needs
 *     the CSRF token in its form (field "csrf").
 * Secrets are compared in constant time.
 */
#ifndef RF_CLIENT_DESK_GUARD_H
#define RF_CLIENT_DESK_GUARD_H

#include <stddef.h>
#include <stdint.h>

#define RF_DESK_SECRET_BYTES 32
#define RF_DESK_SECRET_B64 44 /* base64url without padding, with NUL */
#define RF_DESK_COOKIE "rf_desk"

enum rf_desk_verdict {
    RF_DESK_ALLOW = 0,   /* a request of the session */
    RF_DESK_REDEEM,      /* the one-time token: start the session, redirect to / */
    RF_DESK_DENY_HOST,   /* Host is not this desk (DNS rebinding) */
    RF_DESK_DENY_ORIGIN, /* another site */
    RF_DESK_DENY_TOKEN,  /* no, a wrong or a spent token */
    RF_DESK_DENY_COOKIE, /* no session, or a wrong one */
    RF_DESK_DENY_CSRF,   /* a POST without the session's CSRF token */
};

struct rf_desk_guard {
    uint16_t port;
    char token[RF_DESK_SECRET_B64];  /* the one-time token, until spent */
    char cookie[RF_DESK_SECRET_B64]; /* the session, once started */
    char csrf[RF_DESK_SECRET_B64];
    int token_spent;
    int session;
};

/* What the guard looks at; any field may be NULL (absent). */
struct rf_desk_req {
    const char *method; /* "GET", "POST", ... */
    const char *path;   /* without the query */
    const char *host;
    const char *origin;
    const char *cookie; /* the value of the rf_desk cookie */
    const char *token;  /* the t= query parameter of /open */
    const char *csrf;   /* the csrf form field of a POST */
};

/* Fills g with a fresh one-time token (random, base64url) for port. */
int rf_desk_guard_init(struct rf_desk_guard *g, uint16_t port);
/* Decides; on RF_DESK_REDEEM it has spent the token and made the session's
 * cookie and CSRF token (g->cookie, g->csrf). */
enum rf_desk_verdict rf_desk_guard_check(struct rf_desk_guard *g, const struct rf_desk_req *r);
/* Ends the session and spends the token (lock). */
void rf_desk_guard_end(struct rf_desk_guard *g);
/* A short English reason for the terminal and the refusal page. */
const char *rf_desk_verdict_str(enum rf_desk_verdict v);

#endif
