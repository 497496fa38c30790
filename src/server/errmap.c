/*
 * errmap.c - the one table from rf_err to what a request answers
 * (errmap.h).
 *
 * answers[] is the vocabulary: each distinct answer once. errs[] has a row
 * for every rf_err (RF_OK .. RF_ERR_MIN, checked at compile time and by
 * tests/unit/errmap_test.c), naming two answers: the dispatcher's when a
 * handler fails with it, and the one for a failed store operation (the API
 * says it, and its page is what the person sees when saving failed). The
 * dispatcher's refusals by status read answers[] by status.
 *
 * The texts are for developers and API clients (English, no data); what a
 * person reads is the page's text in their language (po/).
 */
#include "server/errmap.h"
#include "lib/err.h"

#include <stddef.h>

enum {
    A_NONE, /* 0: what a missing row of errs[] would name (tests catch it) */
    A_BAD,
    A_UNAUTHORIZED,
    A_NOT_FOUND,
    A_METHOD,
    A_TOO_LARGE,
    A_BUSY,
    A_INTERNAL,
    S_NOT_FOUND,
    S_EXISTS,
    S_NO_SPACE,
    S_BUSY,
    S_STORE,
    A_COUNT
};

#define INTERNAL_TEXT "The server could not handle this request."

static const struct rf_answer answers[A_COUNT] = {
    [A_NONE] = {0, NULL, NULL, RF_PE_SERVER},
    /* the dispatcher's: a refusal by status, or a handler's failure */
    [A_BAD] = {400, "bad_request", "The request is malformed.", RF_PE_BAD},
    [A_UNAUTHORIZED] = {401, "internal", INTERNAL_TEXT, RF_PE_SERVER},
    [A_NOT_FOUND] = {404, "not_found", "Nothing here.", RF_PE_NOTFOUND},
    [A_METHOD] = {405, "method_not_allowed", "This method is not allowed here.", RF_PE_METHOD},
    [A_TOO_LARGE] = {413, "too_large", "The request is too large.", RF_PE_BAD},
    [A_BUSY] = {503, "busy", "The server is busy. Try again in a minute.", RF_PE_BUSY},
    [A_INTERNAL] = {500, "internal", INTERNAL_TEXT, RF_PE_SERVER},
    /* a store operation's: the API's answer; the person's page when saving failed */
    [S_NOT_FOUND] = {404, "not_found", "no such object", RF_PE_NOTSAVED},
    [S_EXISTS] = {409, "exists", "already exists", RF_PE_NOTSAVED},
    [S_NO_SPACE] = {503, "no_space", "the server is out of space; try later", RF_PE_NOTSAVED},
    [S_BUSY] = {503, "busy", "the server is busy; try again shortly", RF_PE_BUSY},
    [S_STORE] = {503, "store", "storage error; try again later", RF_PE_NOTSAVED},
};

/* The dispatcher's refusals by status (the first row of a status wins). */
static const unsigned char refusals[] = {A_BAD,       A_UNAUTHORIZED, A_NOT_FOUND, A_METHOD,
                                         A_TOO_LARGE, A_BUSY,         A_INTERNAL};

static const struct {
    unsigned char failure; /* a handler failed with it */
    unsigned char store;   /* a store operation failed with it */
} errs[] = {
    [-RF_OK] = {A_INTERNAL, S_STORE},
    [-RF_ERR_NOMEM] = {A_INTERNAL, S_STORE},
    [-RF_ERR_TRUNCATED] = {A_BAD, S_STORE},
    [-RF_ERR_FORMAT] = {A_BAD, S_STORE},
    [-RF_ERR_VERSION] = {A_BAD, S_STORE},
    [-RF_ERR_LIMIT] = {A_TOO_LARGE, S_STORE},
    [-RF_ERR_DECRYPT] = {A_INTERNAL, S_STORE},
    [-RF_ERR_NOT_RECIPIENT] = {A_INTERNAL, S_STORE},
    [-RF_ERR_SIGNATURE] = {A_UNAUTHORIZED, S_STORE},
    [-RF_ERR_IO] = {A_INTERNAL, S_STORE},
    [-RF_ERR_NOSPACE] = {A_INTERNAL, S_NO_SPACE},
    [-RF_ERR_NOT_FOUND] = {A_NOT_FOUND, S_NOT_FOUND},
    [-RF_ERR_EXISTS] = {A_INTERNAL, S_EXISTS},
    [-RF_ERR_BUSY] = {A_BUSY, S_BUSY},
    [-RF_ERR_INVALID] = {A_BAD, S_STORE},
    [-RF_ERR_CRYPTO] = {A_INTERNAL, S_STORE},
    [-RF_ERR_DB] = {A_INTERNAL, S_STORE},
    [-RF_ERR_ROSTER] = {A_INTERNAL, S_STORE},
    [-RF_ERR_PASSPHRASE] = {A_INTERNAL, S_STORE},
    [-RF_ERR_AUTH] = {A_UNAUTHORIZED, S_STORE},
    [-RF_ERR_NET] = {A_INTERNAL, S_STORE},
    [-RF_ERR_PROTOCOL] = {A_INTERNAL, S_STORE},
    [-RF_ERR_CANCELLED] = {A_INTERNAL, S_STORE},
};

_Static_assert(sizeof(errs) / sizeof(errs[0]) == 1 - RF_ERR_MIN, "one row for every rf_err");

const struct rf_answer *rf_errmap_failure(int err)
{
    if (err > 0 || err < RF_ERR_MIN)
        return &answers[A_INTERNAL];
    return &answers[errs[-err].failure];
}

const struct rf_answer *rf_errmap_store(int err)
{
    if (err > 0 || err < RF_ERR_MIN)
        return &answers[S_STORE];
    return &answers[errs[-err].store];
}

const struct rf_answer *rf_errmap_refusal(unsigned status)
{
    for (size_t i = 0; i < sizeof(refusals); i++)
        if (answers[refusals[i]].status == status)
            return &answers[refusals[i]];
    return &answers[A_INTERNAL];
}
