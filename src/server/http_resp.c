/*
 * http_resp.c - recording a request's response: every answer carries the
 * same security headers; static answers (pre-rendered pages) come from a
 * small cache of shared libmicrohttpd responses that are never modified;
 * headers added before the response exists are kept and applied when it is
 * made. The daemon and dispatcher are http.c's (http_priv.h).
 */
#include "server/http_priv.h"
#include "server/httpd.h"
#include "server/metrics.h"
#include "server/srv.h"
#include "lib/err.h"
#include "lib/secmem.h"
#include "lib/log.h"
#include "store/commit.h"

#include <assert.h>
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

/* --------------------------------------------------------------- response */

struct sec_header {
    const char *name;
    const char *value;
};

static const struct sec_header security_headers[] = {
    {"Referrer-Policy", "no-referrer"},
    {"Cache-Control", "no-store"},
    {"Pragma", "no-cache"},
    {"X-Content-Type-Options", "nosniff"},
    {"X-Frame-Options", "DENY"},
    {"Cross-Origin-Opener-Policy", "same-origin"},
    {"Cross-Origin-Resource-Policy", "same-origin"},
    {"Permissions-Policy", "interest-cohort=(), camera=(), microphone=(), geolocation=()"},
};

/* The policy of HTML answers, handed in at start (rf_http_set_page_csp):
 * NULL until then, and HTML gets the strict policy of every other answer. */
static const char *page_csp;

void rf_http_set_page_csp(const char *csp)
{
    page_csp = csp;
}

static int header_value_ok(const char *s)
{
    for (; *s; s++)
        if (*s == '\r' || *s == '\n')
            return 0;
    return 1;
}

static int is_html(const char *content_type)
{
    return content_type && strncmp(content_type, "text/html", 9) == 0;
}

/* Onion-Location (--onion-location, srv->onion_location): on HTML answers
 * to a request whose Host is not a .onion, so Tor Browser offers the onion
 * on the clear site and never on the onion itself. */
static int wants_onion_location(struct rf_req *r, const char *content_type)
{
    if (r->http == NULL || r->http->srv == NULL || r->http->srv->onion_location == NULL ||
        !is_html(content_type))
        return 0;
    const char *host = rf_req_header(r, MHD_HTTP_HEADER_HOST);
    if (host == NULL)
        return 1;
    size_t n = strcspn(host, ":");
    if (host[0] == '[') /* an IPv6 literal is no onion */
        return 1;
    while (n > 0 && host[n - 1] == '.') /* "x.onion." too */
        n--;
    return !(n >= 6 && strncasecmp(host + n - 6, ".onion", 6) == 0);
}

/* Adds the fixed headers and those recorded so far, then makes resp the
 * request's answer. Destroys resp on failure. */
static int record(struct rf_req *r, unsigned status, const char *content_type,
                  struct MHD_Response *resp)
{
    assert(!rf_committer_in_completion()); /* answers are made on the request's thread */
    if (resp == NULL)
        return RF_ERR_NOMEM;
    if (r->resp != NULL || r->queued) {
        MHD_destroy_response(resp);
        return RF_ERR_INVALID;
    }
    int ok = 1;
    if (content_type)
        ok &= MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type) == MHD_YES;
    const char *csp = is_html(content_type) ? page_csp : HTTP_CSP_OTHER;
    ok &= MHD_add_response_header(resp, "Content-Security-Policy", csp ? csp : HTTP_CSP_OTHER) ==
          MHD_YES;
    for (size_t i = 0; i < sizeof(security_headers) / sizeof(security_headers[0]); i++)
        ok &= MHD_add_response_header(resp, security_headers[i].name, security_headers[i].value) ==
              MHD_YES;
    if (wants_onion_location(r, content_type))
        ok &= MHD_add_response_header(resp, "Onion-Location", r->http->srv->onion_location) ==
              MHD_YES;
    for (struct hdr *h = r->extra; h; h = h->next)
        ok &= MHD_add_response_header(resp, h->name, h->value) == MHD_YES;
    if (!ok) {
        MHD_destroy_response(resp);
        return RF_ERR_NOMEM;
    }
    r->resp = resp;
    r->status = status;
    return 0;
}

static int resp_unshare(struct rf_req *r);

int rf_req_add_header(struct rf_req *r, const char *name, const char *value)
{
    if (!header_value_ok(name) || !header_value_ok(value) || strchr(name, ':'))
        return RF_ERR_INVALID;
    if (r->resp) {
        int rc = resp_unshare(r);
        if (rc != 0)
            return rc;
        return MHD_add_response_header(r->resp, name, value) == MHD_YES ? 0 : RF_ERR_NOMEM;
    }
    if (r->queued)
        return RF_ERR_INVALID;
    struct hdr *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return RF_ERR_NOMEM;
    h->name = strdup(name);
    h->value = strdup(value);
    if (h->name == NULL || h->value == NULL) {
        free(h->name);
        free(h->value);
        free(h);
        return RF_ERR_NOMEM;
    }
    struct hdr **tail = &r->extra; /* keep the order they were added in */
    while (*tail)
        tail = &(*tail)->next;
    *tail = h;
    return 0;
}

