/*
 * pages.c - the person's pages: the route table, the landing page, the safety
 * page, getting and practising a codename, logging in, the quick exit, error
 * pages; and what every page shares (language choice, cookies, CSRF tokens,
 * the roster cache, whether the line is open).
 * The conversation itself (inbox, sending, deleting) is pages_inbox.c.
 *
 * Invariants:
 * - Every byte of HTML comes from rf_page_render; no person-facing text is
 *   written here (msgids only, checked by gen-pages).
 * - A codename exists here only in sodium_malloc memory (the shown page is
 *   rendered into a secure buf) and is wiped once handed to the KDF pool.
 * - Every failure of a login (unknown, malformed, too long) answers the same
 *   page with the same status.
 * - The HTTP layer's own refusals on the person's routes (malformed, too
 *   large, wrong method) are error pages too (rf_pages_refuse), in the
 *   person's language, never bare text.
 * - A handler that suspends calls rf_req_suspend before handing the request
 *   to a worker, and the worker touches neither the request nor its state
 *   after rf_req_resume.
 * - Cookies are session-only (no Expires/Max-Age), HttpOnly, SameSite=Strict.
 * - No codename is made while the line is not open (no roster yet): the
 *   landing page says so and /new refuses; "open" is cached in memory and
 *   only ever goes from closed to open, so the landing page reads no store.
 * - Practising a codename (/new/check) stores, logs and echoes nothing: the
 *   answer names only the positions of the words not typed right.
 */
#include "server/pages_priv.h"
#include "lib/err.h"
#include "lib/secmem.h"
#include "lib/log.h"
#include "lib/codename_check.h"
#include "lib/roster.h"
#include "server/errmap.h"
#include "server/intake.h"
#include "server/kdfpool.h"
#include "server/metrics.h"
#include "server/routes.h"
#include "server/sesskey.h"
#include "store/commit.h"

#include <assert.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct rf_srv *rf_pages_srv;

/* Pre-rendered at init: the landing page while the line is closed [0] and
 * once it is open [1], and the safety page, in every language. */
static struct rf_buf landing[2][RF_LANG_COUNT];
static struct rf_buf safety[RF_LANG_COUNT];

static const char *const lang_codes[RF_LANG_COUNT] = {"en", "ru", "uk"};

/* ---------------------------------------------------------------- language */

static int lang_parse(const char *s, size_t n, enum rf_lang *out)
{
    for (int i = 0; i < RF_LANG_COUNT; i++) {
        if (n == 2 && strncasecmp(s, lang_codes[i], 2) == 0) {
            *out = (enum rf_lang)i;
            return 0;
        }
    }
    return RF_ERR_NOT_FOUND;
}

/* Best supported language of an Accept-Language header (by q, first wins). */
static int lang_accept(const char *h, enum rf_lang *out)
{
    int best_q = 0, found = 0;
    while (h != NULL && *h) {
        size_t item = strcspn(h, ",");
        const char *p = h;
        while (p < h + item && (*p == ' ' || *p == '\t'))
            p++;
        size_t tag = strcspn(p, "-;, \t");
        if (p + tag > h + item)
            tag = (size_t)(h + item - p);
        int q = 1000;
        const char *qs = memchr(p, ';', (size_t)(h + item - p));
        if (qs != NULL) {
            const char *e = h + item;
            qs++;
            while (qs < e && *qs == ' ')
                qs++;
            if (e - qs >= 2 && qs[0] == 'q' && qs[1] == '=') {
                qs += 2;
                q = 0;
                int scale = 1000, frac = 0;
                for (; qs < e && ((*qs >= '0' && *qs <= '9') || *qs == '.'); qs++) {
                    if (*qs == '.') {
                        frac = 1;
                    } else if (!frac) {
                        q = q * 10 + (*qs - '0') * 1000;
                    } else if (scale > 1) {
                        scale /= 10;
                        q += (*qs - '0') * scale;
                    }
                    if (q > 1000)
                        q = 1000;
                }
            }
        }
        enum rf_lang l;
        if (q > best_q && lang_parse(p, tag, &l) == 0) {
            *out = l;
            best_q = q;
            found = 1;
        }
        h += item;
        if (*h == ',')
            h++;
    }
    return found ? 0 : RF_ERR_NOT_FOUND;
}

enum rf_lang rf_pages_lang(struct rf_req *r)
{
    enum rf_lang l;
    const char *q = rf_req_query(r, "lang");
    if (q != NULL && lang_parse(q, strlen(q), &l) == 0) {
        if (rf_pages_cookie(r, "lang", lang_codes[l]) != 0)
            rf_log_warn("pages: cannot set the language cookie");
        return l;
    }
    const char *c = rf_req_cookie(r, "lang");
    if (c != NULL && lang_parse(c, strlen(c), &l) == 0)
        return l;
    if (lang_accept(rf_req_header(r, "Accept-Language"), &l) == 0)
        return l;
    return rf_pages_srv->default_lang < RF_LANG_COUNT ? rf_pages_srv->default_lang : RF_LANG_EN;
}

/* ---------------------------------------------------------------- responses */

int rf_pages_cookie(struct rf_req *r, const char *name, const char *value)
{
    char h[256];
    const char *secure = rf_pages_srv->behind_tls ? "; Secure" : "";
    int n;
    if (value != NULL)
        n = snprintf(h, sizeof(h), "%s=%s; Path=/; HttpOnly; SameSite=Strict%s", name, value,
                     secure);
    else
        n = snprintf(h, sizeof(h),
                     "%s=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; "
                     "SameSite=Strict%s",
                     name, secure);
    if (n < 0 || (size_t)n >= sizeof(h))
        return RF_ERR_LIMIT;
    return rf_req_add_header(r, "Set-Cookie", h);
}

