/*
 * net.c - signed staff API requests over libcurl (see net.h).
 *
 * One easy handle per command, reused so the connection is kept alive
 * across a sync's many requests. Redirects are not followed (a signature
 * covers one path on one server) and only http/https are allowed; plain
 * http only to a loopback address or an onion service (whose address is
 * its key), unless the caseworker chose RF_NET_INSECURE_HTTP at init for a
 * TLS-terminating proxy on the same host. Proxies
 * come from the usual environment (ALL_PROXY=socks5h://127.0.0.1:9050 for
 * an onion address). Every answer is bounded: JSON by RF_NET_JSON_MAX,
 * downloads by the size the caller expects, error bodies by ERR_BODY_MAX.
 */
#include "client/net.h"
#include "client/home.h"
#include "lib/apisig.h"
#include "lib/err.h"
#include "lib/log.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <dlfcn.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define ERR_BODY_MAX (64 * 1024)

struct rf_net {
    CURL *curl;
    char base[RF_URL_MAX];
    const struct rf_staff_keys *keys;
    long status;
    char code[64];
    char err[1024];
    char curlerr[CURL_ERROR_SIZE];
};

/* Where an answer's bytes go. */
struct sink_ctx {
    struct rf_net *n;
    struct rf_buf *buf; /* JSON, or the error body */
    rf_sink_fn sink;    /* download, once the status is 2xx */
    void *sink_ctx;
    uint64_t max;
    uint64_t got;
    int rc;
};

/* libcurl is opened on first use (dlopen), not linked. `refuge serve` never
 * makes a request, and linking libcurl mapped its twenty libraries (OpenSSL,
 * Kerberos, LDAP, SSH, ...) into every server process: about 3.7 MB of an
 * idle server's 13.5 MB RSS (docs/performance.md, issue 10). The names are
 * resolved once, all or nothing; the curl.h types and constants are the same
 * as when linked. */
static struct {
    CURLcode (*global_init)(long flags);
    CURL *(*easy_init)(void);
    void (*easy_cleanup)(CURL *c);
    void (*easy_reset)(CURL *c);
    CURLcode (*easy_setopt)(CURL *c, CURLoption opt, ...);
    CURLcode (*easy_perform)(CURL *c);
    CURLcode (*easy_getinfo)(CURL *c, CURLINFO info, ...);
    const char *(*easy_strerror)(CURLcode cc);
    struct curl_slist *(*slist_append)(struct curl_slist *l, const char *s);
    void (*slist_free_all)(struct curl_slist *l);
} cu;
static pthread_once_t cu_once = PTHREAD_ONCE_INIT;
static int cu_ready; /* 1: every name resolved and curl_global_init done */

