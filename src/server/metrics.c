/*
 * metrics.c - the metrics endpoint (metrics.h): the counters, their
 * rendering in the Prometheus text exposition format 0.0.4, and the small
 * libmicrohttpd daemon that serves them.
 *
 * Counters are process-wide arrays of _Atomic uint64_t, added to with
 * relaxed atomics from any thread; `on` (set once the listener runs, with
 * release order after the route tables are registered) gates every count,
 * so a server started without --metrics pays one load per request. The
 * group committer (store/commit.h) and the KDF pool keep their own figures;
 * the renderer reads them with the sessions' count and the store's file
 * sizes at scrape time.
 *
 * Labels come only from fixed tables: a route's label is the method and
 * path of its entry in the route table ("POST /inbox/send"), found from the
 * route pointer the dispatcher matched, never the path a client sent (an
 * unmatched request counts as route="none"); status classes "1xx".."5xx";
 * login outcomes; object kinds. No address, codename, session, text or
 * count per person is ever a label or a value.
 *
 * The daemon: one internal epoll thread, 16 connections, 10 s timeout, on a
 * loopback address only (rf_metrics_addr_check, checked again here). It
 * answers GET (and HEAD) /metrics and 404 to anything else, logs nothing
 * (libmicrohttpd's messages may name an address).
 */
#include "server/metrics.h"
#include "server/httpd.h"
#include "server/kdfpool.h"
#include "server/session.h"
#include "server/srv.h"
#include "lib/err.h"
#include "lib/hist.h"
#include "lib/log.h"
#include "store/commit.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#ifndef RF_VERSION
#define RF_VERSION "unknown"
#endif

#define ROUTES_MAX 128
#define TABLES_MAX 4
#define CLASSES 5
#define METRICS_CONNECTIONS 16
#define METRICS_TIMEOUT_S 10
#define METRICS_CONN_MEMORY (32 * 1024)
#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct rf_metrics {
    struct MHD_Daemon *daemon;
    struct rf_srv *srv;
    uint16_t port;
    uint64_t started_us; /* CLOCK_MONOTONIC */
};

/* ---------------------------------------------------------------- counters */

struct table_reg {
    uintptr_t base; /* first route of the table */
    size_t n;
    size_t first; /* its index in the flat route list */
};

static atomic_int on;
static struct table_reg tables_reg[TABLES_MAX];
static size_t ntables_reg;
static const struct rf_route *routes[ROUTES_MAX];
static size_t nroutes;
static _Atomic uint64_t requests[ROUTES_MAX + 1][CLASSES]; /* [nroutes]: none matched */
static _Atomic uint64_t logins[RF_METRICS_LOGIN_COUNT];
static _Atomic uint64_t submissions[2]; /* [0] not stored, [1] stored */
static const uint64_t kdf_wait_bounds_us[] = {1000,    5000,     10000,   25000,   50000,
                                              100000,  250000,   500000,  1000000, 2500000,
                                              5000000, 10000000, 30000000};
static struct rf_hist kdf_wait;
static atomic_int onion_state = -1; /* -1: no --onion; kept across counters_reset */

static int counting(void)
{
    return atomic_load_explicit(&on, memory_order_acquire);
}

void rf_metrics_request(const struct rf_route *route, unsigned status)
{
    if (!counting() || status < 100 || status >= 600)
        return;
    size_t idx = nroutes;
    uintptr_t p = (uintptr_t)route;
    for (size_t t = 0; route != NULL && t < ntables_reg; t++) {
        const struct table_reg *tr = &tables_reg[t];
        if (p >= tr->base && p < tr->base + tr->n * sizeof(struct rf_route)) {
            idx = tr->first + (p - tr->base) / sizeof(struct rf_route);
            break;
        }
    }
    atomic_fetch_add_explicit(&requests[idx][status / 100 - 1], 1, memory_order_relaxed);
}

void rf_metrics_login(enum rf_metrics_login outcome)
{
    if (counting() && (unsigned)outcome < RF_METRICS_LOGIN_COUNT)
        atomic_fetch_add_explicit(&logins[outcome], 1, memory_order_relaxed);
}

