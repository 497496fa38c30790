/*
 * api_request.c - fuzzes the staff API behind its signature check: each
 * input is one request, signed here as the real client signs it, so that
 * mutations reach what the server does after authentication (JSON bodies,
 * query strings, path parameters, reply envelopes) instead of stopping at
 * "signature does not verify".
 *
 * Input: "METHOD TARGET" on the first line, then header lines "Name: value",
 * an empty line, and the body (all optional but the first line; "\n" or
 * "\r\n"). The placeholders of fuzz_http.h are replaced in the whole input
 * (@CASE@ the person's case, @BPK@ @BBOX@ key B, @APK@ key A). The request
 * is signed (method, target, now, fresh nonce, BLAKE2b of the body) with
 * key B, a stranger, if the path is /api/v1/enroll, else with key A, the
 * enrolled admin on roster v1, unless the input brings its own
 * Authorization header; Host, Content-Length and Connection: close are
 * added. The server is the whole `refuge serve` of fuzz_http.h. No valid
 * enrollment token exists, so an enrollment never succeeds and the
 * fixture's state stays as it is.
 *
 * Checked beyond no sanitizer report (abort() otherwise): every answer is
 * JSON with the security headers, an error is {"error": ...}, and no
 * request is answered 500.
 */
#include "fuzz_http.h"
#include "lib/apisig.h"

#include <jansson.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Copies the line starting at *pos (without its "\r\n" or "\n") to out. */
static int next_line(const uint8_t *p, size_t n, size_t *pos, char *out, size_t cap)
{
    if (*pos >= n)
        return 0;
    const uint8_t *nl = memchr(p + *pos, '\n', n - *pos);
    size_t end = nl ? (size_t)(nl - p) : n;
    size_t len = end - *pos;
    if (len > 0 && p[end - 1] == '\r')
        len--;
    if (len >= cap)
        len = cap - 1;
    memcpy(out, p + *pos, len);
    out[len] = '\0';
    for (size_t i = 0; i < len; i++) /* keep the request well-formed */
        if ((unsigned char)out[i] < 0x20 && out[i] != '\t')
            out[i] = ' ';
    *pos = nl ? end + 1 : n;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz_server *f = fz_server_get();
    struct rf_buf in, req;
    rf_buf_init(&in, 8u << 20);
    rf_buf_init(&req, 8u << 20);
    char line[2048], method[16], target[2048];
    if (fz_expand(f, &in, data, size) != 0)
        goto out;
    size_t pos = 0;
    if (!next_line(in.data, in.len, &pos, line, sizeof(line)))
        goto out;
    char *sp = strchr(line, ' ');
    if (sp == NULL || sp == line || (size_t)(sp - line) >= sizeof(method))
        goto out;
    memcpy(method, line, (size_t)(sp - line));
    method[sp - line] = '\0';
    snprintf(target, sizeof(target), "%s", sp + 1);
    if (target[0] != '/' || strchr(target, ' ') != NULL)
        goto out;

    struct rf_buf head;
    rf_buf_init(&head, 1u << 16);
    int own_auth = 0;
    while (next_line(in.data, in.len, &pos, line, sizeof(line)) && line[0] != '\0') {
        if (strchr(line, ':') == NULL)
            continue;
        own_auth |= strncasecmp(line, "Authorization:", 14) == 0;
        if (strncasecmp(line, "Content-Length:", 15) == 0 || strncasecmp(line, "Host:", 5) == 0 ||
            strncasecmp(line, "Transfer-Encoding:", 18) == 0 ||
            strncasecmp(line, "Connection:", 11) == 0)
            continue;
        if (rf_buf_put_str(&head, line) != 0 || rf_buf_put(&head, "\r\n", 2) != 0)
            break;
    }
    const uint8_t *body = in.data + pos;
    size_t blen = in.len - pos;
    char auth[RF_APISIG_HEADER_MAX + 1] = "";
    if (!own_auth) {
        uint8_t bh[32];
        crypto_generichash(bh, sizeof(bh), body, blen, NULL, 0);
        const struct rf_staff_keys *k = strncmp(target, "/api/v1/enroll", 14) == 0 ? f->b : f->a;
        if (rf_apisig_sign(auth, sizeof(auth), k, method, target, (int64_t)time(NULL), bh) != 0)
            auth[0] = '\0';
    }
    char first[4096];
    int fn = snprintf(first, sizeof(first),
                      "%s %s HTTP/1.1\r\nHost: fuzz\r\nContent-Length: %zu\r\n"
                      "Connection: close\r\n%s%s%s",
                      method, target, blen, auth[0] ? "Authorization: " : "", auth,
                      auth[0] ? "\r\n" : "");
    int rc =
        fn > 0 && (size_t)fn < sizeof(first) ? rf_buf_put(&req, first, (size_t)fn) : RF_ERR_LIMIT;
    rc = rc ? rc : rf_buf_put(&req, head.data, head.len);
    rc = rc ? rc : rf_buf_put(&req, "\r\n", 2);
    rc = rc ? rc : rf_buf_put(&req, body, blen);
    rf_buf_free(&head);
    if (rc != 0)
        goto out;

    struct fz_resp resp;
    if (fz_roundtrip(f->port, req.data, req.len, &resp) == 0 && resp.status != 0) {
        fz_check_head(&resp);
        if (resp.status == 500)
            abort();
        const char *b = strstr(resp.data, "\r\n\r\n");
        int ours = strcasestr(resp.data, "\r\nContent-Security-Policy:") != NULL;
        int head_req = strcmp(method, "HEAD") == 0;
        if (ours && b != NULL && !head_req && resp.len < FZ_RESP_MAX &&
            strncmp(target, "/api/", 5) == 0 &&
            strcasestr(resp.data, "application/octet-stream") == NULL) {
            json_error_t e;
            json_t *j = json_loads(b + 4, 0, &e);
            if (!json_is_object(j) ||
                (resp.status >= 400 && !json_is_string(json_object_get(j, "error")))) {
                fprintf(stderr, "api: not a JSON answer (%u): %.300s\n", resp.status, resp.data);
                abort();
            }
            json_decref(j);
        }
    }
    fz_resp_free(&resp);
out:
    rf_buf_free(&in);
    rf_buf_free(&req);
    return 0;
}
