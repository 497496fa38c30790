/*
 * store_internal.h - what the store's files share and nothing outside
 * src/store may include: the data directory's file handles, the blob
 * directory housekeeping used at open and after commits, and the fault
 * injection state. Backend-neutral: the SQLite backend uses it now and a
 * PostgreSQL backend would use it the same way (blobs stay on local disk).
 *
 * Layout of a data directory (created 0700):
 *   DIR/refuge.db (+ -wal, -shm)  the SQLite database (backend-specific)
 *   DIR/blobs/<32 hex>            committed blob files, named by object rows
 *   DIR/tmp/<32 hex>.tmp          blobs being written; never read by anyone
 *   DIR/lock                      flock()ed by the process that did recovery
 *
 * Fault injection: once armed with (after_n_ok, err), fault points (each
 * rf_blob_write call, each fsync in rf_blob_commit, each database commit)
 * succeed after_n_ok more times and then fail with err, and keep failing
 * (a full disk stays full) until re-armed or disarmed with after_n_ok < 0
 * or err == 0.
 */
#ifndef RF_STORE_INTERNAL_H
#define RF_STORE_INTERNAL_H

#include "store/store.h"

#include <pthread.h>
#include <stdint.h>

/* Every backend's struct rf_store begins with its struct rf_store_files
 * (rf_store_files_of), so that the blob layer finds the files of a store
 * without calling into the backend; the backend asserts it with
 * static_assert(offsetof(struct rf_store, files) == 0). */
struct rf_store_ops;
struct rf_sess_call;

/* Names of blobs a write deleted the rows of (dead[i]: ops[i]'s, "" none),
 * unlinked once the transaction committed; also the purge's list. */
struct rf_dead {
    char (*name)[RF_BLOB_NAME_LEN + 1];
    size_t cap;
};
struct rf_store_files {
    const struct rf_store_ops *ops; /* the backend (store.c dispatches through it) */
    int dir_fd;                     /* DIR */
    int blobs_fd;                   /* DIR/blobs */
    int tmp_fd;                     /* DIR/tmp */
    int lock_fd;                    /* DIR/lock, flock()ed if this opener did recovery, else -1 */
    int readonly;                   /* rf_store_open_readonly: no write of any kind */
    pthread_mutex_t fault_mu;
    int fault_armed;
    int fault_left; /* successes still allowed */
    int fault_err;
    /* The backend's "still referenced?" predicate, handed in at open: 1 if an
     * object row names blob name, 0 if none, or an rf_err. The blob layer
     * asks it before discarding a blob and never calls the backend else. */
    int (*referenced)(struct rf_store *st, const char *name);
    struct rf_blob_writers *writers; /* rf_store_blob_writers, or NULL: every write synchronous */
    /* The writer: its lock (a batch, a purge, a migration, everything on
     * the writer connection) and the names of the blobs its current batch
     * or purge deleted; the backend inits the lock and frees the names. */
    pthread_mutex_t wmu;
    struct rf_dead dead;
};

static inline struct rf_store_files *rf_store_files_of(struct rf_store *st)
{
    return (struct rf_store_files *)(void *)st;
}

/* Creates DIR, DIR/blobs, DIR/tmp (0700) and opens them; takes DIR/lock if
 * free (*recover = 1: this opener must run recovery). referenced is the
 * backend's predicate (see struct rf_store_files). */
int rf_blobdir_open(struct rf_store_files *f, const char *datadir, int *recover,
                    int (*referenced)(struct rf_store *st, const char *name));
void rf_blobdir_close(struct rf_store_files *f);
/* Deletes every file in DIR/tmp; *n receives how many. */
int rf_blobdir_clear_tmp(struct rf_store_files *f, long *n);
/* Calls referenced(ctx, name) for every well-named blob and unlinks those it
 * answers 0 for (orphans); *n receives how many went. A negative answer aborts
 * the sweep with that error. Fsyncs DIR/blobs if anything went. */
int rf_blobdir_sweep(struct rf_store_files *f, int (*referenced)(void *ctx, const char *name),
                     void *ctx, long *n);
/* Opens DIR and DIR/blobs read-only (no mkdir, no lock, no tmp): for
 * rf_store_open_readonly. A missing DIR/blobs leaves blobs_fd -1. */
