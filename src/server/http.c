/*
 * http.c - the request abstraction of http.h over libmicrohttpd (MHD).
 *
 * Daemon: MHD's epoll thread pool, suspend/resume allowed, connection
 * count, timeout and per-connection memory bounded by rf_limits. MHD's own
 * error messages are not printed: they may name an address. Nothing here
 * logs a path, header, body or address.
 *
 * Thread count: one per CPU the process may use (cpus.h: affinity and cgroup
 * quota, not the machine's CPU count), and never so few that a thread holds
 * more than HTTP_CONNS_PER_THREAD connections. libmicrohttpd 0.9.75 drains
 * its epoll set by calling epoll_wait again, with the blocking timeout,
 * whenever a call filled its 128-event array: with 128 (or 256, ...)
 * keep-alive connections ready at once on one thread, the next call finds
 * nothing new and sleeps up to the connection timeout while every one of
 * those connections holds an unanswered request (strace: two
 * epoll_wait(..., 128, 59888) = 128, then a third that blocks; 2-33 req/s at
 * 128 connections on one CPU). A thread with at most 120 connections (plus
 * its listening socket and wake-up descriptor) never fills the array, so
 * that drain never blocks. See docs/performance.md.
 *
 * One struct rf_req per HTTP request. It is created by MHD's URI log
 * callback (the only place that sees the request target exactly as sent,
 * before percent-decoding and query parsing), handed to the access handler
 * as *con_cls, and freed by the completion callback, which MHD calls exactly
 * once per request whose URI callback ran: completed, failed, timed out or
 * the client gone. That single place runs the handler's state free_fn.
 *
 * Access handler calls, per request:
 *   1st call (headers in): route lookup, size check of Content-Length,
 *       on_headers.
 *   calls with *upload_data_size > 0: byte counting against max_body, then
 *       on_body or the post processor; once a response is recorded the rest
 *       of the body is discarded: all of an announced Content-Length (it
 *       passed the route's and handler's checks at the 1st call), up to
 *       RF_HTTP_DISCARD_MAX of a chunked body, then the connection is
 *       closed.
 *   call with *upload_data_size == 0 after the 1st: body complete; on_end
 *       (once), then the recorded response is queued.
 * MHD accepts a response only at the 1st call or once the body is complete,
 * and one queued at the 1st call makes it close the connection afterwards
 * (no keep-alive): so an answer is queued at the 1st call only when the
 * announced body is larger than the discard cap, otherwise once the body is
 * complete (for a bodiless GET, the very next call).
 *
 * Suspend/resume: a handler calls rf_req_suspend() and hands the request to
 * a worker; after the callback returns the dispatcher suspends the MHD
 * connection. The worker records a response and calls rf_req_resume(),
 * which may run before the dispatcher got to suspend: both sides take
 * h->lock, and a resume that comes first cancels the suspension. MHD calls
 * the access handler again after a resume, and the dispatcher queues the
 * recorded response then. A suspension in on_headers may also end without a
 * response (the worker only let the request go on): MHD then repeats the
 * 1st call (no body byte yet), which the dispatcher finishes as a 1st call
 * rather than taking it for the end of the body. A suspended connection is
 * not polled, so a client that disconnects meanwhile is noticed only after
 * the resume: the request is then completed (and its state freed) by the
 * completion callback as usual. Workers always resume, which is also why
 * rf_http_stop waits for the count of suspended requests to reach zero
 * before stopping MHD (MHD must not be stopped with suspended connections).
 *
 * The dispatcher's own refusals (malformed, too large, wrong method, busy)
 * are a JSON error under /api/ and otherwise the person's error page in
 * their language (the refuse function srv_main.c hands in through
 * rf_http_set_fallbacks: this layer never calls up into the pages), plain
 * text only when none was handed in (tests with fallbacks of their own). A request whose framing is
 * ambiguous (framing_bad) is answered at once and its connection closed.
 *
 * Every response carries the same security headers (security_headers[]);
 * Content-Security-Policy comes from the template layer for HTML and is
 * "default-src 'none'; frame-ancestors 'none'" for anything else.
 */
