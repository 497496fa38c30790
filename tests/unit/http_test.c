/* http_test.c - the HTTP core as a client sees it: the real libmicrohttpd
 * daemon on a loopback port with a test route table, driven by libcurl and
 * by raw sockets (for clients that misbehave). Security headers on every
 * answer, 404/405, size limits before and while streaming, forms in pieces,
 * suspend/resume from another thread (also a suspension in on_headers that
 * ends without an answer: the body then streams as usual), and request state
 * freed exactly once
 * when the client goes away mid-upload or while the request is suspended. */
#include "server/http.h"
#include "server/httpd.h"
#include "server/srv.h"
#include "server/tmpl.h"
#include "lib/err.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char page_html[] = "<!doctype html><title>t</title><p>landing</p>";
static atomic_int frees;    /* state free_fn calls */
static atomic_int body_end; /* on_end calls of /upload */

/* ---------------------------------------------------------------- routes */

static int h_static(struct rf_req *r)
{
    return rf_req_respond_static(r, 200, "text/html; charset=utf-8", (const uint8_t *)page_html,
                                 sizeof(page_html) - 1);
}

static int h_target(struct rf_req *r)
{
    struct rf_buf b;
    rf_buf_init(&b, 4096);
    const char *q = rf_req_query(r, "q");
    const char *c = rf_req_cookie(r, "s");
    char line[1024];
    snprintf(line, sizeof(line), "%s|%s|%s|%s", rf_req_path(r), rf_req_target(r), q ? q : "-",
             c ? c : "-");
    rf_buf_put_str(&b, line);
    rf_req_add_header(r, "X-Test", "1");
    return rf_req_respond_buf(r, 200, "text/plain", &b);
}

struct count_state {
    uint64_t n;
    char summary[2048];
    size_t used;
    unsigned file_pieces;
    uint64_t file_next_off;
    int off_ok;
};

static void count_free(void *p)
{
    atomic_fetch_add(&frees, 1);
    free(p);
}

static int h_count_headers(struct rf_req *r)
{
    struct count_state *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return RF_ERR_NOMEM;
    st->off_ok = 1;
    rf_req_set_state(r, st, count_free);
    return 0;
}

static int h_count_body(struct rf_req *r, const uint8_t *p, size_t n)
{
    struct count_state *st = rf_req_state(r);
    (void)p;
    st->n += n;
    return 0;
}

static int h_count_end(struct rf_req *r)
{
    struct count_state *st = rf_req_state(r);
    char text[64];
    atomic_fetch_add(&body_end, 1);
    int len = snprintf(text, sizeof(text), "%llu", st ? (unsigned long long)st->n : 0ULL);
    struct rf_buf b;
    rf_buf_init_secure(&b, 64); /* exercises the sodium_free path */
    rf_buf_put(&b, text, (size_t)len);
    return rf_req_respond_buf(r, 200, "text/plain", &b);
}

static int form_piece(struct rf_req *r, const char *name, const char *filename,
                      const char *content_type, uint64_t off, const uint8_t *data, size_t n)
{
    struct count_state *st = rf_req_state(r);
    (void)content_type;
    if (filename) {
        if (off != st->file_next_off)
            st->off_ok = 0;
        st->file_next_off = off + n;
        st->file_pieces++;
        for (size_t i = 0; i < n; i++)
            if (data[i] != (uint8_t)((off + i) % 251))
                st->off_ok = 0;
        return 0;
    }
    int w = snprintf(st->summary + st->used, sizeof(st->summary) - st->used, "%s=%.*s;", name,
                     (int)n, (const char *)data);
    if (w > 0 && (size_t)w < sizeof(st->summary) - st->used)
        st->used += (size_t)w;
    return 0;
}

static int h_form_headers(struct rf_req *r)
{
    int rc = h_count_headers(r);
    if (rc == 0)
        rc = rf_req_form_begin(r, form_piece);
    return rc;
}

static int h_form_end(struct rf_req *r)
{
    struct count_state *st = rf_req_state(r);
    char text[2200];
    int len = snprintf(text, sizeof(text), "%sfile=%llu/%u/%d", st->summary,
                       (unsigned long long)st->file_next_off, st->file_pieces, st->off_ok);
    struct rf_buf b;
    rf_buf_init(&b, sizeof(text));
    rf_buf_put(&b, text, (size_t)len);
    return rf_req_respond_buf(r, 200, "text/plain", &b);
}