int rf_blobdir_open_readonly(struct rf_store_files *f, const char *datadir);
/* Bytes and number of well-named files in DIR/blobs (0 if there is none). */
int rf_blobdir_usage(struct rf_store_files *f, uint64_t *bytes, uint64_t *files);
/* 1 if name is 32 lowercase hex digits. */
int rf_blob_name_valid(const char *name);
/* Size of the committed blob name: 0, RF_ERR_NOT_FOUND, RF_ERR_IO. */
int rf_blobdir_stat(struct rf_store_files *f, const char *name, uint64_t *size);
/* Opens a committed blob O_RDONLY|O_CLOEXEC. */
int rf_blobdir_open_blob(struct rf_store_files *f, const char *name, int *fd, uint64_t *size);
/* What every backend's object read and open do once the row gave either
 * inline bytes or a blob's name (blob non-empty): appends the blob's bytes to
 * out (its limit bounds them; out unchanged on failure), or hands back a
 * read-only fd at offset 0: the blob itself, or a memfd holding the inline
 * bytes. */
int rf_blobdir_read_blob(struct rf_store_files *f, const char *blob, struct rf_buf *out);
int rf_blobdir_object_fd(struct rf_store_files *f, const struct rf_buf *inl, const char *blob,
                         int *fd, uint64_t *size);
/* Unlinks committed blobs (after the rows naming them are gone), then
 * fsyncs DIR/blobs once. */
void rf_blobdir_unlink(struct rf_store_files *f, char (*names)[RF_BLOB_NAME_LEN + 1], size_t n);
/* blob_writer.c: large blobs written behind the sealing thread (its head).
 * A blob past RF_BLOB_ASYNC_MIN bytes asks rf_blob_async_begin for a place
 * (RF_ERR_BUSY: none free, it stays synchronous), then writes through
 * rf_blob_async_write (errors sticky); rf_blob_async_end (before the fsync)
 * and rf_blob_async_cancel return once nothing of it is in flight. */
#define RF_BLOB_ASYNC_MIN (1024 * 1024)
struct rf_blob_writers;
struct rf_blob_async;
int rf_blob_writers_start(struct rf_blob_writers **out, unsigned n);
void rf_blob_writers_stop(struct rf_blob_writers *w);
int rf_blob_async_begin(struct rf_blob_writers *w, int fd, uint64_t off,
                        struct rf_blob_async **out);
int rf_blob_async_write(struct rf_blob_async *a, const uint8_t *p, size_t n);
int rf_blob_async_end(struct rf_blob_async *a);
void rf_blob_async_cancel(struct rf_blob_async *a);
/* A fault point: 0, or the injected error. */
int rf_store_fault_hit(struct rf_store_files *f);
/* Removes the entry name of DIR/tmp: a file, or a directory a backup left
 * (backup_export.c: a temporary store, its files and its blobs/ and tmp/). */
int rf_blobdir_tmp_remove(struct rf_store_files *f, const char *name);
/* Maps an errno from write/fsync/rename to an rf_err. */
int rf_store_errno(int e);
/* put.c: every backend's rf_store_apply calls it on its ops before it
 * returns, whatever happened (ops[i].status set): tells each object op's put
 * that the store now answers for its blob, and deletes the blob of every
 * such op that failed (no row names it). */
void rf_store_settle(struct rf_store *st, struct rf_op *ops, size_t n);
/* put.c: 1 if an object of this kind must be a blob file on this store,
 * never bytes in a database row: the kinds a person may delete (replies,
 * POST /reply/delete) on a backend without secure delete, so that deleting
 * one unlinks its file and no database page or log segment ever held its
 * ciphertext. rf_op_object_put and the migration (migrate.c) obey it. */
int rf_store_blob_only(struct rf_store *st, unsigned kind);

/* ---- the batch driver (batch.c): rf_store_apply and rf_store_purge for
 * every backend ----
 *
 * One transaction; each op under its own savepoint, undone alone if it
 * fails while the others commit; group > 1 makes the next ops all-or-nothing
 * under one more savepoint (every op of a failed group gets the first
 * failure's status); a failure of the transaction itself (begin, commit, a
 * savepoint, the backend losing the transaction) fails every op with that
 * one error. The blobs of objects the batch deleted are unlinked only after
 * its COMMIT. rf_store_settle runs on the ops before it returns. */