#include "server/errmap.h"
#include "server/http_priv.h"
#include "server/cpus.h"
#include "server/httpd.h"
#include "server/metrics.h"
#include "server/srv.h"
#include "lib/err.h"
#include "lib/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static rf_http_fallback_fn fallback_pages;
static rf_http_fallback_fn fallback_api;
static rf_http_refuse_fn refuse_page;

void rf_http_set_fallbacks(rf_http_fallback_fn pages, rf_http_fallback_fn api,
                           rf_http_refuse_fn refuse)
{
    fallback_pages = pages;
    fallback_api = api;
    refuse_page = refuse;
}

/* ---------------------------------------------------------------- request */

struct rf_srv *rf_req_srv(struct rf_req *r)
{
    return r->http->srv;
}

const char *rf_req_method(const struct rf_req *r)
{
    return r->method ? r->method : "";
}

const char *rf_req_path(const struct rf_req *r)
{
    return r->path;
}

const char *rf_req_target(const struct rf_req *r)
{
    return r->target;
}

const char *rf_req_header(struct rf_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *rf_req_query(struct rf_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *rf_req_cookie(struct rf_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_COOKIE_KIND, name);
}

int64_t rf_req_content_length(struct rf_req *r)
{
    const char *v = rf_req_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (v == NULL || *v == '\0')
        return -1;
    uint64_t x = 0;
    for (const char *p = v; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        if (x > (uint64_t)(INT64_MAX - 9) / 10)
            return -1;
        x = x * 10 + (uint64_t)(*p - '0');
    }
    return (int64_t)x;
}

void rf_req_set_state(struct rf_req *r, void *state, void (*free_fn)(void *))
{
    r->state = state;
    r->state_free = free_fn;
}

void *rf_req_state(struct rf_req *r)
{
    return r->state;
}

/* ------------------------------------------------------------------ forms */

static enum MHD_Result form_iter(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *filename, const char *content_type,
                                 const char *transfer_encoding, const char *data, uint64_t off,
                                 size_t size)
{
    struct rf_req *r = cls;
    (void)kind;
    (void)transfer_encoding;
    if (r->form_err)
        return MHD_NO;
    if (key == NULL) { /* a part without a name */
        r->form_err = RF_ERR_FORMAT;
        return MHD_NO;
    }
    if (strnlen(key, RF_FORM_NAME_MAX + 1) > RF_FORM_NAME_MAX ||
        (filename && strnlen(filename, RF_FORM_NAME_MAX + 1) > RF_FORM_NAME_MAX)) {
        r->form_err = RF_ERR_LIMIT;
        return MHD_NO;
    }
    int rc = r->form_fn(r, key, filename, content_type, off, (const uint8_t *)data, size);
    if (rc != 0) {
        r->form_err = rc;
        return MHD_NO;
    }
    return MHD_YES;
}

int rf_req_form_begin(struct rf_req *r, rf_form_fn fn)
{
    if (fn == NULL || r->pp != NULL)
        return RF_ERR_INVALID;
    r->form_fn = fn;
    r->pp = MHD_create_post_processor(r->conn, HTTP_POST_BUFFER, form_iter, r);
    return r->pp ? 0 : RF_ERR_FORMAT;
}

/* ------------------------------------------------------------------ async */

void rf_req_suspend(struct rf_req *r)
{
    struct rf_http *h = r->http;
    pthread_mutex_lock(&h->lock);
    if (r->susp == SUSP_NONE)
        r->susp = SUSP_WANTED;
    pthread_mutex_unlock(&h->lock);
}

void rf_req_resume(struct rf_req *r)
{
    struct rf_http *h = r->http;
    pthread_mutex_lock(&h->lock);
    if (r->susp == SUSP_ACTIVE) {
        r->susp = SUSP_NONE;
        MHD_resume_connection(r->conn);
        /* r may be gone as soon as the lock is released */
        if (--h->nsuspended == 0)
            pthread_cond_broadcast(&h->idle);
    } else if (r->susp == SUSP_WANTED) {
        r->susp = SUSP_RESUMED_EARLY;
    }
    pthread_mutex_unlock(&h->lock);
}

void rf_req_suspend_then(struct rf_req *r, rf_req_resumed_fn fn)
{
    r->resumed = fn; /* only this request's thread reads or writes it */
    rf_req_suspend(r);
}

/* Called by the dispatcher after a handler callback: 1 if the connection
 * was suspended (return to MHD at once, touch nothing). */
static int maybe_suspend(struct rf_req *r)
{
    struct rf_http *h = r->http;
    int suspended = 0;
    pthread_mutex_lock(&h->lock);
    if (r->susp == SUSP_WANTED) {
        r->susp = SUSP_ACTIVE;
        h->nsuspended++;
        MHD_suspend_connection(r->conn);
        suspended = 1;
    } else if (r->susp == SUSP_RESUMED_EARLY) {
        r->susp = SUSP_NONE;
    }
    pthread_mutex_unlock(&h->lock);
    return suspended;
}

/* ------------------------------------------------------------- dispatcher */

static void after_callback(struct rf_req *r, int rc);

/* After a handler callback, and when MHD calls again after a resume: 1 if
 * the connection is (still or again) suspended. Otherwise the step handed
 * to rf_req_suspend_then runs here, on the request's own thread, and may
 * suspend again. */
static int park(struct rf_req *r)
{
    for (;;) {
        if (maybe_suspend(r))
            return 1;
        rf_req_resumed_fn fn = r->resumed;
        if (fn == NULL)
            return 0;
        r->resumed = NULL;
        after_callback(r, fn(r));
    }
}

static int path_is_api(const char *path)
{
    return strncmp(path, "/api/", 5) == 0 || strcmp(path, "/api") == 0;
}

static int method_matches(const char *route_method, const char *method)
{
    if (strcmp(route_method, method) == 0)
        return 1;
    return strcmp(method, "HEAD") == 0 && strcmp(route_method, "GET") == 0;
}

static int path_matches(const struct rf_route *rt, const char *path, int prefix)
{
    if (prefix)
        return (rt->flags & RF_ROUTE_PREFIX) && strncmp(path, rt->path, strlen(rt->path)) == 0;
    return !(rt->flags & RF_ROUTE_PREFIX) && strcmp(path, rt->path) == 0;
}

/* Exact paths first, then prefixes. *path_known is set if some route has
 * the path with another method. */
static const struct rf_route *route_find(const struct rf_http *h, const char *method,
                                         const char *path, int *path_known)
{
    *path_known = 0;
    for (int prefix = 0; prefix <= 1; prefix++) {
        for (size_t t = 0; t < h->ntables; t++) {
            for (size_t i = 0; i < h->counts[t]; i++) {
                const struct rf_route *rt = &h->tables[t][i];
                if (!path_matches(rt, path, prefix))
                    continue;
                if (method_matches(rt->method, method))
                    return rt;
                *path_known = 1;
            }
        }
        if (*path_known)
            return NULL; /* an exact path with another method is a 405, not a prefix */
    }
    return NULL;
}

static void allow_header(struct rf_req *r)
{
    const struct rf_http *h = r->http;
    char allow[128] = "";
    size_t used = 0;
    int get = 0;
    for (int prefix = 0; prefix <= 1 && used == 0; prefix++) {
        for (size_t t = 0; t < h->ntables; t++) {
            for (size_t i = 0; i < h->counts[t]; i++) {
                const struct rf_route *rt = &h->tables[t][i];
                if (!path_matches(rt, r->path, prefix) || strstr(allow, rt->method))
                    continue;
                size_t n = strlen(rt->method);
                if (used + n + 3 >= sizeof(allow))
                    continue;
                if (used) {
                    memcpy(allow + used, ", ", 2);
                    used += 2;
                }
                memcpy(allow + used, rt->method, n + 1);
                used += n;
                get |= strcmp(rt->method, "GET") == 0;
            }
        }
    }
    if (get && used + 7 < sizeof(allow))
        memcpy(allow + used, ", HEAD", 7);
    rf_req_add_header(r, "Allow", allow);
}

/* The dispatcher's own answers (limits, malformed forms, handler errors):
 * code, message and page from the error table (errmap.h). */
static void answer_error(struct rf_req *r, unsigned status)
{
    if (rf_req_responded(r))
        return;
    const struct rf_answer *a = rf_errmap_refusal(status);
    int rc;
    if (path_is_api(r->path)) {
        rc = rf_req_respond_json_error(r, status, a->code, a->message);
    } else if (refuse_page != NULL && refuse_page(r, status) == 0 && rf_req_responded(r)) {
        return; /* the person's page, in their language */
    } else {
        rc = rf_req_respond_static(r, status, "text/plain; charset=utf-8",
                                   (const uint8_t *)a->message, strlen(a->message));
    }
    if (rc != 0)
        rf_log_error("cannot build an error response", rc);
}

/* After a handler callback: a failure without an answer gets ours. A
 * request handed to a worker is the worker's to answer (and it may be doing
 * so right now), so it is left alone. */
static void after_callback(struct rf_req *r, int rc)
{
    if (rc == 0)
        return;
    pthread_mutex_lock(&r->http->lock);
    int async = r->susp != SUSP_NONE;
    pthread_mutex_unlock(&r->http->lock);
    if (!async && !rf_req_responded(r))
        answer_error(r, rf_errmap_failure(rc)->status);
}

static enum MHD_Result queue_recorded(struct rf_req *r)
{
    enum MHD_Result ret = MHD_queue_response(r->conn, r->status, r->resp);
    if (ret == MHD_YES) {
        rf_metrics_request(r->route, r->status); /* the table's route, never the path sent */
        if (!r->resp_shared)
            MHD_destroy_response(r->resp);
        r->resp = NULL;
        r->resp_shared = 0;
        r->queued = 1;
    }
    return ret;
}

struct hdr_count {
    const char *name;
    unsigned n;
};

static enum MHD_Result count_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
    struct hdr_count *c = cls;
    (void)kind;
    (void)value;
    if (key != NULL && strcasecmp(key, c->name) == 0)
        c->n++;
    return MHD_YES;
}