/* async: a worker thread answers after delay_ms and resumes */
struct job {
    struct rf_req *r;
    int delay_ms;
};

static void *worker(void *arg)
{
    struct job *j = arg;
    if (j->delay_ms)
        usleep((useconds_t)j->delay_ms * 1000);
    static const char done[] = "resumed";
    rf_req_respond_static(j->r, 202, "text/plain", (const uint8_t *)done, sizeof(done) - 1);
    rf_req_resume(j->r);
    free(j);
    return NULL;
}

static int go_async(struct rf_req *r, int delay_ms)
{
    struct job *j = malloc(sizeof(*j));
    pthread_t t;
    j->r = r;
    j->delay_ms = delay_ms;
    rf_req_suspend(r);
    if (pthread_create(&t, NULL, worker, j) != 0)
        abort();
    pthread_detach(t);
    return 0;
}

static int h_async_end(struct rf_req *r)
{
    return go_async(r, 50);
}

static int h_async_now(struct rf_req *r)
{
    return go_async(r, 0); /* races the dispatcher's suspend */
}

static int h_async_slow(struct rf_req *r)
{
    return go_async(r, 400);
}

/* on_headers suspends and a worker only lets the request go on (no answer),
 * as the staff API does while its nonce is stored: the body must still
 * reach on_body whole and on_end run once, after it */
static void *go_on_worker(void *arg)
{
    struct job *j = arg;
    if (j->delay_ms)
        usleep((useconds_t)j->delay_ms * 1000);
    rf_req_resume(j->r);
    free(j);
    return NULL;
}

static int h_go_on_headers(struct rf_req *r)
{
    int rc = h_count_headers(r);
    struct job *j = malloc(sizeof(*j));
    pthread_t t;
    if (rc != 0 || !j)
        abort();
    j->r = r;
    j->delay_ms = strcmp(rf_req_method(r), "GET") == 0 ? 0 : 30;
    rf_req_suspend(r);
    if (pthread_create(&t, NULL, go_on_worker, j) != 0)
        abort();
    pthread_detach(t);
    return 0;
}

static int h_prefix(struct rf_req *r)
{
    static const char t[] = "prefix";
    return rf_req_respond_static(r, 200, "text/plain", (const uint8_t *)t, sizeof(t) - 1);
}

/* the same static bytes as "/", plus a cookie added after answering: the
 * cookie must reach this answer only, never the shared one of "/" */
static int h_static_cookie(struct rf_req *r)
{
    int rc = h_static(r);
    if (rc == 0)
        rc = rf_req_add_header(r, "Set-Cookie", "s=secret; HttpOnly");
    return rc;
}

static int h_redirect(struct rf_req *r)
{
    return rf_req_redirect(r, "/target");
}

static int h_fail(struct rf_req *r)
{
    (void)r;
    return RF_ERR_BUSY; /* no answer: the dispatcher's 503 */
}

/* rf_req_suspend_then: a worker (as a committer completion) only wakes the
 * request; each step runs on the request's own thread, never the worker's;
 * the first step suspends again (a chain, as POST /api/v1/grants), the
 * second answers. delay 0 races the dispatcher's suspend. */
struct chain {
    pthread_t worker;
    int steps;
    int wrong_thread;
};

static void *wake_worker(void *arg)
{
    struct job *j = arg;
    if (j->delay_ms)
        usleep((useconds_t)j->delay_ms * 1000);
    rf_req_resume(j->r); /* records nothing, answers nothing */
    free(j);
    return NULL;
}

static void chain_wake(struct rf_req *r, struct chain *c, int delay_ms, rf_req_resumed_fn then)
{
    struct job *j = malloc(sizeof(*j));
    if (!j)
        abort();
    j->r = r;
    j->delay_ms = delay_ms;
    rf_req_suspend_then(r, then);
    if (pthread_create(&c->worker, NULL, wake_worker, j) != 0)
        abort();
    pthread_detach(c->worker);
}