/* Room for n names (grows, never shrinks; free(d->name) at close). */
int rf_dead_reserve(struct rf_dead *d, size_t n);

/* One case a purge transaction deleted (rf_batch_purge). */
struct rf_purge_case {
    int64_t id; /* 0: no expired case left */
    uint64_t objects;
    size_t blobs; /* their names in dead->name[0..blobs) */
};

/* A backend's primitives (its ops->batch), called under its writer lock. */
struct rf_batch_ops {
    /* A plain transaction: BEGIN (reconnecting first if the backend must),
     * COMMIT (0 only if durable), ROLLBACK; in_tx: 1 if the transaction is
     * still open (SQLite may roll it back on its own after an I/O error; a
     * lost connection takes it along). */
    int (*tx_begin)(struct rf_store *st);
    int (*tx_commit)(struct rf_store *st);
    void (*rollback)(struct rf_store *st);
    int (*in_tx)(struct rf_store *st);
    /* The savepoint of one op (group 0) or of a group (group 1). */
    int (*savepoint)(struct rf_store *st, int group);
    int (*release)(struct rf_store *st, int group);
    int (*rollback_to)(struct rf_store *st, int group);
    /* The ops (enum rf_op_type), each inside the transaction: its status;
     * an object delete puts the name of the row's blob (if any) in dead. */
    int (*setting_put)(struct rf_store *st, struct rf_op *op);
    int (*source_create)(struct rf_store *st, struct rf_op *op);
    int (*object_put)(struct rf_store *st, struct rf_op *op);
    int (*object_delete)(struct rf_store *st, struct rf_op *op, char dead[RF_BLOB_NAME_LEN + 1]);
    int (*token_put)(struct rf_store *st, struct rf_op *op);
    int (*token_use)(struct rf_store *st, struct rf_op *op);
    int (*staff_put)(struct rf_store *st, struct rf_op *op);
    int (*roster_put)(struct rf_store *st, struct rf_op *op);
    int (*grant_put)(struct rf_store *st, struct rf_op *op);
    int (*audit_append)(struct rf_store *st, struct rf_op *op);
    int (*case_schedule)(struct rf_store *st, struct rf_op *op);
    int (*nonce_put)(struct rf_store *st, struct rf_op *op);
    /* Optional (NULL: tx_begin, *applied 0): opens a batch's transaction;
     * *applied = 1: the backend ran every op itself (statuses and dead names
     * set), the driver goes straight to commit. */
    int (*batch_begin)(struct rf_store *st, struct rf_op *ops, size_t n, int *applied);
    /* Optional (NULL: the fault point, then tx_commit): commits a batch. */
    int (*batch_commit)(struct rf_store *st, int applied);
    /* Optional: after an op failed and its savepoint was rolled back, 1 if
     * its status means the connection, not the op, failed: the batch fails. */
    int (*op_sinks)(struct rf_store *st, int status);
    /* Optional: 1 if the batch's failure rc is to be logged (NULL: always). */
    int (*log_failure)(struct rf_store *st, int rc);
    /* Retention, inside the open transaction: finds the next expired case
     * after `after` and deletes it with its objects, their blobs' names in
     * dead (pc->id 0: none left); appends the purge's audit entry (and
     * prunes every expired nonce). */
    int (*purge_next)(struct rf_store *st, struct rf_dead *dead, int64_t after, uint32_t today,
                      uint32_t inactive, struct rf_purge_case *pc);
    int (*purge_audit)(struct rf_store *st, const char *target);
    /* Optional: after a purge, with what it deleted. */
    void (*purge_done)(struct rf_store *st, const struct rf_purge_counts *n);
};

/* rf_store_apply, for every backend (its ops->batch). */
int rf_batch_apply(struct rf_store *st, struct rf_op *ops, size_t n);
/* rf_store_purge, for every backend: one transaction per expired case
 * (its blobs unlinked after its commit), then the audit entry in one more. */