int rf_pages_send(struct rf_req *r, enum rf_lang lang, unsigned status, const char *page,
                  const struct rf_tvars *v, int secure)
{
    assert(!rf_committer_in_completion()); /* rendering: on the request's thread */
    struct rf_buf out;
    if (secure)
        rf_buf_init_secure(&out, 8u << 20);
    else
        rf_buf_init(&out, 8u << 20);
    int rc = rf_page_render(&out, lang, page, v);
    if (rc == 0)
        rc = rf_req_respond_buf(r, status, RF_PAGES_HTML, &out);
    rf_buf_free(&out);
    if (rc != 0)
        rf_log_error("pages: cannot answer with a page", rc);
    return rc;
}

static const struct {
    const char *flag;
    unsigned status;
} err_pages[] = {
    [RF_PE_NOTFOUND] = {"e_notfound", 404}, [RF_PE_CSRF] = {"e_csrf", 403},
    [RF_PE_BAD] = {"e_bad", 400},           [RF_PE_BUSY] = {"e_busy", 503},
    [RF_PE_TOOLONG] = {"e_toolong", 413},   [RF_PE_TOOLARGE] = {"e_toolarge", 413},
    [RF_PE_EMPTY] = {"e_empty", 400},       [RF_PE_NOTOPEN] = {"e_notopen", 503},
    [RF_PE_NOTSAVED] = {"e_notsaved", 503}, [RF_PE_EXPIRED] = {"e_expired", 410},
    [RF_PE_SESSION] = {"e_session", 403},   [RF_PE_QUOTA] = {"e_quota", 429},
    [RF_PE_SERVER] = {"e_server", 500},     [RF_PE_METHOD] = {"e_method", 405},
};

/* The error page of e with another status than its own. */
static int error_page(struct rf_req *r, enum rf_lang lang, enum rf_page_err e, const char *back,
                      unsigned status)
{
    struct rf_tvars *v = rf_tvars_new();
    if (v == NULL)
        return RF_ERR_NOMEM;
    const struct rf_limits *lim = &rf_pages_srv->limits;
    int rc = rf_tvars_flag(v, err_pages[e].flag);
    if (rc == 0)
        rc = rf_tvars_set(v, "back", back != NULL ? back : "/");
    if (rc == 0)
        rc = rf_tvars_set_int(v, "limit_mb", (long long)(lim->upload_max / 1000000));
    if (rc == 0)
        rc = rf_tvars_set_int(v, "limit_kb", (long long)(lim->message_max >> 10));
    if (rc == 0 && e == RF_PE_BUSY)
        rc = rf_req_add_header(r, "Retry-After", "30");
    if (rc == 0 && e == RF_PE_NOTOPEN)
        rc = rf_req_add_header(r, "Retry-After", "3600");
    if (rc == 0)
        rc = rf_pages_send(r, lang, status, "error", v, 0);
    rf_tvars_free(v);
    return rc;
}

int rf_pages_error(struct rf_req *r, enum rf_lang lang, enum rf_page_err e, const char *back)
{
    return error_page(r, lang, e, back, err_pages[e].status);
}

int rf_pages_refuse(struct rf_req *r, unsigned status)
{
    if (rf_pages_srv == NULL)
        return RF_ERR_INVALID;
    enum rf_page_err e = rf_errmap_refusal(status)->page; /* errmap.h */
    return error_page(r, rf_pages_lang(r), e, "/", status);
}

int rf_pages_not_found(struct rf_req *r)
{
    return rf_pages_error(r, rf_pages_lang(r), RF_PE_NOTFOUND, "/");
}

/* ---------------------------------------------------------------- CSRF */

static void csrf_mac(char out[RF_CSRF_TOKEN_LEN], const uint8_t key[32], const char *ctx4,
                     const uint8_t *secret, size_t n)
{
    uint8_t mac[32];
    crypto_generichash_state st;
    crypto_generichash_init(&st, key, 32, sizeof(mac));
    crypto_generichash_update(&st, (const uint8_t *)ctx4, 4);
    crypto_generichash_update(&st, secret, n);
    crypto_generichash_final(&st, mac, sizeof(mac));
    rf_b64_encode(out, RF_CSRF_TOKEN_LEN, mac, sizeof(mac));
    sodium_memzero(&st, sizeof(st));
    sodium_memzero(mac, sizeof(mac));
}

/* The CSRF key: the process's own, or with shared sessions the session
 * key's (which 0: current, 1: previous), so that a form one process made
 * is taken by another. */
static int csrf_key(int which, uint8_t key[32])
{
    if (rf_pages_srv->sesskey != NULL)
        return rf_sesskey_csrf(rf_pages_srv->sesskey, which, key);
    if (which != 0)
        return RF_ERR_NOT_FOUND;
    memcpy(key, rf_pages_srv->csrf_key, 32);
    return 0;
}

void rf_pages_csrf_token(char out[RF_CSRF_TOKEN_LEN], const char *ctx4, const uint8_t *secret,
                         size_t n)
{
    uint8_t key[32];
    if (csrf_key(0, key) != 0)
        randombytes_buf(key, sizeof(key)); /* cannot happen: a token nobody can check */
    csrf_mac(out, key, ctx4, secret, n);
    sodium_memzero(key, sizeof(key));
}

