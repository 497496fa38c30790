/*
 * store.h - the storage interface of the server. One interface, backends
 * behind it (SQLite now: store_sqlite.c; PostgreSQL later), chosen by
 * rf_store_open from the data directory's configuration.
 *
 * What is stored is only what DESIGN.md lets the server know: public keys,
 * signed rosters, ciphertext objects with sequence numbers, kind, padded size
 * and the day (days since 1970-01-01 UTC, never a time) they arrived, and
 * one-time enrollment token hashes. Never a codename, plaintext or address.
 *
 * Writes go through rf_store_apply: a batch of ops applied in one transaction
 * (each op under its own savepoint, so one failing op fails alone) that is
 * durable (fsynced) when the call returns. The group committer (commit.h)
 * feeds it batches from many requests. Reads may run on any thread at any
 * time, concurrently with writes.
 *
 * Object ciphertext goes through a put (rf_put_*, below): small stays in
 * memory and is stored inline, large streams to a blob file in DIR/tmp,
 * fsynced and renamed into DIR/blobs (directory fsynced) by rf_op_object_put
 * before the row naming it is committed; rf_store_apply deletes the blobs of
 * object ops that fail. On open, temp files and blobs no row names are
 * removed (crash recovery), so nothing half-written is ever visible. Nothing
 * in this interface names a backend: the PostgreSQL backend implements it
 * as it stands.
 */
#ifndef RF_STORE_H
#define RF_STORE_H

#include "lib/buf.h"

#include <stddef.h>
#include <stdint.h>

#define RF_CASE_ID_LEN 10          /* random, base32, not derived from the codename */
#define RF_BLOB_NAME_LEN 32        /* hex of 16 random bytes */
#define RF_INLINE_MAX (256 * 1024) /* objects up to this size may be stored in the database */

struct rf_store;

/* Opens (creating and migrating if needed) the store in datadir. */
int rf_store_open(struct rf_store **out, const char *datadir);
void rf_store_close(struct rf_store *st);
/* Starts n (1 to 4) threads that write large blobs (past 1 MiB) behind the
 * thread that seals them, with their writeback started at once: call it
 * before a sandbox forbids new threads; rf_store_close stops them. Without
 * it every blob write is synchronous. (blob_writer.c) */
int rf_store_blob_writers(struct rf_store *st, unsigned n);
/* refuge server init: like rf_store_open, and with db_url (a postgresql://
 * URL; NULL: SQLite, the default) records in DIR/database (0600: the URL may
 * hold a password) that this instance's store is that PostgreSQL database,
 * which every later rf_store_open of DIR then opens. RF_ERR_EXISTS if DIR
 * already names another store; RF_ERR_INVALID for a URL that is not one. */
int rf_store_create(struct rf_store **out, const char *datadir, const char *db_url);
/* 1 if url is a postgresql:// (or postgres://) URL rf_store_create takes. */
int rf_store_url_valid(const char *url);
/* What the store of datadir needs from the network, for the sandbox
 * (sandbox.h): family 0 (SQLite: nothing), or AF_INET/AF_INET6 and the TCP
 * port of its PostgreSQL server. RF_ERR_INVALID if the URL does not name one
 * numeric address (a Unix socket, a host name, several hosts): the sandboxed
 * server could not reach it. */
int rf_store_net(const char *datadir, int *family, unsigned *port);
/* "sqlite" or "postgresql" (for an admin's status; no connection detail). */
const char *rf_store_backend(const struct rf_store *st);
/* Days since the epoch, UTC, now. */
uint32_t rf_store_today(void);

/* ---- reads ---- */
int rf_store_setting_get(struct rf_store *st, const char *key, struct rf_buf *out);

struct rf_source {
    int64_t id;
    char case_id[RF_CASE_ID_LEN + 1];
    uint8_t pk[32];
    uint32_t day;
};
int rf_store_source_by_lookup(struct rf_store *st, const uint8_t lookup_id[32],
                              struct rf_source *out);
int rf_store_source_by_case(struct rf_store *st, const char *case_id, struct rf_source *out);