static void free_plain(void *p)
{
    free(p);
}

static void free_secure(void *p)
{
    rf_secmem_free(p);
}

int rf_req_respond_buf(struct rf_req *r, unsigned status, const char *content_type,
                       struct rf_buf *body)
{
    if (body->len == 0) {
        rf_buf_free(body);
        return rf_req_respond_static(r, status, content_type, NULL, 0);
    }
    int secure = body->secure;
    size_t len = 0;
    uint8_t *p = rf_buf_steal(body, &len);
    if (p == NULL)
        return RF_ERR_NOMEM;
    struct MHD_Response *resp = MHD_create_response_from_buffer_with_free_callback(
        len, p, secure ? free_secure : free_plain);
    if (resp == NULL) {
        if (secure) {
            rf_secmem_free(p);
        } else {
            free(p);
        }
        return RF_ERR_NOMEM;
    }
    return record(r, status, content_type, resp);
}

/* Static answers (landing page, error texts) are the same bytes and headers
 * every time: their MHD responses are built once and queued by reference
 * (MHD counts references; a response may be queued on many connections).
 * Readers scan the published prefix of the array without a lock; writers
 * append under cache_lock. Entries live until exit. A request that adds a
 * header after answering gets a private copy first (unshare), so a shared
 * response is never modified. */
#define STATIC_CACHE_MAX 64
struct static_entry {
    const uint8_t *p;
    size_t n;
    unsigned status;
    const char *ct;
    int onion_loc; /* carries Onion-Location */
    struct MHD_Response *resp;
};
static struct static_entry static_cache[STATIC_CACHE_MAX];
static atomic_size_t static_cache_n;
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;

static int static_key_eq(const struct static_entry *e, const uint8_t *p, size_t n, unsigned status,
                         const char *ct, int ol)
{
    return e->p == p && e->n == n && e->status == status && e->onion_loc == ol &&
           (e->ct == ct || (e->ct && ct && strcmp(e->ct, ct) == 0));
}

static struct MHD_Response *static_cache_find(const uint8_t *p, size_t n, unsigned status,
                                              const char *ct, int ol)
{
    size_t used = atomic_load_explicit(&static_cache_n, memory_order_acquire);
    for (size_t i = 0; i < used; i++)
        if (static_key_eq(&static_cache[i], p, n, status, ct, ol))
            return static_cache[i].resp;
    return NULL;
}

/* Publishes resp (complete with headers); returns the entry's response,
 * which is another thread's if it won the race (resp is then destroyed), or
 * NULL if the cache is full (resp stays the caller's). */
static struct MHD_Response *static_cache_add(const uint8_t *p, size_t n, unsigned status,
                                             const char *ct, int ol, struct MHD_Response *resp)
{
    struct MHD_Response *out = NULL;
    pthread_mutex_lock(&cache_lock);
    size_t used = atomic_load_explicit(&static_cache_n, memory_order_relaxed);
    for (size_t i = 0; i < used && out == NULL; i++)
        if (static_key_eq(&static_cache[i], p, n, status, ct, ol))
            out = static_cache[i].resp;
    if (out != NULL) {
        MHD_destroy_response(resp);
    } else if (used < STATIC_CACHE_MAX) {
        static_cache[used] = (struct static_entry){p, n, status, ct, ol, resp};
        atomic_store_explicit(&static_cache_n, used + 1, memory_order_release);
        out = resp;
    }
    pthread_mutex_unlock(&cache_lock);
    return out;
}

static unsigned daemons_running; /* under cache_lock */

/* When the last daemon stops: the bytes the cache points at may be freed
 * next (rf_pages_free), so a later daemon must not meet them. */
static void static_cache_clear(void)
{
    size_t used = atomic_load_explicit(&static_cache_n, memory_order_relaxed);
    for (size_t i = 0; i < used; i++)
        MHD_destroy_response(static_cache[i].resp);
    memset(static_cache, 0, sizeof(static_cache));
    atomic_store_explicit(&static_cache_n, 0, memory_order_release);
}

void rf_http_daemon_started(void)
{
    pthread_mutex_lock(&cache_lock);
    daemons_running++;
    pthread_mutex_unlock(&cache_lock);
}

void rf_http_daemon_stopped(void)
{
    pthread_mutex_lock(&cache_lock);
    if (--daemons_running == 0)
        static_cache_clear();
    pthread_mutex_unlock(&cache_lock);
}