static unsigned header_count(struct rf_req *r, const char *name)
{
    struct hdr_count c = {name, 0};
    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, count_header, &c);
    return c.n;
}

/* A request whose target or body framing is ambiguous: two Hosts, two
 * Content-Lengths, a Transfer-Encoding other than plain chunked (MHD would
 * wait for a body it cannot delimit), or both framings at once (request
 * smuggling through a proxy). Answered 400 at once, and closed. */
static int framing_bad(struct rf_req *r)
{
    const char *te = rf_req_header(r, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    if (header_count(r, MHD_HTTP_HEADER_HOST) > 1 ||
        header_count(r, MHD_HTTP_HEADER_CONTENT_LENGTH) > 1 ||
        header_count(r, MHD_HTTP_HEADER_TRANSFER_ENCODING) > 1)
        return 1;
    if (te == NULL)
        return 0;
    return strcasecmp(te, "chunked") != 0 ||
           rf_req_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH) != NULL;
}

static void run_headers(struct rf_req *r)
{
    struct rf_http *h = r->http;
    if (atomic_load(&h->stopping)) {
        answer_error(r, MHD_HTTP_SERVICE_UNAVAILABLE);
        return;
    }
    if (framing_bad(r)) {
        r->must_close = 1;
        answer_error(r, MHD_HTTP_BAD_REQUEST);
        return;
    }
    int path_known = 0;
    r->route = route_find(h, r->method, r->path, &path_known);
    if (r->route == NULL) {
        if (path_known) {
            allow_header(r);
            answer_error(r, MHD_HTTP_METHOD_NOT_ALLOWED);
            return;
        }
        int api = path_is_api(r->path);
        rf_http_fallback_fn fb = api ? fallback_api : fallback_pages;
        if (fb != NULL)
            after_callback(r, fb(r));
        if (!rf_req_responded(r))
            answer_error(r, MHD_HTTP_NOT_FOUND);
        return;
    }
    int64_t cl = rf_req_content_length(r);
    if (cl > 0 && (uint64_t)cl > r->route->max_body) {
        answer_error(r, MHD_HTTP_CONTENT_TOO_LARGE);
        return;
    }
    if (r->route->on_headers)
        after_callback(r, r->route->on_headers(r));
}

