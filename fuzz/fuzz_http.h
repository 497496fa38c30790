/*
 * fuzz_http.h - shared by the harnesses that drive the server over HTTP
 * (form.c, http_request.c, api_request.c): a blocking loopback client, and a
 * whole `refuge serve` built once per process on a fresh data directory with
 * the real page and API route tables.
 *
 * The fixture is what `refuge serve` runs, minus srv_main.c's settings
 * decoding: a store in a temporary directory (under $REFUGE_TEST_TMP, else
 * /dev/shm, else /tmp; removed at exit), the cheapest Argon2id so logins
 * cost nothing, a fixed CSRF key, one enrolled admin (key A, on roster v1),
 * one person (a source with a live session, no daily quota), and a nonce
 * cache large enough for a long run. Keys A and B (B is not enrolled) come
 * from fixed seeds so that seeds can name them.
 *
 * Inputs may carry placeholders, replaced before sending (fz_expand):
 *   @S@      the person's session cookie value
 *   @SCSRF@  that session's CSRF token (POST /send, /reply/delete)
 *   @C@      a fixed pre-session cookie "c"
 *   @ACSRF@  the CSRF token that goes with @C@ (POST /login, /new)
 *   @CASE@   the person's case id
 *   @APK@ @BPK@ @BBOX@  base64url of key A's / B's signing key, B's box key
 * The session is recreated if it has gone (evicted by logins the fuzzer
 * makes), so @S@ keeps working for the whole run.
 *
 * Header-only (static functions): meson builds each harness from its own
 * .c, and the gcc replay build links each with fuzz/standalone.c only.
 */
#ifndef RF_FUZZ_HTTP_H
#define RF_FUZZ_HTTP_H

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/keyfile.h"
#include "lib/log.h"
#include "lib/roster.h"
#include "lib/source.h"
#include "server/api_nonce.h"
#include "server/httpd.h"
#include "server/kdfpool.h"
#include "server/pages_priv.h"
#include "server/routes.h"
#include "server/session.h"
#include "server/srv.h"
#include "store/commit.h"
#include "store/store.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define FZ_RESP_MAX (1u << 20) /* bytes of an answer kept for checks */
#define FZ_IDLE_MS 25

/* ------------------------------------------------------------------ client */

struct fz_resp {
    unsigned status; /* 0: no status line came back */
    size_t len;      /* bytes kept (the answer may be longer) */
    char *data;      /* NUL-terminated */
};

/* Sends req on a new loopback connection to port, closes the sending side
 * and reads the answer until the server closes. */
