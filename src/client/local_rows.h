/*
 * local_rows.h - a case's summary in three steps (local.c), so that a
 * sync's summaries are built on every CPU (local_refresh.c): the rows are
 * read on the thread that owns the database, the summary is built and
 * sealed on any thread, and written back on the owning thread, in order.
 * Internal to the client's local database.
 */
#ifndef RF_CLIENT_LOCAL_ROWS_H
#define RF_CLIENT_LOCAL_ROWS_H

#include "client/cache.h"
#include "client/lckpt.h"
#include "client/local.h"
#include "client/state.h"
#include "lib/buf.h"

#include <jansson.h>
#include <stdint.h>

#define RF_LOCAL_PLAIN_MAX (4 * 1024 * 1024) /* an object's plaintext read whole */
#define RF_LOCAL_ROW_MAX (8 * 1024 * 1024)   /* a sealed row */

/* The local case database of one home (local.c; the digest in
 * local_digest.c). */
struct rf_local {
    struct rf_cache *c;
    const struct rf_staff_keys *k;
    uint8_t *key; /* sodium_malloc, 32 bytes */
    struct rf_roster **rosters;
    size_t nrosters;
    /* checkpoints (lckpt.h): the one the next update may use, the running
     * chain of the pass in progress, what the last update did with it */
    struct rf_ckpt use;
    int use_set;
    struct rf_lckpt_run run;
    struct rf_local_ckpt_result res;
    struct rf_ckmemo *ckmemo; /* the case keys in memory, during a large pass */
    int64_t first_left;       /* the pass's first object left without a digest */
    struct rf_prekeys *prekeys; /* envelopes' keys opened ahead (prekeys.h), or NULL */
};

/* A row sealed as JSON (compact) with l's row key, ad its name. */
int rf_local_seal_json(const struct rf_local *l, const char *ad, json_t *j, struct rf_buf *out);
/* v's string, or dflt. */
const char *rf_local_str_or(json_t *v, const char *dflt);

struct rf_case_rows {
    const char *case_id;   /* the caller's, lives as long as the rows */
    struct rf_buf digests; /* its readable digest rows as stored (sealed):
                            * i64 seq | u64 n | n bytes, in seq order */
    struct rf_cobj *objs;  /* its objects (not for the team's configuration) */
    size_t nobj, objcap;
    struct rf_ev *outbox; /* this client's queued events on it, opened */
    size_t nout;
    /* built */
    int rc;
    int64_t last_seq;
    struct rf_buf sealed, board; /* the sealed summary and board rows */
};

void rf_case_rows_init(struct rf_case_rows *r);
void rf_case_rows_free(struct rf_case_rows *r);
/* Empties r for its next case (its buffers kept). */
void rf_case_rows_reset(struct rf_case_rows *r);
/* An rf_cache_digests callback: one digest row appended to r->digests. */
int rf_case_rows_keep_digest(void *ctx, int64_t seq, const uint8_t *blob, size_t n);
/* On the thread that owns l's database: the rows of case_id into r. */
int rf_local_case_read(struct rf_local *l, const char *case_id, struct rf_case_rows *r);
/* The same, but only r reset for case_id and its outbox: the caller adds
 * its digests and objects (a refresh of many cases reads them in a scan). */
int rf_local_case_read_outbox(struct rf_local *l, const char *case_id, struct rf_case_rows *r);
/* Any thread: the summary from r's rows, sealed; r->rc says how it went. */
void rf_local_case_build(struct rf_local *l, struct rf_case_rows *r);
/* On the owning thread, in the caller's transaction: r's rows written. */
int rf_local_case_write(struct rf_local *l, const struct rf_case_rows *r);
/* The summaries of cases[0..n) (each once), built on up to nthreads
 * threads and written in order: the same rows as rf_local_refresh of each
 * in turn. */
int rf_local_refresh_all(struct rf_local *l, const char (*cases)[RF_CASE_ID_LEN + 1], size_t n,
                         int nthreads);

/* An event of a digest row as JSON, and back (local_ev.c). */
json_t *rf_local_ev_to_json(const struct rf_ev *e);
int rf_local_ev_from_json(struct rf_ev *e, json_t *j);
/* A verified event's packed digest row (lib/evrow.h) appended to out (a
 * secure buffer): hash is its signed bytes' hash. */
int rf_local_ev_pack(struct rf_buf *out, const struct rf_ev *e, const uint8_t hash[32]);
/* The event of a packed digest row p[0..n) (hash, if not NULL, gets the
 * row's): RF_ERR_FORMAT for a row rf_local_ev_pack could not have written. */
int rf_local_ev_unpack(struct rf_ev *e, uint8_t hash[32], const uint8_t *p, size_t n);

#endif