int rf_pages_csrf_check(const char *ctx4, const uint8_t *secret, size_t n, const uint8_t *given,
                        size_t len)
{
    char want[RF_CSRF_TOKEN_LEN];
    uint8_t key[32];
    int ok = 0;
    for (int which = 0; !ok && csrf_key(which, key) == 0; which++) {
        csrf_mac(want, key, ctx4, secret, n);
        size_t wl = strlen(want);
        ok = len == wl && sodium_memcmp(want, given, wl) == 0;
    }
    sodium_memzero(key, sizeof(key));
    sodium_memzero(want, sizeof(want));
    return ok;
}

/* The pre-session cookie c (16 random bytes), set if absent or malformed. */
#define ANON_COOKIE_LEN 22
static int anon_cookie(struct rf_req *r, char c[ANON_COOKIE_LEN + 1])
{
    const char *have = rf_req_cookie(r, "c");
    uint8_t raw[16];
    size_t rawlen;
    if (have != NULL && strlen(have) == ANON_COOKIE_LEN &&
        rf_b64_decode(raw, sizeof(raw), &rawlen, have, ANON_COOKIE_LEN) == 0 && rawlen == 16) {
        memcpy(c, have, ANON_COOKIE_LEN + 1);
        return 0;
    }
    randombytes_buf(raw, sizeof(raw));
    int rc = rf_b64_encode(c, ANON_COOKIE_LEN + 1, raw, sizeof(raw));
    if (rc == 0)
        rc = rf_pages_cookie(r, "c", c);
    return rc;
}

static int anon_token(struct rf_req *r, char token[RF_CSRF_TOKEN_LEN])
{
    char c[ANON_COOKIE_LEN + 1];
    int rc = anon_cookie(r, c);
    if (rc == 0)
        rf_pages_csrf_token(token, "anon", (const uint8_t *)c, strlen(c));
    return rc;
}

static int anon_check(struct rf_req *r, const struct rf_buf *given)
{
    const char *c = rf_req_cookie(r, "c");
    if (c == NULL || given->len == 0)
        return 0;
    return rf_pages_csrf_check("anon", (const uint8_t *)c, strlen(c), given->data, given->len);
}

int rf_pages_session(struct rf_req *r, struct rf_session_view *view)
{
    const char *tok = rf_req_cookie(r, "s");
    if (tok == NULL)
        return RF_ERR_NOT_FOUND;
    return rf_session_get(rf_pages_srv->sessions, tok, view);
}

/* ---------------------------------------------------------------- roster */

static pthread_mutex_t roster_mu = PTHREAD_MUTEX_INITIALIZER;
static uint32_t roster_version;
static size_t roster_n;
static uint8_t (*roster_pks)[32];

int rf_pages_roster(uint8_t (*out)[32], size_t *n)
{
    struct rf_buf raw;
    uint32_t version = 0;
    rf_buf_init(&raw, RF_ROSTER_MAX_BYTES);
    *n = 0;
    int rc = rf_store_roster_latest(rf_pages_srv->store, &version, &raw);
    if (rc == RF_ERR_NOT_FOUND) {
        rc = 0;
        version = 0;
    }
    if (rc != 0)
        goto out;
    pthread_mutex_lock(&roster_mu);
    if (version != roster_version) {
        struct rf_roster *ro = calloc(1, sizeof(*ro));
        rc = ro == NULL ? RF_ERR_NOMEM : rf_roster_parse(ro, raw.data, raw.len);
        if (rc == 0) {
            for (size_t i = 0; i < ro->n; i++)
                memcpy(roster_pks[i], ro->members[i].box_pk, 32);
            roster_n = ro->n;
            roster_version = version;
        }
        free(ro);
    }
    if (rc == 0) {
        memcpy(out, roster_pks, roster_n * 32);
        *n = roster_n;
    }
    pthread_mutex_unlock(&roster_mu);
    if (rc == 0 && *n > 0)
        atomic_store(&rf_pages_srv->line_open, 1);
out:
    rf_buf_free(&raw);
    if (rc != 0)
        rf_log_error("pages: cannot read the roster", rc);
    return rc;
}

/* ---------------------------------------------------------------- is the line open? */

/* While closed, the store is asked at most once per LINE_RECHECK_S seconds
 * (a roster stored by another process on the same store), and only by the
 * one request that wins the clock; every other request answers at once. */
#define LINE_RECHECK_S 2
static atomic_llong line_checked; /* monotonic second of the last store read */

static long long mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec;
}

/* 1 if the store holds a roster, 0 if not, or an rf_err. */
static int line_from_store(void)
{
    struct rf_buf raw;
    uint32_t version = 0;
    rf_buf_init(&raw, RF_ROSTER_MAX_BYTES);
    int rc = rf_store_roster_latest(rf_pages_srv->store, &version, &raw);
    rf_buf_free(&raw);
    if (rc == RF_ERR_NOT_FOUND)
        return 0;
    return rc == 0 ? 1 : rc;
}

int rf_pages_line_open(void)
{
    struct rf_srv *srv = rf_pages_srv;
    if (atomic_load_explicit(&srv->line_open, memory_order_acquire))
        return 1;
    long long now = mono_s(), last = atomic_load(&line_checked);
    if (now - last < LINE_RECHECK_S || !atomic_compare_exchange_strong(&line_checked, &last, now))
        return 0;
    int rc = line_from_store();
    if (rc < 0)
        rf_log_error("pages: cannot read whether a roster exists", rc);
    if (rc != 1)
        return 0;
    atomic_store_explicit(&srv->line_open, 1, memory_order_release);
    return 1;
}