static int chain_last(struct rf_req *r)
{
    struct chain *c = rf_req_state(r);
    char text[64];
    c->wrong_thread |= pthread_equal(pthread_self(), c->worker);
    c->steps++;
    int len = snprintf(text, sizeof(text), "steps=%d wrong=%d", c->steps, c->wrong_thread);
    struct rf_buf b;
    rf_buf_init(&b, sizeof(text));
    rf_buf_put(&b, text, (size_t)len);
    return rf_req_respond_buf(r, 200, "text/plain", &b);
}

static int chain_first(struct rf_req *r)
{
    struct chain *c = rf_req_state(r);
    c->wrong_thread |= pthread_equal(pthread_self(), c->worker);
    c->steps++;
    chain_wake(r, c, strcmp(rf_req_path(r), "/chain-now") == 0 ? 0 : 20, chain_last);
    return 0;
}

static int h_chain(struct rf_req *r)
{
    struct chain *c = calloc(1, sizeof(*c));
    if (!c)
        abort();
    rf_req_set_state(r, c, free);
    chain_wake(r, c, strcmp(rf_req_path(r), "/chain-now") == 0 ? 0 : 20, chain_first);
    return 0;
}

static const struct rf_route pages[] = {
    {"GET", "/", 0, 0, h_static, NULL, NULL},
    {"GET", "/target", 0, 0, h_target, NULL, NULL},
    {"POST", "/upload", 0, 1000, h_count_headers, h_count_body, h_count_end},
    {"POST", "/big", 0, 64ULL << 20, h_count_headers, h_count_body, h_count_end},
    {"POST", "/form", 0, 1 << 20, h_form_headers, NULL, h_form_end},
    {"POST", "/async", 0, 1000, h_count_headers, NULL, h_async_end},
    {"GET", "/async-now", 0, 0, h_async_now, NULL, NULL},
    {"POST", "/async-slow", 0, 1000, h_count_headers, NULL, h_async_slow},
    {"GET", "/fail", 0, 0, h_fail, NULL, NULL},
    {"POST", "/go-on", 0, 1 << 20, h_go_on_headers, h_count_body, h_count_end},
    {"GET", "/go-on", 0, 0, h_go_on_headers, NULL, h_count_end},
    {"GET", "/cookie", 0, 0, h_static_cookie, NULL, NULL},
    {"GET", "/redirect", 0, 0, h_redirect, NULL, NULL},
    {"GET", "/files/", RF_ROUTE_PREFIX, 0, h_prefix, NULL, NULL},
    {"GET", "/chain", 0, 0, NULL, NULL, h_chain},
    {"GET", "/chain-now", 0, 0, NULL, NULL, h_chain},
};
static const struct rf_route api[] = {
    {"POST", "/api/v1/thing", 0, 100, NULL, NULL, h_count_end},
};

static int nf_pages(struct rf_req *r)
{
    static const char t[] = "<p>no such page</p>";
    return rf_req_respond_static(r, 404, "text/html; charset=utf-8", (const uint8_t *)t,
                                 sizeof(t) - 1);
}

static int nf_api(struct rf_req *r)
{
    return rf_req_respond_json_error(r, 404, "not_found", "no such route");
}

/* ---------------------------------------------------------------- client */

struct resp {
    long status;
    char headers[8192];
    size_t hlen;
    char body[65536];
    size_t blen;
};

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    struct resp *rs = arg;
    size_t len = size * n;
    if (rs->hlen + len < sizeof(rs->headers)) {
        memcpy(rs->headers + rs->hlen, p, len);
        rs->hlen += len;
        rs->headers[rs->hlen] = '\0';
    }
    return len;
}

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
    struct resp *rs = arg;
    size_t len = size * n;
    if (rs->blen + len < sizeof(rs->body)) {
        memcpy(rs->body + rs->blen, p, len);
        rs->blen += len;
        rs->body[rs->blen] = '\0';
    }
    return len;
}

static struct rf_http *srv_http;
static uint16_t port;

static CURL *easy(const char *method, const char *path, struct resp *rs)
{
    char url[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", port, path);
    memset(rs, 0, sizeof(*rs));
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, rs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, rs);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    return c;
}