static void run_body(struct rf_req *r, const char *data, size_t n)
{
    if (r->route == NULL || r->body_bytes + n > r->route->max_body ||
        r->body_bytes + n < r->body_bytes) {
        r->body_bytes += n;
        answer_error(r, MHD_HTTP_CONTENT_TOO_LARGE);
        return;
    }
    r->body_bytes += n;
    if (r->pp) {
        if (MHD_post_process(r->pp, data, n) != MHD_YES) {
            if (r->form_err)
                after_callback(r, r->form_err);
            answer_error(r, MHD_HTTP_BAD_REQUEST);
        }
        return;
    }
    if (r->route->on_body)
        after_callback(r, r->route->on_body(r, (const uint8_t *)data, n));
}

static void run_end(struct rf_req *r)
{
    if (r->route == NULL)
        return;
    if (r->pp) {
        struct MHD_PostProcessor *pp = r->pp;
        r->pp = NULL;
        /* flushes the last urlencoded field; MHD_NO if the body was cut short */
        if (MHD_destroy_post_processor(pp) != MHD_YES) {
            if (r->form_err)
                after_callback(r, r->form_err);
            answer_error(r, MHD_HTTP_BAD_REQUEST);
            return;
        }
        if (r->form_err) {
            after_callback(r, r->form_err);
            return;
        }
    }
    if (r->route->on_end)
        after_callback(r, r->route->on_end(r));
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
    struct rf_req *r = *con_cls;
    (void)cls;
    (void)url;
    (void)version;
    if (r == NULL)
        return MHD_NO; /* the URI callback could not allocate */
    r->conn = conn;
    r->method = method;
    if (r->resumed != NULL && park(r)) /* resumed: the handler's next step */
        return MHD_YES;

    if (!r->started || (r->headers_suspended && *upload_data_size == 0)) {
        /* After a suspension in on_headers (e.g. the staff API waiting for
         * its nonce to be durable), MHD calls again as at the 1st call,
         * before any body byte: that call only finishes the 1st. */
        if (!r->started) {
            r->started = 1;
            run_headers(r);
            if (park(r)) {
                r->headers_suspended = 1;
                return MHD_YES;
            }
        }
        r->headers_suspended = 0;
        /* Queued now, MHD would close the connection after answering (it
         * refuses to read on): only worth it for a body too big to skip. */
        if (rf_req_responded(r) && !r->queued &&
            (r->must_close || rf_req_content_length(r) > (int64_t)RF_HTTP_DISCARD_MAX))
            return queue_recorded(r);
        return MHD_YES;
    }

    r->headers_suspended = 0;
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (rf_req_responded(r)) {
            /* An announced length was accepted at the 1st call, and MHD
             * reads no further than it: the rest is skipped so that the
             * client reads the answer (e.g. "not saved" on a full disk
             * mid-upload) instead of a reset. Unannounced bodies are
             * skipped up to the cap. */
            r->discarded += n;
            if (rf_req_content_length(r) >= 0)
                return MHD_YES;
            return r->discarded > RF_HTTP_DISCARD_MAX ? MHD_NO : MHD_YES;
        }
        run_body(r, upload_data, n);
        if (park(r))
            return MHD_YES;
        return MHD_YES;
    }

    /* body complete */
    if (!r->ended && !rf_req_responded(r)) {
        r->ended = 1;
        run_end(r);
        if (park(r))
            return MHD_YES;
    }
    r->ended = 1;
    if (r->queued)
        return MHD_YES;
    if (r->resp == NULL)
        answer_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR);
    if (r->resp == NULL)
        return MHD_NO;
    return queue_recorded(r);
}

