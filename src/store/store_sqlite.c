/*
 * store_sqlite.c - the SQLite backend of store.h (DIR/refuge.db): connections,
 * statements, schema, open/close. The reads are in store_sqlite_read.c, the
 * writes (rf_store_apply) and retention (rf_store_purge) in
 * store_sqlite_write.c.
 *
 * Connections. One writer connection, used only inside rf_store_apply under
 * st->files.wmu (and at open, before anyone else can see the store). Readers take a
 * read-only connection from a small pool (at most READERS_MAX, opened on
 * demand, handed out under st->rmu); with WAL they read the last committed
 * snapshot while the writer writes. Every connection caches its prepared
 * statements (stmt_sql, prepared on first use); a statement is always reset
 * before its connection goes back, so no reader pins an old snapshot.
 *
 * Durability. journal_mode=WAL, synchronous=FULL: COMMIT returns after the
 * WAL is fsynced. rf_store_apply wraps a batch in BEGIN IMMEDIATE ... COMMIT
 * with a SAVEPOINT per op, so one op's failure is undone alone while the
 * others commit; a failure of the transaction itself (BEGIN, COMMIT, a
 * savepoint, or SQLite rolling back on its own after an I/O error) fails
 * every op with one error. Blob files of deleted objects are unlinked only
 * after the COMMIT that removed their rows.
 *
 * Schema. Versioned by PRAGMA user_version: migrations[i] takes version i to
 * i + 1, each in its own transaction. A database newer than this binary is
 * refused (RF_ERR_VERSION). Only days (since 1970-01-01 UTC) are stored,
 * never a time. secure_delete is on so freed pages are zeroed.
 *
 * Recovery at open (only by the opener holding DIR/lock, so a second process
 * such as a CLI next to a running server never deletes the first one's blobs
 * in flight): empty DIR/tmp, delete blob files no object row names.
 *
 * Teams (schema 2, 3). Grants sit beside the object they open and go with it
 * (ON DELETE CASCADE); one per (object, key id, granter), at most
 * RF_GRANTS_PER_KEY_MAX per (object, key id), so a junk grant posted first
 * never hides a later honest one. The audit log is a hash chain
 * (lib/audit.h) whose next link is computed inside the writing transaction
 * from the last stored row, so entries appended by concurrent requests, in
 * one batch or many, always chain, and an entry rolled back with its group
 * leaves no gap. The reserved case "teamconfig"
 * (created by the migration with a random lookup id nobody can derive, so no
 * person can log into it) carries the team's configuration events; triggers
 * keep it events-only, unscheduled and undeletable.
 *
 * Roster at storage (schema 3). Every object row records the latest roster
 * version at the moment it was stored, read by the INSERT itself inside the
 * writing transaction, so it never decreases with seq. Clients verify an
 * event's author on every roster version from the one the event names up to
 * this one (a demoted admin or removed member cannot name an old version).
 *
 * Retention (rf_store_purge): one transaction per expired case, holding the
 * writer like a batch does, re-checking the case's expiry inside it; its blob
 * files are unlinked after that commit, so a crash mid-purge loses nothing
 * that should stay and leaves at worst orphan blobs the next open removes.
 *
 * Nonces (schema 5): every signed staff API request's nonce, with only its
 * slot (request time / RF_APISIG_MAX_SKEW), so a replay is refused after a
 * restart and by every process on the database; each insert prunes a few
 * rows two slots old (then out of the signature window), and the purge
 * prunes the rest.
 */
#include "lib/audit.h"
#include "lib/err.h"
#include "lib/log.h"
#include "store/commit.h"
#include "store/sqlite_internal.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- schema: schema.c (rf_migrations[i].sqlite) ---- */

#define SCHEMA_VERSION rf_schema_version

/* ---- statements ---- */

#define OBJECT_COLS                                                                                \
    "o.seq, o.source_id, s.case_id, o.kind, o.size, o.day, o.blob IS NOT NULL, o.roster "          \
    "FROM objects o JOIN sources s ON s.id = o.source_id "

