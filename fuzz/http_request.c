/*
 * http_request.c - fuzzes whole HTTP requests as `refuge serve` receives
 * them: the input, with the placeholders of fuzz_http.h replaced (a live
 * session and its CSRF token, the pre-session cookie and its token, the
 * person's case id), is written raw to a loopback connection of the real
 * libmicrohttpd daemon with the page and API route tables, and the answer
 * read until the server closes. This covers the request line, headers,
 * cookies, query strings, routing, urlencoded and multipart bodies through
 * libmicrohttpd's post processor into the page handlers (login, new
 * codename, send with files, delete), and the staff API's refusals.
 *
 * Beyond no sanitizer report: every answer from our handlers carries the
 * security headers, cookies are HttpOnly and SameSite=Strict, and no
 * request is answered 500 (abort() otherwise).
 */
#include "fuzz_http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz_server *f = fz_server_get();
    struct rf_buf req;
    rf_buf_init(&req, 8u << 20);
    if (fz_expand(f, &req, data, size) != 0) {
        rf_buf_free(&req);
        return 0;
    }
    struct fz_resp resp;
    if (fz_roundtrip(f->port, req.data, req.len, &resp) == 0) {
        fz_check_head(&resp);
        if (resp.status == 500)
            abort();
    }
    fz_resp_free(&resp);
    rf_buf_free(&req);
    return 0;
}
