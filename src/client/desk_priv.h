/*
 * desk_priv.h - what desk.c (HTTP, the gate, locking, background sync) and
 * desk_pages.c (the board and case pages) share. Nothing outside the desk
 * includes this.
 */
#ifndef RF_CLIENT_DESK_PRIV_H
#define RF_CLIENT_DESK_PRIV_H

#include "client/cmd.h"
#include "lib/buf.h"
#include "lib/codename.h"
#include "lib/tmpl.h"

#include <jansson.h>
#include <time.h>

/* The board's filters, as the GET form sends them (borrowed strings);
 * page: the page of the list (1-based, RF_DESK_PAGE cases each; NULL: 1). */
struct rf_desk_query {
    const char *stage, *assignee, *tag, *q;
    const char *page;
};
#define RF_DESK_PAGE 100

/* Renders page of the desk's page set (desk_tmpl.c). */
int rf_desk_render(struct rf_buf *out, enum rf_lang lang, const char *page,
                   const struct rf_tvars *v);
const char *rf_desk_csp(void);
const char *rf_desk_tr(enum rf_lang lang, const char *msgid);
extern const char *const rf_desk_lang_codes[RF_LANG_COUNT];

/* Fill v for the board / a case page (x locked by the caller). Case:
 * RF_ERR_NOT_FOUND when this computer has no such case; marks the case
 * read. */
int rf_desk_board(struct rf_ctx *x, const struct rf_desk_query *q, struct rf_tvars *v);
int rf_desk_case(struct rf_ctx *x, const char *cid, enum rf_lang lang, struct rf_tvars *v);

/* ---- the file pages (desk_files.c) ---- */
#include <microhttpd.h>
#include <pthread.h>

/* One file request: everything desk.c lends desk_files.c. */
struct rf_desk_fctx {
    struct rf_ctx *x; /* locked by the caller (mu) */
    struct MHD_Connection *c;
    enum rf_lang lang;
    struct rf_tvars *v;  /* the session's common variables, set */
    struct rf_buf *page; /* the desk's page buffer (secure) */
    pthread_mutex_t *mu; /* held now; a download's callback takes it later */
    time_t *last_active; /* under mu: a download in progress is use (idle lock) */
};

/* Adds the desk's security headers, CSP csp (NULL: the pages'), the
 * Content-Type type (NULL: none), queues r and destroys it (desk.c). */
enum MHD_Result rf_desk_send(struct MHD_Connection *c, struct MHD_Response *r, unsigned status,
                             const char *type, const char *csp);
/* A response holding a copy of p, wiped before it is freed (desk.c). */
struct MHD_Response *rf_desk_response_of(const uint8_t *p, size_t n);
/* Renders page with f->v into f->page and sends it as HTML. */
enum MHD_Result rf_desk_send_page(struct rf_desk_fctx *f, unsigned status, const char *page);
/* /case/CID/ACTION where ACTION starts with "file/": GET the page,
 * download, preview.png; POST strip. */
enum MHD_Result rf_desk_file(struct rf_desk_fctx *f, const char *cid, const char *action,
                             int is_post);
/* The Content-Disposition value for an attachment of the person's file
 * person_name (suffix inserted before the extension): the name made safe
 * (rf_filemeta_safe_name: no separators, controls or bidi controls), then
 * an ASCII filename="..." fallback (only [A-Za-z0-9._-+() ]) and the RFC
 * 5987 filename*=UTF-8''... (attr-chars, the rest percent-encoded). */
int rf_desk_disposition(char *out, size_t cap, const char *person_name, const char *suffix);
/* ---- the board's automatic refresh (desk_live.c, board.js) ---- */
/* The local database's change mark, "A.B.C" (rf_cache_mark). */
int rf_desk_live_mark(struct rf_ctx *x, char *out, size_t cap);
/* The board page's CSP: the pages' one plus /board.js and its fetches. */
const char *rf_desk_live_csp(uint16_t port);
/* 1 when the request is the refresh script's (not use of the desk: it does
 * not hold off the idle lock). */
int rf_desk_live_passive(struct MHD_Connection *c, const char *method, const char *url);
enum MHD_Result rf_desk_live_script(struct MHD_Connection *c);
enum MHD_Result rf_desk_live_changes(struct rf_ctx *x, struct MHD_Connection *c);

/* The team page (desk_team.c). si: the desk's sync status. *admin:
 * whether this caseworker is an admin on the roster this client verified
 * (the page shows invite, approve and remove only then). */
struct rf_desk_syncinfo {
    int failed;     /* the last sync failed */
    unsigned every; /* background sync every N seconds, 0: never */
};
int rf_desk_team(struct rf_ctx *x, enum rf_lang lang, const struct rf_desk_syncinfo *si,
                 struct rf_tvars *v, int *admin);
/* Whether this caseworker is an admin on the verified roster: 1 yes, 0 no,
 * -1 the roster cannot be verified now (offline, or it does not verify):
 * the desk's gate for the team's POSTs (the CLI's functions check again). */
int rf_desk_team_is_admin(struct rf_ctx *x);
/* The fingerprints the server's enrolled keys named name have (list
 * "server_fps"), for the refusal page when the typed one does not match. */
int rf_desk_team_fingerprints(struct rf_ctx *x, const char *name, struct rf_tvars *v);

#endif