/* OBJECT_COLS, then the inline ciphertext of an object of at most ?4
 * bytes, and the blob's name */
#define OBJECT_COLS_DATA                                                                           \
    "o.seq, o.source_id, s.case_id, o.kind, o.size, o.day, o.blob IS NOT NULL, o.roster, "         \
    "CASE WHEN o.size <= ?4 THEN o.data END, CASE WHEN o.size <= ?4 THEN o.blob END "              \
    "FROM objects o JOIN sources s ON s.id = o.source_id "

static const char *const stmt_sql[S_COUNT] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_SAVEPOINT] = "SAVEPOINT op",
    [S_RELEASE] = "RELEASE op",
    [S_ROLLBACK_TO] = "ROLLBACK TO op",
    [S_GROUP_SAVEPOINT] = "SAVEPOINT grp",
    [S_GROUP_RELEASE] = "RELEASE grp",
    [S_GROUP_ROLLBACK_TO] = "ROLLBACK TO grp",
    [S_SETTING_PUT] = "INSERT INTO settings(key, value) VALUES (?1, ?2) "
                      "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    [S_SETTING_GET] = "SELECT value FROM settings WHERE key = ?1",
    [S_SOURCE_BY_LOOKUP] = "SELECT id, case_id, pk, day FROM sources WHERE lookup_id = ?1",
    [S_SOURCE_BY_CASE] = "SELECT id, case_id, pk, day FROM sources WHERE case_id = ?1",
    [S_SOURCE_INSERT] = "INSERT INTO sources(lookup_id, case_id, pk, day) VALUES (?1, ?2, ?3, ?4)",
    /* roster: the latest version at the moment of storing, read inside the
     * same transaction (the writer is serialised, so it never decreases with
     * seq); clients check events against every version up to it */
    [S_OBJECT_INSERT] = "INSERT INTO objects(source_id, kind, size, day, data, blob, roster) "
                        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, "
                        "(SELECT coalesce(max(version), 0) FROM rosters))",
    [S_OBJECT_DELETE] = "DELETE FROM objects WHERE seq = ?1 AND source_id = ?2 RETURNING blob",
    [S_BLOB_REFERENCED] = "SELECT 1 FROM objects WHERE blob = ?1",
    [S_TOKEN_PUT] = "INSERT INTO enroll_tokens(hash, role, day, used) VALUES (?1, ?2, ?3, 0)",
    [S_TOKEN_USE] = "UPDATE enroll_tokens SET used = 1 WHERE hash = ?1 AND used = 0 RETURNING role",
    [S_STAFF_PUT] = "INSERT INTO staff(sign_pk, box_pk, name, day) VALUES (?1, ?2, ?3, ?4) "
                    "ON CONFLICT(sign_pk) DO UPDATE SET box_pk = excluded.box_pk, "
                    "name = excluded.name",
    [S_STAFF_GET] = "SELECT box_pk, name, day FROM staff WHERE sign_pk = ?1",
    [S_ROSTER_PUT] = "INSERT INTO rosters(version, raw) VALUES (?1, ?2)",
    [S_ROSTER_MAX] = "SELECT coalesce(max(version), 0) FROM rosters",
    [S_ROSTER_LATEST] = "SELECT version, raw FROM rosters ORDER BY version DESC LIMIT 1",
    [S_ROSTER_GET] = "SELECT raw FROM rosters WHERE version = ?1",
    [S_OBJECTS_SINCE] = "SELECT " OBJECT_COLS "WHERE o.seq > ?1 ORDER BY o.seq LIMIT ?2",
    [S_OBJECTS_OF_SOURCE] = "SELECT " OBJECT_COLS "WHERE o.source_id = ?1 AND ((?2 >> o.kind) & 1) "
                            "ORDER BY o.seq LIMIT ?3",
    [S_OBJECT_GET] = "SELECT " OBJECT_COLS "WHERE o.seq = ?1",
    [S_OBJECT_DATA] = "SELECT data, blob FROM objects WHERE seq = ?1",
    [S_OBJECTS_RANGE] = "SELECT " OBJECT_COLS_DATA "WHERE o.seq > ?1 AND o.seq <= ?2 "
                        "ORDER BY o.seq LIMIT ?3",
    [S_STAFF_LIST] = "SELECT sign_pk, box_pk, name, day FROM staff ORDER BY name LIMIT ?1",
    /* one grant per (object, key, granter), the granter's first; at most
     * ?5 per (object, key): a member's junk grant never hides another
     * member's honest one, and no one can flood an object with grants */
    [S_GRANT_PUT] = "INSERT INTO grants(seq, keyid, granter, grant) SELECT ?1, ?2, ?3, ?4 "
                    "WHERE (SELECT count(*) FROM grants WHERE seq = ?1 AND keyid = ?2) < ?5 "
                    "ON CONFLICT(seq, keyid, granter) DO NOTHING",
    [S_GRANTS_FOR] = "SELECT id, seq, keyid, granter, grant FROM grants WHERE keyid = ?1 "
                     "AND id > ?2 ORDER BY id LIMIT ?3",
    [S_AUDIT_LAST] = "SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1",
    [S_AUDIT_INSERT] = "INSERT INTO audit(id, day, actor, action, target, prev, hash, request) "
                       "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [S_AUDIT_LIST] = "SELECT id, day, actor, action, target, prev, hash, request FROM audit "
                     "WHERE id > ?1 ORDER BY id LIMIT ?2",
    [S_CASE_SCHEDULE] = "UPDATE sources SET delete_day = ?2 WHERE id = ?1",
    /* the next expired case after ?1: its deletion day has come, or its
     * person has sent nothing (message or file) for more than ?3 days */
    [S_PURGE_NEXT] = "SELECT s.id FROM sources s WHERE s.id > ?1 AND s.case_id <> 'teamconfig' "
                     "AND ((s.delete_day IS NOT NULL AND s.delete_day <= ?2) OR (?3 > 0 AND "
                     "coalesce((SELECT max(o.day) FROM objects o WHERE o.source_id = s.id "
                     "AND o.kind IN (1, 2)), s.day) + ?3 < ?2)) ORDER BY s.id LIMIT 1",
    [S_PURGE_BLOBS] = "SELECT blob FROM objects WHERE source_id = ?1 AND blob IS NOT NULL",
    [S_PURGE_OBJECTS] = "DELETE FROM objects WHERE source_id = ?1",
    [S_PURGE_SOURCE] = "DELETE FROM sources WHERE id = ?1",
    [S_NONCE_PUT] = "INSERT INTO nonces(nonce, slot) VALUES (?1, ?2)",
    /* a few expired nonces at a time: the table shrinks as fast as it grows,
     * and no batch pays for a long idle period at once */
    [S_NONCE_PRUNE] = "DELETE FROM nonces WHERE nonce IN "
                      "(SELECT nonce FROM nonces WHERE slot <= ?1 LIMIT ?2)",
    [S_SESS_PUT] =
        "INSERT INTO sessions(id, keyid, sealed, expires, day, msgs, bytes) SELECT ?1, ?2, ?3, ?4, "
        "?5, 0, 0 WHERE ?6 = 0 OR (SELECT count(*) FROM sessions WHERE expires >= ?7) < ?6",
    [S_SESS_GET] = "SELECT keyid, sealed, expires, day, msgs, bytes FROM sessions WHERE id = ?1 "
                   "AND expires >= ?2",
    [S_SESS_TOUCH] = "UPDATE sessions SET expires = ?3 WHERE id = ?1 AND expires >= ?2",
    [S_SESS_DELETE] = "DELETE FROM sessions WHERE id = ?1",
    [S_SESS_COUNT] = "UPDATE sessions SET msgs = CASE WHEN day = ?3 THEN msgs + 1 ELSE 1 END, "
                     "bytes = CASE WHEN day = ?3 THEN bytes + ?4 ELSE ?4 END, day = ?3 WHERE id = "
                     "?1 AND expires >= ?2 AND (CASE WHEN day = ?3 THEN msgs ELSE 0 END) < ?5 AND "
                     "(CASE WHEN day = ?3 THEN bytes ELSE 0 END) + ?4 <= ?6",
    [S_SESS_CHARGE] = "UPDATE sessions SET msgs = CASE WHEN day = ?3 THEN msgs ELSE 0 END, bytes "
                      "= min((CASE WHEN day = ?3 THEN bytes ELSE 0 END) + ?4, ?5), day = ?3 "
                      "WHERE id = ?1 AND expires >= ?2",
    [S_SESS_EXISTS] = "SELECT 1 FROM sessions WHERE id = ?1 AND expires >= ?2",
    [S_SESS_REAP] = "DELETE FROM sessions WHERE expires < ?1",
    [S_SESS_LIVE] = "SELECT count(*) FROM sessions WHERE expires >= ?1",
};

