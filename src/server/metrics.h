/*
 * metrics.h - the Prometheus metrics endpoint of `refuge serve --metrics
 * ADDR:PORT` (metrics.c): a second libmicrohttpd daemon, one thread, on a
 * loopback address only, off by default, answering GET /metrics in the text
 * exposition format 0.0.4 and 404 to everything else.
 *
 * What it counts carries no personal data: counts and durations only, with
 * labels from fixed tables (route names from the route tables, status
 * classes, login outcomes, object kinds), never anything a client sent.
 * docs/operations.md lists every metric.
 *
 * The hot-path calls (rf_metrics_request, rf_metrics_login, ...) are a
 * relaxed atomic load of the on/off flag, and when on a few relaxed atomic
 * adds: no lock, no allocation. While no listener was started they count
 * nothing.
 */
#ifndef RF_METRICS_H
#define RF_METRICS_H

#include "server/http.h"

#include <stddef.h>
#include <stdint.h>

struct rf_srv;

/* 0 if listen is "IP:PORT" / "[IPv6]:PORT" on a loopback address
 * (127.0.0.0/8, ::1, "localhost") with a port from 1 to 65535;
 * RF_ERR_INVALID else (a metrics listener is never reachable from outside). */
int rf_metrics_addr_check(const char *listen);

/* Starts the listener (before the sandbox locks: it binds a socket and
 * starts a thread) and turns counting on. tables/counts: the route tables
 * the HTTP daemon dispatches on (their method and path are the route
 * labels); they must outlive the listener. RF_ERR_INVALID for a
 * non-loopback address, RF_ERR_NET if it cannot listen. */
struct rf_metrics;
int rf_metrics_start(struct rf_metrics **out, struct rf_srv *srv, const char *listen,
                     const struct rf_route *const *tables, const size_t *counts, size_t ntables);
uint16_t rf_metrics_port(const struct rf_metrics *m);
/* Stops counting and the listener. NULL is a no-op. */
void rf_metrics_stop(struct rf_metrics *m);

/* ---- counting (any thread; nothing while off) ---- */
/* An answer queued for a request: route (NULL: none matched) and status. */
void rf_metrics_request(const struct rf_route *route, unsigned status);

enum rf_metrics_login {
    RF_METRICS_LOGIN_OK = 0, /* the codename opened an account and a session started */
    RF_METRICS_LOGIN_WRONG,  /* no such account, or a malformed codename */
    RF_METRICS_LOGIN_BUSY,   /* the KDF queue or the session table was full */
    RF_METRICS_LOGIN_COUNT
};
void rf_metrics_login(enum rf_metrics_login outcome);
/* A person's message (with its files) answered: stored durably, or not. */
void rf_metrics_submission(int stored);
/* Microseconds a codename waited in the KDF queue before a worker took it. */
void rf_metrics_kdf_wait(uint64_t us);

/* The onion service (refuge serve --onion): 1 published, 0 down (tor gone,
 * reconnecting). Never called without --onion: the metric is absent then. */
void rf_metrics_onion(int up);

/* Renders the whole exposition into out (for the listener and tests). */
int rf_metrics_render(struct rf_metrics *m, struct rf_buf *out);

#endif
