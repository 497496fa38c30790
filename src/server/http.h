/*
 * http.h - the server's request abstraction over libmicrohttpd.
 *
 * Handlers never call libmicrohttpd. A route (method + path) names up to
 * three callbacks: on_headers when the request line and headers are in,
 * on_body for each chunk of the body as it streams (never buffered whole by
 * this layer), on_end once the body is complete. A handler answers by calling
 * one rf_req_respond_* function, which only records the response; the
 * dispatcher queues it with libmicrohttpd when the callback returns.
 *
 * Long work (Argon2id, a durable commit) must not run on an HTTP thread: the
 * handler hands it to a worker and calls rf_req_suspend(); the worker records
 * the response with rf_req_respond_* and calls rf_req_resume(), which is
 * thread-safe. The connection is answered then.
 *
 * Any callback may answer early (e.g. a size limit hit while streaming): the
 * rest of the body is then discarded unread and the response sent.
 */
#ifndef RF_HTTP_H
#define RF_HTTP_H

#include "lib/buf.h"

#include <stddef.h>
#include <stdint.h>

struct rf_req;
struct rf_srv; /* the server: store, committer, KDF pool, sessions, settings (srv.h) */

enum rf_route_flags {
    RF_ROUTE_PREFIX = 1, /* path matches as a prefix ("/api/v1/objects/") */
};

struct rf_route {
    const char *method;
    const char *path;
    unsigned flags;
    uint64_t max_body; /* 0: the request must have no body */
    int (*on_headers)(struct rf_req *r);
    int (*on_body)(struct rf_req *r, const uint8_t *p, size_t n);
    int (*on_end)(struct rf_req *r);
};

/* ---- the request ---- */
struct rf_srv *rf_req_srv(struct rf_req *r);
const char *rf_req_method(const struct rf_req *r);
/* Path without the query string, percent-decoding not applied. */
const char *rf_req_path(const struct rf_req *r);
/* Path with the query string, exactly as sent (what API signatures cover). */
const char *rf_req_target(const struct rf_req *r);
const char *rf_req_header(struct rf_req *r, const char *name);
const char *rf_req_query(struct rf_req *r, const char *name);
const char *rf_req_cookie(struct rf_req *r, const char *name);
/* Content-Length if sent, else -1. */
int64_t rf_req_content_length(struct rf_req *r);
/* Per-request state owned by the handler; free_fn runs when the request ends
 * (completed, failed or the client went away). */
void rf_req_set_state(struct rf_req *r, void *state, void (*free_fn)(void *));
void *rf_req_state(struct rf_req *r);

/* ---- the response (recorded; sent when the callback returns or on resume) ---- */
/* Adds a response header (copied). */
int rf_req_add_header(struct rf_req *r, const char *name, const char *value);
/* Sends body (taken over: the buf is emptied). */
int rf_req_respond_buf(struct rf_req *r, unsigned status, const char *content_type,
                       struct rf_buf *body);
/* Sends bytes that outlive the server (static pages): no copy. */
int rf_req_respond_static(struct rf_req *r, unsigned status, const char *content_type,
                          const uint8_t *p, size_t n);
/* Sends size bytes of fd from offset 0; the fd is closed afterwards. */
int rf_req_respond_fd(struct rf_req *r, unsigned status, const char *content_type, int fd,
                      uint64_t size);
/* Streams an answer of unknown length (chunked): read(arg, buf, max) is
 * called on the connection's thread, whenever the client can take more,
 * and answers the bytes it put in buf (1..max), 0 at the end, or -1 to
 * break the answer off (the connection is closed: the client sees it cut
 * short). done(arg) runs once the answer is over or failed (and at once if
 * this call fails). Nothing is held but what read puts in buf. */
typedef long (*rf_stream_read_fn)(void *arg, uint8_t *buf, size_t max);
int rf_req_respond_stream(struct rf_req *r, unsigned status, const char *content_type,
                          rf_stream_read_fn read, void (*done)(void *arg), void *arg);
int rf_req_redirect(struct rf_req *r, const char *location); /* 303 See Other */
/* j (consumed, also on error) as compact JSON, application/json. The bytes
 * go into one buffer of their exact size (json_dumpb, no other copy). */
struct json_t;
int rf_req_respond_json(struct rf_req *r, unsigned status, struct json_t *j);
/* JSON error for the API: {"error": code, "message": text}. */
int rf_req_respond_json_error(struct rf_req *r, unsigned status, const char *code,
                              const char *message);
int rf_req_responded(const struct rf_req *r);

/* ---- forms ----
 * For urlencoded and multipart/form-data bodies: call rf_req_form_begin from
 * on_headers; body chunks then go to libmicrohttpd's streaming post processor
 * and fn receives each field in pieces (off = offset of data within the
 * field's value), on_body is not called. fn returns 0 to go on, or an rf_err
 * after answering (e.g. a limit), which stops parsing. Field names and
 * filenames are bounded by RF_FORM_NAME_MAX; longer ones fail the request. */
#define RF_FORM_NAME_MAX 256
typedef int (*rf_form_fn)(struct rf_req *r, const char *name, const char *filename,
                          const char *content_type, uint64_t off, const uint8_t *data, size_t n);
int rf_req_form_begin(struct rf_req *r, rf_form_fn fn);

/* ---- async ---- */
void rf_req_suspend(struct rf_req *r);
void rf_req_resume(struct rf_req *r);
/* rf_req_suspend, and once resumed, fn(r) runs on the request's own HTTP
 * thread before anything is sent: the worker (a committer completion) only
 * records its outcome in the handler's state and calls rf_req_resume; fn
 * does the rest (rendering, JSON, cleanup, session creation) and answers,
 * or suspends again with rf_req_suspend_then (the next step of a chain).
 * A nonzero return answers as a callback's would. Called from a callback
 * on the request's thread. If the client went away meanwhile, fn does not
 * run (the state's free_fn does, as always). */
typedef int (*rf_req_resumed_fn)(struct rf_req *r);
void rf_req_suspend_then(struct rf_req *r, rf_req_resumed_fn fn);

#endif