int rf_batch_purge(struct rf_store *st, uint32_t today, uint32_t inactive_days,
                   struct rf_purge_counts *out);

/* What both backends' ops share (batch.c). */
/* The checks of an object put before it writes: 0 and the object's size, or
 * the op's status. */
int rf_batch_object_check(struct rf_store_files *f, const struct rf_op *op, uint64_t *size);
/* A fresh case id: RFC 4648 base32, lower case, 50 random bits. */
void rf_batch_case_id(char out[RF_CASE_ID_LEN + 1]);
/* The slot of a signed request's time: nonces are kept by slot, never by time. */
int64_t rf_batch_nonce_slot(int64_t t);
/* 1 if an audit entry's fields may be stored (printable ASCII, bounded). */
int rf_batch_audit_ok(const char *action, const char *target, const uint8_t *req, size_t req_len);
/* Fills the entry after e->id and e->prev (set by the backend from the
 * chain's last link): day, actor, fields, hash. target NULL: "". */
int rf_batch_audit_fill(struct rf_audit_entry *e, const uint8_t actor[32], const char *action,
                        const char *target, const uint8_t *req, size_t req_len);

/* ---- backends (store.c dispatches every backend-specific call of store.h
 * through the opened store's ops; nothing outside src/store knows which
 * backend it runs on) ---- */
struct rf_store_ops {
    const char *name; /* "sqlite", "postgresql" */
    /* 1 if a deleted row's bytes are gone from the database's files once
     * the delete committed and rf_store_checkpoint ran (SQLite:
     * secure_delete zeroes them, the checkpoint truncates the WAL); 0 if
     * they stay in its pages and log until reused (PostgreSQL). On 0, the
     * kinds a person may delete are never stored inline (rf_store_blob_only). */
    int secure_delete;
    void (*close)(struct rf_store *st);
    int (*setting_get)(struct rf_store *st, const char *key, struct rf_buf *out);
    int (*source_by_lookup)(struct rf_store *st, const uint8_t lookup_id[32],
                            struct rf_source *out);
    int (*source_by_case)(struct rf_store *st, const char *case_id, struct rf_source *out);
    int (*objects_since)(struct rf_store *st, int64_t after, struct rf_object *out, size_t cap,
                         size_t *n);
    int (*objects_of_source)(struct rf_store *st, int64_t source_id, unsigned kinds,
                             struct rf_object *out, size_t cap, size_t *n);
    int (*object_get)(struct rf_store *st, int64_t seq, struct rf_object *out);
    int (*object_read)(struct rf_store *st, int64_t seq, struct rf_buf *out);
    int (*object_open)(struct rf_store *st, int64_t seq, int *fd, uint64_t *size);
    int (*objects_range)(struct rf_store *st, int64_t after, int64_t upto, size_t cap,
                         uint64_t max_size, rf_store_range_fn fn, void *ctx);
    int (*staff_get)(struct rf_store *st, const uint8_t sign_pk[32], struct rf_staff_rec *out);
    int (*roster_latest)(struct rf_store *st, uint32_t *version, struct rf_buf *raw);
    int (*roster_get)(struct rf_store *st, uint32_t version, struct rf_buf *raw);
    int (*staff_list)(struct rf_store *st, struct rf_staff_rec *out, size_t cap, size_t *n);
    int (*grants_for)(struct rf_store *st, const uint8_t keyid[8], int64_t after,
                      struct rf_grant_rec *out, size_t cap, size_t *n);
    int (*audit_list)(struct rf_store *st, uint64_t after, struct rf_audit_entry *out, size_t cap,
                      size_t *n);
    int (*checkpoint)(struct rf_store *st);
    int (*backup)(struct rf_store *st, int fd, struct rf_backup_info *info);
    int (*counts)(struct rf_store *st, struct rf_store_counts *out);
    int (*usage)(struct rf_store *st, struct rf_store_usage *out);
    /* rf_store_apply, rf_store_purge: the driver (batch.c) with these */
    const struct rf_batch_ops *batch;
    /* migrate.c: rows out, rows in (store.h) */
    int (*export_rows)(struct rf_store *st, int (*emit)(void *ctx, const struct rf_row *row),
                       void *ctx);
    int (*import_begin)(struct rf_store *st);
    int (*import_row)(struct rf_store *st, const struct rf_row *row);
    int (*import_end)(struct rf_store *st, int commit);
    /* person sessions (store.h; store_sqlite_sess.c, store_pg_sess.c): one
     * entry, the call's kind in c */
    int (*session)(struct rf_store *st, struct rf_sess_call *c);
};