static void req_free(struct rf_req *r);

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    struct rf_req *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->http = cls;
    r->conn = conn;
    size_t n = strlen(uri);
    r->target = malloc(2 * (n + 1));
    if (r->target == NULL) {
        free(r);
        return NULL;
    }
    memcpy(r->target, uri, n + 1);
    r->path = r->target + n + 1;
    size_t plen = strcspn(uri, "?");
    memcpy(r->path, uri, plen);
    r->path[plen] = '\0';
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    struct conn_ctx *c = ci ? ci->socket_context : NULL;
    if (c != NULL) {
        if (c->current != NULL) /* dropped by MHD without completion */
            req_free(c->current);
        c->current = r;
        r->cctx = c;
    }
    return r;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    (void)cls;
    (void)conn;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        *socket_context = calloc(1, sizeof(struct conn_ctx)); /* NULL: untracked */
        return;
    }
    struct conn_ctx *c = *socket_context;
    *socket_context = NULL;
    if (c == NULL)
        return;
    if (c->current != NULL)
        req_free(c->current);
    free(c);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct rf_req *r = *con_cls;
    (void)cls;
    (void)conn;
    (void)toe;
    if (r == NULL)
        return;
    *con_cls = NULL;
    req_free(r);
}

static void req_free(struct rf_req *r)
{
    if (r->cctx != NULL && r->cctx->current == r)
        r->cctx->current = NULL;
    if (r->pp)
        MHD_destroy_post_processor(r->pp);
    if (r->state_free)
        r->state_free(r->state);
    if (r->resp && !r->resp_shared)
        MHD_destroy_response(r->resp);
    for (struct hdr *h = r->extra, *next; h; h = next) {
        next = h->next;
        free(h->name);
        free(h->value);
        free(h);
    }
    free(r->target);
    free(r);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    (void)fmt;
    (void)ap;
    /* MHD's messages may carry an address: count, never print */
    rf_log_debug("libmicrohttpd reported a problem");
}