/* ---------------------------------------------------------------- landing */

static int landing_get(struct rf_req *r)
{
    enum rf_lang l = rf_pages_lang(r);
    const struct rf_buf *b = &landing[rf_pages_line_open()][l];
    return rf_req_respond_static(r, 200, RF_PAGES_HTML, b->data, b->len);
}

/* How to connect where Tor is blocked, and how to check the address. */
static int safety_get(struct rf_req *r)
{
    enum rf_lang l = rf_pages_lang(r);
    return rf_req_respond_static(r, 200, RF_PAGES_HTML, safety[l].data, safety[l].len);
}

static int bye_get(struct rf_req *r)
{
    return rf_pages_send(r, RF_LANG_EN, 200, "bye", NULL, 0);
}

/* Browsers ask for /favicon.ico on every page; an empty answer keeps that
 * out of the error pages (and their logs) and shows no icon. */
static int favicon_get(struct rf_req *r)
{
    return rf_req_respond_static(r, 204, "image/x-icon", (const uint8_t *)"", 0);
}

static int exit_get(struct rf_req *r)
{
    const char *tok = rf_req_cookie(r, "s");
    if (tok != NULL)
        rf_session_end(rf_pages_srv->sessions, tok);
    int rc = rf_pages_cookie(r, "s", NULL);
    if (rc == 0)
        rc = rf_pages_cookie(r, "lang", NULL);
    if (rc == 0)
        rc = rf_pages_cookie(r, "c", NULL);
    if (rc == 0)
        rc = rf_req_add_header(r, "Clear-Site-Data", "\"cache\", \"cookies\", \"storage\"");
    if (rc == 0)
        rc = rf_req_redirect(r, "/bye");
    return rc;
}

/* ---------------------------------------------------------------- a new codename */

/* The codename page: the words of cn (split in place; the caller's
 * sodium_free wipes it) and the forms carrying the sealed pending text back:
 * practise (/new/check) or go on (/new). c is the pre-session cookie. */
static int codename_page(struct rf_req *r, enum rf_lang lang, char *cn, const char *pending,
                         const char *c)
{
    struct rf_tvars *v = rf_tvars_new_secure();
    char token[RF_CSRF_TOKEN_LEN];
    int rc = v == NULL ? RF_ERR_NOMEM : 0;
    if (rc == 0) {
        rf_pages_csrf_token(token, "anon", (const uint8_t *)c, strlen(c));
        rc = rf_tvars_set(v, "pending", pending);
    }
    if (rc == 0)
        rc = rf_tvars_set(v, "csrf", token);
    for (char *w = cn, *sp; rc == 0 && w != NULL && *w; w = sp ? sp + 1 : NULL) {
        sp = strchr(w, ' ');
        if (sp != NULL)
            *sp = '\0';
        struct rf_tvars *it = rf_tvars_item(v, "words");
        rc = it == NULL ? RF_ERR_NOMEM : rf_tvars_set(it, "word", w);
    }
    if (rc == 0)
        rc = rf_pages_send(r, lang, 200, "new", v, 1);
    rf_tvars_free(v);
    return rc;
}

/* The codename is shown once and travels back sealed in the form
 * (rf_pending_seal, bound to the pre-session cookie): nothing of it is kept
 * here, so no flood of this page can push a newcomer's codename out. While
 * the line is not open, no codename is made: it could not send. */
static int new_get(struct rf_req *r)
{
    enum rf_lang lang = rf_pages_lang(r);
    if (!rf_pages_line_open())
        return rf_pages_error(r, lang, RF_PE_NOTOPEN, "/");
    char *cn = rf_secmem_alloc(RF_CODENAME_MAX);
    char pending[RF_PENDING_B64];
    char c[ANON_COOKIE_LEN + 1];
    int rc = cn == NULL ? RF_ERR_NOMEM : 0;
    if (rc == 0)
        rc = rf_codename_generate(cn, RF_CODENAME_MAX, lang);
    if (rc == 0)
        rc = anon_cookie(r, c);
    if (rc == 0)
        rc = rf_pending_seal(rf_pages_srv->sessions, cn, (const uint8_t *)c, strlen(c), pending);
    if (rc == 0)
        rc = codename_page(r, lang, cn, pending, c);
    if (rc != 0 && !rf_req_responded(r))
        rf_pages_error(r, lang, RF_PE_SERVER, "/new");
    sodium_memzero(pending, sizeof(pending));
    if (cn != NULL)
        rf_secmem_free(cn);
    return 0;
}

/* ---------------------------------------------------------------- practising a codename */

/* POST /new/check (practise: what the person types back, compared with the
 * sealed codename) and POST /new/show (the same words again). Nothing is
 * stored or logged and the typed text is never put back into a page; the
 * answer is "right", or the positions of the words not typed right. */
struct practice {
    enum rf_lang lang;
    int show;     /* /new/show */
    int tried;    /* the practise form was sent (not the codename page's button) */
    int too_long; /* typed over RF_CODENAME_INPUT_MAX: answered, never compared */
    struct rf_buf csrf;
    struct rf_buf pending;
    struct rf_buf typed; /* secure */
};

static void practice_free(void *p)
{
    struct practice *q = p;
    if (q == NULL)
        return;
    rf_buf_free(&q->csrf);
    rf_buf_free(&q->pending);
    rf_buf_free(&q->typed);
    sodium_memzero(q, sizeof(*q));
    free(q);
}