struct rf_object {
    int64_t seq;
    int64_t source_id;
    char case_id[RF_CASE_ID_LEN + 1];
    uint8_t kind;
    uint64_t size; /* ciphertext bytes */
    uint32_t day;
    int in_blob; /* 1: ciphertext is a blob file; 0: in the database */
    /* the latest roster version when the object was stored (set by the store
     * in the storing transaction; never decreases with seq); 0: stored
     * before any roster, or before the store recorded it (schema < 3) */
    uint32_t roster;
};
/* Objects with seq > after, ascending, at most cap. */
int rf_store_objects_since(struct rf_store *st, int64_t after, struct rf_object *out, size_t cap,
                           size_t *n);
/* One source's objects whose kind bit (1 << kind) is in kinds, ascending. */
int rf_store_objects_of_source(struct rf_store *st, int64_t source_id, unsigned kinds,
                               struct rf_object *out, size_t cap, size_t *n);
int rf_store_object_get(struct rf_store *st, int64_t seq, struct rf_object *out);
/* Ciphertext of an object stored in the database (appended to out). */
int rf_store_object_read(struct rf_store *st, int64_t seq, struct rf_buf *out);
/* Opens the ciphertext of an object for reading: a blob file, or for inline
 * objects an unlinked temp-free memfd. The caller closes *fd. */
int rf_store_object_open(struct rf_store *st, int64_t seq, int *fd, uint64_t *size);
/* A range of objects with their ciphertext (GET /api/v1/objects/data): the
 * objects with after < seq <= upto, ascending, at most cap, in one read
 * (one statement; on PostgreSQL one snapshot). fn(ctx, o, data, len) runs
 * for each: data is the ciphertext (inline, or read from its blob file)
 * when o->size <= max_size, else NULL and len 0; data is valid during the
 * call only. fn answers 0 (taken: go on), 1 (stop here, o not taken) or an
 * rf_err (returned). RF_ERR_DB if a ciphertext is not o->size bytes. */
typedef int (*rf_store_range_fn)(void *ctx, const struct rf_object *o, const uint8_t *data,
                                 size_t len);
int rf_store_objects_range(struct rf_store *st, int64_t after, int64_t upto, size_t cap,
                           uint64_t max_size, rf_store_range_fn fn, void *ctx);

/* Staff: enrolled keys and the roster chain. */
struct rf_staff_rec {
    uint8_t sign_pk[32];
    uint8_t box_pk[32];
    char name[65];
    uint32_t day; /* enrolled (filled by reads; ignored by RF_OP_STAFF_PUT) */
};
int rf_store_staff_get(struct rf_store *st, const uint8_t sign_pk[32], struct rf_staff_rec *out);
int rf_store_roster_latest(struct rf_store *st, uint32_t *version, struct rf_buf *raw);
int rf_store_roster_get(struct rf_store *st, uint32_t version, struct rf_buf *raw);

/* Enrolled staff (on the roster or waiting for approval), by name. */
int rf_store_staff_list(struct rf_store *st, struct rf_staff_rec *out, size_t cap, size_t *n);

/* Grants (rewrap, envelope.h): extra sealed content keys beside objects,
 * kept per granter: one per (object, key id, granter), at most
 * RF_GRANTS_PER_KEY_MAX per (object, key id); a junk grant never hides an
 * honest one (the reader tries each). */
struct rf_grant_rec {
    int64_t id;  /* ascending */
    int64_t seq; /* the object */
    uint8_t keyid[8];
    uint8_t granter[32]; /* the granting caseworker's sign_pk; zeros: unknown (schema < 3) */
    uint8_t grant[88];   /* RF_GRANT_BYTES */
};
/* Grants for keyid with id > after, ascending, at most cap. */
int rf_store_grants_for(struct rf_store *st, const uint8_t keyid[8], int64_t after,
                        struct rf_grant_rec *out, size_t cap, size_t *n);

/* Audit log (lib/audit.h), entries with id > after, ascending, at most cap. */
struct rf_audit_entry;
int rf_store_audit_list(struct rf_store *st, uint64_t after, struct rf_audit_entry *out, size_t cap,
                        size_t *n);

/* Retention. Deletes, in one transaction each, every case whose deletion day
 * (set by RF_OP_CASE_SCHEDULE when caseworkers close it) has come, and every
 * case whose person has sent nothing for inactive_days (0: never), with all
 * their objects, grants and blob files; appends one "purge" audit entry with
 * the counts. Only counts come back. */
struct rf_purge_counts {
    uint64_t cases;
    uint64_t objects;
    uint64_t blobs;
};
int rf_store_purge(struct rf_store *st, uint32_t today, uint32_t inactive_days,
                   struct rf_purge_counts *out);

