/*
 * routes.h - the route tables the HTTP layer dispatches on. Data, not code:
 * pages.c owns the person's pages, api.c the staff API; http.c matches
 * method + path against both (exact paths first, then prefixes).
 */
#ifndef RF_ROUTES_H
#define RF_ROUTES_H

#include "server/http.h"
#include "server/srv.h"

#include <stddef.h>

extern const struct rf_route rf_page_routes[];
extern const size_t rf_page_routes_n;
extern const struct rf_route rf_api_routes[];
extern const size_t rf_api_routes_n;

/* Called once at start-up (pre-rendering static pages, API nonce cache). */
int rf_pages_init(struct rf_srv *srv);
void rf_pages_free(void);
int rf_api_init(struct rf_srv *srv);
void rf_api_free(struct rf_srv *srv);

/* The answer for a path no route matches, and for a wrong method (the
 * person gets an HTML page, /api/ gets JSON). Owned by pages.c / api.c. */
int rf_pages_not_found(struct rf_req *r);
int rf_api_not_found(struct rf_req *r);
/* The person's error page for a request the HTTP layer refuses itself
 * (status 400, 405, 413, 503, ...), in their language. Owned by pages.c;
 * nonzero (nothing answered) while the pages are not initialised. */
int rf_pages_refuse(struct rf_req *r, unsigned status);

#endif