static int practice_field(struct rf_req *r, const char *name, const char *filename,
                          const char *content_type, uint64_t off, const uint8_t *data, size_t n)
{
    struct practice *q = rf_req_state(r);
    (void)filename;
    (void)content_type;
    (void)off;
    struct rf_buf *b = NULL;
    if (strcmp(name, "csrf") == 0) {
        b = &q->csrf;
    } else if (strcmp(name, "pending") == 0) {
        b = &q->pending;
    } else if (strcmp(name, "typed") == 0) {
        q->tried = 1;
        b = &q->typed;
    }
    if (b == NULL || n == 0 || (b == &q->typed && q->too_long))
        return 0;
    int rc = rf_buf_put(b, data, n);
    if (rc == RF_ERR_LIMIT && b == &q->typed) {
        q->too_long = 1; /* its own answer, once the form is read */
        rf_buf_reset(b);
        return 0;
    }
    if (rc != 0) {
        rf_pages_error(r, q->lang, RF_PE_BAD, "/new");
        return rc;
    }
    return 0;
}

static int practice_headers(struct rf_req *r, int show)
{
    enum rf_lang lang = rf_pages_lang(r);
    if (!rf_pages_line_open())
        return rf_pages_error(r, lang, RF_PE_NOTOPEN, "/");
    struct practice *q = calloc(1, sizeof(*q));
    if (q == NULL)
        return RF_ERR_NOMEM;
    q->lang = lang;
    q->show = show;
    rf_buf_init(&q->csrf, 128);
    rf_buf_init(&q->pending, RF_PENDING_B64);
    rf_buf_init_secure(&q->typed, RF_CODENAME_INPUT_MAX);
    rf_req_set_state(r, q, practice_free);
    if (rf_req_form_begin(r, practice_field) != 0)
        rf_pages_error(r, lang, RF_PE_BAD, "/new");
    return 0;
}

static int check_headers(struct rf_req *r)
{
    return practice_headers(r, 0);
}

static int show_headers(struct rf_req *r)
{
    return practice_headers(r, 1);
}

/* The practise page with its verdict (flags and positions) in v. */
static int check_page(struct rf_req *r, const struct practice *q, const char *pending,
                      const char *c, struct rf_tvars *v, unsigned status)
{
    char token[RF_CSRF_TOKEN_LEN];
    rf_pages_csrf_token(token, "anon", (const uint8_t *)c, strlen(c));
    int rc = rf_tvars_set(v, "csrf", token);
    if (rc == 0)
        rc = rf_tvars_set(v, "pending", pending);
    if (rc == 0)
        rc = rf_pages_send(r, q->lang, status, "check", v, 0);
    return rc;
}

/* The verdict on what was typed (cn: the codename) into v; *status. */
static int check_verdict(const struct practice *q, const char *cn, struct rf_tvars *v,
                         unsigned *status)
{
    *status = 200;
    if (q->too_long) {
        *status = 413;
        return rf_tvars_flag(v, "toolong");
    }
    if (!q->tried)
        return 0; /* just arrived from the codename page */
    if (q->typed.len == 0)
        return rf_tvars_flag(v, "empty");
    char *scratch = rf_secmem_alloc(RF_CHECK_SCRATCH);
    if (scratch == NULL)
        return RF_ERR_NOMEM;
    struct rf_codename_check res;
    int rc = rf_codename_check(&res, cn, strlen(cn), (const char *)q->typed.data, q->typed.len,
                               scratch, RF_CHECK_SCRATCH);
    rf_secmem_free(scratch);
    if (rc == RF_ERR_LIMIT) {
        *status = 413;
        return rf_tvars_flag(v, "toolong");
    }
    if (rc == RF_ERR_FORMAT) {
        *status = 400;
        return rf_tvars_flag(v, "unreadable");
    }
    if (rc != 0)
        return rc;
    if (rf_codename_check_right(&res))
        return rf_tvars_flag(v, "right");
    rc = rf_tvars_flag(v, "wrong");
    for (unsigned i = 0; rc == 0 && i < res.words; i++) {
        if (!(res.wrong & ((uint32_t)1 << i)))
            continue;
        struct rf_tvars *it = rf_tvars_item(v, "bad");
        rc = it == NULL ? RF_ERR_NOMEM : rf_tvars_set_int(it, "n", (long long)i + 1);
    }
    if (rc == 0 && res.typed != res.words) {
        rc = rf_tvars_flag(v, "count");
        if (rc == 0)
            rc = rf_tvars_set_int(v, "total", (long long)res.words);
        if (rc == 0)
            rc = rf_tvars_set_int(v, "typed", (long long)res.typed);
    }
    return rc;
}