/* Copies every committed change into the database file and empties the
 * write-ahead log, so that content deleted (and zeroed in its pages: the
 * SQLite backend runs with secure_delete) leaves no older copy in the log.
 * SQLite: wal_checkpoint(TRUNCATE), holding the writer; it waits for readers
 * up to the busy timeout, then RF_ERR_BUSY (the log stays until the next
 * checkpoint). Called after a person deletes a reply. */
int rf_store_checkpoint(struct rf_store *st);

/* ---- person sessions shared by several server processes (server/session.h) ----
 *
 * A row per live session, only when the server runs with a session key
 * (refuge serve --session-key): id = BLAKE2b-256 of the cookie's token (the
 * token itself is never stored), the session's secrets sealed under a key
 * only the server processes hold (keyid names which), until = the wall-clock
 * second (unix) after which the row is dead, and the day's quota counters.
 * The store never sees an open secret. Written at once (not through the
 * group committer), durable when the call returns. */
#define RF_SESSION_SEALED_MAX 256
struct rf_session_row {
    uint8_t id[32];
    uint8_t keyid[8];
    uint8_t sealed[RF_SESSION_SEALED_MAX];
    size_t sealed_len;
    int64_t until;
    uint32_t day; /* the quota counters' day (rf_store_today) */
    uint32_t msgs;
    uint64_t bytes;
};
/* Inserts a row (RF_ERR_EXISTS if the id is taken). With max > 0, refuses
 * with RF_ERR_BUSY when max rows with until >= now are live already. */
int rf_store_session_put(struct rf_store *st, const struct rf_session_row *row, int64_t now,
                         uint64_t max);
/* The live row of id (until >= now), RF_ERR_NOT_FOUND if none. */
int rf_store_session_get(struct rf_store *st, const uint8_t id[32], int64_t now,
                         struct rf_session_row *out);
/* Moves a live row's until (idle timeout pushed forward); RF_ERR_NOT_FOUND
 * if it is gone or dead. */
int rf_store_session_touch(struct rf_store *st, const uint8_t id[32], int64_t now, int64_t until);
/* Ends a session everywhere (no error if it was gone). */
int rf_store_session_delete(struct rf_store *st, const uint8_t id[32]);
/* Counts one message of bytes on the live row's quota for day (counters
 * start again on a new day), in one statement, so processes racing on one
 * session cannot pass the quota together: RF_ERR_LIMIT (nothing counted)
 * when msgs would pass max_msgs or bytes max_bytes, RF_ERR_NOT_FOUND if the
 * row is gone. */
int rf_store_session_count(struct rf_store *st, const uint8_t id[32], int64_t now, uint32_t day,
                           uint64_t bytes, uint32_t max_msgs, uint64_t max_bytes);
/* Charges bytes streamed by a refused upload to the live row's byte
 * counter for day (counters start again on a new day), in one conditional
 * statement: the counter becomes min(counter + bytes, max_bytes); the
 * message counter does not move. RF_ERR_NOT_FOUND if the row is gone. */
int rf_store_session_charge(struct rf_store *st, const uint8_t id[32], int64_t now, uint32_t day,
                            uint64_t bytes, uint64_t max_bytes);
/* Deletes every row dead at now; *n (may be NULL) how many. */
int rf_store_sessions_reap(struct rf_store *st, int64_t now, uint64_t *n);
/* Live rows at now. */
int rf_store_sessions_live(struct rf_store *st, int64_t now, uint64_t *n);

/* ---- backup and restore (backup.c; format: lib/archive.h) ---- */
struct rf_backup_info {
    uint32_t schema; /* the database's schema version */
    uint32_t day;    /* of the backup */
    uint64_t sources, objects, staff, blobs;
    uint64_t bytes; /* archive bytes written or read */
    char why[192];  /* on failure: what went wrong, for an admin (no data) */
};
/* Writes a consistent archive of the store to fd, from its current offset
 * (a regular file: an attempt spoiled by a concurrent deletion is truncated
 * away and started again). Safe while refuge serve runs: the database is one
 * snapshot (never plaintext: it holds only ciphertext and public keys), with
 * the blobs its rows name. The caller makes the file durable. */
int rf_store_backup(struct rf_store *st, int fd, struct rf_backup_info *info);
/* Reads an archive from fd (from its start) and checks everything, writing
 * nothing: fills info (counts from the manifest) or says why in info->why. */