/* The blob layer finds the files at the start of the store (store_internal.h). */
static_assert(offsetof(struct rf_store, files) == 0, "struct rf_store begins with its files");

int rf_sqlite_schema_version(void)
{
    return SCHEMA_VERSION;
}

int rf_sqlite_err(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_DONE:
    case SQLITE_ROW:
        return 0;
    case SQLITE_FULL:
        return RF_ERR_NOSPACE;
    case SQLITE_IOERR:
        return rc == SQLITE_IOERR_NOMEM ? RF_ERR_NOMEM : RF_ERR_IO;
    case SQLITE_NOMEM:
        return RF_ERR_NOMEM;
    case SQLITE_TOOBIG:
        return RF_ERR_LIMIT;
    case SQLITE_CONSTRAINT:
        if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
            return RF_ERR_EXISTS;
        if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
            return RF_ERR_NOT_FOUND;
        return RF_ERR_INVALID;
    default:
        return RF_ERR_DB;
    }
}

int rf_sqlite_stmt(struct conn *c, enum stmt_id id, sqlite3_stmt **out)
{
    if (!c->stmt[id]) {
        int rc = sqlite3_prepare_v3(c->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
                                    &c->stmt[id], NULL);
        if (rc != SQLITE_OK) {
            rf_log_num(RF_LOG_ERROR, "store: cannot prepare statement", "id", id);
            c->stmt[id] = NULL;
            rc = rf_sqlite_err(rc);
            return rc != 0 ? rc : RF_ERR_DB;
        }
    }
    *out = c->stmt[id];
    return 0;
}

