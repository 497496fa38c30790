/*
 * net.h - signed requests to the staff API over libcurl.
 *
 * Each request carries the Authorization header of lib/apisig.h over the
 * method, path+query, time, a fresh nonce and the body's BLAKE2b-256. JSON
 * answers are bounded (RF_NET_JSON_MAX) and parsed with jansson; object
 * downloads stream to a sink, bounded by the size the listing announced.
 * After a failure rf_net_error() says what happened in words a caseworker
 * can act on (connection refused, TLS, HTTP status and the server's message).
 */
#ifndef RF_CLIENT_NET_H
#define RF_CLIENT_NET_H

#include "lib/envelope.h"
#include "lib/keyfile.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define RF_NET_JSON_MAX (64 * 1024 * 1024)

struct rf_net;

#define RF_NET_INSECURE_HTTP 1 /* allow plain http:// to any host (a TLS proxy on this host) */

/* Whether base_url may be used: https://, or plain http:// only to a
 * loopback address (127.0.0.0/8, ::1, localhost) or a .onion name, unless
 * flags has RF_NET_INSECURE_HTTP. 0, RF_ERR_INVALID (not an http(s) URL, or
 * too long), RF_ERR_PROTOCOL (plain http refused). Reads no network. */
int rf_net_url_check(const char *url, int flags);
/* A connection to base_url (checked as above; nothing is connected or looked
 * up when it is refused). rf_net_new is rf_net_open with flags 0. */
int rf_net_open(struct rf_net **out, const char *base_url, const struct rf_staff_keys *keys,
                int flags);
int rf_net_new(struct rf_net **out, const char *base_url, const struct rf_staff_keys *keys);
void rf_net_free(struct rf_net *n);

/* Sends a signed request; body may be NULL. On a 2xx answer *out (if not
 * NULL) gets the parsed JSON object. Returns 0, RF_ERR_NET (no answer),
 * RF_ERR_PROTOCOL (an HTTP error: see rf_net_status / rf_net_error_code). */
int rf_net_json(struct rf_net *n, const char *method, const char *path, const uint8_t *body,
                size_t len, const char *content_type, json_t **out);
/* GET path, streaming the 2xx body to sink; refuses more than max bytes. */
int rf_net_download(struct rf_net *n, const char *path, uint64_t max, rf_sink_fn sink, void *ctx);
/* HTTP status of the last answer (0 if none). */
long rf_net_status(const struct rf_net *n);
/* The server's error code ("no_roster", ...) of the last answer, or "". */
const char *rf_net_error_code(const struct rf_net *n);
/* Human description of the last failure. */
const char *rf_net_error(const struct rf_net *n);

#endif