void rf_metrics_submission(int stored)
{
    if (counting())
        atomic_fetch_add_explicit(&submissions[stored ? 1 : 0], 1, memory_order_relaxed);
}

void rf_metrics_onion(int up)
{
    atomic_store_explicit(&onion_state, up ? 1 : 0, memory_order_relaxed);
}

void rf_metrics_kdf_wait(uint64_t us)
{
    if (counting())
        rf_hist_observe(&kdf_wait, us);
}

/* Registers the route tables and zeroes every counter (one listener per
 * process; a test may start and stop several in turn). */
static int counters_reset(const struct rf_route *const *tables, const size_t *counts,
                          size_t ntables)
{
    if (ntables > TABLES_MAX)
        return RF_ERR_LIMIT;
    size_t total = 0;
    for (size_t t = 0; t < ntables; t++)
        total += counts[t];
    if (total > ROUTES_MAX)
        return RF_ERR_LIMIT;
    nroutes = 0;
    for (size_t t = 0; t < ntables; t++) {
        tables_reg[t] = (struct table_reg){(uintptr_t)tables[t], counts[t], nroutes};
        for (size_t i = 0; i < counts[t]; i++)
            routes[nroutes++] = &tables[t][i];
    }
    ntables_reg = ntables;
    for (size_t i = 0; i <= ROUTES_MAX; i++)
        for (size_t c = 0; c < CLASSES; c++)
            atomic_store_explicit(&requests[i][c], 0, memory_order_relaxed);
    for (size_t i = 0; i < RF_METRICS_LOGIN_COUNT; i++)
        atomic_store_explicit(&logins[i], 0, memory_order_relaxed);
    for (size_t i = 0; i < 2; i++)
        atomic_store_explicit(&submissions[i], 0, memory_order_relaxed);
    rf_hist_init(&kdf_wait, kdf_wait_bounds_us,
                 sizeof(kdf_wait_bounds_us) / sizeof(kdf_wait_bounds_us[0]));
    return 0;
}

/* --------------------------------------------------------------- rendering */

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

__attribute__((format(printf, 2, 3))) static int put(struct rf_buf *out, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(line))
        return RF_ERR_LIMIT;
    return rf_buf_put(out, line, (size_t)n);
}

