/*
 * desk_live.c - the board's automatic refresh (docs/desk.md, "Automatic
 * refresh"): the one script of the desk, src/client/desk/board.js (compiled
 * in by scripts/embed-asset), and what it asks for:
 *
 *   GET /board.js        the script (application/javascript)
 *   GET /board/changes   {"mark":"A.B.C"}: the local database's change mark
 *                        (rf_cache_mark: the largest object number, the
 *                        number of received grants, the sync position)
 *
 * The board page carries the mark it was rendered with (data-mark) and a
 * CSP that allows this one script by its path and fetches of the two URLs
 * it needs ('self'); every other page keeps a CSP without script. Nothing here is
 * needed for an action: with JavaScript off the board is the same page.
 * The script's requests (X-Refuge-Refresh) and /board/changes are not use
 * of the desk: they do not hold off the idle lock.
 */
#include "client/cache.h"
#include "client/desk_priv.h"
#include "lib/err.h"

#include <inttypes.h>
#include <microhttpd.h>
#include <stdio.h>
#include <string.h>

#include "desk_board_js.h"

int rf_desk_live_mark(struct rf_ctx *x, char *out, size_t cap)
{
    int64_t m[3] = {0, 0, 0};
    int rc = rf_cache_mark(x->c, m);
    if (rc != 0)
        return rc;
    int k = snprintf(out, cap, "%" PRId64 ".%" PRId64 ".%" PRId64, m[0], m[1], m[2]);
    return k > 0 && (size_t)k < cap ? 0 : RF_ERR_LIMIT;
}

const char *rf_desk_live_csp(uint16_t port)
{
    static char csp[1024];
    static uint16_t made_for;
    if (made_for != port || !csp[0]) {
        /* the pages' policy, plus exactly this script (by its path, under
         * both names the gate accepts, desk_guard.c) and fetches from the
         * desk itself (the board is "/", and a CSP path ending in "/" is a
         * prefix: 'self' says the same more plainly) */
        snprintf(csp, sizeof(csp),
                 "%s; script-src http://127.0.0.1:%u/board.js http://localhost:%u/board.js"
                 "; connect-src 'self'",
                 rf_desk_csp(), port, port);
        made_for = port;
    }
    return csp;
}

int rf_desk_live_passive(struct MHD_Connection *c, const char *method, const char *url)
{
    if (strcmp(method, "GET") != 0)
        return 0;
    if (strcmp(url, "/board/changes") == 0)
        return 1;
    return strcmp(url, "/") == 0 &&
           MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Refuge-Refresh") != NULL;
}

enum MHD_Result rf_desk_live_script(struct MHD_Connection *c)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(sizeof(board_js) - 1, (void *)board_js,
                                                             MHD_RESPMEM_PERSISTENT);
    return rf_desk_send(c, r, MHD_HTTP_OK, "text/javascript; charset=utf-8", NULL);
}

enum MHD_Result rf_desk_live_changes(struct rf_ctx *x, struct MHD_Connection *c)
{
    char mark[80], body[128];
    int k = 0;
    if (rf_desk_live_mark(x, mark, sizeof(mark)) == 0)
        k = snprintf(body, sizeof(body), "{\"mark\":\"%s\"}", mark);
    if (k <= 0 || (size_t)k >= sizeof(body)) {
        static const char none[] = "{}";
        struct MHD_Response *r =
            MHD_create_response_from_buffer(sizeof(none) - 1, (void *)none, MHD_RESPMEM_PERSISTENT);
        return rf_desk_send(c, r, MHD_HTTP_INTERNAL_SERVER_ERROR, "application/json", NULL);
    }
    return rf_desk_send(c, rf_desk_response_of((const uint8_t *)body, (size_t)k), MHD_HTTP_OK,
                        "application/json", NULL);
}