static int practice_end(struct rf_req *r)
{
    struct practice *q = rf_req_state(r);
    if (q == NULL || rf_req_responded(r))
        return 0;
    if (!anon_check(r, &q->csrf))
        return rf_pages_error(r, q->lang, RF_PE_CSRF, "/new");
    const char *c = rf_req_cookie(r, "c"); /* there: anon_check needs it */
    char *cn = rf_secmem_alloc(RF_CODENAME_MAX);
    if (cn == NULL)
        return rf_pages_error(r, q->lang, RF_PE_SERVER, "/new");
    int rc = rf_pending_open(rf_pages_srv->sessions, (const char *)q->pending.data, q->pending.len,
                             (const uint8_t *)c, strlen(c), cn, RF_CODENAME_MAX);
    if (rc != 0) {
        rf_secmem_free(cn);
        return rf_pages_error(r, q->lang, rc == RF_ERR_NOMEM ? RF_PE_SERVER : RF_PE_EXPIRED,
                              "/new");
    }
    /* opened: the text is exactly RF_PENDING_B64 - 1 bytes of base64url */
    char pending[RF_PENDING_B64];
    memcpy(pending, q->pending.data, RF_PENDING_B64 - 1);
    pending[RF_PENDING_B64 - 1] = '\0';
    if (q->show) {
        rc = codename_page(r, q->lang, cn, pending, c);
    } else {
        struct rf_tvars *v = rf_tvars_new();
        unsigned status = 200;
        rc = v == NULL ? RF_ERR_NOMEM : check_verdict(q, cn, v, &status);
        if (rc == 0)
            rc = check_page(r, q, pending, c, v, status);
        rf_tvars_free(v);
    }
    rf_secmem_free(cn);
    if (rc != 0 && !rf_req_responded(r))
        rf_pages_error(r, q->lang, RF_PE_SERVER, "/new");
    return 0;
}

/* ---------------------------------------------------------------- login and confirming */

struct auth {
    struct rf_req *r;
    enum rf_lang lang;
    int is_new;
    int too_long;
    struct rf_buf csrf;
    struct rf_buf pending;
    struct rf_buf codename; /* secure */
    char token[RF_CSRF_TOKEN_LEN];
    struct rf_source_keys *keys; /* sodium_malloc, POST /new between KDF and commit */
    struct rf_op op;
    int status;           /* POST /new: the source's creation, recorded by its completion */
    struct rf_source src; /* and the source it created */
};

static void auth_free(void *p)
{
    struct auth *a = p;
    if (a == NULL)
        return;
    rf_buf_free(&a->csrf);
    rf_buf_free(&a->pending);
    rf_buf_free(&a->codename);
    if (a->keys != NULL)
        rf_secmem_free(a->keys);
    sodium_memzero(a, sizeof(*a));
    free(a);
}

static int auth_field(struct rf_req *r, const char *name, const char *filename,
                      const char *content_type, uint64_t off, const uint8_t *data, size_t n)
{
    struct auth *a = rf_req_state(r);
    (void)filename;
    (void)content_type;
    (void)off;
    struct rf_buf *b = NULL;
    if (strcmp(name, "csrf") == 0)
        b = &a->csrf;
    else if (strcmp(name, "pending") == 0)
        b = &a->pending;
    else if (strcmp(name, "codename") == 0)
        b = &a->codename;
    if (b == NULL || n == 0 || a->too_long)
        return 0;
    int rc = rf_buf_put(b, data, n);
    if (rc == RF_ERR_LIMIT && b == &a->codename) {
        a->too_long = 1; /* answered as any other failed login */
        rf_buf_reset(b);
        return 0;
    }
    if (rc != 0) {
        rf_pages_error(r, a->lang, RF_PE_BAD, a->is_new ? "/new" : "/login");
        return rc;
    }
    return 0;
}

static int auth_headers(struct rf_req *r, int is_new)
{
    struct auth *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return RF_ERR_NOMEM;
    a->r = r;
    a->is_new = is_new;
    a->lang = rf_pages_lang(r);
    rf_buf_init(&a->csrf, 128);
    rf_buf_init(&a->pending, RF_PENDING_B64);
    rf_buf_init_secure(&a->codename, RF_CODENAME_INPUT_MAX);
    rf_req_set_state(r, a, auth_free);
    int rc = rf_req_form_begin(r, auth_field);
    if (rc != 0)
        rf_pages_error(r, a->lang, RF_PE_BAD, is_new ? "/new" : "/login");
    return 0;
}

static int login_headers(struct rf_req *r)
{
    return auth_headers(r, 0);
}

static int new_headers(struct rf_req *r)
{
    if (!rf_pages_line_open())
        return rf_pages_error(r, rf_pages_lang(r), RF_PE_NOTOPEN, "/");
    return auth_headers(r, 1);
}

/* The login page, with the same generic error for every failure. */
static int login_page(struct rf_req *r, enum rf_lang lang, const char *token, int error)
{
    struct rf_tvars *v = rf_tvars_new();
    int rc = v == NULL ? RF_ERR_NOMEM : rf_tvars_set(v, "csrf", token);
    if (rc == 0 && error)
        rc = rf_tvars_flag(v, "error");
    if (rc == 0)
        rc = rf_pages_send(r, lang, 200, "login", v, 0);
    rf_tvars_free(v);
    return rc;
}

static int login_get(struct rf_req *r)
{
    enum rf_lang lang = rf_pages_lang(r);
    char token[RF_CSRF_TOKEN_LEN];
    int rc = anon_token(r, token);
    if (rc == 0)
        rc = login_page(r, lang, token, 0);
    if (rc != 0)
        rf_pages_error(r, lang, RF_PE_SERVER, "/login");
    return 0;
}

/* Logs the person in as src: session cookie and 303 to the inbox. Returns
 * what rf_session_create said (RF_ERR_BUSY: the table is full). */