void rf_sqlite_done(sqlite3_stmt *s)
{
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
}

/* Runs a statement that returns no rows. */
int rf_sqlite_run(struct conn *c, enum stmt_id id)
{
    sqlite3_stmt *s = NULL;
    int rc = rf_sqlite_stmt(c, id, &s);
    if (rc != 0)
        return rc;
    rc = sqlite3_step(s);
    rf_sqlite_done(s);
    return rc == SQLITE_DONE ? 0 : rf_sqlite_err(rc);
}

/* Binds a byte range; an empty range binds an empty blob, never NULL. */
int rf_sqlite_bind_bytes(sqlite3_stmt *s, int i, const void *p, size_t n)
{
    if (n == 0)
        return sqlite3_bind_zeroblob(s, i, 0);
    return sqlite3_bind_blob64(s, i, p, n, SQLITE_STATIC);
}

static void conn_close(struct conn *c)
{
    for (int i = 0; i < S_COUNT; i++) {
        sqlite3_finalize(c->stmt[i]);
        c->stmt[i] = NULL;
    }
    if (c->db)
        sqlite3_close(c->db);
    c->db = NULL;
}

static int conn_open(struct conn *c, const char *path, int readonly)
{
    /* readers may be handed a "file:" URI (rf_store_open_readonly) */
    int flags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_PRIVATECACHE |
                (readonly ? SQLITE_OPEN_READONLY | SQLITE_OPEN_URI : SQLITE_OPEN_READWRITE);
    memset(c, 0, sizeof(*c));
    int rc = sqlite3_open_v2(path, &c->db, flags, NULL);
    if (rc != SQLITE_OK) {
        rc = rf_sqlite_err(rc);
        goto out;
    }
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_timeout(c->db, BUSY_TIMEOUT_MS);
    /* readers keep a small page cache (the kernel's is shared); the WAL is
     * cut back to 64 MiB after a checkpoint following a burst */
    const char *pragmas = readonly ? "PRAGMA query_only = ON;"
                                     "PRAGMA cache_size = -1024;"
                                   : "PRAGMA synchronous = FULL;"
                                     "PRAGMA foreign_keys = ON;"
                                     "PRAGMA secure_delete = ON;"
                                     "PRAGMA temp_store = MEMORY;"
                                     "PRAGMA journal_size_limit = 67108864;";
    rc = rf_sqlite_err(sqlite3_exec(c->db, pragmas, NULL, NULL, NULL));
out:
    if (rc != 0)
        conn_close(c);
    return rc;
}

