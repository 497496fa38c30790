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

#endif