static void perform(CURL *c, struct resp *rs)
{
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &rs->status);
    curl_easy_cleanup(c);
}

static void request(const char *method, const char *path, const void *body, size_t len,
                    struct resp *rs)
{
    CURL *c = easy(method, path, rs);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    perform(c, rs);
}

static int has_header(const struct resp *rs, const char *line)
{
    return strcasestr(rs->headers, line) != NULL;
}

static void assert_security_headers(const struct resp *rs)
{
    static const char *const want[] = {
        "\nReferrer-Policy: no-referrer\r\n",
        "\nCache-Control: no-store\r\n",
        "\nPragma: no-cache\r\n",
        "\nX-Content-Type-Options: nosniff\r\n",
        "\nX-Frame-Options: DENY\r\n",
        "\nCross-Origin-Opener-Policy: same-origin\r\n",
        "\nCross-Origin-Resource-Policy: same-origin\r\n",
        "\nPermissions-Policy: interest-cohort=()",
        "\nContent-Security-Policy: ",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        if (!has_header(rs, want[i]))
            fail_msg("missing header %s in:\n%s", want[i], rs->headers);
    }
    assert_null(strcasestr(rs->headers, "\nServer:"));
}

static int wait_for(atomic_int *v, int want, int ms)
{
    for (int i = 0; i < ms / 10 && atomic_load(v) < want; i++)
        usleep(10000);
    return atomic_load(v);
}

/* The count once it has not moved for 300 ms: a request of an earlier test
 * whose connection the client already closed may still be completing (its
 * state freed by the completion callback a moment later). */
static int settled(atomic_int *v)
{
    int last = atomic_load(v);
    for (int quiet = 0; quiet < 30; quiet++) {
        usleep(10000);
        int now = atomic_load(v);
        if (now != last) {
            last = now;
            quiet = -1;
        }
    }
    return last;
}

/* raw socket helpers */
static int dial(void)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

static void send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        assert_true(w > 0);
        p += w;
        n -= (size_t)w;
    }
}

/* ----------------------------------------------------------------- tests */

static void static_page_has_security_headers(void **state)
{
    struct resp rs;
    (void)state;
    request("GET", "/", NULL, 0, &rs);
    assert_int_equal(rs.status, 200);
    assert_string_equal(rs.body, page_html);
    assert_security_headers(&rs);
    assert_true(has_header(&rs, "\nContent-Type: text/html; charset=utf-8\r\n"));
    /* HTML gets the template layer's policy, which locks down forms and bases */
    assert_true(has_header(&rs, "base-uri 'none'"));

    request("HEAD", "/", NULL, 0, &rs);
    assert_int_equal(rs.status, 200);
    assert_int_equal(rs.blen, 0);
    assert_security_headers(&rs);
}

static void target_query_cookie_and_extra_header(void **state)
{
    struct resp rs;
    (void)state;
    CURL *c = easy("GET", "/target?q=a%20b&x=1", &rs);
    curl_easy_setopt(c, CURLOPT_COOKIE, "s=tok123; other=1");
    perform(c, &rs);
    assert_int_equal(rs.status, 200);
    assert_string_equal(rs.body, "/target|/target?q=a%20b&x=1|a b|tok123");
    assert_true(has_header(&rs, "\nX-Test: 1\r\n"));
    /* not HTML: the strict policy */
    assert_true(
        has_header(&rs, "\nContent-Security-Policy: default-src 'none'; frame-ancestors 'none'"));
    assert_security_headers(&rs);
}

static void unknown_path_and_wrong_method(void **state)
{
    struct resp rs;
    (void)state;
    request("GET", "/nowhere", NULL, 0, &rs);
    assert_int_equal(rs.status, 404);
    assert_string_equal(rs.body, "<p>no such page</p>");
    assert_security_headers(&rs);

    request("GET", "/api/v1/nowhere", NULL, 0, &rs);
    assert_int_equal(rs.status, 404);
    assert_non_null(strstr(rs.body, "\"error\":\"not_found\""));
    assert_true(has_header(&rs, "\nContent-Type: application/json"));
    assert_security_headers(&rs);

    request("POST", "/", "x", 1, &rs);
    assert_int_equal(rs.status, 405);
    assert_true(has_header(&rs, "\nAllow: GET, HEAD\r\n"));
    assert_security_headers(&rs);

    request("GET", "/api/v1/thing", NULL, 0, &rs);
    assert_int_equal(rs.status, 405);
    assert_true(has_header(&rs, "\nAllow: POST\r\n"));
    assert_non_null(strstr(rs.body, "\"error\":\"method_not_allowed\""));

    request("GET", "/files/a/b", NULL, 0, &rs);
    assert_int_equal(rs.status, 200);
    assert_string_equal(rs.body, "prefix");

    request("GET", "/fail", NULL, 0, &rs);
    assert_int_equal(rs.status, 503);
    assert_security_headers(&rs);
}

