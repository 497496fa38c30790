/*
 * form.c - fuzzes the form layer of src/server/http.c on its own: the real
 * libmicrohttpd daemon (rf_http_start on a loopback port) with a test route
 * whose on_headers calls rf_req_form_begin, so urlencoded and multipart
 * bodies go through libmicrohttpd's post processor and http.c's field
 * callback exactly as the person's forms do, without the pages' CSRF checks
 * in the way.
 *
 * Input: a first line "<chunk> <content-type>", then the body. chunk 0 (or
 * no number) sends the body with Content-Length; chunk N > 0 sends it with
 * Transfer-Encoding: chunked in N-byte chunks, so that the post processor
 * sees the body cut at chosen places. Control characters in the content
 * type become spaces (the header itself stays well-formed).
 *
 * Checked beyond no sanitizer report (abort() otherwise): a field arrives
 * in pieces with consecutive offsets; names and file names are within
 * RF_FORM_NAME_MAX; a field named "stop" answers early (413) from the
 * callback, which must end the request with that answer; every request is
 * answered 200, 400, 413 or 415 (not 500, not silence).
 */
#include "lib/buf.h"
#include "lib/err.h"
#include "server/http.h"
#include "server/httpd.h"
#include "server/srv.h"

#include "fuzz_http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FORM_MAX_BODY (1u << 20)

struct form_state {
    char name[RF_FORM_NAME_MAX + 1];
    uint64_t next_off;
    int in_field;
    unsigned fields;
    uint64_t bytes;
    uint32_t sum;
};

static void form_state_free(void *p)
{
    free(p);
}

static int form_piece(struct rf_req *r, const char *name, const char *filename,
                      const char *content_type, uint64_t off, const uint8_t *p, size_t n)
{
    struct form_state *st = rf_req_state(r);
    (void)content_type;
    if (st == NULL || name == NULL || strlen(name) > RF_FORM_NAME_MAX ||
        (filename && strlen(filename) > RF_FORM_NAME_MAX) || (n > 0 && p == NULL))
        abort();
    if (off == 0) {
        st->fields++;
        memcpy(st->name, name, strlen(name) + 1);
        st->in_field = 1;
    } else if (!st->in_field || off != st->next_off || strcmp(name, st->name) != 0) {
        abort(); /* a piece that does not continue the field before it */
    }
    st->next_off = off + n;
    for (size_t i = 0; i < n; i++) /* touches every byte handed over */
        st->sum = st->sum * 31 + p[i];
    st->bytes += n;
    if (strcmp(name, "stop") == 0) {
        static const char msg[] = "stopped";
        rf_req_respond_static(r, 413, "text/plain", (const uint8_t *)msg, sizeof(msg) - 1);
        return RF_ERR_LIMIT;
    }
    return 0;
}

static int form_headers(struct rf_req *r)
{
    struct form_state *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return RF_ERR_NOMEM;
    rf_req_set_state(r, st, form_state_free);
    if (rf_req_form_begin(r, form_piece) != 0) {
        static const char msg[] = "not a form";
        return rf_req_respond_static(r, 415, "text/plain", (const uint8_t *)msg, sizeof(msg) - 1);
    }
    return 0;
}

static int form_end(struct rf_req *r)
{
    struct form_state *st = rf_req_state(r);
    char text[96];
    int len = snprintf(text, sizeof(text), "%u fields, %llu bytes, %08x", st->fields,
                       (unsigned long long)st->bytes, (unsigned)st->sum);
    struct rf_buf b;
    rf_buf_init(&b, sizeof(text));
    rf_buf_put(&b, text, (size_t)len);
    return rf_req_respond_buf(r, 200, "text/plain", &b);
}

static int not_found(struct rf_req *r)
{
    static const char msg[] = "no";
    return rf_req_respond_static(r, 404, "text/plain", (const uint8_t *)msg, sizeof(msg) - 1);
}

static const struct rf_route form_routes[] = {
    {"POST", "/form", 0, FORM_MAX_BODY, form_headers, NULL, form_end},
};

static uint16_t form_port(void)
{
    static struct rf_srv srv;
    static struct rf_http *http;
    static const struct rf_route *const tables[] = {form_routes};
    static const size_t counts[] = {1};
    if (http != NULL)
        return rf_http_port(http);
    if (sodium_init() < 0)
        abort();
    signal(SIGPIPE, SIG_IGN);
    srv.limits.connections_max = 64;
    srv.limits.connection_timeout_s = 10;
    rf_http_set_fallbacks(not_found, not_found, NULL);
    if (rf_http_start(&http, &srv, "127.0.0.1:0", tables, counts, 1) != 0)
        abort();
    return rf_http_port(http);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint16_t port = form_port();
    const uint8_t *nl = memchr(data, '\n', size);
    size_t line = nl ? (size_t)(nl - data) : size;
    const uint8_t *body = nl ? nl + 1 : data + size;
    size_t blen = (size_t)(data + size - body);
    size_t chunk = 0, i = 0;
    while (i < line && i < 6 && data[i] >= '0' && data[i] <= '9')
        chunk = chunk * 10 + (size_t)(data[i++] - '0');
    while (i < line && data[i] == ' ')
        i++;
    char ctype[512];
    size_t clen = 0;
    for (; i < line && clen < sizeof(ctype) - 1; i++)
        ctype[clen++] = data[i] < 0x20 || data[i] == 0x7f ? ' ' : (char)data[i];
    ctype[clen] = '\0';

    struct rf_buf req;
    rf_buf_init(&req, 4 * (size_t)FORM_MAX_BODY);
    char head[768];
    int hn;
    if (chunk == 0)
        hn = snprintf(head, sizeof(head),
                      "POST /form HTTP/1.1\r\nHost: fuzz\r\nContent-Type: %s\r\n"
                      "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                      ctype, blen);
    else
        hn = snprintf(head, sizeof(head),
                      "POST /form HTTP/1.1\r\nHost: fuzz\r\nContent-Type: %s\r\n"
                      "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
                      ctype);
    int rc = rf_buf_put(&req, head, (size_t)hn);
    if (chunk == 0) {
        rc = rc ? rc : rf_buf_put(&req, body, blen);
    } else {
        for (size_t off = 0; rc == 0 && off < blen; off += chunk) {
            size_t k = blen - off < chunk ? blen - off : chunk;
            char sz[32];
            int zn = snprintf(sz, sizeof(sz), "%zx\r\n", k);
            rc = rf_buf_put(&req, sz, (size_t)zn);
            rc = rc ? rc : rf_buf_put(&req, body + off, k);
            rc = rc ? rc : rf_buf_put(&req, "\r\n", 2);
        }
        rc = rc ? rc : rf_buf_put(&req, "0\r\n\r\n", 5);
    }
    if (rc == 0) {
        struct fz_resp resp;
        if (fz_roundtrip(port, req.data, req.len, &resp) == 0) {
            if (resp.status != 200 && resp.status != 400 && resp.status != 413 &&
                resp.status != 415) {
                fprintf(stderr, "form: unexpected answer (%u): %.200s\n", resp.status, resp.data);
                abort();
            }
            fz_check_head(&resp);
        }
        fz_resp_free(&resp);
    }
    rf_buf_free(&req);
    return 0;
}