static int exec_sql(struct conn *c, const char *sql)
{
    int rc = sqlite3_exec(c->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : rf_sqlite_err(rc);
}

static int set_wal(struct conn *c)
{
    sqlite3_stmt *s = NULL;
    int rc = rf_sqlite_err(sqlite3_prepare_v2(c->db, "PRAGMA journal_mode = WAL", -1, &s, NULL));
    if (rc == 0) {
        int r = sqlite3_step(s);
        const unsigned char *mode = r == SQLITE_ROW ? sqlite3_column_text(s, 0) : NULL;
        rc = mode && strcmp((const char *)mode, "wal") == 0 ? 0 : RF_ERR_DB;
    }
    sqlite3_finalize(s);
    return rc;
}

static int user_version(struct conn *c, int *v)
{
    sqlite3_stmt *s = NULL;
    int rc = rf_sqlite_err(sqlite3_prepare_v2(c->db, "PRAGMA user_version", -1, &s, NULL));
    if (rc == 0) {
        if (sqlite3_step(s) == SQLITE_ROW)
            *v = sqlite3_column_int(s, 0);
        else
            rc = RF_ERR_DB;
    }
    sqlite3_finalize(s);
    return rc;
}

static int migrate(struct conn *c)
{
    int v = 0, rc = user_version(c, &v);
    if (rc != 0)
        return rc;
    if (v > SCHEMA_VERSION) {
        rf_log_num(RF_LOG_ERROR, "store: database schema is newer than this program", "version", v);
        return RF_ERR_VERSION;
    }
    for (; v < SCHEMA_VERSION; v++) {
        char bump[64];
        snprintf(bump, sizeof(bump), "PRAGMA user_version = %d", v + 1);
        if ((rc = exec_sql(c, "BEGIN IMMEDIATE")) != 0)
            return rc;
        if ((rc = exec_sql(c, rf_migrations[v].sqlite)) != 0 || (rc = exec_sql(c, bump)) != 0 ||
            (rc = exec_sql(c, "COMMIT")) != 0) {
            sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
            rf_log_num(RF_LOG_ERROR, "store: migration failed", "to_version", v + 1);
            return rc;
        }
        rf_log_num(RF_LOG_INFO, "store: schema migrated", "version", v + 1);
    }
    return 0;
}

/* ---- reader pool ---- */

int rf_sqlite_reader_get(struct rf_store *st, struct conn **out)
{
    int rc = 0;
    assert(!rf_committer_in_completion());
    pthread_mutex_lock(&st->rmu);
    while (st->n_idle == 0 && st->n_open == READERS_MAX)
        pthread_cond_wait(&st->rcv, &st->rmu);
    if (st->n_idle > 0) {
        *out = st->idle[--st->n_idle];
    } else {
        /* find a closed slot (one may have failed to open earlier) */
        struct conn *c = NULL;
        for (size_t i = 0; i < READERS_MAX && !c; i++)
            if (!st->readers[i].db)
                c = &st->readers[i];
        rc = c ? conn_open(c, st->dbpath, 1) : RF_ERR_DB;
        if (rc == 0) {
            st->n_open++;
            *out = c;
        }
    }
    pthread_mutex_unlock(&st->rmu);
    return rc;
}

void rf_sqlite_reader_put(struct rf_store *st, struct conn *c)
{
    pthread_mutex_lock(&st->rmu);
    st->idle[st->n_idle++] = c;
    pthread_cond_signal(&st->rcv);
    pthread_mutex_unlock(&st->rmu);
}

/* ---- open / close ---- */

struct sweep_ctx {
    struct conn *c;
};

static int blob_referenced(void *ctx, const char *name)
{
    struct sweep_ctx *sc = ctx;
    sqlite3_stmt *s = NULL;
    int rc = rf_sqlite_stmt(sc->c, S_BLOB_REFERENCED, &s);
    if (rc != 0)
        return rc;
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    rf_sqlite_done(s);
    if (rc == SQLITE_ROW)
        return 1;
    return rc == SQLITE_DONE ? 0 : rf_sqlite_err(rc);
}

static int store_blob_referenced(struct rf_store *st, const char *name)
{
    struct conn *c;
    int rc = rf_sqlite_reader_get(st, &c);
    if (rc != 0)
        return rc;
    struct sweep_ctx sc = {c};
    rc = blob_referenced(&sc, name);
    rf_sqlite_reader_put(st, c);
    return rc;
}

static int recover(struct rf_store *st)
{
    long tmp = 0, orphans = 0;
    struct sweep_ctx sc = {&st->w};
    int rc = rf_blobdir_clear_tmp(&st->files, &tmp);
    if (rc == 0)
        rc = rf_blobdir_sweep(&st->files, blob_referenced, &sc, &orphans);
    if (tmp > 0)
        rf_log_num(RF_LOG_INFO, "store: removed unfinished temp files", "count", tmp);
    if (orphans > 0)
        rf_log_num(RF_LOG_INFO, "store: removed blobs no object names", "count", orphans);
    return rc;
}

/* The shared part of both opens: the locks and an empty store. */
static struct rf_store *store_alloc(void)
{
    struct rf_store *st = calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    pthread_mutex_init(&st->files.fault_mu, NULL);
    pthread_mutex_init(&st->files.wmu, NULL);
    pthread_mutex_init(&st->rmu, NULL);
    pthread_cond_init(&st->rcv, NULL);
    st->files.ops = &rf_sqlite_ops;
    st->files.dir_fd = st->files.blobs_fd = st->files.tmp_fd = st->files.lock_fd = -1;
    return st;
}

int rf_sqlite_open(struct rf_store **out, const char *datadir)
{
    struct rf_store *st;
    char *real = NULL;
    int rc, do_recover = 0;
    *out = NULL;
    if (!datadir || !*datadir)
        return RF_ERR_INVALID;
    if (!(st = store_alloc()))
        return RF_ERR_NOMEM;

    if ((rc = rf_blobdir_open(&st->files, datadir, &do_recover, store_blob_referenced)) != 0)
        goto out;
    /* the database file is created 0600 before SQLite sees it; -wal and -shm
     * take the same mode */
    int fd = openat(st->files.dir_fd, "refuge.db", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        rc = rf_store_errno(errno);
        goto out;
    }
    close(fd);
    real = realpath(datadir, NULL);
    if (!real) {
        rc = rf_store_errno(errno);
        goto out;
    }
    size_t plen = strlen(real) + sizeof("/refuge.db");
    st->dbpath = malloc(plen);
    if (!st->dbpath) {
        rc = RF_ERR_NOMEM;
        goto out;
    }
    snprintf(st->dbpath, plen, "%s/refuge.db", real);

    if ((rc = conn_open(&st->w, st->dbpath, 0)) != 0)
        goto out;
    if ((rc = set_wal(&st->w)) != 0)
        goto out;
    if ((rc = migrate(&st->w)) != 0)
        goto out;
    if (do_recover && (rc = recover(st)) != 0)
        goto out;
    if (!do_recover)
        rf_log_info("store: another opener holds the data directory; recovery skipped");
    *out = st;
    st = NULL;
out:
    if (rc != 0)
        rf_log_error("store: open failed", rc);
    free(real);
    rf_sqlite_close(st);
    return rc;
}

/* "file:" URI of DIR/refuge.db for a read-only opener (RFC 3986 escapes for
 * anything but unreserved characters and '/'). */
static int db_uri(char **out, const char *dir, int immutable)
{
    static const char hex[] = "0123456789ABCDEF";
    const char *q = immutable ? "/refuge.db?immutable=1" : "/refuge.db?mode=ro";
    size_t n = strlen(dir);
    char *p = malloc(5 + 3 * n + strlen(q) + 1);
    if (!p)
        return RF_ERR_NOMEM;
    char *w = p;
    memcpy(w, "file:", 5);
    w += 5;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)dir[i];
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            ch == '/' || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
            *w++ = (char)ch;
        } else {
            *w++ = '%';
            *w++ = hex[ch >> 4];
            *w++ = hex[ch & 15];
        }
    }
    memcpy(w, q, strlen(q) + 1);
    *out = p;
    return 0;
}

