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

/* The board's filters, as the GET form sends them (borrowed strings). */
struct rf_desk_query {
    const char *stage, *assignee, *tag, *q;
};

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