/* One session call of store.h, as the backends receive it. */
enum rf_sess_kind {
    RF_SESS_PUT,
    RF_SESS_GET,
    RF_SESS_TOUCH,
    RF_SESS_DELETE,
    RF_SESS_COUNT,
    RF_SESS_CHARGE,
    RF_SESS_REAP,
    RF_SESS_LIVE,
};
struct rf_sess_call {
    enum rf_sess_kind kind;
    const uint8_t *id;                /* PUT: row->id */
    const struct rf_session_row *row; /* PUT */
    struct rf_session_row *out;       /* GET */
    int64_t now;
    int64_t until;      /* TOUCH */
    uint64_t max;       /* PUT: live rows allowed (0: any) */
    uint32_t day;       /* COUNT, CHARGE */
    uint64_t bytes;     /* COUNT, CHARGE */
    uint32_t max_msgs;  /* COUNT */
    uint64_t max_bytes; /* COUNT, CHARGE */
    uint64_t n;         /* REAP, LIVE: out */
};

/* The SQLite backend (store_sqlite*.c) and the PostgreSQL one (store_pg*.c). */
int rf_sqlite_open(struct rf_store **out, const char *datadir);
int rf_sqlite_open_readonly(struct rf_store **out, const char *datadir);
/* mode: RF_PG_OPEN, RF_PG_READONLY (rf_store_open_readonly), RF_PG_IMPORT
 * (rf_store_create_import: the database must be empty and is left so) */
enum { RF_PG_OPEN, RF_PG_READONLY, RF_PG_IMPORT };
int rf_pg_open(struct rf_store **out, const char *datadir, const char *url, int mode);

/* backup.c: rf_store_backup for every backend. make writes the snapshot, a
 * standalone SQLite database of the store's rows, to path (an empty file in
 * DIR/tmp); rf_backup_write streams it, the blobs it names and the manifest
 * (lib/archive.h). datadir: DIR. */
typedef int (*rf_backup_snapshot_fn)(struct rf_store *st, const char *path,
                                     struct rf_backup_info *info);
int rf_backup_write(struct rf_store *st, const char *datadir, rf_backup_snapshot_fn make, int fd,
                    struct rf_backup_info *info);
/* A standalone copy of the SQLite database file from, by VACUUM INTO path
 * (empty or absent), on a connection of its own. */
int rf_sqlite_vacuum_into(const char *from, const char *path);
/* backup_export.c: make for a backend whose database is not a SQLite file:
 * its rows exported (one snapshot) into a temporary SQLite store, copied to
 * path. */
int rf_backup_export_snapshot(struct rf_store *st, const char *path, struct rf_backup_info *info);

/* The schema of both backends, one migration step per row (schema.c):
 * migration[i] takes version i to i + 1, the same tables in each dialect. */
struct rf_migration {
    const char *sqlite;
    const char *pg;
};
extern const struct rf_migration rf_migrations[];
extern const int rf_schema_version;

/* The tables a migration carries (schema.c), indexed by enum rf_table
 * (RF_TAB_COUNTERS has none: each backend reads and sets its own counters).
 * cols: the column list, in row cell order, as both dialects spell it;
 * types: one letter per column: i integer, t text, b bytes; key: the ORDER BY
 * of an export. A schema step that adds a table or a column adds it here
 * too: an export refuses a database with one this list lacks. */
struct rf_table_desc {
    const char *name;
    const char *cols;
    const char *types;
    const char *key;
};
extern const struct rf_table_desc rf_tables[RF_TAB_COUNTERS];
/* Tables of the schema a migration deliberately leaves behind (state that
 * means nothing in another database, each with its reason in schema.c);
 * NULL-terminated. Every other table must be in rf_tables. */
extern const char *const rf_tables_not_carried[];
/* 1 if name is in rf_tables_not_carried */
int rf_table_not_carried(const char *name);

#endif