int rf_sqlite_open_readonly(struct rf_store **out, const char *datadir)
{
    struct rf_store *st;
    struct stat sb;
    char *real = NULL;
    int rc, v = 0;
    *out = NULL;
    if (!datadir || !*datadir)
        return RF_ERR_INVALID;
    if (!(st = store_alloc()))
        return RF_ERR_NOMEM;
    if ((rc = rf_blobdir_open_readonly(&st->files, datadir)) != 0)
        goto out;
    if (fstatat(st->files.dir_fd, "refuge.db", &sb, AT_SYMLINK_NOFOLLOW) != 0 ||
        !S_ISREG(sb.st_mode) || sb.st_size == 0) {
        rc = errno == EACCES ? RF_ERR_IO : RF_ERR_NOT_FOUND;
        goto out;
    }
    /* No write-ahead log: no process has the database open (the last one
     * to close removes it), and SQLite would create the log and its index
     * to read a WAL database; immutable=1 reads the file alone, without
     * locks. With a log: a read-only reader beside the server. */
    int immutable = fstatat(st->files.dir_fd, "refuge.db-wal", &sb, AT_SYMLINK_NOFOLLOW) != 0 &&
                    errno == ENOENT;
    real = realpath(datadir, NULL);
    if (!real) {
        rc = rf_store_errno(errno);
        goto out;
    }
    if ((rc = db_uri(&st->dbpath, real, immutable)) != 0)
        goto out;
    struct conn *c;
    if ((rc = rf_sqlite_reader_get(st, &c)) != 0)
        goto out;
    rc = user_version(c, &v);
    rf_sqlite_reader_put(st, c);
    if (rc == 0 && v > SCHEMA_VERSION)
        rc = RF_ERR_VERSION;
    if (rc == 0 && v == 0)
        rc = RF_ERR_NOT_FOUND; /* a file, not a store yet */
    if (rc != 0)
        goto out;
    *out = st;
    st = NULL;
out:
    free(real);
    rf_sqlite_close(st);
    return rc;
}

