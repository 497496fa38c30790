/*
 * sqlite_internal.h - what the files of the SQLite backend share
 * (store_sqlite.c: connections, statements, open/close; store_sqlite_read.c:
 * reads; store_sqlite_write.c: the ops of rf_store_apply and retention;
 * store_sqlite_migrate.c: rows out and in for a migration; backup.c).
 * Nothing outside them may include it.
 */
#ifndef RF_SQLITE_INTERNAL_H
#define RF_SQLITE_INTERNAL_H

#include "store/store_internal.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stddef.h>

#define READERS_MAX 8
#define BUSY_TIMEOUT_MS 10000
#define SETTING_KEY_MAX 128
#define CASE_ID_TRIES 16

enum stmt_id {
    S_BEGIN,
    S_COMMIT,
    S_ROLLBACK,
    S_SAVEPOINT,
    S_RELEASE,
    S_ROLLBACK_TO,
    S_GROUP_SAVEPOINT,
    S_GROUP_RELEASE,
    S_GROUP_ROLLBACK_TO,
    S_SETTING_PUT,
    S_SETTING_GET,
    S_SOURCE_BY_LOOKUP,
    S_SOURCE_BY_CASE,
    S_SOURCE_INSERT,
    S_OBJECT_INSERT,
    S_OBJECT_DELETE,
    S_BLOB_REFERENCED,
    S_TOKEN_PUT,
    S_TOKEN_USE,
    S_STAFF_PUT,
    S_STAFF_GET,
    S_ROSTER_PUT,
    S_ROSTER_MAX,
    S_ROSTER_LATEST,
    S_ROSTER_GET,
    S_OBJECTS_SINCE,
    S_OBJECTS_OF_SOURCE,
    S_OBJECT_GET,
    S_OBJECT_DATA,
    S_OBJECTS_RANGE,
    S_STAFF_LIST,
    S_GRANT_PUT,
    S_GRANTS_FOR,
    S_AUDIT_LAST,
    S_AUDIT_INSERT,
    S_AUDIT_LIST,
    S_CASE_SCHEDULE,
    S_PURGE_NEXT,
    S_PURGE_BLOBS,
    S_PURGE_OBJECTS,
    S_PURGE_SOURCE,
    S_NONCE_PUT,
    S_NONCE_PRUNE,
    S_SESS_PUT,
    S_SESS_GET,
    S_SESS_TOUCH,
    S_SESS_DELETE,
    S_SESS_COUNT,
    S_SESS_CHARGE,
    S_SESS_EXISTS,
    S_SESS_REAP,
    S_SESS_LIVE,
    S_COUNT
};

struct conn {
    sqlite3 *db;
    sqlite3_stmt *stmt[S_COUNT];
};

struct rf_store {
    struct rf_store_files files;
    char *dbpath;

    struct conn w;

    pthread_mutex_t rmu; /* the reader pool */
    pthread_cond_t rcv;
    struct conn readers[READERS_MAX];
    struct conn *idle[READERS_MAX];
    size_t n_idle, n_open;
};

/* The schema version this binary writes (migrations applied at open). */
int rf_sqlite_schema_version(void);
/* SQLite result code -> rf_err (0 for OK, DONE and ROW). */
int rf_sqlite_err(int rc);
/* The connection's prepared statement id (prepared on first use). */
int rf_sqlite_stmt(struct conn *c, enum stmt_id id, sqlite3_stmt **out);
/* Resets a statement and clears its bindings, ready for the next use. */
void rf_sqlite_done(sqlite3_stmt *s);
/* Runs a statement that returns no rows. */
int rf_sqlite_run(struct conn *c, enum stmt_id id);
/* Binds a byte range; an empty range binds an empty blob, never NULL. */
int rf_sqlite_bind_bytes(sqlite3_stmt *s, int i, const void *p, size_t n);
/* Copies a text column into dst (cap bytes with the NUL); RF_ERR_FORMAT if it does not fit. */
int rf_sqlite_copy_text(char *dst, size_t cap, sqlite3_stmt *s, int col);
/* Copies a blob column of exactly n bytes into dst. */
int rf_sqlite_copy_fixed(void *dst, size_t n, sqlite3_stmt *s, int col);

/* Borrows an idle reader connection (waits while all are busy) and gives it
 * back (store_sqlite.c's pool; the reads in store_sqlite_read.c use it). */
int rf_sqlite_reader_get(struct rf_store *st, struct conn **out);
void rf_sqlite_reader_put(struct rf_store *st, struct conn *c);

/* The backend's entries (store_internal.h's ops table, store.c dispatches). */
extern const struct rf_store_ops rf_sqlite_ops;
void rf_sqlite_close(struct rf_store *st);
int rf_sqlite_setting_get(struct rf_store *st, const char *key, struct rf_buf *out);
int rf_sqlite_source_by_lookup(struct rf_store *st, const uint8_t lookup_id[32],
                               struct rf_source *out);
int rf_sqlite_source_by_case(struct rf_store *st, const char *case_id, struct rf_source *out);
int rf_sqlite_objects_since(struct rf_store *st, int64_t after, struct rf_object *out, size_t cap,
                            size_t *n);
int rf_sqlite_objects_of_source(struct rf_store *st, int64_t source_id, unsigned kinds,
                                struct rf_object *out, size_t cap, size_t *n);
int rf_sqlite_object_get(struct rf_store *st, int64_t seq, struct rf_object *out);
int rf_sqlite_object_read(struct rf_store *st, int64_t seq, struct rf_buf *out);
int rf_sqlite_objects_range(struct rf_store *st, int64_t after, int64_t upto, size_t cap,
                            uint64_t max_size, rf_store_range_fn fn, void *ctx);
int rf_sqlite_object_open(struct rf_store *st, int64_t seq, int *fd, uint64_t *size);
int rf_sqlite_staff_get(struct rf_store *st, const uint8_t sign_pk[32], struct rf_staff_rec *out);
int rf_sqlite_roster_latest(struct rf_store *st, uint32_t *version, struct rf_buf *raw);
int rf_sqlite_roster_get(struct rf_store *st, uint32_t version, struct rf_buf *raw);
int rf_sqlite_staff_list(struct rf_store *st, struct rf_staff_rec *out, size_t cap, size_t *n);
int rf_sqlite_grants_for(struct rf_store *st, const uint8_t keyid[8], int64_t after,
                         struct rf_grant_rec *out, size_t cap, size_t *n);
int rf_sqlite_audit_list(struct rf_store *st, uint64_t after, struct rf_audit_entry *out,
                         size_t cap, size_t *n);
int rf_sqlite_checkpoint(struct rf_store *st);
int rf_sqlite_backup(struct rf_store *st, int fd, struct rf_backup_info *info);
int rf_sqlite_counts(struct rf_store *st, struct rf_store_counts *out);
int rf_sqlite_usage(struct rf_store *st, struct rf_store_usage *out);
/* the primitives of rf_store_apply and rf_store_purge (store_sqlite_write.c) */
extern const struct rf_batch_ops rf_sqlite_batch;
/* store_sqlite_migrate.c */
int rf_sqlite_export(struct rf_store *st, int (*emit)(void *ctx, const struct rf_row *row),
                     void *ctx);
int rf_sqlite_import_begin(struct rf_store *st);
int rf_sqlite_import_row(struct rf_store *st, const struct rf_row *row);
int rf_sqlite_import_end(struct rf_store *st, int commit);
int rf_sqlite_session(struct rf_store *st, struct rf_sess_call *c);

#endif