int rf_store_archive_check(int fd, struct rf_backup_info *info);
/* Checks the archive, then restores it into datadir (absent, or an empty
 * directory; created 0700, files 0600), opens the store there to check it and
 * closes it. On failure datadir is left empty (removed if it was created). */
int rf_store_restore(int fd, const char *datadir, struct rf_backup_info *info);

/* ---- moving an instance to another backend (migrate.c) ----
 *
 * Every row of every table, backend-neutral: rf_store_export streams a
 * store's rows to a callback (one read snapshot, table by table in the
 * order of enum rf_table, each table in its key order, then one
 * RF_TAB_COUNTERS row), and the import calls take them into a store created
 * for it, in one transaction: nothing is visible, and nothing stays, until
 * rf_store_import_end commits. Constant memory on both sides: one row at a
 * time (an inline object is at most RF_INLINE_MAX bytes). A row's cells
 * follow the table's columns (schema.c, rf_tables); integer cells in i,
 * text and bytes in p/len (valid during the callback only). */
enum rf_table {
    RF_TAB_SETTINGS,      /* key t, value b */
    RF_TAB_SOURCES,       /* id, lookup_id, case_id, pk, day, delete_day */
    RF_TAB_OBJECTS,       /* seq, source_id, kind, size, day, data, blob, roster */
    RF_TAB_ENROLL_TOKENS, /* hash, role, day, used */
    RF_TAB_STAFF,         /* sign_pk, box_pk, name, day */
    RF_TAB_ROSTERS,       /* version, raw */
    RF_TAB_GRANTS,        /* id, seq, keyid, granter, grant */
    RF_TAB_AUDIT,         /* id, day, actor, action, target, prev, hash, request */
    RF_TAB_NONCES,        /* nonce, slot */
    RF_TAB_COUNTERS,      /* seq, grant_id: the last object seq and grant id handed out */
    RF_TAB_COUNT
};
#define RF_ROW_COLS 8
struct rf_cell {
    int null;
    int64_t i;
    const uint8_t *p;
    size_t len;
};
struct rf_row {
    enum rf_table table;
    unsigned n;
    struct rf_cell cell[RF_ROW_COLS];
};
/* Calls emit for every row; a non-zero answer stops the export and is
 * returned. RF_ERR_VERSION if the database holds a table or column this
 * program does not know (nothing would be carried over silently). */
int rf_store_export(struct rf_store *st, int (*emit)(void *ctx, const struct rf_row *row),
                    void *ctx);
/* Creates datadir's store for an import into it: db_url (a postgresql://
 * URL; NULL: SQLite, DIR/refuge.db) must name an empty database: a
 * PostgreSQL database with no table, sequence or view in its schema (the
 * schema is created by the import's own transaction), or a SQLite file that
 * does not exist yet. RF_ERR_EXISTS if it is not empty: then nothing was
 * written to it (DIR/database is not left behind either). */
int rf_store_create_import(struct rf_store **out, const char *datadir, const char *db_url);
/* Starts the import's transaction (RF_ERR_EXISTS: the database is no longer
 * empty). */
int rf_store_import_begin(struct rf_store *st);
/* One row, in export order. An object row naming a blob must name one that
 * is already durable in this store's DIR/blobs. */
int rf_store_import_row(struct rf_store *st, const struct rf_row *row);
/* commit 1: commits (0 only if it is durable); 0: rolls back. */
int rf_store_import_end(struct rf_store *st, int commit);

struct rf_migrate_info {
    uint64_t rows[RF_TAB_COUNT]; /* rows carried, by table */
    uint64_t blobs, blob_bytes;  /* blob files copied */
    char why[192];               /* on failure: what went wrong, for an admin (no data) */
};
/* Copies every row of from into to (made by rf_store_create_import), and
 * every blob file an object row names into to's DIR/blobs (streamed,
 * fsynced; its size checked against the row), in one transaction of to:
 * on failure nothing is committed (blob files copied already are unnamed
 * and go at to's next open). Sequence numbers, ids, the audit chain and the
 * counters are carried as they are. from is only read. */
int rf_store_migrate(struct rf_store *from, struct rf_store *to, struct rf_migrate_info *info);
/* 1 if no other process has this store's data directory open (the opener
 * holds DIR/lock): a migration must not run beside a server. */
int rf_store_alone(struct rf_store *st);