static void cu_load(void)
{
    void *h = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (h == NULL)
        return;
    struct {
        void **fn;
        const char *name;
    } names[] = {
        {(void **)&cu.global_init, "curl_global_init"},
        {(void **)&cu.easy_init, "curl_easy_init"},
        {(void **)&cu.easy_cleanup, "curl_easy_cleanup"},
        {(void **)&cu.easy_reset, "curl_easy_reset"},
        {(void **)&cu.easy_setopt, "curl_easy_setopt"},
        {(void **)&cu.easy_perform, "curl_easy_perform"},
        {(void **)&cu.easy_getinfo, "curl_easy_getinfo"},
        {(void **)&cu.easy_strerror, "curl_easy_strerror"},
        {(void **)&cu.slist_append, "curl_slist_append"},
        {(void **)&cu.slist_free_all, "curl_slist_free_all"},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if ((*names[i].fn = dlsym(h, names[i].name)) == NULL)
            return; /* the handle stays open; nothing is called */
    if (cu.global_init(CURL_GLOBAL_DEFAULT) == 0)
        cu_ready = 1;
}

/* Whether host (len bytes, no port, IPv6 without brackets) is a loopback
 * address or name. Only exact forms: anything unusual is not loopback. */
static int host_is_loopback(const char *host, size_t len)
{
    char h[64];
    uint8_t a[16];
    if (len == 0 || len >= sizeof(h))
        return 0;
    memcpy(h, host, len);
    h[len] = '\0';
    if (strcasecmp(h, "localhost") == 0 || strcasecmp(h, "localhost.") == 0)
        return 1;
    if (inet_pton(AF_INET, h, a) == 1)
        return a[0] == 127;
    if (inet_pton(AF_INET6, h, a) == 1) {
        static const uint8_t one[16] = {[15] = 1};
        static const uint8_t v4map[12] = {[10] = 0xff, [11] = 0xff};
        return memcmp(a, one, 16) == 0 || (memcmp(a, v4map, 12) == 0 && a[12] == 127);
    }
    return 0;
}

/* Whether host is an onion service name: "<letters and digits>.onion",
 * optionally with a final dot. */
static int host_is_onion(const char *host, size_t len)
{
    static const char suffix[] = ".onion";
    const size_t sl = sizeof(suffix) - 1;
    if (len > 0 && host[len - 1] == '.')
        len--;
    if (len <= sl || strncasecmp(host + len - sl, suffix, sl) != 0)
        return 0;
    for (size_t i = 0; i < len - sl; i++) {
        char c = host[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-'))
            return 0;
    }
    return 1;
}

int rf_net_url_check(const char *url, int flags)
{
    size_t blen = strlen(url);
    if (blen >= RF_URL_MAX)
        return RF_ERR_INVALID;
    if (strncmp(url, "https://", 8) == 0)
        return blen > 8 ? 0 : RF_ERR_INVALID;
    if (strncmp(url, "http://", 7) != 0 || blen == 7)
        return RF_ERR_INVALID;
    if (flags & RF_NET_INSECURE_HTTP)
        return 0;
    /* the authority ends at the path, query or fragment; the host follows
     * any user info and ends at the port */
    const char *auth = url + 7;
    size_t alen = strcspn(auth, "/?#");
    const char *host = auth;
    for (size_t i = 0; i < alen; i++)
        if (auth[i] == '@')
            host = auth + i + 1;
    size_t hlen = alen - (size_t)(host - auth);
    if (hlen > 0 && host[0] == '[') {
        const char *end = memchr(host, ']', hlen);
        if (!end)
            return RF_ERR_PROTOCOL;
        return host_is_loopback(host + 1, (size_t)(end - host - 1)) ? 0 : RF_ERR_PROTOCOL;
    }
    const char *colon = memchr(host, ':', hlen);
    if (colon)
        hlen = (size_t)(colon - host);
    return host_is_loopback(host, hlen) || host_is_onion(host, hlen) ? 0 : RF_ERR_PROTOCOL;
}

int rf_net_new(struct rf_net **out, const char *base_url, const struct rf_staff_keys *keys)
{
    return rf_net_open(out, base_url, keys, 0);
}

int rf_net_open(struct rf_net **out, const char *base_url, const struct rf_staff_keys *keys,
                int flags)
{
    *out = NULL;
    int rc = rf_net_url_check(base_url, flags);
    if (rc != 0)
        return rc; /* before any connection, or even a name lookup */
    (void)pthread_once(&cu_once, cu_load);
    if (!cu_ready) {
        rf_log_warn("cannot load libcurl.so.4: install the libcurl4 package");
        return RF_ERR_NET;
    }
    size_t blen = strlen(base_url);
    struct rf_net *n = calloc(1, sizeof(*n));
    if (!n)
        return RF_ERR_NOMEM;
    memcpy(n->base, base_url, blen + 1);
    while (blen > 0 && n->base[blen - 1] == '/')
        n->base[--blen] = '\0';
    n->keys = keys;
    n->curl = cu.easy_init();
    if (!n->curl) {
        free(n);
        return RF_ERR_NOMEM;
    }
    *out = n;
    return 0;
}

void rf_net_free(struct rf_net *n)
{
    if (!n)
        return;
    cu.easy_cleanup(n->curl);
    free(n);
}

long rf_net_status(const struct rf_net *n)
{
    return n->status;
}

const char *rf_net_error_code(const struct rf_net *n)
{
    return n->code;
}

const char *rf_net_error(const struct rf_net *n)
{
    return n->err[0] ? n->err : "unknown error";
}

static size_t on_data(char *p, size_t size, size_t nmemb, void *v)
{
    struct sink_ctx *c = v;
    size_t len = size * nmemb;
    long status = 0;
    cu.easy_getinfo(c->n->curl, CURLINFO_RESPONSE_CODE, &status);
    if (status < 200 || status > 299 || !c->sink) {
        if (rf_buf_put(c->buf, p, len) != 0) {
            c->rc = RF_ERR_LIMIT;
            return 0;
        }
        return len;
    }
    if (len > c->max - c->got) {
        c->rc = RF_ERR_LIMIT;
        return 0;
    }
    c->got += len;
    int rc = c->sink(c->sink_ctx, (const uint8_t *)p, len);
    if (rc != 0) {
        c->rc = rc;
        return 0;
    }
    return len;
}

static void describe_curl(struct rf_net *n, CURLcode cc)
{
    const char *hint = "";
    switch (cc) {
    case CURLE_COULDNT_CONNECT:
        hint = " (connection refused: is the server running and the URL right?)";
        break;
    case CURLE_COULDNT_RESOLVE_HOST:
        hint = " (unknown host: check the URL; an onion address needs ALL_PROXY=socks5h://...)";
        break;
    case CURLE_OPERATION_TIMEDOUT:
        hint = " (timed out)";
        break;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
        hint = " (TLS failed: the certificate does not match this server)";
        break;
    default:
        break;
    }
    snprintf(n->err, sizeof(n->err), "cannot reach %s: %s%s", n->base,
             n->curlerr[0] ? n->curlerr : cu.easy_strerror(cc), hint);
}

/* Fills n->code / n->err from an HTTP error answer {"error","message"}. */
static void describe_http(struct rf_net *n, const struct rf_buf *body)
{
    json_error_t e;
    json_t *j = json_loadb((const char *)body->data, body->len, 0, &e);
    const char *code = json_string_value(json_object_get(j, "error"));
    const char *msg = json_string_value(json_object_get(j, "message"));
    snprintf(n->code, sizeof(n->code), "%s", code ? code : "");
    /* The message comes from the server: printable ASCII only. */
    char clean[256];
    size_t k = 0;
    for (size_t i = 0; msg && msg[i] && k + 1 < sizeof(clean); i++)
        clean[k++] = (msg[i] >= 0x20 && msg[i] < 0x7f) ? msg[i] : '?';
    clean[k] = '\0';
    snprintf(n->err, sizeof(n->err), "the server answered %ld%s%s", n->status, k ? ": " : "",
             clean);
    json_decref(j);
}

static int perform(struct rf_net *n, const char *method, const char *path, const uint8_t *body,
                   size_t len, const char *ctype, struct sink_ctx *sc)
{
    char url[RF_URL_MAX + 1024];
    char auth[RF_APISIG_HEADER_MAX + 64];
    char hdr[RF_APISIG_HEADER_MAX + 96];
    char cth[128];
    uint8_t hash[32];
    struct curl_slist *hl = NULL;
    CURL *c = n->curl;
    int rc = 0;

    n->status = 0;
    n->code[0] = '\0';
    n->err[0] = '\0';
    n->curlerr[0] = '\0';
    if (path[0] != '/' || strlen(path) > 1000)
        return RF_ERR_INVALID;
    snprintf(url, sizeof(url), "%s%s", n->base, path);
    crypto_generichash(hash, sizeof(hash), body, body ? len : 0, NULL, 0);
    rc = rf_apisig_sign(auth, sizeof(auth), n->keys, method, path, (int64_t)time(NULL), hash);
    if (rc != 0) {
        snprintf(n->err, sizeof(n->err), "cannot sign the request: %s", rf_strerror(rc));
        return rc;
    }
    snprintf(hdr, sizeof(hdr), "Authorization: %s", auth);
    hl = cu.slist_append(hl, hdr);
    hl = cu.slist_append(hl, "Accept: application/json");
    hl = cu.slist_append(hl, "Expect:");
    if (ctype) {
        snprintf(cth, sizeof(cth), "Content-Type: %s", ctype);
        hl = cu.slist_append(hl, cth);
    }
    cu.easy_reset(c);
    cu.easy_setopt(c, CURLOPT_URL, url);
    cu.easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    cu.easy_setopt(c, CURLOPT_ERRORBUFFER, n->curlerr);
    cu.easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    cu.easy_setopt(c, CURLOPT_WRITEDATA, sc);
    cu.easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    cu.easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    cu.easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    cu.easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 60L);
    cu.easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    cu.easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 120L);
    cu.easy_setopt(c, CURLOPT_USERAGENT, "refuge");
    if (strcmp(method, "POST") == 0) {
        cu.easy_setopt(c, CURLOPT_POST, 1L);
        cu.easy_setopt(c, CURLOPT_POSTFIELDS, body ? (const char *)body : "");
        cu.easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? len : 0));
    } else {
        cu.easy_setopt(c, CURLOPT_HTTPGET, 1L);
    }
    CURLcode cc = cu.easy_perform(c);
    cu.easy_getinfo(c, CURLINFO_RESPONSE_CODE, &n->status);
    cu.slist_free_all(hl);
    sodium_memzero(auth, sizeof(auth));
    if (sc->rc != 0 && cc == CURLE_WRITE_ERROR) {
        if (sc->rc == RF_ERR_LIMIT)
            snprintf(n->err, sizeof(n->err), "the server's answer is larger than expected");
        else
            snprintf(n->err, sizeof(n->err), "%s", rf_strerror(sc->rc));
        return sc->rc;
    }
    if (cc != CURLE_OK) {
        describe_curl(n, cc);
        return RF_ERR_NET;
    }
    if (n->status < 200 || n->status > 299) {
        describe_http(n, sc->buf);
        return RF_ERR_PROTOCOL;
    }
    return 0;
}