static int start_session(struct auth *a, const struct rf_source *src,
                         const struct rf_source_keys *keys)
{
    char tok[RF_SESSION_TOKEN_B64];
    int rc = rf_session_create(rf_pages_srv->sessions, src, keys, tok);
    if (rc == 0) {
        rc = rf_pages_cookie(a->r, "s", tok);
        if (rc == 0)
            rc = rf_req_redirect(a->r, "/inbox");
    }
    sodium_memzero(tok, sizeof(tok));
    if (rc == RF_ERR_BUSY) /* a full table: the account exists, the codename logs in later */
        rf_pages_error(a->r, a->lang, RF_PE_BUSY, "/login");
    else if (rc != 0)
        rf_pages_error(a->r, a->lang, RF_PE_SERVER, "/");
    return rc;
}

static void login_derived(void *arg, int status, const struct rf_source_keys *keys)
{
    struct auth *a = arg;
    struct rf_req *r = a->r;
    struct rf_source src;
    int rc = status;
    if (rc == 0)
        rc = rf_store_source_by_lookup(rf_pages_srv->store, keys->lookup_id, &src);
    if (rc == 0) {
        rc = start_session(a, &src, keys);
        if (rc == 0 || rc == RF_ERR_BUSY)
            rf_metrics_login(rc == 0 ? RF_METRICS_LOGIN_OK : RF_METRICS_LOGIN_BUSY);
    } else {
        rf_metrics_login(RF_METRICS_LOGIN_WRONG);
        if (login_page(r, a->lang, a->token, 1) != 0)
            rf_pages_error(r, a->lang, RF_PE_SERVER, "/login");
    }
    sodium_memzero(&src, sizeof(src));
    rf_req_resume(r); /* r and a may be gone after this */
}

/* On the committer thread: records the outcome and wakes the request
 * (commit.h); new_settled answers on the request's thread. */
static void new_committed(void *arg, struct rf_op *op)
{
    struct auth *a = arg;
    a->status = rf_op_status(op);
    a->src = *rf_op_source(op);
    rf_req_resume(a->r);
}

/* POST /new, on the request's thread once resumed: logs the new person in,
 * unless the request was answered before (the KDF or the committer refused). */
static int new_settled(struct rf_req *r)
{
    struct auth *a = rf_req_state(r);
    if (rf_req_responded(r) || a->keys == NULL)
        return 0;
    struct rf_source src = a->src;
    int rc = a->status;
    if (rc == RF_ERR_EXISTS) /* 90 bits make this a repeat of the same codename, not a clash */
        rc = rf_store_source_by_lookup(rf_pages_srv->store, a->keys->lookup_id, &src);
    if (rc == 0)
        (void)start_session(a, &src, a->keys); /* it answers either way */
    else
        rf_pages_error(r, a->lang, RF_PE_NOTSAVED, "/new");
    sodium_memzero(a->keys, sizeof(*a->keys));
    sodium_memzero(&src, sizeof(src));
    sodium_memzero(&a->src, sizeof(a->src));
    return 0;
}

static void new_derived(void *arg, int status, const struct rf_source_keys *keys)
{
    struct auth *a = arg;
    struct rf_req *r = a->r;
    int rc = status;
    if (rc == 0) {
        a->keys = rf_secmem_alloc(sizeof(*a->keys));
        rc = a->keys == NULL ? RF_ERR_NOMEM : 0;
    }
    if (rc == 0) {
        memcpy(a->keys, keys, sizeof(*keys));
        rf_op_source_create(&a->op, keys->lookup_id, keys->pk);
        rc = rf_committer_submit(rf_pages_srv->committer, &a->op, new_committed, a);
        if (rc == 0)
            return; /* new_committed resumes */
    }
    rf_pages_error(r, a->lang, rc == RF_ERR_BUSY ? RF_PE_BUSY : RF_PE_SERVER, "/new");
    rf_req_resume(r);
}

/* Who sent a login, for the KDF pool's fairness: a keyed hash of the
 * pre-session cookie (never stored; 0 without one). */
static uint64_t sender_tag(struct rf_req *r)
{
    const char *c = rf_req_cookie(r, "c");
    uint8_t h[crypto_generichash_BYTES_MIN];
    uint64_t tag = 0;
    if (c == NULL || rf_pages_srv->csrf_key == NULL)
        return 0;
    crypto_generichash_state st;
    crypto_generichash_init(&st, rf_pages_srv->csrf_key, 32, sizeof(h));
    crypto_generichash_update(&st, (const uint8_t *)"refuge kdf sender", 17);
    crypto_generichash_update(&st, (const uint8_t *)c, strlen(c));
    crypto_generichash_final(&st, h, sizeof(h));
    memcpy(&tag, h, sizeof(tag));
    return tag;
}

/* Hands the codename to the KDF pool, where it waits its turn (the
 * connection suspended) while its expected wait is short; answers busy if
 * the wait would be long or the queue is full. */
static int derive(struct rf_req *r, struct auth *a, const char *cn, size_t len, rf_kdf_done_fn done)
{
    uint64_t who = sender_tag(r);
    if (a->is_new)
        rf_req_suspend_then(r, new_settled); /* answers after the commit */
    else
        rf_req_suspend(r);
    int rc = rf_kdfpool_submit_for(rf_pages_srv->kdf, who, cn, len, done, a);
    if (rc == 0)
        return 0;
    if (!a->is_new && rc == RF_ERR_BUSY) /* the queue is full: counted; a server error is not */
        rf_metrics_login(RF_METRICS_LOGIN_BUSY);
    rf_pages_error(r, a->lang, rc == RF_ERR_BUSY ? RF_PE_BUSY : RF_PE_SERVER,
                   a->is_new ? "/new" : "/login");
    rf_req_resume(r);
    return 0;
}