/* One count query's rows, on a reader inside its read transaction. */
static int counts_query(struct conn *c, const char *sql, struct rf_store_counts *out, int which)
{
    sqlite3_stmt *s = NULL;
    int rc = rf_sqlite_err(sqlite3_prepare_v2(c->db, sql, -1, &s, NULL));
    while (rc == 0) {
        int r = sqlite3_step(s);
        if (r == SQLITE_DONE)
            break;
        if (r != SQLITE_ROW) {
            rc = rf_sqlite_err(r);
            break;
        }
        int64_t a = sqlite3_column_int64(s, 0), b = sqlite3_column_int64(s, 1);
        int64_t d = sqlite3_column_int64(s, 2);
        switch (which) {
        case 0: { /* kind, count, bytes */
            size_t k = a >= 0 && a < RF_STORE_KINDS ? (size_t)a : RF_STORE_KINDS - 1;
            out->objects[k] += b > 0 ? (uint64_t)b : 0;
            out->object_bytes[k] += d > 0 ? (uint64_t)d : 0;
            break;
        }
        case 1:
            out->cases = a > 0 ? (uint64_t)a : 0;
            out->staff = b > 0 ? (uint64_t)b : 0;
            break;
        default:
            out->audit = a > 0 ? (uint64_t)a : 0;
            out->last_purge_day = b > 0 && b <= UINT32_MAX ? (uint32_t)b : 0;
            break;
        }
    }
    sqlite3_finalize(s);
    return rc;
}