/* ---- status (refuge server status, the metrics endpoint) ---- */

/* Opens an existing store for reading only, beside a running server or not:
 * creates no file or directory, migrates nothing, runs no recovery, takes no
 * lock (so a server starting meanwhile still recovers). RF_ERR_NOT_FOUND if
 * datadir holds no store, RF_ERR_VERSION if its schema is newer than this
 * program. Only reads work on it: rf_store_apply, rf_store_purge,
 * rf_store_checkpoint and rf_blob_begin answer RF_ERR_INVALID. (SQLite: the
 * database is opened read-only; a reader beside a running server shares
 * its WAL index in DIR/refuge.db-shm, as every SQLite reader does.) */
int rf_store_open_readonly(struct rf_store **out, const char *datadir);

/* Counts, for an admin: no row's content, only how many. */
#define RF_STORE_KINDS 8 /* object kinds 0..7 counted apart; larger ones in 7 */
struct rf_store_counts {
    int schema;                            /* the database's schema version */
    int schema_program;                    /* the one this program writes */
    uint64_t objects[RF_STORE_KINDS];      /* rows by kind */
    uint64_t object_bytes[RF_STORE_KINDS]; /* their ciphertext bytes */
    uint64_t cases;                        /* sources (the reserved team case not counted) */
    uint64_t staff;                        /* enrolled keys (on the roster or waiting) */
    uint64_t audit;                        /* audit entries */
    uint32_t last_purge_day;               /* day of the latest purge run (audit); 0: never */
};
int rf_store_counts(struct rf_store *st, struct rf_store_counts *out);

/* Bytes on disk. Backend-neutral parts (blobs) and the backend's own
 * (SQLite: DIR/refuge.db and DIR/refuge.db-wal). Reads file sizes only. */
struct rf_store_usage {
    uint64_t db_bytes;
    uint64_t wal_bytes;
    uint64_t blob_bytes;
    uint64_t blob_files;
};
int rf_store_usage(struct rf_store *st, struct rf_store_usage *out);

/* A day kept in setting key (days since 1970-01-01 UTC, big-endian u32):
 * 0 when absent or malformed. rf_store_day_put writes it durably. */
uint32_t rf_store_day_get(struct rf_store *st, const char *key);
int rf_store_day_put(struct rf_store *st, const char *key, uint32_t day);

/* ---- writes ----
 *
 * A write is a batch of ops handed to rf_store_apply (usually through the
 * group committer, commit.h). An op is filled by its constructor below and
 * read back through the accessors after it settled; its fields are the
 * store's own: code above the store (src/server) never touches them, and
 * the server's build seals them (RF_OP_SEALED: a field access there does not
 * compile). Every backend implements the same ops with the same statuses.
 *
 * Objects: ciphertext is first written into a put (struct rf_put), a sink
 * that keeps it in memory while it is at most RF_INLINE_MAX bytes and spills
 * it to a blob file (streamed, never held whole) past that. rf_op_object_put
 * makes the put durable (a blob: fsync, rename, fsync of the directory)
 * before the op may name it, so no row ever names a blob that is not
 * durable. The store keeps the other half of the rule: rf_store_apply
 * discards the blob of every object op that fails (alone, with its group,
 * or with the whole batch), and rf_put_free discards the durable blob of a
 * put whose op never reached rf_store_apply. Callers never handle blobs. */
enum rf_op_type {
    RF_OP_SETTING_PUT = 1, /* key, data/len */
    RF_OP_SOURCE_CREATE, /* lookup_id, pk -> source (id, case_id); RF_ERR_EXISTS if lookup taken */
    RF_OP_OBJECT_PUT,    /* source_id, kind, data/len inline or blob_name + size -> seq */
    RF_OP_OBJECT_DELETE, /* seq, source_id (must own it); removes the blob after commit */
    RF_OP_TOKEN_PUT,     /* token_hash, role */
    RF_OP_TOKEN_USE,     /* token_hash -> role; RF_ERR_NOT_FOUND if unknown or used;
                          * with require_admin, RF_ERR_AUTH (token kept) unless an admin token */
    RF_OP_STAFF_PUT,     /* staff */
    RF_OP_ROSTER_PUT,    /* version, data/len (signed roster; verified by the caller) */
    RF_OP_GRANT_PUT,     /* seq, keyid, pk = granter, data/len = grant (88 bytes); a granter's
                          * second grant for (seq, keyid), or one past RF_GRANTS_PER_KEY_MAX,
                          * is dropped (status 0): retries are harmless */
    RF_OP_AUDIT_APPEND,  /* pk = actor (zeros: server/person), key = action, target; the
                          * store assigns id, day, prev and hash in the same transaction */
    RF_OP_CASE_SCHEDULE, /* source_id, day = deletion day (0 cancels) */
    RF_OP_NONCE_PUT,     /* nonce, ts (a signed request's time): RF_ERR_EXISTS if the nonce is
                          * stored already; kept until ts is out of the signature window
                          * (only its RF_APISIG_MAX_SKEW slot is stored, never the time) */
};

