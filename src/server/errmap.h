/*
 * errmap.h - what a failure becomes for whoever asked: one table from each
 * rf_err to the HTTP status, the API's error code and message, and the
 * person's error page (errmap.c). The HTTP layer (http.c), the staff API
 * (api.c, api_team.c) and the person's pages (pages*.c) all read it, so an
 * error answers the same way wherever it surfaces, and a new rf_err is one
 * row.
 *
 * This header names pages only by enum: it includes no page or template
 * header, so http.c may include it without calling up into the pages.
 */
#ifndef RF_SERVER_ERRMAP_H
#define RF_SERVER_ERRMAP_H

/* The person's error pages: a flag of pages/error.html each (pages.c holds
 * the flag and each page's own status). */
enum rf_page_err {
    RF_PE_NOTFOUND,
    RF_PE_CSRF,
    RF_PE_BAD,
    RF_PE_BUSY,
    RF_PE_TOOLONG,
    RF_PE_TOOLARGE,
    RF_PE_EMPTY,
    RF_PE_NOTOPEN,
    RF_PE_NOTSAVED,
    RF_PE_EXPIRED,
    RF_PE_SESSION,
    RF_PE_QUOTA,
    RF_PE_SERVER,
    RF_PE_METHOD,
};

/* One answer: the HTTP status, the API's {"error": code, "message":
 * message} (message is also the plain-text body where no page can be
 * rendered), and the person's page. */
struct rf_answer {
    unsigned status;
    const char *code;
    const char *message;
    enum rf_page_err page;
};

/* A handler that failed with err and did not answer: the dispatcher's
 * answer (http.c). Never NULL; an unknown err answers 500 "internal". */
const struct rf_answer *rf_errmap_failure(int err);
/* A store operation that failed with err: the staff API's answer
 * (rf_api_store_error) and, by page, the person's when saving failed.
 * Never NULL; an unknown err answers 503 "store". */
const struct rf_answer *rf_errmap_store(int err);
/* A refusal with status before or instead of a handler (limits, malformed
 * requests, no route, wrong method): its code, message and page. Never
 * NULL; a status without a row answers as 500 "internal" does (the caller
 * keeps its status). */
const struct rf_answer *rf_errmap_refusal(unsigned status);

#endif
