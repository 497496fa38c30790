/*
 * pages_priv.h - what pages.c (routes, landing, codename, login, exit,
 * errors) shares with pages_inbox.c (the conversation, sending, deleting).
 * Server-internal; nothing outside the pages includes it.
 */
#ifndef RF_PAGES_PRIV_H
#define RF_PAGES_PRIV_H

#include "lib/codename.h"
#include "server/errmap.h" /* enum rf_page_err */
#include "server/http.h"
#include "server/session.h"
#include "server/srv.h"
#include "server/tmpl.h"

#include <stddef.h>
#include <stdint.h>

#define RF_PAGES_HTML "text/html; charset=utf-8"
/* base64url of a 32-byte BLAKE2b output, with its NUL */
#define RF_CSRF_TOKEN_LEN 44
/* a small urlencoded form (login, codename, delete) */
#define RF_PAGES_SMALL_FORM 4096

extern struct rf_srv *rf_pages_srv;

/* The person's language: ?lang= (which also sets the session-only lang
 * cookie), else the lang cookie, else Accept-Language, else the default. */
enum rf_lang rf_pages_lang(struct rf_req *r);
/* Renders page into a fresh buf (sodium_malloc memory if secure) and sends it. */
int rf_pages_send(struct rf_req *r, enum rf_lang lang, unsigned status, const char *page,
                  const struct rf_tvars *v, int secure);
/* Answers with an error page; back is the "try again" link where it has one. */
int rf_pages_error(struct rf_req *r, enum rf_lang lang, enum rf_page_err e, const char *back);
/* Sets cookie name (session-only, HttpOnly, SameSite=Strict, Path=/,
 * Secure behind TLS); value NULL expires it. */
int rf_pages_cookie(struct rf_req *r, const char *name, const char *value);
/* CSRF tokens: "sess" with the session's secret, "anon" with the c cookie. */
void rf_pages_csrf_token(char out[RF_CSRF_TOKEN_LEN], const char *ctx4, const uint8_t *secret,
                         size_t n);
/* 1 if the token given (len bytes) is the expected one, in constant time. */
int rf_pages_csrf_check(const char *ctx4, const uint8_t *secret, size_t n, const uint8_t *given,
                        size_t len);
/* The session of the s cookie into view (sodium_malloc); 0 or RF_ERR_NOT_FOUND. */
int rf_pages_session(struct rf_req *r, struct rf_session_view *view);

/* Route handlers of pages_inbox.c. */
int rf_pages_inbox_get(struct rf_req *r);
int rf_pages_send_headers(struct rf_req *r);
int rf_pages_send_end(struct rf_req *r);
int rf_pages_delete_headers(struct rf_req *r);
int rf_pages_delete_end(struct rf_req *r);

/* The roster's box keys, refreshed when its version changes. *n = 0 if no
 * caseworker is enrolled. out has room for RF_ROSTER_MAX_MEMBERS keys. */
int rf_pages_roster(uint8_t (*out)[32], size_t *n);

/* 1 once the line is open (a roster exists: a caseworker enrolled), else 0.
 * Answers from memory (srv->line_open); while closed, asks the store at most
 * every few seconds, in case another process stored the first roster. */
int rf_pages_line_open(void);

#endif