/* The fields of struct rf_op are the store's. Where RF_OP_SEALED is defined
 * (the server's build) reading or writing one is a deprecation warning,
 * an error under -Werror: use the constructors and accessors. */
#if defined(RF_OP_SEALED)
#define RF_OP_PRIV __attribute__((deprecated("struct rf_op fields are the store's: use rf_op_*()")))
#else
#define RF_OP_PRIV
#endif

struct rf_put;

struct rf_op {
    enum rf_op_type type RF_OP_PRIV;
    /* group > 1 on an op: it and the next group - 1 ops are all-or-nothing
     * (if one fails, none is applied, and all carry that op's status). A
     * submission of a message and its files is one group, so nothing is
     * ever stored half-way. Set by rf_committer_submit_group. */
    uint16_t group RF_OP_PRIV;
    /* inputs */
    const char *key RF_OP_PRIV;
    const uint8_t *data RF_OP_PRIV;
    size_t len RF_OP_PRIV;
    uint8_t lookup_id[32] RF_OP_PRIV;
    uint8_t pk[32] RF_OP_PRIV;
    int64_t source_id RF_OP_PRIV;
    uint8_t kind RF_OP_PRIV;
    char blob_name[RF_BLOB_NAME_LEN + 1] RF_OP_PRIV;
    uint64_t size RF_OP_PRIV;
    int64_t seq RF_OP_PRIV;
    uint8_t token_hash[32] RF_OP_PRIV;
    int role RF_OP_PRIV;
    int require_admin RF_OP_PRIV;
    uint32_t version RF_OP_PRIV;
    uint32_t day RF_OP_PRIV;
    /* RF_OP_AUDIT_APPEND: target; data/len: the caseworker's signed request
     * record (lib/audit.h, version 2), or NULL for an unsigned entry */
    const char *target RF_OP_PRIV;
    uint8_t keyid[8] RF_OP_PRIV;  /* RF_OP_GRANT_PUT */
    uint8_t nonce[16] RF_OP_PRIV; /* RF_OP_NONCE_PUT */
    int64_t ts RF_OP_PRIV;        /* RF_OP_NONCE_PUT */
    struct rf_staff_rec staff RF_OP_PRIV;
    /* RF_OP_OBJECT_PUT made by rf_op_object_put: its put, told by
     * rf_store_apply that the store now answers for the blob */
    struct rf_put *put RF_OP_PRIV;
    /* outputs */
    int status RF_OP_PRIV; /* 0 or rf_err, per op */
    struct rf_source source RF_OP_PRIV;
};

/* Applies ops in one durable transaction. Returns 0 if the transaction
 * committed (check each op's status) or an rf_err (RF_ERR_NOSPACE, RF_ERR_IO,
 * RF_ERR_DB) if nothing was applied; then every op's status is that error.
 * Either way, the blob of every RF_OP_OBJECT_PUT made by rf_op_object_put
 * whose status is not 0 is deleted before it returns (unless a row names
 * it); a blob named by hand (rf_blob_commit, in tests) stays the caller's. */
int rf_store_apply(struct rf_store *st, struct rf_op *ops, size_t n);

/* ---- puts: where an object's ciphertext goes before its op ---- */
enum rf_put_flags {
    RF_PUT_BLOB = 1, /* a blob file from the first byte, whatever the size (files) */
};
/* Starts a put (with RF_PUT_BLOB: its temp blob file now, so that a store
 * that cannot take one says so before any byte is written). */
int rf_put_begin(struct rf_store *st, unsigned flags, struct rf_put **out);
/* Appends ciphertext: in memory up to RF_INLINE_MAX bytes in all, then to a
 * blob file. RF_ERR_NOSPACE, RF_ERR_IO, RF_ERR_NOMEM; a put that failed
 * fails every later call with the same error (its temp file already gone). */