static void body_streams_to_handler(void **state)
{
    struct resp rs;
    char body[1000];
    (void)state;
    memset(body, 'a', sizeof(body));
    request("POST", "/upload", body, sizeof(body), &rs);
    assert_int_equal(rs.status, 200);
    assert_string_equal(rs.body, "1000");

    request("POST", "/api/v1/thing", "{}", 2, &rs);
    assert_int_equal(rs.status, 200);
    assert_string_equal(rs.body, "0"); /* no state set: on_end saw none */
}

static void too_large_by_content_length(void **state)
{
    struct resp rs;
    (void)state;
    int ends = atomic_load(&body_end);
    static char body[4096];
    memset(body, 'b', sizeof(body));
    request("POST", "/upload", body, 1001, &rs);
    assert_int_equal(rs.status, 413);
    assert_security_headers(&rs);
    /* far past the discard cap: answered at once, body never read */
    size_t big = 3u << 20;
    char *huge = calloc(1, big);
    request("POST", "/upload", huge, big, &rs);
    free(huge);
    assert_int_equal(rs.status, 413);
    assert_int_equal(atomic_load(&body_end), ends); /* no handler saw the end */
}

static void too_large_while_streaming(void **state)
{
    struct resp rs;
    (void)state;
    int ends = atomic_load(&body_end);
    static char body[5000];
    memset(body, 'c', sizeof(body));
    CURL *c = easy("POST", "/upload", &rs);
    struct curl_slist *h = curl_slist_append(NULL, "Transfer-Encoding: chunked");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)sizeof(body));
    perform(c, &rs);
    curl_slist_free_all(h);
    assert_int_equal(rs.status, 413);
    assert_security_headers(&rs);
    assert_int_equal(atomic_load(&body_end), ends);

    /* same over a raw socket, chunk by chunk */
    int fd = dial();
    const char *hdr = "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    send_all(fd, hdr, strlen(hdr));
    for (int i = 0; i < 3; i++) {
        char chunk[600];
        memset(chunk, 'd', sizeof(chunk));
        send_all(fd, "258\r\n", 5);
        send_all(fd, chunk, sizeof(chunk));
        send_all(fd, "\r\n", 2);
    }
    send_all(fd, "0\r\n\r\n", 5);
    char buf[2048];
    ssize_t got = recv(fd, buf, sizeof(buf) - 1, 0);
    assert_true(got > 12);
    buf[got] = '\0';
    assert_non_null(strstr(buf, "HTTP/1.1 413"));
    close(fd);
}

static void urlencoded_form(void **state)
{
    struct resp rs;
    (void)state;
    const char *body = "a=1&b=hello%20world&c=";
    CURL *c = easy("POST", "/form", &rs);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    perform(c, &rs);
    assert_int_equal(rs.status, 200);
    assert_string_equal(rs.body, "a=1;b=hello world;c=;file=0/0/1");
}