int rf_sqlite_counts(struct rf_store *st, struct rf_store_counts *out)
{
    static const char *const sql[] = {
        "SELECT kind, count(*), coalesce(sum(size), 0) FROM objects GROUP BY kind",
        ("SELECT (SELECT count(*) FROM sources WHERE case_id <> 'teamconfig'),"
         " (SELECT count(*) FROM staff)"),
        "SELECT count(*), coalesce(max(CASE WHEN action = 'purge' THEN day END), 0) FROM audit",
    };
    struct conn *c;
    memset(out, 0, sizeof(*out));
    out->schema_program = SCHEMA_VERSION;
    int rc = rf_sqlite_reader_get(st, &c);
    if (rc != 0)
        return rc;
    rc = user_version(c, &out->schema);
    /* one snapshot for every count */
    if (rc == 0)
        rc = exec_sql(c, "BEGIN");
    for (int i = 0; rc == 0 && i < 3; i++)
        rc = counts_query(c, sql[i], out, i);
    sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL);
    rf_sqlite_reader_put(st, c);
    return rc;
}

int rf_sqlite_usage(struct rf_store *st, struct rf_store_usage *out)
{
    static const char *const files[] = {"refuge.db", "refuge.db-wal"};
    uint64_t *sizes[] = {&out->db_bytes, &out->wal_bytes};
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < 2; i++) {
        struct stat sb;
        if (fstatat(st->files.dir_fd, files[i], &sb, AT_SYMLINK_NOFOLLOW) == 0)
            *sizes[i] = (uint64_t)sb.st_size;
        else if (errno != ENOENT)
            return rf_store_errno(errno);
    }
    return rf_blobdir_usage(&st->files, &out->blob_bytes, &out->blob_files);
}

void rf_sqlite_close(struct rf_store *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < READERS_MAX; i++)
        conn_close(&st->readers[i]);
    conn_close(&st->w);
    rf_blobdir_close(&st->files);
    free(st->files.dead.name);
    free(st->dbpath);
    pthread_cond_destroy(&st->rcv);
    pthread_mutex_destroy(&st->rmu);
    pthread_mutex_destroy(&st->files.wmu);
    pthread_mutex_destroy(&st->files.fault_mu);
    free(st);
}

const struct rf_store_ops rf_sqlite_ops = {
    .name = "sqlite",
    .secure_delete = 1,
    .close = rf_sqlite_close,
    .setting_get = rf_sqlite_setting_get,
    .source_by_lookup = rf_sqlite_source_by_lookup,
    .source_by_case = rf_sqlite_source_by_case,
    .objects_since = rf_sqlite_objects_since,
    .objects_of_source = rf_sqlite_objects_of_source,
    .object_get = rf_sqlite_object_get,
    .object_read = rf_sqlite_object_read,
    .objects_range = rf_sqlite_objects_range,
    .object_open = rf_sqlite_object_open,
    .staff_get = rf_sqlite_staff_get,
    .roster_latest = rf_sqlite_roster_latest,
    .roster_get = rf_sqlite_roster_get,
    .staff_list = rf_sqlite_staff_list,
    .grants_for = rf_sqlite_grants_for,
    .audit_list = rf_sqlite_audit_list,
    .checkpoint = rf_sqlite_checkpoint,
    .backup = rf_sqlite_backup,
    .counts = rf_sqlite_counts,
    .usage = rf_sqlite_usage,
    .batch = &rf_sqlite_batch,
    .export_rows = rf_sqlite_export,
    .import_begin = rf_sqlite_import_begin,
    .import_row = rf_sqlite_import_row,
    .import_end = rf_sqlite_import_end,
    .session = rf_sqlite_session,
};