static int login_end(struct rf_req *r)
{
    struct auth *a = rf_req_state(r);
    if (a == NULL || rf_req_responded(r))
        return 0;
    if (!anon_check(r, &a->csrf))
        return rf_pages_error(r, a->lang, RF_PE_CSRF, "/login");
    int rc = anon_token(r, a->token);
    if (rc != 0)
        return rc;
    if (a->too_long || a->codename.len == 0) {
        rf_metrics_login(RF_METRICS_LOGIN_WRONG);
        return login_page(r, a->lang, a->token, 1);
    }
    rc = derive(r, a, (const char *)a->codename.data, a->codename.len, login_derived);
    rf_buf_reset(&a->codename); /* the pool has its own copy */
    return rc;
}

static int new_end(struct rf_req *r)
{
    struct auth *a = rf_req_state(r);
    if (a == NULL || rf_req_responded(r))
        return 0;
    if (!anon_check(r, &a->csrf))
        return rf_pages_error(r, a->lang, RF_PE_CSRF, "/new");
    const char *c = rf_req_cookie(r, "c"); /* there: anon_check needs it */
    char *cn = rf_secmem_alloc(RF_CODENAME_MAX);
    if (cn == NULL)
        return RF_ERR_NOMEM;
    /* A sealed codename sent twice (a resubmitted form) derives the same
     * lookup id: the store refuses a second account (RF_ERR_EXISTS) and
     * new_committed logs into the one there is. */
    int rc = rf_pending_open(rf_pages_srv->sessions, (const char *)a->pending.data, a->pending.len,
                             (const uint8_t *)c, strlen(c), cn, RF_CODENAME_MAX);
    if (rc == RF_ERR_NOMEM)
        rc = rf_pages_error(r, a->lang, RF_PE_SERVER, "/new");
    else if (rc != 0)
        rc = rf_pages_error(r, a->lang, RF_PE_EXPIRED, "/new");
    else
        rc = derive(r, a, cn, strlen(cn), new_derived);
    rf_secmem_free(cn);
    return rc;
}

/* ---------------------------------------------------------------- routes */

#define NO_BODY 0
#define ANY_BODY UINT64_MAX /* /send: bounded while streaming (pages_inbox.c) */

const struct rf_route rf_page_routes[] = {
    {"GET", "/", 0, NO_BODY, landing_get, NULL, NULL},
    {"GET", "/new", 0, NO_BODY, new_get, NULL, NULL},
    {"POST", "/new", 0, RF_PAGES_SMALL_FORM, new_headers, NULL, new_end},
    {"POST", "/new/check", 0, RF_PAGES_SMALL_FORM, check_headers, NULL, practice_end},
    {"POST", "/new/show", 0, RF_PAGES_SMALL_FORM, show_headers, NULL, practice_end},
    {"GET", "/login", 0, NO_BODY, login_get, NULL, NULL},
    {"POST", "/login", 0, RF_PAGES_SMALL_FORM, login_headers, NULL, login_end},
    {"GET", "/inbox", 0, NO_BODY, rf_pages_inbox_get, NULL, NULL},
    {"POST", "/send", 0, ANY_BODY, rf_pages_send_headers, NULL, rf_pages_send_end},
    {"POST", "/reply/delete", 0, RF_PAGES_SMALL_FORM, rf_pages_delete_headers, NULL,
     rf_pages_delete_end},
    {"GET", "/safety", 0, NO_BODY, safety_get, NULL, NULL},
    {"GET", "/exit", 0, NO_BODY, exit_get, NULL, NULL},
    {"GET", "/bye", 0, NO_BODY, bye_get, NULL, NULL},
    {"GET", "/favicon.ico", 0, NO_BODY, favicon_get, NULL, NULL},
};
const size_t rf_page_routes_n = sizeof(rf_page_routes) / sizeof(rf_page_routes[0]);

int rf_pages_init(struct rf_srv *srv)
{
    rf_pages_srv = srv;
    roster_pks = calloc(RF_ROSTER_MAX_MEMBERS, 32);
    if (roster_pks == NULL)
        return RF_ERR_NOMEM;
    roster_version = 0;
    roster_n = 0;
    int open = line_from_store();
    if (open < 0) {
        rf_pages_free();
        return open;
    }
    atomic_store(&srv->line_open, open);
    atomic_store(&line_checked, mono_s());
    struct rf_tvars *closed = rf_tvars_new();
    int rc = closed == NULL ? RF_ERR_NOMEM : rf_tvars_flag(closed, "closed");
    for (int l = 0; rc == 0 && l < RF_LANG_COUNT; l++) {
        rf_buf_init(&landing[0][l], 1u << 20);
        rf_buf_init(&landing[1][l], 1u << 20);
        rf_buf_init(&safety[l], 1u << 20);
        rc = rf_page_render(&landing[0][l], (enum rf_lang)l, "landing", closed);
        if (rc == 0)
            rc = rf_page_render(&landing[1][l], (enum rf_lang)l, "landing", NULL);
        if (rc == 0)
            rc = rf_page_render(&safety[l], (enum rf_lang)l, "safety", NULL);
    }
    rf_tvars_free(closed);
    if (rc != 0)
        rf_pages_free();
    return rc;
}

void rf_pages_free(void)
{
    for (int l = 0; l < RF_LANG_COUNT; l++) {
        rf_buf_free(&landing[0][l]);
        rf_buf_free(&landing[1][l]);
        rf_buf_free(&safety[l]);
    }
    free(roster_pks);
    roster_pks = NULL;
    roster_n = 0;
    roster_version = 0;
}