static int head(struct rf_buf *out, const char *name, const char *type, const char *help)
{
    return put(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value from a fixed table, escaped as the format asks (\\, \", \n). */
static void label_escape(char *dst, size_t cap, const char *src)
{
    size_t j = 0;
    for (; *src && j + 3 < cap; src++) {
        if (*src == '\\' || *src == '"') {
            dst[j++] = '\\';
            dst[j++] = *src;
        } else if (*src == '\n') {
            dst[j++] = '\\';
            dst[j++] = 'n';
        } else {
            dst[j++] = *src;
        }
    }
    dst[j] = '\0';
}

/* Seconds from microseconds, exactly (no float rounding in the text):
 * "0.25", "1", "12.000345". */
static int put_seconds(struct rf_buf *out, uint64_t us)
{
    char frac[8];
    snprintf(frac, sizeof(frac), "%06llu", (unsigned long long)(us % 1000000u));
    size_t n = 6;
    while (n > 0 && frac[n - 1] == '0')
        frac[--n] = '\0';
    return put(out, "%llu%s%s", (unsigned long long)(us / 1000000u), n ? "." : "", frac);
}

/* A histogram: cumulative buckets (le in seconds when us, else as is),
 * +Inf, _sum, _count (from the buckets, so +Inf == _count). */
static int put_hist(struct rf_buf *out, const char *name, const struct rf_hist *h, int us)
{
    uint64_t b[RF_HIST_BOUNDS_MAX + 1], sum = 0, cum = 0;
    rf_hist_read(h, b, &sum);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < h->n; i++) {
        cum += b[i];
        rc = put(out, "%s_bucket{le=\"", name);
        if (rc == 0)
            rc = us ? put_seconds(out, h->bounds[i])
                    : put(out, "%llu", (unsigned long long)h->bounds[i]);
        if (rc == 0)
            rc = put(out, "\"} %llu\n", (unsigned long long)cum);
    }
    cum += b[h->n];
    if (rc == 0)
        rc = put(out, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum ", name, (unsigned long long)cum, name);
    if (rc == 0)
        rc = us ? put_seconds(out, sum) : put(out, "%llu", (unsigned long long)sum);
    if (rc == 0)
        rc = put(out, "\n%s_count %llu\n", name, (unsigned long long)cum);
    return rc;
}

static const char *const class_names[CLASSES] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
static const char *const login_names[RF_METRICS_LOGIN_COUNT] = {"ok", "wrong", "busy"};
/* lib/envelope.h's kinds; anything else is "other" */
static const char *const kind_names[RF_COMMIT_KINDS] = {"other", "message", "file",  "reply",
                                                        "event", "note",    "other", "other"};

static int render_requests(struct rf_buf *out)
{
    int rc = head(out, "refuge_http_requests_total", "counter",
                  "Requests answered, by route (from the route table) and status class.");
    for (size_t i = 0; rc == 0 && i <= nroutes; i++) {
        char label[160] = "none";
        if (i < nroutes) {
            char raw[160];
            snprintf(raw, sizeof(raw), "%s %s%s", routes[i]->method, routes[i]->path,
                     (routes[i]->flags & RF_ROUTE_PREFIX) ? "*" : "");
            label_escape(label, sizeof(label), raw);
        }
        for (size_t c = 0; rc == 0 && c < CLASSES; c++) {
            /* every series from the start, zeros included: a rate over a
             * series that appears late misses its first increment */
            uint64_t v = atomic_load_explicit(&requests[i][c], memory_order_relaxed);
            rc = put(out, "refuge_http_requests_total{route=\"%s\",class=\"%s\"} %llu\n", label,
                     class_names[c], (unsigned long long)v);
        }
    }
    return rc;
}

static int render_person(struct rf_buf *out)
{
    int rc = head(out, "refuge_logins_total", "counter",
                  "Log-ins with a codename, by outcome (ok, wrong, busy).");
    for (size_t i = 0; rc == 0 && i < RF_METRICS_LOGIN_COUNT; i++)
        rc = put(out, "refuge_logins_total{outcome=\"%s\"} %llu\n", login_names[i],
                 (unsigned long long)atomic_load_explicit(&logins[i], memory_order_relaxed));
    if (rc == 0)
        rc = head(out, "refuge_submissions_total", "counter",
                  "Messages from people (with their files), by outcome: stored durably or not.");
    for (int i = 1; rc == 0 && i >= 0; i--)
        rc = put(out, "refuge_submissions_total{outcome=\"%s\"} %llu\n", i ? "stored" : "failed",
                 (unsigned long long)atomic_load_explicit(&submissions[i], memory_order_relaxed));
    return rc;
}

static int render_kdf(struct rf_buf *out, struct rf_srv *srv)
{
    unsigned waiting = 0, running = 0;
    if (srv != NULL && srv->kdf != NULL)
        rf_kdfpool_depth(srv->kdf, &waiting, &running);
    int rc = head(out, "refuge_kdf_queue_depth", "gauge",
                  "Codename derivations (Argon2id) waiting for a worker.");
    rc = rc ? rc : put(out, "refuge_kdf_queue_depth %u\n", waiting);
    rc = rc ? rc : head(out, "refuge_kdf_running", "gauge", "Codename derivations running now.");
    rc = rc ? rc : put(out, "refuge_kdf_running %u\n", running);
    rc = rc ? rc
            : head(out, "refuge_kdf_wait_seconds", "histogram",
                   "Time a codename derivation waited in the queue.");
    return rc ? rc : put_hist(out, "refuge_kdf_wait_seconds", &kdf_wait, 1);
}

static int render_store(struct rf_buf *out, struct rf_srv *srv)
{
    int rc = 0;
    if (srv != NULL && srv->committer != NULL) {
        uint64_t objs[RF_COMMIT_KINDS], bytes = 0, by_name[RF_COMMIT_KINDS] = {0};
        rf_committer_stored(srv->committer, objs, &bytes);
        rc = head(out, "refuge_commit_batch_ops", "histogram",
                  "Write operations per group commit (one transaction, one fsync).");
        rc = rc ? rc
                : put_hist(out, "refuge_commit_batch_ops", rf_committer_batch_hist(srv->committer),
                           0);
        rc = rc ? rc
                : head(out, "refuge_commit_seconds", "histogram",
                       "Time of one group commit, its fsync included.");
        rc =
            rc ? rc
               : put_hist(out, "refuge_commit_seconds", rf_committer_apply_hist(srv->committer), 1);
        rc = rc ? rc
                : head(out, "refuge_objects_stored_total", "counter",
                       "Encrypted objects stored since start, by kind.");
        /* several kinds share "other": add them up under one label */
        for (size_t k = 0; k < RF_COMMIT_KINDS; k++) {
            size_t first = k;
            for (size_t j = 0; j < k; j++)
                if (strcmp(kind_names[j], kind_names[k]) == 0) {
                    first = j;
                    break;
                }
            by_name[first] += objs[k];
        }
        for (size_t k = 0; rc == 0 && k < RF_COMMIT_KINDS; k++) {
            int dup = 0;
            for (size_t j = 0; j < k; j++)
                dup |= strcmp(kind_names[j], kind_names[k]) == 0;
            if (!dup)
                rc = put(out, "refuge_objects_stored_total{kind=\"%s\"} %llu\n", kind_names[k],
                         (unsigned long long)by_name[k]);
        }
        rc = rc ? rc
                : head(out, "refuge_stored_bytes_total", "counter",
                       "Ciphertext bytes of the objects stored since start.");
        rc = rc ? rc : put(out, "refuge_stored_bytes_total %llu\n", (unsigned long long)bytes);
    }
    struct rf_store_usage u;
    if (rc == 0 && srv != NULL && srv->store != NULL && rf_store_usage(srv->store, &u) == 0) {
        rc = head(out, "refuge_store_bytes", "gauge",
                  "Bytes on disk: the database, its write-ahead log, the blob files.");
        rc = rc ? rc
                : put(out, "refuge_store_bytes{part=\"database\"} %llu\n",
                      (unsigned long long)u.db_bytes);
        rc = rc ? rc
                : put(out, "refuge_store_bytes{part=\"wal\"} %llu\n",
                      (unsigned long long)u.wal_bytes);
        rc = rc ? rc
                : put(out, "refuge_store_bytes{part=\"blobs\"} %llu\n",
                      (unsigned long long)u.blob_bytes);
    }
    return rc;
}

int rf_metrics_render(struct rf_metrics *m, struct rf_buf *out)
{
    struct rf_srv *srv = m ? m->srv : NULL;
    int rc = head(out, "refuge_build_info", "gauge", "The running program's version (always 1).");
    rc = rc ? rc : put(out, "refuge_build_info{version=\"%s\"} 1\n", RF_VERSION);
    rc = rc ? rc
            : head(out, "refuge_uptime_seconds", "gauge", "Seconds since refuge serve started.");
    rc = rc ? rc : put(out, "refuge_uptime_seconds ");
    rc = rc ? rc : put_seconds(out, m ? now_us() - m->started_us : 0);
    rc = rc ? rc : put(out, "\n");
    rc = rc ? rc : render_requests(out);
    rc = rc ? rc : render_person(out);
    if (rc == 0 && srv != NULL && srv->sessions != NULL) {
        rc = head(out, "refuge_sessions_active", "gauge", "People logged in now.");
        rc = rc ? rc : put(out, "refuge_sessions_active %u\n", rf_sessions_count(srv->sessions));
        rc = rc ? rc
                : head(out, "refuge_sessions_max", "gauge",
                       "Sessions the table holds; past it a log-in answers busy.");
        rc = rc ? rc : put(out, "refuge_sessions_max %u\n", srv->limits.sessions_max);
    }
    int onion = atomic_load_explicit(&onion_state, memory_order_relaxed);
    if (rc == 0 && onion >= 0) {
        rc = head(out, "refuge_onion_service_up", "gauge",
                  "1 while the onion service is published, 0 while tor is away (reconnecting).");
        rc = rc ? rc : put(out, "refuge_onion_service_up %d\n", onion);
    }
    rc = rc ? rc : render_kdf(out, srv);
    rc = rc ? rc : render_store(out, srv);
    return rc;
}

/* ------------------------------------------------------------------ daemon */

/* The HTTP layer's parse of "IP:PORT" (rf_http_parse_listen), with a port
 * given and a loopback address only. */
static int parse_loopback(const char *listen, struct sockaddr_storage *ss)
{
    socklen_t len;
    int rc = rf_http_parse_listen(listen, ss, &len);
    if (rc != 0)
        return rc;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)ss;
        if (in4->sin_port == 0 || (ntohl(in4->sin_addr.s_addr) >> 24) != 127)
            return RF_ERR_INVALID;
        return 0;
    }
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
    if (in6->sin6_port == 0 || !IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
        return RF_ERR_INVALID;
    return 0;
}

int rf_metrics_addr_check(const char *listen)
{
    struct sockaddr_storage ss;
    return parse_loopback(listen, &ss);
}

static enum MHD_Result answer(struct MHD_Connection *conn, unsigned status, struct rf_buf *body)
{
    static const char not_found[] = "Not found. The metrics are at /metrics.\n";
    struct MHD_Response *resp;
    if (body != NULL) {
        size_t len = 0;
        uint8_t *p = rf_buf_steal(body, &len);
        if (p == NULL)
            return MHD_NO;
        resp = MHD_create_response_from_buffer(len, p, MHD_RESPMEM_MUST_FREE);
        if (resp == NULL)
            free(p);
    } else {
        resp = MHD_create_response_from_buffer(sizeof(not_found) - 1, (void *)not_found,
                                               MHD_RESPMEM_PERSISTENT);
    }
    if (resp == NULL)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            body ? CONTENT_TYPE : "text/plain; charset=utf-8");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    enum MHD_Result r = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return r;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
    static int marker;
    struct rf_metrics *m = cls;
    (void)version;
    (void)upload_data;
    if (*con_cls == NULL) { /* headers in: wait for the end of any body */
        *con_cls = &marker;
        return MHD_YES;
    }
    if (*upload_data_size > 0) { /* a body is never wanted: read and dropped */
        *upload_data_size = 0;
        return MHD_YES;
    }
    int get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    if (!get || strcmp(url, "/metrics") != 0)
        return answer(conn, MHD_HTTP_NOT_FOUND, NULL);
    struct rf_buf b;
    rf_buf_init(&b, 1 << 20);
    int rc = rf_metrics_render(m, &b);
    if (rc != 0) {
        rf_buf_free(&b);
        rf_log_error("metrics: cannot render", rc);
        return MHD_NO;
    }
    enum MHD_Result r = answer(conn, MHD_HTTP_OK, &b);
    rf_buf_free(&b);
    return r;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    (void)fmt;
    (void)ap; /* may name an address: never printed */
}

int rf_metrics_start(struct rf_metrics **out, struct rf_srv *srv, const char *listen,
                     const struct rf_route *const *tables, const size_t *counts, size_t ntables)
{
    struct sockaddr_storage ss;
    *out = NULL;
    int rc = parse_loopback(listen, &ss);
    if (rc != 0)
        return rc;
    if (atomic_load(&on))
        return RF_ERR_EXISTS; /* one listener per process */
    if ((rc = counters_reset(tables, counts, ntables)) != 0)
        return rc;
    struct rf_metrics *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return RF_ERR_NOMEM;
    m->srv = srv;
    m->started_us = now_us();
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    m->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_access, m, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)METRICS_CONNECTIONS, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)METRICS_TIMEOUT_S, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)METRICS_CONN_MEMORY, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, m, MHD_OPTION_END);
    if (m->daemon == NULL) {
        free(m);
        return RF_ERR_NET;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(m->daemon, MHD_DAEMON_INFO_BIND_PORT);
    m->port = info ? info->port : 0;
    atomic_store_explicit(&on, 1, memory_order_release);
    *out = m;
    return 0;
}

uint16_t rf_metrics_port(const struct rf_metrics *m)
{
    return m ? m->port : 0;
}

void rf_metrics_stop(struct rf_metrics *m)
{
    if (m == NULL)
        return;
    atomic_store_explicit(&on, 0, memory_order_release);
    MHD_stop_daemon(m->daemon);
    free(m);
}
