/*
 * httpd.h - starting and stopping the HTTP daemon (http.c). Used by
 * `refuge serve` (srv_main.c) with the page and API route tables, and by
 * tests with tables of their own. Handlers never include this: they see
 * only http.h.
 */
#ifndef RF_HTTPD_H
#define RF_HTTPD_H

#include "server/http.h"

#include <stddef.h>
#include <sys/socket.h>
#include <stdint.h>

struct rf_http;

/* Parses "IP:PORT", "[IPv6]:PORT" or "localhost:PORT" (port 0..65535, digits
 * only; no name lookup) into ss. RF_ERR_INVALID otherwise. */
int rf_http_parse_listen(const char *listen, struct sockaddr_storage *ss, socklen_t *sslen);

/* Starts libmicrohttpd on listen ("127.0.0.1:8080", "[::1]:8080"; port 0
 * picks a free port, see rf_http_port) with a thread pool of one thread per
 * core, dispatching on tables[0..ntables) (counts[i] routes each), matched in
 * order: every exact path first, then prefixes. Limits come from srv->limits.
 * RF_ERR_INVALID for a bad address, RF_ERR_NET if it cannot listen. */
int rf_http_start(struct rf_http **out, struct rf_srv *srv, const char *listen,
                  const struct rf_route *const *tables, const size_t *counts, size_t ntables);
/* The port actually listened on. */
uint16_t rf_http_port(const struct rf_http *h);
/* Stops accepting connections and answers new requests on open connections
 * with 503; requests already in a handler or suspended run to the end. */
void rf_http_quiesce(struct rf_http *h);
/* Quiesces, waits until no request is suspended (workers always resume),
 * then stops the daemon, closing every connection. NULL is a no-op. */
void rf_http_stop(struct rf_http *h);

/* Who answers what no route does, handed in by the layer that owns the
 * pages and the API (srv_main.c: rf_pages_not_found, rf_api_not_found and
 * rf_pages_refuse from routes.h), so that this layer never calls up into
 * them. pages / api answer an unmatched path (api for paths under /api/);
 * refuse renders the person's page for a request this layer refuses itself
 * (400, 405, 413, 503, ...) and returns nonzero when it answered nothing.
 * Set before rf_http_start; a NULL leaves this layer's own answer (JSON
 * under /api/, plain text elsewhere). */
typedef int (*rf_http_fallback_fn)(struct rf_req *r);
typedef int (*rf_http_refuse_fn)(struct rf_req *r, unsigned status);
void rf_http_set_fallbacks(rf_http_fallback_fn pages, rf_http_fallback_fn api,
                           rf_http_refuse_fn refuse);
/* The Content-Security-Policy of every HTML answer, handed in the same way
 * (srv_main.c: the pages' policy, rf_tmpl_csp of server/tmpl.h, which
 * allows their one stylesheet by its hash). csp must live as long as the
 * process. Set before rf_http_start; until set, HTML answers get the strict
 * policy of every other answer. */
void rf_http_set_page_csp(const char *csp);

/* Bytes of a chunked request body (no Content-Length) that are read and
 * thrown away after a handler has answered early, so that the client reads
 * the answer instead of a reset. Past it the connection is closed. The rest
 * of an announced Content-Length, already checked against the route's limit
 * when the headers came, is always read and thrown away. */
#define RF_HTTP_DISCARD_MAX (1024 * 1024)

#endif