static void multipart_form_with_file_in_pieces(void **state)
{
    struct resp rs;
    (void)state;
    size_t n = 200000;
    uint8_t *file = malloc(n);
    for (size_t i = 0; i < n; i++)
        file[i] = (uint8_t)(i % 251);
    CURL *c = easy("POST", "/form", &rs);
    curl_mime *mime = curl_mime_init(c);
    curl_mimepart *part = curl_mime_addpart(mime);
    curl_mime_name(part, "need");
    curl_mime_data(part, "passport", CURL_ZERO_TERMINATED);
    part = curl_mime_addpart(mime);
    curl_mime_name(part, "doc");
    curl_mime_filename(part, "scan.jpg");
    curl_mime_type(part, "image/jpeg");
    curl_mime_data(part, (const char *)file, n);
    curl_easy_setopt(c, CURLOPT_MIMEPOST, mime);
    perform(c, &rs);
    curl_mime_free(mime);
    free(file);
    assert_int_equal(rs.status, 200);
    /* the file arrived whole, in order, in several pieces */
    unsigned long long got = 0;
    unsigned pieces = 0;
    int ok = 0;
    assert_int_equal(sscanf(rs.body, "need=passport;file=%llu/%u/%d", &got, &pieces, &ok), 3);
    assert_int_equal(got, n);
    assert_true(pieces > 1);
    assert_int_equal(ok, 1);
}

static void malformed_multipart_is_400(void **state)
{
    struct resp rs;
    (void)state;
    CURL *c = easy("POST", "/form", &rs);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/x-unknown");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, "zzz");
    perform(c, &rs);
    curl_slist_free_all(h);
    assert_int_equal(rs.status, 400);
    assert_security_headers(&rs);
}

static void suspend_and_resume(void **state)
{
    struct resp rs;
    (void)state;
    request("POST", "/async", "x=1", 3, &rs);
    assert_int_equal(rs.status, 202);
    assert_string_equal(rs.body, "resumed");
    assert_security_headers(&rs);
    for (int i = 0; i < 50; i++) {
        request("GET", "/async-now", NULL, 0, &rs);
        assert_int_equal(rs.status, 202);
    }
}

static void steps_after_resume_run_on_the_request_thread(void **state)
{
    struct resp rs;
    (void)state;
    request("GET", "/chain", NULL, 0, &rs);
    assert_int_equal(rs.status, 200);
    assert_string_equal(rs.body, "steps=2 wrong=0");
    assert_security_headers(&rs);
    for (int i = 0; i < 50; i++) {
        request("GET", "/chain-now", NULL, 0, &rs);
        assert_int_equal(rs.status, 200);
        assert_string_equal(rs.body, "steps=2 wrong=0");
    }
}

static void suspended_in_headers_then_going_on(void **state)
{
    struct resp rs;
    (void)state;
    static char body[300000];
    memset(body, 'b', sizeof(body));
    int ends = atomic_load(&body_end);
    for (int i = 0; i < 5; i++) {
        request("POST", "/go-on", body, sizeof(body), &rs);
        assert_int_equal(rs.status, 200);
        assert_string_equal(rs.body, "300000"); /* every body byte, after the resume */
        request("POST", "/go-on", "x", 1, &rs);
        assert_int_equal(rs.status, 200);
        assert_string_equal(rs.body, "1");
        request("GET", "/go-on", NULL, 0, &rs);
        assert_int_equal(rs.status, 200);
        assert_string_equal(rs.body, "0");
    }
    assert_int_equal(atomic_load(&body_end) - ends, 15); /* on_end once per request */
}

static void disconnect_mid_upload_frees_once(void **state)
{
    (void)state;
    int before = settled(&frees);
    int fd = dial();
    const char *hdr = "POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n";
    send_all(fd, hdr, strlen(hdr));
    char chunk[8192];
    memset(chunk, 'e', sizeof(chunk));
    for (int i = 0; i < 8; i++)
        send_all(fd, chunk, sizeof(chunk));
    usleep(100000);
    close(fd);
    assert_int_equal(wait_for(&frees, before + 1, 5000), before + 1);
    usleep(200000);
    assert_int_equal(atomic_load(&frees), before + 1);
}

static void disconnect_while_suspended_frees_once(void **state)
{
    (void)state;
    int before = settled(&frees);
    int fd = dial();
    const char *req = "POST /async-slow HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nx=1";
    send_all(fd, req, strlen(req));
    usleep(100000); /* now suspended in the worker */
    close(fd);
    /* freed once the worker resumes (400 ms), not before, and once */
    assert_int_equal(wait_for(&frees, before + 1, 5000), before + 1);
    usleep(200000);
    assert_int_equal(atomic_load(&frees), before + 1);
}

