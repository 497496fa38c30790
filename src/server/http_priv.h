/*
 * http_priv.h - what the HTTP layer's two files share and nothing else may
 * include: the daemon and request structures. http.c owns the daemon, the
 * dispatcher, forms and suspension; http_resp.c owns recording a response
 * (security headers, the static-answer cache, extra headers).
 */
#ifndef RF_HTTP_PRIV_H
#define RF_HTTP_PRIV_H

#include "server/httpd.h"

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#define HTTP_POST_BUFFER (16 * 1024)
#define HTTP_CONN_MEMORY (32 * 1024)
#define HTTP_MAX_THREADS 64
/* < libmicrohttpd 0.9.75's 128-event epoll array, less the listening socket
 * and the wake-up descriptor in each thread's set (http.c's head) */
#define HTTP_CONNS_PER_THREAD 120
#define HTTP_CSP_OTHER "default-src 'none'; frame-ancestors 'none'"

struct rf_http {
    struct MHD_Daemon *daemon;
    struct rf_srv *srv;
    const struct rf_route *const *tables;
    const size_t *counts;
    size_t ntables;
    uint16_t port;
    atomic_int stopping;
    pthread_mutex_t lock; /* suspend/resume handshake, nsuspended */
    pthread_cond_t idle;  /* signalled when nsuspended drops to 0 */
    unsigned nsuspended;
};

struct hdr {
    struct hdr *next;
    char *name;
    char *value;
};

enum susp_state { SUSP_NONE = 0, SUSP_WANTED, SUSP_RESUMED_EARLY, SUSP_ACTIVE };

/* Per connection (MHD's socket context): the request whose URI callback
 * ran and that is not completed yet. MHD calls the completion callback only
 * for requests that reached the access handler; one refused before (e.g.
 * too many query arguments for the connection's memory) is freed when its
 * connection closes. Both run on the connection's thread. */
struct conn_ctx {
    struct rf_req *current;
};

struct rf_req {
    struct rf_http *http;
    struct MHD_Connection *conn;
    struct conn_ctx *cctx;
    const struct rf_route *route;
    rf_http_fallback_fn fallback; /* when route is NULL: not-found owner */
    const char *method;           /* MHD's, valid for the request */
    char *target;                 /* as sent, with the query string */
    char *path;                   /* target up to '?' */
    int started;
    int headers_suspended; /* on_headers suspended: MHD repeats the 1st call on resume */
    int ended;
    int queued;
    int failed_status; /* dispatcher's own answer pending */
    int must_close;    /* framing unknown: answer at once and close */
    uint64_t body_bytes;
    uint64_t discarded;
    /* recorded response */
    struct MHD_Response *resp;
    unsigned status;
    int resp_shared; /* resp is a cached static response: never modified, not ours to destroy */
    const uint8_t *static_p;
    size_t static_n;
    const char *static_ct;
    struct hdr *extra; /* headers added before the response existed */
    /* handler state */
    void *state;
    void (*state_free)(void *);
    /* forms */
    struct MHD_PostProcessor *pp;
    rf_form_fn form_fn;
    int form_err;
    /* async */
    enum susp_state susp;
    rf_req_resumed_fn resumed; /* rf_req_suspend_then: runs on this thread after the resume */
};

/* A daemon started / stopped (http_resp.c): when the last one stops, the
 * cached static answers go, since the bytes they point at may be freed next
 * (rf_pages_free) and a later daemon must not meet them. */
void rf_http_daemon_started(void);
void rf_http_daemon_stopped(void);

#endif
