/*
 * pg_internal.h - what the files of the PostgreSQL backend share
 * (store_pg.c: connections, statements, schema, open/close, counts;
 * store_pg_read.c: reads; store_pg_write.c: rf_store_apply and retention;
 * store_pg_migrate.c: rows out and in for a migration).
 * Nothing outside them may include it.
 */
#ifndef RF_PG_INTERNAL_H
#define RF_PG_INTERNAL_H

#include "store/store_internal.h"

#include "store/pq_dl.h" /* libpq, opened at run time */
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define PG_READERS_MAX 8
#define PG_SETTING_KEY_MAX 128
#define PG_CASE_ID_TRIES 16
#define PG_PARAMS_MAX 8

enum pg_stmt {
    P_SETTING_PUT,
    P_SETTING_GET,
    P_SOURCE_BY_LOOKUP,
    P_SOURCE_BY_CASE,
    P_SOURCE_INSERT,
    P_SEQ_NEXT,
    P_OBJECT_INSERT,
    P_OBJECT_DELETE,
    P_BLOB_REFERENCED,
    P_TOKEN_PUT,
    P_TOKEN_USE,
    P_STAFF_PUT,
    P_STAFF_GET,
    P_ROSTER_PUT,
    P_ROSTER_MAX,
    P_ROSTER_LATEST,
    P_ROSTER_GET,
    P_OBJECTS_SINCE,
    P_OBJECTS_OF_SOURCE,
    P_OBJECT_GET,
    P_OBJECT_DATA,
    P_OBJECTS_RANGE,
    P_STAFF_LIST,
    P_GRANT_ID_NEXT,
    P_GRANT_PUT,
    P_GRANTS_FOR,
    P_ORDER_LOCK,
    P_AUDIT_LAST,
    P_AUDIT_INSERT,
    P_AUDIT_LIST,
    P_CASE_SCHEDULE,
    P_PURGE_NEXT,
    P_PURGE_BLOBS,
    P_PURGE_OBJECTS,
    P_PURGE_SOURCE,
    P_NONCE_PUT,
    P_NONCE_PRUNE,
    P_SESS_PUT,
    P_SESS_GET,
    P_SESS_TOUCH,
    P_SESS_DELETE,
    P_SESS_COUNT,
    P_SESS_CHARGE,
    P_SESS_EXISTS,
    P_SESS_REAP,
    P_SESS_LIVE,
    P_BEGIN,
    P_TXID,
    P_SEQ_RESERVE,
    P_OBJECT_INSERT_AT,
    P_MARK_PUT,
    P_MARK_GET,
    P_MARK_PRUNE,
    P_COUNT
};

struct pgconn {
    PGconn *db;
    uint64_t prepared; /* bit i: statement i is prepared on this connection */
};

/* Parameters of one statement, all sent in binary. */
struct pgp {
    int n;
    const char *v[PG_PARAMS_MAX];
    int len[PG_PARAMS_MAX];
    int fmt[PG_PARAMS_MAX];
    char num[PG_PARAMS_MAX][8];
};

struct rf_store {
    struct rf_store_files files;
    char *url;
    char *datadir; /* DIR (backup.c builds DIR/tmp paths for SQLite) */
    int users_fd;  /* DIR/users: LOCK_SH while open (LOCK_EX: alone, recovering) */

    struct pgconn w;
    unsigned char writer[16]; /* this process's row in commit_marks (random) */
    int64_t batch;            /* the number of its last batch there */
    int64_t xid;              /* the current batch's transaction (rf_pg_begin) */
    struct pg_call *calls;    /* the pipelined batch (store_pg_write.c) */
    struct pgp *params;
    size_t calls_cap;

    pthread_mutex_t rmu; /* the reader pool */
    pthread_cond_t rcv;
    struct pgconn readers[PG_READERS_MAX];
    struct pgconn *idle[PG_READERS_MAX];
    size_t n_idle, n_open;
};

void rf_pgp_i64(struct pgp *p, int64_t v);
void rf_pgp_bytes(struct pgp *p, const void *data, size_t n);
void rf_pgp_text(struct pgp *p, const char *s);
void rf_pgp_null(struct pgp *p);

/* Runs statement id (prepared on first use on c) with p (NULL: none);
 * *res (binary results) is the caller's to PQclear when 0 is returned. */
int rf_pg_exec(struct pgconn *c, enum pg_stmt id, const struct pgp *p, PGresult **res);
/* Runs a statement that returns nothing of interest (rows affected in
 * *changed if not NULL). */
int rf_pg_run(struct pgconn *c, enum pg_stmt id, const struct pgp *p, uint64_t *changed);
/* One statement of a pipeline: res its result on success (the caller clears). */
struct pg_call {
    enum pg_stmt id;
    const struct pgp *p; /* NULL: no parameters */
    PGresult *res;
};
/* Runs calls[0..n) in one round trip (libpq's pipeline mode: every
 * statement sent, then one sync): 0 if every one succeeded, with its result
 * in calls[i].res; else the first error (statements after a failed one are
 * not run by PostgreSQL), every res NULL, and a transaction block the
 * statements were in is aborted (the caller rolls it back). */