int rf_net_json(struct rf_net *n, const char *method, const char *path, const uint8_t *body,
                size_t len, const char *content_type, json_t **out)
{
    struct rf_buf buf;
    rf_buf_init(&buf, RF_NET_JSON_MAX);
    struct sink_ctx sc = {.n = n, .buf = &buf};
    if (out)
        *out = NULL;
    int rc = perform(n, method, path, body, len, content_type, &sc);
    if (rc == 0 && out) {
        json_error_t e;
        *out = json_loadb((const char *)buf.data, buf.len, JSON_REJECT_DUPLICATES, &e);
        if (!json_is_object(*out)) {
            json_decref(*out);
            *out = NULL;
            snprintf(n->err, sizeof(n->err), "the server's answer is not a JSON object");
            rc = RF_ERR_PROTOCOL;
        }
    }
    rf_buf_free(&buf);
    return rc;
}

int rf_net_download(struct rf_net *n, const char *path, uint64_t max, rf_sink_fn sink, void *ctx)
{
    struct rf_buf buf;
    rf_buf_init(&buf, ERR_BODY_MAX);
    struct sink_ctx sc = {.n = n, .buf = &buf, .sink = sink, .sink_ctx = ctx, .max = max};
    int rc = perform(n, "GET", path, NULL, 0, NULL, &sc);
    rf_buf_free(&buf);
    return rc;
}