/* ------------------------------------------------------------------ daemon */

int rf_http_parse_listen(const char *listen, struct sockaddr_storage *ss, socklen_t *sslen)
{
    char host[64];
    const char *colon;
    memset(ss, 0, sizeof(*ss));
    if (listen == NULL)
        return RF_ERR_INVALID;
    if (listen[0] == '[') {
        const char *end = strchr(listen, ']');
        if (end == NULL || end[1] != ':' || (size_t)(end - listen - 1) >= sizeof(host))
            return RF_ERR_INVALID;
        memcpy(host, listen + 1, (size_t)(end - listen - 1));
        host[end - listen - 1] = '\0';
        colon = end + 1;
    } else {
        colon = strrchr(listen, ':');
        if (colon == NULL || (size_t)(colon - listen) >= sizeof(host))
            return RF_ERR_INVALID;
        memcpy(host, listen, (size_t)(colon - listen));
        host[colon - listen] = '\0';
    }
    char *endp = NULL;
    errno = 0;
    unsigned long port = strtoul(colon + 1, &endp, 10);
    if (colon[1] < '0' || colon[1] > '9' || *endp != '\0' || errno != 0 || port > 65535)
        return RF_ERR_INVALID;
    if (strcmp(host, "localhost") == 0)
        memcpy(host, "127.0.0.1", 10);
    struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)port);
        *sslen = sizeof(*in4);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        *sslen = sizeof(*in6);
        return 0;
    }
    return RF_ERR_INVALID;
}