static struct MHD_Response *static_response(const uint8_t *p, size_t n)
{
    static char empty[1];
    void *data = n ? (void *)(uintptr_t)p : empty;
    return MHD_create_response_from_buffer(n, data, MHD_RESPMEM_PERSISTENT);
}

int rf_req_respond_static(struct rf_req *r, unsigned status, const char *content_type,
                          const uint8_t *p, size_t n)
{
    if (r->resp != NULL || r->queued)
        return RF_ERR_INVALID;
    if (r->extra != NULL) /* headers of its own: not shareable */
        return record(r, status, content_type, static_response(p, n));
    int ol = wants_onion_location(r, content_type);
    struct MHD_Response *shared = static_cache_find(p, n, status, content_type, ol);
    if (shared == NULL) {
        int rc = record(r, status, content_type, static_response(p, n));
        if (rc != 0)
            return rc;
        struct MHD_Response *mine = r->resp;
        r->resp = NULL;
        shared = static_cache_add(p, n, status, content_type, ol, mine);
        if (shared == NULL) { /* cache full: it stays private */
            r->resp = mine;
            return 0;
        }
    }
    r->resp = shared;
    r->status = status;
    r->resp_shared = 1;
    r->static_p = p;
    r->static_n = n;
    r->static_ct = content_type;
    return 0;
}

/* Replaces a shared response by a private one, before it is modified. */
static int resp_unshare(struct rf_req *r)
{
    if (!r->resp_shared)
        return 0;
    r->resp = NULL;
    r->resp_shared = 0;
    return record(r, r->status, r->static_ct, static_response(r->static_p, r->static_n));
}

int rf_req_respond_fd(struct rf_req *r, unsigned status, const char *content_type, int fd,
                      uint64_t size)
{
    if (r->resp != NULL || r->queued) {
        close(fd);
        return RF_ERR_INVALID;
    }
    struct MHD_Response *resp = MHD_create_response_from_fd_at_offset64(size, fd, 0);
    if (resp == NULL) {
        close(fd);
        return RF_ERR_NOMEM;
    }
    return record(r, status, content_type, resp); /* MHD closes fd with resp */
}

struct stream {
    rf_stream_read_fn read;
    void (*done)(void *arg);
    void *arg;
};

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct stream *s = cls;
    (void)pos;
    long n = s->read(s->arg, (uint8_t *)buf, max);
    if (n < 0 || (size_t)n > max)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    if (n == 0)
        return MHD_CONTENT_READER_END_OF_STREAM;
    return (ssize_t)n;
}

static void stream_free(void *cls)
{
    struct stream *s = cls;
    s->done(s->arg);
    free(s);
}

int rf_req_respond_stream(struct rf_req *r, unsigned status, const char *content_type,
                          rf_stream_read_fn read, void (*done)(void *arg), void *arg)
{
    struct stream *s = NULL;
    if (r->resp != NULL || r->queued || (s = malloc(sizeof(*s))) == NULL) {
        done(arg);
        return r->resp != NULL || r->queued ? RF_ERR_INVALID : RF_ERR_NOMEM;
    }
    *s = (struct stream){read, done, arg};
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, stream_read, s, stream_free);
    if (resp == NULL) {
        stream_free(s);
        return RF_ERR_NOMEM;
    }
    return record(r, status, content_type, resp); /* resp destroyed (stream_free) on failure */
}

int rf_req_redirect(struct rf_req *r, const char *location)
{
    if (!header_value_ok(location))
        return RF_ERR_INVALID;
    int rc = rf_req_respond_static(r, MHD_HTTP_SEE_OTHER, NULL, NULL, 0);
    if (rc == 0)
        rc = rf_req_add_header(r, MHD_HTTP_HEADER_LOCATION, location);
    return rc;
}

static int dump_to_buf(const char *p, size_t n, void *ctx)
{
    return rf_buf_put(ctx, p, n) == 0 ? 0 : -1;
}

int rf_req_respond_json(struct rf_req *r, unsigned status, json_t *j)
{
    if (j == NULL)
        return RF_ERR_NOMEM;
    struct rf_buf b; /* dumped once, into a buffer that grows */
    rf_buf_init(&b, (size_t)1 << 30);
    int rc = json_dump_callback(j, dump_to_buf, &b, JSON_COMPACT) == 0 && b.len > 0
                 ? 0
                 : RF_ERR_NOMEM;
    json_decref(j);
    if (rc == 0)
        rc = rf_req_respond_buf(r, status, "application/json", &b);
    rf_buf_free(&b);
    return rc;
}

int rf_req_respond_json_error(struct rf_req *r, unsigned status, const char *code,
                              const char *message)
{
    return rf_req_respond_json(
        r, status,
        json_pack("{s:s,s:s}", "error", code ? code : "error", "message", message ? message : ""));
}

int rf_req_responded(const struct rf_req *r)
{
    return r->resp != NULL || r->queued;
}