static void shared_static_answers_stay_unmodified(void **state)
{
    struct resp rs;
    (void)state;
    for (int i = 0; i < 3; i++) {
        request("GET", "/", NULL, 0, &rs);
        assert_null(strcasestr(rs.headers, "\nSet-Cookie:"));
        request("GET", "/cookie", NULL, 0, &rs);
        assert_int_equal(rs.status, 200);
        assert_true(has_header(&rs, "\nSet-Cookie: s=secret; HttpOnly\r\n"));
        assert_string_equal(rs.body, page_html);
        assert_security_headers(&rs);
        request("GET", "/redirect", NULL, 0, &rs);
        assert_int_equal(rs.status, 303);
        assert_true(has_header(&rs, "\nLocation: /target\r\n"));
        assert_security_headers(&rs);
        request("GET", "/", NULL, 0, &rs);
        assert_null(strcasestr(rs.headers, "\nSet-Cookie:"));
        assert_null(strcasestr(rs.headers, "\nLocation:"));
        request("GET", "/fail", NULL, 0, &rs);
        assert_null(strcasestr(rs.headers, "\nLocation:"));
    }
}

static void malformed_request_is_refused(void **state)
{
    (void)state;
    int fd = dial();
    const char *req = "GET / HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n";
    send_all(fd, req, strlen(req));
    char buf[2048];
    ssize_t got = recv(fd, buf, sizeof(buf) - 1, 0);
    close(fd);
    assert_true(got > 12);
    buf[got] = '\0';
    assert_non_null(strstr(buf, "HTTP/1.1 400"));
    /* the request state made for it is freed (LeakSanitizer checks at exit) */
}

static void keep_alive_holds(void **state)
{
    struct resp rs;
    (void)state;
    int fd = dial();
    const char *req = "GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n";
    send_all(fd, req, strlen(req));
    char buf[8192];
    size_t used = 0;
    int seen = 0;
    for (int i = 0; i < 100 && seen < 2; i++) {
        ssize_t got = recv(fd, buf + used, sizeof(buf) - 1 - used, 0);
        if (got <= 0)
            break;
        used += (size_t)got;
        buf[used] = '\0';
        seen = 0;
        for (const char *p = buf; (p = strstr(p, "HTTP/1.1 200")); p++)
            seen++;
    }
    close(fd);
    assert_int_equal(seen, 2);
    (void)rs;
}

static int setup(void **state)
{
    static struct rf_srv srv;
    static const struct rf_route *const tables[] = {pages, api};
    static const size_t counts[] = {sizeof(pages) / sizeof(pages[0]), sizeof(api) / sizeof(api[0])};
    (void)state;
    if (sodium_init() < 0)
        return -1;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    memset(&srv, 0, sizeof(srv));
    srv.limits.connections_max = 100;
    srv.limits.connection_timeout_s = 10;
    rf_http_set_fallbacks(nf_pages, nf_api, NULL);
    rf_http_set_page_csp(rf_tmpl_csp()); /* as srv_main.c hands it in */
    if (rf_http_start(&srv_http, &srv, "127.0.0.1:0", tables, counts, 2) != 0)
        return -1;
    port = rf_http_port(srv_http);
    return port ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    rf_http_stop(srv_http);
    curl_global_cleanup();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(static_page_has_security_headers),
        cmocka_unit_test(target_query_cookie_and_extra_header),
        cmocka_unit_test(unknown_path_and_wrong_method),
        cmocka_unit_test(body_streams_to_handler),
        cmocka_unit_test(too_large_by_content_length),
        cmocka_unit_test(too_large_while_streaming),
        cmocka_unit_test(urlencoded_form),
        cmocka_unit_test(multipart_form_with_file_in_pieces),
        cmocka_unit_test(malformed_multipart_is_400),
        cmocka_unit_test(suspend_and_resume),
        cmocka_unit_test(suspended_in_headers_then_going_on),
        cmocka_unit_test(disconnect_mid_upload_frees_once),
        cmocka_unit_test(disconnect_while_suspended_frees_once),
        cmocka_unit_test(shared_static_answers_stay_unmodified),
        cmocka_unit_test(malformed_request_is_refused),
        cmocka_unit_test(keep_alive_holds),
        cmocka_unit_test(steps_after_resume_run_on_the_request_thread),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