static inline int fz_roundtrip(uint16_t port, const uint8_t *req, size_t n, struct fz_resp *out)
{
    memset(out, 0, sizeof(*out));
    out->data = malloc(FZ_RESP_MAX + 1);
    if (out->data == NULL)
        return -1;
    out->data[0] = '\0';
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {30, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    for (size_t off = 0; off < n;) {
        ssize_t w = send(fd, req + off, n - off, MSG_NOSIGNAL);
        if (w <= 0) {
            if (w < 0 && errno == EINTR)
                continue;
            break; /* the server may answer and close before reading it all */
        }
        off += (size_t)w;
    }
    shutdown(fd, SHUT_WR);
    /* libmicrohttpd keeps an HTTP/1.1 connection open after answering even
     * though this side is shut: once an answer has started, a quiet spell of
     * FZ_IDLE_MS ends the read (a suspended request's answer comes after the
     * KDF or commit: the first byte is waited for up to 30 s). */
    char sink[16384];
    for (;;) {
        struct pollfd pfd = {fd, POLLIN, 0};
        int pr = poll(&pfd, 1, out->len > 0 ? FZ_IDLE_MS : 30000);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            break;
        char *dst = out->len < FZ_RESP_MAX ? out->data + out->len : sink;
        size_t cap = out->len < FZ_RESP_MAX ? FZ_RESP_MAX - out->len : sizeof(sink);
        ssize_t r = recv(fd, dst, cap, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        if (dst != sink)
            out->len += (size_t)r;
    }
    close(fd);
    out->data[out->len] = '\0';
    if (getenv("FUZZ_DEBUG") != NULL) /* seeing what a seed gets back */
        fprintf(stderr, "---- %zu bytes sent, answer:\n%.600s\n", n, out->data);
    unsigned st = 0;
    if (out->len >= 12 && memcmp(out->data, "HTTP/1.", 7) == 0 &&
        sscanf(out->data + 9, "%3u", &st) == 1)
        out->status = st;
    return 0;
}

static inline void fz_resp_free(struct fz_resp *r)
{
    free(r->data);
    r->data = NULL;
}

/* The head (status line and headers) of the first answer in r. */
static inline size_t fz_head_len(const struct fz_resp *r)
{
    const char *end = strstr(r->data, "\r\n\r\n");
    return end ? (size_t)(end - r->data) : r->len;
}

/* Checks every answer of ours: the security headers are there, cookies are
 * HttpOnly and SameSite=Strict, no header value carries a raw CR. abort()s
 * otherwise. MHD's own answers to malformed requests (which never reach a
 * handler) carry no security headers and are skipped: they have no
 * Content-Security-Policy header. */
static inline void fz_check_head(const struct fz_resp *r)
{
    size_t n = fz_head_len(r);
    char *h = strndup(r->data, n);
    if (h == NULL)
        return;
    if (strcasestr(h, "\r\nContent-Security-Policy:") != NULL) {
        if (strcasestr(h, "\r\nX-Frame-Options: DENY") == NULL ||
            strcasestr(h, "\r\nReferrer-Policy: no-referrer") == NULL ||
            strcasestr(h, "\r\nCache-Control: no-store") == NULL ||
            strcasestr(h, "\r\nX-Content-Type-Options: nosniff") == NULL)
            abort();
    }
    for (char *c = strcasestr(h, "\r\nSet-Cookie:"); c != NULL;
         c = strcasestr(c + 2, "\r\nSet-Cookie:")) {
        char *eol = strstr(c + 2, "\r\n");
        size_t len = eol ? (size_t)(eol - c) : strlen(c);
        char *line = strndup(c, len);
        if (line == NULL)
            break;
        if (strcasestr(line, "HttpOnly") == NULL || strcasestr(line, "SameSite=Strict") == NULL)
            abort();
        free(line);
    }
    free(h);
}

/* ----------------------------------------------------------------- fixture */

struct fz_server {
    struct rf_srv srv;
    struct rf_http *http;
    uint16_t port;
    char dir[256];
    struct rf_staff_keys *a, *b; /* sodium_malloc */
    struct rf_source src;
    struct rf_source_keys *src_keys; /* sodium_malloc */
    char session[RF_SESSION_TOKEN_B64];
    char session_csrf[RF_CSRF_TOKEN_LEN];
    char anon_cookie[23];
    char anon_csrf[RF_CSRF_TOKEN_LEN];
    char apk[64], bpk[64], bbox[64];
};

static struct fz_server *fz_srv;

static inline int fz_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static inline void fz_cleanup(void)
{
    if (fz_srv != NULL && fz_srv->dir[0])
        nftw(fz_srv->dir, fz_rm, 16, FTW_DEPTH | FTW_PHYS);
}

static inline void fz_die(const char *what, int rc)
{
    fprintf(stderr, "fuzz fixture: %s: %s\n", what, rf_strerror(rc));
    fz_cleanup();
    abort();
}

static inline void fz_keys(struct rf_staff_keys *k, uint8_t seed_byte, const char *name)
{
    uint8_t seed[32];
    memset(seed, seed_byte, sizeof(seed));
    memset(k, 0, sizeof(*k));
    snprintf(k->name, sizeof(k->name), "%s", name);
    crypto_sign_seed_keypair(k->sign_pk, k->sign_sk, seed);
    seed[0] ^= 0xff;
    crypto_box_seed_keypair(k->box_pk, k->box_sk, seed);
}

static inline int fz_apply(struct rf_store *st, struct rf_op *op)
{
    int rc = rf_store_apply(st, op, 1);
    return rc != 0 ? rc : op->status;
}

/* (Re)creates the person's session and its CSRF token. */
static inline void fz_session_new(struct fz_server *f)
{
    int rc = rf_session_create(f->srv.sessions, &f->src, f->src_keys, f->session);
    if (rc != 0)
        fz_die("session", rc);
    struct rf_session_view *v = sodium_malloc(sizeof(*v));
    if (v == NULL)
        fz_die("session", RF_ERR_NOMEM);
    rc = rf_session_get(f->srv.sessions, f->session, v);
    if (rc != 0)
        fz_die("session", rc);
    rf_pages_csrf_token(f->session_csrf, "sess", v->csrf, sizeof(v->csrf));
    sodium_free(v);
}

static inline void fz_session_ensure(struct fz_server *f)
{
    struct rf_session_view *v = sodium_malloc(sizeof(*v));
    if (v == NULL)
        return;
    int rc = rf_session_get(f->srv.sessions, f->session, v);
    sodium_free(v);
    if (rc == RF_ERR_NOT_FOUND)
        fz_session_new(f);
}

static inline struct fz_server *fz_server_get(void)
{
    if (fz_srv != NULL)
        return fz_srv;
    if (sodium_init() < 0)
        abort();
    signal(SIGPIPE, SIG_IGN);
    rf_log_set_level(RF_LOG_ERROR + 1); /* quiet: the fuzzer's output is what counts */
    struct fz_server *f = calloc(1, sizeof(*f));
    if (f == NULL)
        abort();
    fz_srv = f;
    atexit(fz_cleanup);
    const char *base = getenv("REFUGE_TEST_TMP");
    struct stat st;
    if (base == NULL || *base == '\0')
        base = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) ? "/dev/shm" : "/tmp";
    snprintf(f->dir, sizeof(f->dir), "%s/refuge-fuzz-XXXXXX", base);
    if (mkdtemp(f->dir) == NULL) {
        f->dir[0] = '\0';
        fz_die("temporary directory", RF_ERR_IO);
    }
    struct rf_srv *s = &f->srv;
    s->datadir = f->dir;
    int rc = rf_store_open(&s->store, f->dir);
    if (rc != 0)
        fz_die("store", rc);
    s->kdf_params = sodium_malloc(sizeof(*s->kdf_params));
    if (s->kdf_params == NULL)
        fz_die("kdf", RF_ERR_NOMEM);
    rc = rf_kdf_params_new(s->kdf_params, 1, 8ULL << 20); /* the least source.c takes */
    if (rc != 0)
        fz_die("kdf", rc);
    memset(s->kdf_params->salt, 0x5a, sizeof(s->kdf_params->salt)); /* same keys every run */
    memset(s->kdf_params->lookup_key, 0x5b, sizeof(s->kdf_params->lookup_key));
    s->limits.message_max = 64 * 1024;
    s->limits.upload_max = 4 * 1024 * 1024;
    s->limits.form_max = 256 * 1024;
    s->limits.kdf_concurrent = 1;
    s->limits.kdf_queue = 64;
    s->limits.sessions_max = 256;
    s->limits.session_idle_s = 3600;
    s->limits.connections_max = 64;
    s->limits.connection_timeout_s = 2;
    s->limits.api_body_max = 4 * 1024 * 1024;
    s->default_lang = RF_LANG_EN;
    if ((rc = rf_committer_new(&s->committer, s->store)) != 0)
        fz_die("committer", rc);
    if ((rc = rf_kdfpool_new(&s->kdf, s->kdf_params, 1, 64)) != 0)
        fz_die("kdf pool", rc);
    if ((rc = rf_sessions_new(&s->sessions, s->limits.sessions_max, s->limits.session_idle_s)) != 0)
        fz_die("sessions", rc);
    rf_sessions_set_quota(s->sessions, UINT32_MAX, UINT64_MAX);
    s->csrf_key = sodium_malloc(32);
    if (s->csrf_key == NULL)
        fz_die("csrf key", RF_ERR_NOMEM);
    memset(s->csrf_key, 0x07, 32);
    if ((rc = rf_nonces_new(&s->nonces, 1u << 21)) != 0) /* rf_api_init keeps it */
        fz_die("nonces", rc);
    if ((rc = rf_pages_init(s)) != 0)
        fz_die("pages", rc);
    if ((rc = rf_api_init(s)) != 0)
        fz_die("api", rc);

    /* key A: enrolled admin on roster v1; key B: a stranger */
    f->a = sodium_malloc(sizeof(*f->a));
    f->b = sodium_malloc(sizeof(*f->b));
    if (f->a == NULL || f->b == NULL)
        fz_die("keys", RF_ERR_NOMEM);
    fz_keys(f->a, 0x0a, "Fuzz Admin");
    fz_keys(f->b, 0x0b, "Fuzz Stranger");
    struct rf_op op;
    memset(&op, 0, sizeof(op));
    op.type = RF_OP_STAFF_PUT;
    memcpy(op.staff.sign_pk, f->a->sign_pk, 32);
    memcpy(op.staff.box_pk, f->a->box_pk, 32);
    snprintf(op.staff.name, sizeof(op.staff.name), "%s", f->a->name);
    if ((rc = fz_apply(s->store, &op)) != 0)
        fz_die("staff", rc);
    struct rf_roster *ro = calloc(1, sizeof(*ro));
    if (ro == NULL)
        fz_die("roster", RF_ERR_NOMEM);
    ro->version = 1;
    ro->n = 1;
    snprintf(ro->members[0].name, sizeof(ro->members[0].name), "%s", f->a->name);
    ro->members[0].role = RF_ROLE_ADMIN;
    memcpy(ro->members[0].box_pk, f->a->box_pk, 32);
    memcpy(ro->members[0].sign_pk, f->a->sign_pk, 32);
    struct rf_buf raw;
    rf_buf_init(&raw, RF_ROSTER_MAX_BYTES);
    if ((rc = rf_roster_sign(&raw, ro, f->a)) != 0)
        fz_die("roster", rc);
    free(ro);
    memset(&op, 0, sizeof(op));
    op.type = RF_OP_ROSTER_PUT;
    op.version = 1;
    op.data = raw.data;
    op.len = raw.len;
    if ((rc = fz_apply(s->store, &op)) != 0)
        fz_die("roster", rc);
    rf_buf_free(&raw);
    atomic_store(&s->line_open, 1); /* as the API does when it stores roster v1 */

    /* the person */
    f->src_keys = sodium_malloc(sizeof(*f->src_keys));
    if (f->src_keys == NULL)
        fz_die("source", RF_ERR_NOMEM);
    static const char codename[] = "fuzz codename alpha bravo";
    if ((rc = rf_source_derive(f->src_keys, s->kdf_params, codename, sizeof(codename) - 1)) != 0)
        fz_die("source", rc);
    memset(&op, 0, sizeof(op));
    op.type = RF_OP_SOURCE_CREATE;
    memcpy(op.lookup_id, f->src_keys->lookup_id, 32);
    memcpy(op.pk, f->src_keys->pk, 32);
    if ((rc = fz_apply(s->store, &op)) != 0)
        fz_die("source", rc);
    f->src = op.source;
    fz_session_new(f);
    memcpy(f->anon_cookie, "AAAAAAAAAAAAAAAAAAAAAA", 23);
    rf_pages_csrf_token(f->anon_csrf, "anon", (const uint8_t *)f->anon_cookie, 22);
    if (rf_b64_encode(f->apk, sizeof(f->apk), f->a->sign_pk, 32) != 0 ||
        rf_b64_encode(f->bpk, sizeof(f->bpk), f->b->sign_pk, 32) != 0 ||
        rf_b64_encode(f->bbox, sizeof(f->bbox), f->b->box_pk, 32) != 0)
        fz_die("keys", RF_ERR_FORMAT);

    const struct rf_route *const tables[] = {rf_page_routes, rf_api_routes};
    static const struct rf_route *tables_kept[2];
    static size_t counts[2];
    tables_kept[0] = tables[0];
    tables_kept[1] = tables[1];
    counts[0] = rf_page_routes_n;
    counts[1] = rf_api_routes_n;
    if ((rc = rf_http_start(&f->http, s, "127.0.0.1:0", tables_kept, counts, 2)) != 0)
        fz_die("http", rc);
    f->port = rf_http_port(f->http);
    return f;
}

/* Appends p[0..n) to out with the placeholders replaced. */
static inline int fz_expand(struct fz_server *f, struct rf_buf *out, const uint8_t *p, size_t n)
{
    struct {
        const char *name;
        const char *value;
    } subst[] = {
        {"@S@", f->session},       {"@SCSRF@", f->session_csrf}, {"@C@", f->anon_cookie},
        {"@ACSRF@", f->anon_csrf}, {"@CASE@", f->src.case_id},   {"@APK@", f->apk},
        {"@BPK@", f->bpk},         {"@BBOX@", f->bbox},
    };
    size_t i = 0, from = 0;
    int session_used = 0;
    while (i < n) {
        const uint8_t *at = memchr(p + i, '@', n - i);
        if (at == NULL)
            break;
        i = (size_t)(at - p);
        size_t k;
        for (k = 0; k < sizeof(subst) / sizeof(subst[0]); k++) {
            size_t len = strlen(subst[k].name);
            if (n - i >= len && memcmp(p + i, subst[k].name, len) == 0)
                break;
        }
        if (k == sizeof(subst) / sizeof(subst[0])) {
            i++;
            continue;
        }
        if (k <= 1 && !session_used) {
            fz_session_ensure(f); /* may change the token: before copying it */
            session_used = 1;
        }
        if (rf_buf_put(out, p + from, i - from) != 0 || rf_buf_put_str(out, subst[k].value) != 0)
            return RF_ERR_LIMIT;
        i += strlen(subst[k].name);
        from = i;
    }
    return rf_buf_put(out, p + from, n - from);
}

#endif