int rf_put_write(struct rf_put *p, const uint8_t *data, size_t n);
/* Bytes written so far. */
uint64_t rf_put_size(const struct rf_put *p);
/* Frees p (NULL: no-op): an unfinished temp file is unlinked; a durable blob
 * whose op never went through rf_store_apply is deleted; a blob whose op
 * did is the store's (named by its row, or already deleted). Call it only
 * once the op made from p settled (or was never submitted). */
void rf_put_free(struct rf_put *p);

/* ---- op constructors (each fills the whole op) ---- */
void rf_op_setting_put(struct rf_op *op, const char *key, const uint8_t *data, size_t len);
void rf_op_source_create(struct rf_op *op, const uint8_t lookup_id[32], const uint8_t pk[32]);
/* Makes p durable (a spilled put: its blob is fsynced and renamed into
 * place) and fills op to store it as an object of kind for source_id. p
 * must outlive op (inline bytes stay p's). On failure (RF_ERR_IO,
 * RF_ERR_NOSPACE, or p's own error) nothing is durable and op is unusable. */
int rf_op_object_put(struct rf_op *op, int64_t source_id, uint8_t kind, struct rf_put *p);
void rf_op_object_delete(struct rf_op *op, int64_t seq, int64_t source_id);
void rf_op_token_put(struct rf_op *op, const uint8_t token_hash[32], int role);
void rf_op_token_use(struct rf_op *op, const uint8_t token_hash[32], int require_admin);
void rf_op_staff_put(struct rf_op *op, const struct rf_staff_rec *staff);
/* raw (len bytes) must outlive op */
void rf_op_roster_put(struct rf_op *op, uint32_t version, const uint8_t *raw, size_t len);
/* grant must outlive op; granter: the granting caseworker's sign_pk */
void rf_op_grant_put(struct rf_op *op, int64_t seq, const uint8_t keyid[8],
                     const uint8_t granter[32], const uint8_t grant[88]);
/* actor NULL: zeros (the server or a person); action, target and the signed
 * request record req/req_len (lib/audit.h v2; NULL: unsigned entry) must
 * outlive op. */
void rf_op_audit(struct rf_op *op, const uint8_t *actor, const char *action, const char *target,
                 const uint8_t *req, size_t req_len);
/* day: the deletion day; 0 cancels */
void rf_op_case_schedule(struct rf_op *op, int64_t source_id, uint32_t day);
void rf_op_nonce_put(struct rf_op *op, const uint8_t nonce[16], int64_t ts);

/* ---- what a settled op says ---- */
int rf_op_status(const struct rf_op *op);  /* 0 or rf_err */
int64_t rf_op_seq(const struct rf_op *op); /* RF_OP_OBJECT_PUT: the object's seq */
const struct rf_source *rf_op_source(const struct rf_op *op); /* RF_OP_SOURCE_CREATE */
int rf_op_role(const struct rf_op *op); /* RF_OP_TOKEN_USE: the token's role */

/* ---- blobs (inside the store and its tests; handlers use puts) ---- */
struct rf_blob;
int rf_blob_begin(struct rf_store *st, struct rf_blob **out);
int rf_blob_write(struct rf_blob *b, const uint8_t *p, size_t n); /* RF_ERR_NOSPACE, RF_ERR_IO */
uint64_t rf_blob_size(const struct rf_blob *b);
/* fsync, rename into place, fsync dir; name receives the blob's name. Frees b. */
int rf_blob_commit(struct rf_blob *b, char name[RF_BLOB_NAME_LEN + 1]);
/* Unlinks the temp file. Frees b. NULL is a no-op. */
void rf_blob_abort(struct rf_blob *b);
/* Deletes a committed blob that no object row names (its op failed).
 * RF_ERR_EXISTS if a row names it: then it stays. */
int rf_blob_discard(struct rf_store *st, const char *name);

/* Test hook: fn(arg) runs inside rf_store_backup right after each database
 * snapshot is taken, before any blob is copied (NULL: none). Process-wide. */
void rf_store_backup_hook(void (*fn)(void *arg), void *arg);

/* Test hook: make the next n writes/fsyncs fail with err (fault injection). */
void rf_store_fault_inject(struct rf_store *st, int after_n_ok, int err);

#endif