/* One thread per CPU the process may use (cpus.h), not per CPU online;
 * and at least enough that no thread holds more than HTTP_CONNS_PER_THREAD
 * connections (MHD shares the connection limit out evenly between its
 * threads): see the file's head. */
static unsigned pool_size(const struct rf_srv *srv, unsigned conn_max)
{
    unsigned n = srv != NULL ? srv->cpus : 0;
    if (n == 0) {
        struct rf_cpus c;
        rf_cpus_probe(&c);
        n = c.usable;
    }
    unsigned by_conns = (conn_max + HTTP_CONNS_PER_THREAD - 1) / HTTP_CONNS_PER_THREAD;
    if (n < by_conns)
        n = by_conns;
    if (n > HTTP_MAX_THREADS)
        n = HTTP_MAX_THREADS;
    return n < 1 ? 1 : n;
}

int rf_http_start(struct rf_http **out, struct rf_srv *srv, const char *listen,
                  const struct rf_route *const *tables, const size_t *counts, size_t ntables)
{
    struct sockaddr_storage ss;
    socklen_t sslen = 0;
    *out = NULL;
    int rc = rf_http_parse_listen(listen, &ss, &sslen);
    if (rc != 0)
        return rc;
    struct rf_http *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return RF_ERR_NOMEM;
    h->srv = srv;
    h->tables = tables;
    h->counts = counts;
    h->ntables = ntables;
    atomic_init(&h->stopping, 0);
    pthread_mutex_init(&h->lock, NULL);
    pthread_cond_init(&h->idle, NULL);

    unsigned conn_max = srv && srv->limits.connections_max ? srv->limits.connections_max : 2000;
    unsigned timeout =
        srv && srv->limits.connection_timeout_s ? srv->limits.connection_timeout_s : 60;
    unsigned nthreads = pool_size(srv, conn_max);
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_TURBO |
                     MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    h->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_access, h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_THREAD_POOL_SIZE, nthreads, MHD_OPTION_CONNECTION_LIMIT, conn_max,
        MHD_OPTION_CONNECTION_TIMEOUT, timeout, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)HTTP_CONN_MEMORY, MHD_OPTION_URI_LOG_CALLBACK, on_uri, h,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, h, MHD_OPTION_NOTIFY_CONNECTION, on_connection,
        h, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h, MHD_OPTION_STRICT_FOR_CLIENT, 1,
        MHD_OPTION_END);
    if (h->daemon == NULL) {
        pthread_cond_destroy(&h->idle);
        pthread_mutex_destroy(&h->lock);
        free(h);
        return RF_ERR_NET;
    }
    rf_http_daemon_started();
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : 0;
    rf_log_num(RF_LOG_INFO, "HTTP threads", "threads", nthreads);
    *out = h;
    return 0;
}

uint16_t rf_http_port(const struct rf_http *h)
{
    return h->port;
}

void rf_http_quiesce(struct rf_http *h)
{
    if (h == NULL || atomic_exchange(&h->stopping, 1))
        return;
    MHD_socket s = MHD_quiesce_daemon(h->daemon);
    if (s != MHD_INVALID_SOCKET)
        close(s);
}

void rf_http_stop(struct rf_http *h)
{
    if (h == NULL)
        return;
    rf_http_quiesce(h);
    pthread_mutex_lock(&h->lock);
    while (h->nsuspended > 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 5;
        if (pthread_cond_timedwait(&h->idle, &h->lock, &ts) == ETIMEDOUT)
            rf_log_num(RF_LOG_WARN, "waiting for suspended requests", "count", h->nsuspended);
    }
    pthread_mutex_unlock(&h->lock);
    MHD_stop_daemon(h->daemon);
    rf_http_daemon_stopped();
    pthread_cond_destroy(&h->idle);
    pthread_mutex_destroy(&h->lock);
    free(h);
}