int rf_pg_pipeline(struct pgconn *c, struct pg_call *calls, size_t n);
/* Runs plain SQL without parameters (BEGIN, SAVEPOINT, ...). */
int rf_pg_sql(struct pgconn *c, const char *sql);
/* COMMIT: 0 only if PostgreSQL committed (and, synchronous_commit on,
 * flushed the commit record). */
int rf_pg_commit(struct pgconn *c);
/* BEGIN, and *xid the transaction's id (txid_current), in one round trip;
 * on an idle connection that broke, once more on a fresh one. */
int rf_pg_begin(struct pgconn *c, int64_t *xid);
/* After a COMMIT whose answer was lost with its connection: asks PostgreSQL,
 * on c reconnected (retried every PG_RESOLVE_PAUSE_MS for PG_RESOLVE_S
 * seconds while PostgreSQL restarts), whether the transaction xid, which
 * wrote batch into writer's row of commit_marks, committed: 1 it did, 0 it
 * did not, -1 unknown (PostgreSQL unreachable all that time). The mark, not
 * xid's status, decides: after a crash PostgreSQL hands out again the ids
 * whose WAL never reached the disk, so "committed" may be another
 * transaction's; xid's status only tells when nothing runs under it. */
int rf_pg_committed(struct pgconn *c, int64_t xid, const unsigned char writer[16], int64_t batch);
#define PG_RESOLVE_S 10
#define PG_RESOLVE_PAUSE_MS 250
/* 1 if PostgreSQL was up until this failure (the caller logs it), 0 if an
 * outage is already logged (the failure is counted; the first reconnection
 * logs the count). */
int rf_pg_outage_failure(void);
/* Reconnects c if its connection broke (a PostgreSQL restart). */
int rf_pg_ensure(struct pgconn *c);
/* 1 if c is inside a transaction block (possibly failed) */
int rf_pg_in_tx(struct pgconn *c);

/* Column readers of binary results. */
int64_t rf_pg_i64(const PGresult *r, int row, int col);
int rf_pg_fixed(void *dst, size_t n, const PGresult *r, int row, int col);
int rf_pg_text(char *dst, size_t cap, const PGresult *r, int row, int col);

/* *empty = 1 if the database's schema holds no table, sequence, view or
 * refuge function (an import may go there). */
int rf_pg_empty(struct pgconn *c, int *empty);
/* Inside an open transaction: takes the migration lock, checks the
 * database is still empty (RF_ERR_EXISTS) and creates the whole schema. */
int rf_pg_schema_create(struct pgconn *c);

int rf_pg_reader_get(struct rf_store *st, struct pgconn **out);
void rf_pg_reader_put(struct rf_store *st, struct pgconn *c);

/* The backend's entries (ops table in store_pg.c). */
int rf_pg_setting_get(struct rf_store *st, const char *key, struct rf_buf *out);
int rf_pg_source_by_lookup(struct rf_store *st, const uint8_t lookup_id[32], struct rf_source *out);
int rf_pg_source_by_case(struct rf_store *st, const char *case_id, struct rf_source *out);
int rf_pg_objects_since(struct rf_store *st, int64_t after, struct rf_object *out, size_t cap,
                        size_t *n);
int rf_pg_objects_of_source(struct rf_store *st, int64_t source_id, unsigned kinds,
                            struct rf_object *out, size_t cap, size_t *n);
int rf_pg_object_get(struct rf_store *st, int64_t seq, struct rf_object *out);
int rf_pg_object_read(struct rf_store *st, int64_t seq, struct rf_buf *out);
int rf_pg_objects_range(struct rf_store *st, int64_t after, int64_t upto, size_t cap,
                        uint64_t max_size, rf_store_range_fn fn, void *ctx);
int rf_pg_object_open(struct rf_store *st, int64_t seq, int *fd, uint64_t *size);
int rf_pg_staff_get(struct rf_store *st, const uint8_t sign_pk[32], struct rf_staff_rec *out);
int rf_pg_roster_latest(struct rf_store *st, uint32_t *version, struct rf_buf *raw);
int rf_pg_roster_get(struct rf_store *st, uint32_t version, struct rf_buf *raw);
int rf_pg_staff_list(struct rf_store *st, struct rf_staff_rec *out, size_t cap, size_t *n);
int rf_pg_grants_for(struct rf_store *st, const uint8_t keyid[8], int64_t after,
                     struct rf_grant_rec *out, size_t cap, size_t *n);
int rf_pg_audit_list(struct rf_store *st, uint64_t after, struct rf_audit_entry *out, size_t cap,
                     size_t *n);
int rf_pg_checkpoint(struct rf_store *st);
/* the primitives of rf_store_apply and rf_store_purge (store_pg_write.c) */
extern const struct rf_batch_ops rf_pg_batch;
/* store_pg_migrate.c */
int rf_pg_export(struct rf_store *st, int (*emit)(void *ctx, const struct rf_row *row), void *ctx);
int rf_pg_import_begin(struct rf_store *st);
int rf_pg_import_row(struct rf_store *st, const struct rf_row *row);
int rf_pg_import_end(struct rf_store *st, int commit);
int rf_pg_session(struct rf_store *st, struct rf_sess_call *c);

#endif
