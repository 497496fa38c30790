/*
 * store_pg.c - the PostgreSQL backend of store.h (libpq): connections,
 * statements, schema, open/close, counts. The reads are in store_pg_read.c,
 * the writes (rf_store_apply) and retention in store_pg_write.c.
 *
 * Where. DIR/database holds the connection URL (store.c); the data
 * directory keeps the configuration, keys and the blob files (DIR/blobs: on
 * several hosts a shared directory, see docs/scale-out.md). Several
 * `refuge serve` processes, on one host or many, may open the same database.
 *
 * Connections. As in the SQLite backend: one writer connection, used only
 * inside rf_store_apply and the purge under st->files.wmu, and a pool of at most
 * PG_READERS_MAX reader connections opened on demand. Every connection
 * prepares its statements on first use, sends parameters and takes results
 * in binary, and runs with synchronous_commit = on: COMMIT returns once the
 * commit record is flushed (fsync) on the server (and on a synchronous
 * standby, if the cluster has one). A connection that broke (PostgreSQL
 * restarted) is reset before its next use; a batch in flight then fails
 * with RF_ERR_DB and nothing of it is acknowledged.
 *
 * Sequence numbers. Objects take seq, and grants their id, from the one row
 * of the table counters, incremented by an UPDATE inside the writing
 * transaction. The UPDATE takes that row's lock and keeps it until COMMIT
 * or ROLLBACK, so of two transactions, from any processes, the one holding
 * the smaller number commits (becomes visible) before the other can take
 * its own: numbers become visible in ascending order, and a reader reading
 * "seq > last seen" never skips one that commits later. A rolled back op's
 * increment is rolled back with it: no gaps either. Audit entries take the
 * same lock before they read the chain's last link, so the chain stays one
 * chain across processes. The lock serialises writing transactions that
 * store objects, grants or audit entries; group commit keeps them few.
 *
 * Schema: schema.c's rf_migrations[i].pg, version in the one-row table
 * refuge_schema, each step in its own transaction under an advisory lock,
 * so processes starting together migrate once.
 *
 * Recovery at open. Several processes may use one data directory (on one
 * host, or several sharing it: the directory must then support flock, as
 * NFSv4 does). Every opener holds a shared flock on DIR/users while it is
 * open. An opener that gets it exclusively is alone: it empties DIR/tmp and
 * removes every blob no row names, as the SQLite backend does. Beside a live
 * process it removes only temp files and unnamed blobs older than
 * PG_RECOVER_AGE, since the other may have a put in flight that has not
 * committed yet.
 */
#include "lib/err.h"
#include "lib/log.h"
#include "store/commit.h"
#include "store/pg_internal.h"

#include <assert.h>
#include <sodium.h>
#include <dirent.h>
#include <stdatomic.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PG_CONNECT_TIMEOUT "5" /* seconds */
#define PG_RECOVER_AGE (3600)  /* seconds: no put stays unfinished that long */
#define PG_MIGRATE_LOCK 0x7265667567650001LL

#define OBJECT_COLS                                                                                \
    "o.seq, o.source_id, s.case_id, o.kind::bigint, o.size, o.day, "                               \
    "(o.blob IS NOT NULL)::int::bigint, o.roster "                                                 \
    "FROM objects o JOIN sources s ON s.id = o.source_id "

/* OBJECT_COLS, then the inline ciphertext of an object of at most $4
 * bytes, and the blob's name */
#define OBJECT_COLS_DATA                                                                           \
    "o.seq, o.source_id, s.case_id, o.kind::bigint, o.size, o.day, "                               \
    "(o.blob IS NOT NULL)::int::bigint, o.roster, "                                                \
    "CASE WHEN o.size <= $4 THEN o.data END, CASE WHEN o.size <= $4 THEN o.blob END "              \
    "FROM objects o JOIN sources s ON s.id = o.source_id "

/* SQL and parameter types (i: int8, b: bytea, t: text), one per statement. */
static const struct {
    const char *sql;
    const char *types;
} stmts[P_COUNT] = {
    [P_SETTING_PUT] = {"INSERT INTO settings(key, value) VALUES ($1, $2) "
                       "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                       "tb"},
    [P_SETTING_GET] = {"SELECT value FROM settings WHERE key = $1", "t"},
    [P_SOURCE_BY_LOOKUP] = {"SELECT id, case_id, pk, day FROM sources WHERE lookup_id = $1", "b"},
    [P_SOURCE_BY_CASE] = {"SELECT id, case_id, pk, day FROM sources WHERE case_id = $1", "t"},
    /* a case id taken already: no row, the caller draws another */
    [P_SOURCE_INSERT] = {"INSERT INTO sources(lookup_id, case_id, pk, day) VALUES ($1, $2, $3, $4) "
                         "ON CONFLICT (case_id) DO NOTHING RETURNING id",
                         "btbi"},
    /* the commit-ordering counter: its row lock is held until COMMIT */
    [P_SEQ_NEXT] = {"UPDATE counters SET seq = seq + 1 RETURNING seq", ""},
    /* roster: the latest version, read by a statement that starts after the
     * counter's lock was taken, so it never decreases with seq */
    [P_OBJECT_INSERT] = {"INSERT INTO objects(seq, source_id, kind, size, day, data, blob, roster) "
                         "VALUES ($1, $2, $3, $4, $5, $6, $7, "
                         "(SELECT coalesce(max(version), 0) FROM rosters))",
                         "iiiiibt"},
    [P_OBJECT_DELETE] = {"DELETE FROM objects WHERE seq = $1 AND source_id = $2 RETURNING blob",
                         "ii"},
    [P_BLOB_REFERENCED] = {"SELECT 1 FROM objects WHERE blob = $1", "t"},
    [P_TOKEN_PUT] = {"INSERT INTO enroll_tokens(hash, role, day, used) VALUES ($1, $2, $3, 0)",
                     "bii"},
    [P_TOKEN_USE] = {"UPDATE enroll_tokens SET used = 1 WHERE hash = $1 AND used = 0 "
                     "RETURNING role::bigint",
                     "b"},
    [P_STAFF_PUT] = {"INSERT INTO staff(sign_pk, box_pk, name, day) VALUES ($1, $2, $3, $4) "
                     "ON CONFLICT(sign_pk) DO UPDATE SET box_pk = excluded.box_pk, "
                     "name = excluded.name",
                     "bbti"},
    [P_STAFF_GET] = {"SELECT box_pk, name, day FROM staff WHERE sign_pk = $1", "b"},
    [P_ROSTER_PUT] = {"INSERT INTO rosters(version, raw) VALUES ($1, $2)", "ib"},
    [P_ROSTER_MAX] = {"SELECT coalesce(max(version), 0) FROM rosters", ""},
    [P_ROSTER_LATEST] = {"SELECT version, raw FROM rosters ORDER BY version DESC LIMIT 1", ""},
    [P_ROSTER_GET] = {"SELECT raw FROM rosters WHERE version = $1", "i"},
    [P_OBJECTS_SINCE] = {"SELECT " OBJECT_COLS "WHERE o.seq > $1 ORDER BY o.seq LIMIT $2", "ii"},
    [P_OBJECTS_OF_SOURCE] = {"SELECT " OBJECT_COLS "WHERE o.source_id = $1 AND "
                             "(($2 >> o.kind) & 1) = 1 ORDER BY o.seq LIMIT $3",
                             "iii"},
    [P_OBJECT_GET] = {"SELECT " OBJECT_COLS "WHERE o.seq = $1", "i"},
    [P_OBJECT_DATA] = {"SELECT data, blob FROM objects WHERE seq = $1", "i"},
    [P_OBJECTS_RANGE] = {"SELECT " OBJECT_COLS_DATA "WHERE o.seq > $1 AND o.seq <= $2 "
                         "ORDER BY o.seq LIMIT $3",
                         "iiii"},
    [P_STAFF_LIST] = {"SELECT sign_pk, box_pk, name, day FROM staff ORDER BY name COLLATE \"C\" "
                      "LIMIT $1",
                      "i"},
    [P_GRANT_ID_NEXT] = {"UPDATE counters SET grant_id = grant_id + 1 RETURNING grant_id", ""},
    [P_GRANT_PUT] = {"INSERT INTO grants(id, seq, keyid, granter, \"grant\") "
                     "SELECT $1, $2, $3, $4, $5 "
                     "WHERE (SELECT count(*) FROM grants WHERE seq = $2 AND keyid = $3) < $6 "
                     "ON CONFLICT(seq, keyid, granter) DO NOTHING",
                     "iibbbi"},
    [P_GRANTS_FOR] = {"SELECT id, seq, keyid, granter, \"grant\" FROM grants WHERE keyid = $1 "
                      "AND id > $2 ORDER BY id LIMIT $3",
                      "bii"},
    [P_ORDER_LOCK] = {"SELECT seq FROM counters FOR UPDATE", ""},
    [P_AUDIT_LAST] = {"SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1", ""},
    [P_AUDIT_INSERT] = {"INSERT INTO audit(id, day, actor, action, target, prev, hash, request) "
                        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                        "iibttbbb"},
    [P_AUDIT_LIST] = {"SELECT id, day, actor, action, target, prev, hash, request FROM audit "
                      "WHERE id > $1 ORDER BY id LIMIT $2",
                      "ii"},
    [P_CASE_SCHEDULE] = {"UPDATE sources SET delete_day = $2 WHERE id = $1", "ii"},
    [P_PURGE_NEXT] = {"SELECT s.id FROM sources s WHERE s.id > $1 AND s.case_id <> 'teamconfig' "
                      "AND ((s.delete_day IS NOT NULL AND s.delete_day <= $2) OR ($3 > 0 AND "
                      "coalesce((SELECT max(o.day) FROM objects o WHERE o.source_id = s.id "
                      "AND o.kind IN (1, 2)), s.day) + $3 < $2)) ORDER BY s.id LIMIT 1",
                      "iii"},
    [P_PURGE_BLOBS] = {"SELECT blob FROM objects WHERE source_id = $1 AND blob IS NOT NULL", "i"},
    [P_PURGE_OBJECTS] = {"DELETE FROM objects WHERE source_id = $1", "i"},
    [P_PURGE_SOURCE] = {"DELETE FROM sources WHERE id = $1", "i"},
    [P_NONCE_PUT] = {"INSERT INTO nonces(nonce, slot) VALUES ($1, $2)", "bi"},
    /* the pipelined batch of object puts (store_pg_write.c): the counter
     * moved by the batch's count at once, each object numbered from it */
    [P_BEGIN] = {"BEGIN", ""},
    [P_TXID] = {"SELECT txid_current()", ""},
    [P_SEQ_RESERVE] = {"UPDATE counters SET seq = seq + $1 RETURNING seq", "i"},
    [P_OBJECT_INSERT_AT] =
        {"INSERT INTO objects(seq, source_id, kind, size, day, data, blob, roster) "
         "VALUES ((SELECT seq FROM counters) - $1, $2, $3, $4, $5, $6, $7, "
         "(SELECT coalesce(max(version), 0) FROM rosters)) RETURNING seq",
         "iiiiibt"},
    /* this process's mark of its batch, in the batch's transaction: what a
     * lost COMMIT's answer is resolved by (rf_pg_committed) */
    [P_MARK_PUT] = {"INSERT INTO commit_marks(writer, batch, day) VALUES ($1, $2, $3) "
                    "ON CONFLICT (writer) DO UPDATE SET batch = excluded.batch, day = excluded.day",
                    "bii"},
    [P_MARK_GET] = {"SELECT batch FROM commit_marks WHERE writer = $1", "b"},
    /* the rows of processes gone for a month (a live one writes its row daily
     * or not at all: a row is only read by its own writer) */
    [P_MARK_PRUNE] = {"DELETE FROM commit_marks WHERE day < $1", "i"},
    [P_NONCE_PRUNE] = {"DELETE FROM nonces WHERE nonce IN "
                       "(SELECT nonce FROM nonces WHERE slot <= $1 LIMIT $2)",
                       "ii"},
    [P_SESS_PUT] =
        {"INSERT INTO sessions(id, keyid, sealed, expires, day, msgs, bytes) SELECT $1, $2, $3, "
         "$4, $5, 0, 0 WHERE $6 = 0 OR (SELECT count(*) FROM sessions WHERE expires >= $7) < $6",
         "bbbiiii"},
    [P_SESS_GET] = {"SELECT keyid, sealed, expires, day, msgs, bytes FROM sessions WHERE id = $1 "
                    "AND expires >= $2",
                    "bi"},
    [P_SESS_TOUCH] = {"UPDATE sessions SET expires = $3 WHERE id = $1 AND expires >= $2", "bii"},
    [P_SESS_DELETE] = {"DELETE FROM sessions WHERE id = $1", "b"},
    [P_SESS_COUNT] = {"UPDATE sessions SET msgs = CASE WHEN day = $3 THEN msgs + 1 ELSE 1 END, "
                      "bytes = CASE WHEN day = $3 THEN bytes + $4 ELSE $4 END, day = $3 WHERE id = "
                      "$1 AND expires >= $2 AND (CASE WHEN day = $3 THEN msgs ELSE 0 END) < $5 AND "
                      "(CASE WHEN day = $3 THEN bytes ELSE 0 END) + $4 <= $6",
                      "biiiii"},
    [P_SESS_CHARGE] = {"UPDATE sessions SET msgs = CASE WHEN day = $3 THEN msgs ELSE 0 END, bytes "
                       "= LEAST((CASE WHEN day = $3 THEN bytes ELSE 0 END) + $4, $5), day = $3 "
                       "WHERE id = $1 AND expires >= $2",
                       "biiii"},
    [P_SESS_EXISTS] = {"SELECT 1 FROM sessions WHERE id = $1 AND expires >= $2", "bi"},
    [P_SESS_REAP] = {"DELETE FROM sessions WHERE expires < $1", "i"},
    [P_SESS_LIVE] = {"SELECT count(*) FROM sessions WHERE expires >= $1", "i"},
};

static_assert(offsetof(struct rf_store, files) == 0, "struct rf_store begins with its files");
static_assert(P_COUNT <= 64, "prepared statements fit the bit mask");

/* ---- parameters and results ---- */

void rf_pgp_i64(struct pgp *p, int64_t v)
{
    assert(p->n < PG_PARAMS_MAX);
    uint64_t u = (uint64_t)v;
    for (int i = 0; i < 8; i++)
        p->num[p->n][i] = (char)(u >> (56 - 8 * i));
    p->v[p->n] = p->num[p->n];
    p->len[p->n] = 8;
    p->fmt[p->n++] = 1;
}

void rf_pgp_bytes(struct pgp *p, const void *data, size_t n)
{
    static const char empty[1];
    assert(p->n < PG_PARAMS_MAX && n <= INT32_MAX);
    p->v[p->n] = n ? data : empty;
    p->len[p->n] = (int)n;
    p->fmt[p->n++] = 1;
}

void rf_pgp_text(struct pgp *p, const char *s)
{
    rf_pgp_bytes(p, s, strlen(s));
}

void rf_pgp_null(struct pgp *p)
{
    assert(p->n < PG_PARAMS_MAX);
    p->v[p->n] = NULL;
    p->len[p->n] = 0;
    p->fmt[p->n++] = 1;
}

int64_t rf_pg_i64(const PGresult *r, int row, int col)
{
    const unsigned char *v = (const unsigned char *)PQgetvalue(r, row, col);
    int n = PQgetlength(r, row, col);
    if (PQgetisnull(r, row, col) || n <= 0 || n > 8)
        return 0;
    uint64_t u = (v[0] & 0x80) ? ~(uint64_t)0 : 0; /* sign-extend int2/int4 */
    for (int i = 0; i < n; i++)
        u = (u << 8) | v[i];
    return (int64_t)u;
}

int rf_pg_fixed(void *dst, size_t n, const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col) || (size_t)PQgetlength(r, row, col) != n)
        return RF_ERR_DB;
    memcpy(dst, PQgetvalue(r, row, col), n);
    return 0;
}

int rf_pg_text(char *dst, size_t cap, const PGresult *r, int row, int col)
{
    int n = PQgetlength(r, row, col);
    if (PQgetisnull(r, row, col) || n < 0 || (size_t)n >= cap)
        return RF_ERR_DB;
    memcpy(dst, PQgetvalue(r, row, col), (size_t)n);
    dst[n] = '\0';
    return 0;
}

/* ---- an outage, logged once ----
 *
 * While PostgreSQL is down every connection of every thread fails, each
 * request retries, and a line per failure would be hundreds of lines a
 * second in the admin's journal, burying everything else. The first failure
 * of an outage is logged; the rest are counted, and the first reconnection
 * logs the end of the outage with that count. Process-wide: one outage is
 * one outage whichever connection sees it. */
static atomic_int pg_down;
static atomic_llong pg_down_failures;

/* 1 if this failure is the outage's first (the caller logs it) */
int rf_pg_outage_failure(void)
{
    if (atomic_exchange(&pg_down, 1) == 0)
        return 1;
    atomic_fetch_add(&pg_down_failures, 1);
    return 0;
}

static void outage_over(void)
{
    if (atomic_exchange(&pg_down, 0) == 1)
        rf_log_num(RF_LOG_INFO, "store: reconnected to PostgreSQL", "unlogged_failures",
                   atomic_exchange(&pg_down_failures, 0));
}

/* SQLSTATE -> rf_err; never logs the message (it may quote values). */
static int pg_err(const PGresult *r, PGconn *db)
{
    const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    if (!st || strlen(st) != 5) {
        if (PQstatus(db) != CONNECTION_OK && rf_pg_outage_failure())
            rf_log_info("store: PostgreSQL connection lost (further failures are counted, not "
                        "logged, until it is back)");
        return RF_ERR_DB;
    }
    if (strcmp(st, "23505") == 0)
        return RF_ERR_EXISTS;
    if (strcmp(st, "23503") == 0)
        return RF_ERR_NOT_FOUND;
    if (strncmp(st, "23", 2) == 0 || strncmp(st, "22", 2) == 0 || strcmp(st, "P0001") == 0)
        return RF_ERR_INVALID;
    if (strcmp(st, "53100") == 0)
        return RF_ERR_NOSPACE;
    if (strcmp(st, "53200") == 0)
        return RF_ERR_NOMEM;
    if (strcmp(st, "54000") == 0)
        return RF_ERR_LIMIT;
    if (strcmp(st, "58030") == 0)
        return RF_ERR_IO;
    /* the class only (two digits, -1 if not): the message may quote values */
    int cls = st[0] >= '0' && st[0] <= '9' && st[1] >= '0' && st[1] <= '9'
                  ? (st[0] - '0') * 10 + (st[1] - '0')
                  : -1;
    rf_log_num(RF_LOG_INFO, "store: PostgreSQL error", "sqlstate_class", cls);
    return RF_ERR_DB;
}

static int pg_ok(PGresult *r)
{
    ExecStatusType s = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    return s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
}

static int pg_prepare(struct pgconn *c, enum pg_stmt id)
{
    Oid types[PG_PARAMS_MAX];
    const char *t = stmts[id].types;
    int n = (int)strlen(t);
    char name[16];
    for (int i = 0; i < n; i++)
        types[i] = t[i] == 'i' ? 20 : t[i] == 'b' ? 17 : 25;
    snprintf(name, sizeof(name), "s%d", (int)id);
    PGresult *r = PQprepare(c->db, name, stmts[id].sql, n, types);
    int rc = pg_ok(r) ? 0 : pg_err(r, c->db);
    if (rc != 0)
        rf_log_num(RF_LOG_ERROR, "store: cannot prepare statement", "id", id);
    PQclear(r);
    if (rc == 0)
        c->prepared |= (uint64_t)1 << id;
    return rc;
}

/* 1 if a statement that failed may run again on a fresh connection: the
 * connection was lost, c was idle (outside a transaction) before it, the
 * statement changes nothing (a read, or BEGIN), and a reset succeeded. This
 * is the connection of a pool or the writer that sat idle across a
 * PostgreSQL restart: its first use fails, the second works, and the person
 * whose request made that first use must not pay for it. A statement inside
 * a transaction never runs again: the transaction went with the connection
 * (the batch fails whole, store_pg_write.c). */
static int lost_while_idle(struct pgconn *c, int was_idle, int harmless)
{
    return was_idle && harmless && PQstatus(c->db) != CONNECTION_OK && rf_pg_ensure(c) == 0;
}

static int is_read(enum pg_stmt id)
{
    const char *sql = stmts[id].sql;
    return strncmp(sql, "SELECT ", 7) == 0 && !strstr(sql, "FOR UPDATE");
}

static int exec_once(struct pgconn *c, enum pg_stmt id, const struct pgp *p, PGresult **res)
{
    char name[16];
    int rc;
    if (!(c->prepared & ((uint64_t)1 << id)) && (rc = pg_prepare(c, id)) != 0)
        return rc;
    snprintf(name, sizeof(name), "s%d", (int)id);
    PGresult *r = PQexecPrepared(c->db, name, p->n, p->v, p->len, p->fmt, 1);
    if (!pg_ok(r)) {
        rc = pg_err(r, c->db);
        PQclear(r);
        return rc;
    }
    *res = r;
    return 0;
}

int rf_pg_exec(struct pgconn *c, enum pg_stmt id, const struct pgp *p, PGresult **res)
{
    static const struct pgp none;
    *res = NULL;
    if (!p)
        p = &none;
    assert(p->n == (int)strlen(stmts[id].types));
    int idle = PQtransactionStatus(c->db) == PQTRANS_IDLE;
    int rc = exec_once(c, id, p, res);
    if (rc == RF_ERR_DB && lost_while_idle(c, idle, is_read(id)))
        rc = exec_once(c, id, p, res);
    return rc;
}

int rf_pg_pipeline(struct pgconn *c, struct pg_call *calls, size_t n)
{
    static const struct pgp none;
    char name[16];
    int rc = 0;
    size_t sent = 0;
    for (size_t i = 0; i < n; i++) {
        calls[i].res = NULL;
        if (!(c->prepared & ((uint64_t)1 << calls[i].id)) && (rc = pg_prepare(c, calls[i].id)) != 0)
            return rc;
    }
    if (!PQenterPipelineMode(c->db))
        return RF_ERR_DB;
    for (; sent < n; sent++) {
        const struct pgp *p = calls[sent].p ? calls[sent].p : &none;
        assert(p->n == (int)strlen(stmts[calls[sent].id].types));
        snprintf(name, sizeof(name), "s%d", (int)calls[sent].id);
        if (!PQsendQueryPrepared(c->db, name, p->n, p->v, p->len, p->fmt, 1))
            break;
    }
    int synced = PQpipelineSync(c->db);
    if (sent < n || !synced)
        rc = RF_ERR_DB;
    /* each statement's result and the NULL after it, then the sync's */
    for (size_t i = 0; i < sent && PQstatus(c->db) == CONNECTION_OK; i++) {
        PGresult *r = PQgetResult(c->db);
        if (!r) {
            rc = rc ? rc : RF_ERR_DB;
            break;
        }
        if (pg_ok(r)) {
            calls[i].res = r;
        } else {
            if (rc == 0)
                rc = PQresultStatus(r) == PGRES_PIPELINE_ABORTED ? RF_ERR_DB : pg_err(r, c->db);
            PQclear(r);
        }
        while ((r = PQgetResult(c->db)) != NULL) /* none: one result per statement */
            PQclear(r);
    }
    if (synced && PQstatus(c->db) == CONNECTION_OK) {
        PGresult *r = PQgetResult(c->db);
        if (!r || PQresultStatus(r) != PGRES_PIPELINE_SYNC)
            rc = rc ? rc : RF_ERR_DB;
        PQclear(r);
    }
    /* fails on a broken connection: PQreset (rf_pg_ensure) leaves the mode */
    if (!PQexitPipelineMode(c->db) || PQstatus(c->db) != CONNECTION_OK)
        rc = rc ? rc : RF_ERR_DB;
    if (rc != 0)
        for (size_t i = 0; i < n; i++) {
            PQclear(calls[i].res);
            calls[i].res = NULL;
        }
    return rc;
}

int rf_pg_run(struct pgconn *c, enum pg_stmt id, const struct pgp *p, uint64_t *changed)
{
    PGresult *r;
    int rc = rf_pg_exec(c, id, p, &r);
    if (rc != 0)
        return rc;
    if (changed)
        *changed = strtoull(PQcmdTuples(r), NULL, 10);
    PQclear(r);
    return 0;
}

int rf_pg_sql(struct pgconn *c, const char *sql)
{
    int idle = PQtransactionStatus(c->db) == PQTRANS_IDLE;
    PGresult *r = PQexec(c->db, sql);
    int rc = pg_ok(r) ? 0 : pg_err(r, c->db);
    PQclear(r);
    /* a transaction's start on a connection that broke while it sat idle */
    if (rc == RF_ERR_DB && lost_while_idle(c, idle, strncmp(sql, "BEGIN", 5) == 0)) {
        r = PQexec(c->db, sql);
        rc = pg_ok(r) ? 0 : pg_err(r, c->db);
        PQclear(r);
    }
    return rc;
}

int rf_pg_commit(struct pgconn *c)
{
    PGresult *r = PQexec(c->db, "COMMIT");
    int rc = pg_ok(r) ? 0 : pg_err(r, c->db);
    /* COMMIT of a transaction that failed rolls it back and says so */
    if (rc == 0 && strcmp(PQcmdStatus(r), "COMMIT") != 0)
        rc = RF_ERR_DB;
    PQclear(r);
    return rc;
}

int rf_pg_begin(struct pgconn *c, int64_t *xid)
{
    int idle = PQtransactionStatus(c->db) == PQTRANS_IDLE;
    for (int attempt = 0;; attempt++) {
        /* BEGIN and the transaction's id, in one round trip */
        PGresult *r = PQexec(c->db, "BEGIN; SELECT txid_current()");
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0)) {
            *xid = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
            PQclear(r);
            return 0;
        }
        int rc = pg_err(r, c->db);
        PQclear(r);
        if (attempt > 0 || rc != RF_ERR_DB || !lost_while_idle(c, idle, 1))
            return rc;
    }
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* 1 if writer's mark in commit_marks is batch, 0 if not, -2 not known yet */
static int mark_is(struct pgconn *c, const unsigned char writer[16], int64_t batch)
{
    struct pgp p = {0};
    PGresult *r;
    rf_pgp_bytes(&p, writer, 16);
    if (rf_pg_exec(c, P_MARK_GET, &p, &r) != 0)
        return -2;
    int v = PQntuples(r) == 1 && rf_pg_i64(r, 0, 0) == batch;
    PQclear(r);
    return v;
}

int rf_pg_committed(struct pgconn *c, int64_t xid, const unsigned char writer[16], int64_t batch)
{
    char sql[64];
    double deadline = mono_s() + PG_RESOLVE_S;
    snprintf(sql, sizeof(sql), "SELECT txid_status(%lld)", (long long)xid);
    for (int i = 0; i == 0 || mono_s() < deadline; i++) {
        if (i > 0) {
            struct timespec ts = {0, PG_RESOLVE_PAUSE_MS * 1000000L};
            nanosleep(&ts, NULL);
        }
        if (rf_pg_ensure(c) != 0)
            continue;
        /* first, nothing may still run under xid (the connection broke, not
         * PostgreSQL: the old backend may yet commit; or another
         * transaction got the id again after a crash): then the mark says */
        PGresult *r = PQexec(c->db, sql);
        int v = -2; /* ask again */
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
            const char *st = PQgetisnull(r, 0, 0) ? "" : PQgetvalue(r, 0, 0);
            v = strcmp(st, "in progress") == 0 ? -2
                : strcmp(st, "aborted") == 0   ? 0 /* ours, or one that reused its id */
                                               : mark_is(c, writer, batch);
        }
        PQclear(r);
        if (v != -2)
            return v;
    }
    return -1;
}

int rf_pg_in_tx(struct pgconn *c)
{
    PGTransactionStatusType t = PQtransactionStatus(c->db);
    return t == PQTRANS_INTRANS || t == PQTRANS_INERROR;
}

/* ---- connections ---- */

static void quiet_notice(void *arg, const char *msg)
{
    (void)arg; /* notices may quote values: never printed */
    (void)msg;
}

static int conn_setup(struct pgconn *c)
{
    c->prepared = 0;
    PQsetNoticeProcessor(c->db, quiet_notice, NULL);
    return rf_pg_sql(c, "SET synchronous_commit = on;"
                        "SET default_transaction_isolation = 'read committed';"
                        "SET client_min_messages = warning;"
                        "SET lock_timeout = '30s';");
}

static void conn_close(struct pgconn *c)
{
    if (c->db)
        PQfinish(c->db);
    c->db = NULL;
    c->prepared = 0;
}

static int conn_open(struct pgconn *c, const char *url)
{
    memset(c, 0, sizeof(*c));
    /* a connection attempt (and PQreset's) gives up after PG_CONNECT_TIMEOUT
     * seconds: an unreachable host must not hold the committer for the
     * system's TCP timeout (minutes); the URL's own connect_timeout, if it
     * has one, comes after and wins */
    static const char *const keys[] = {"connect_timeout", "dbname", NULL};
    const char *vals[] = {PG_CONNECT_TIMEOUT, url, NULL};
    c->db = PQconnectdbParams(keys, vals, 1);
    if (!c->db)
        return RF_ERR_NOMEM;
    if (PQstatus(c->db) != CONNECTION_OK) {
        /* the message may repeat the host or user: not logged */
        if (rf_pg_outage_failure())
            rf_log_info("store: cannot connect to PostgreSQL (further failures are counted, not "
                        "logged, until it is back)");
        conn_close(c);
        return RF_ERR_DB;
    }
    int rc = conn_setup(c);
    if (rc != 0)
        conn_close(c);
    else
        outage_over();
    return rc;
}

int rf_pg_ensure(struct pgconn *c)
{
    if (c->db && PQstatus(c->db) == CONNECTION_OK)
        return 0;
    if (!c->db)
        return RF_ERR_DB;
    PQreset(c->db);
    if (PQstatus(c->db) != CONNECTION_OK) {
        if (rf_pg_outage_failure())
            rf_log_info("store: PostgreSQL is unreachable (further failures are counted, not "
                        "logged, until it is back)");
        return RF_ERR_DB;
    }
    if (PQpipelineStatus(c->db) != PQ_PIPELINE_OFF && !PQexitPipelineMode(c->db))
        return RF_ERR_DB; /* a pipeline cut off: PQreset should have left it */
    outage_over();
    return conn_setup(c);
}

int rf_pg_reader_get(struct rf_store *st, struct pgconn **out)
{
    int rc = 0;
    assert(!rf_committer_in_completion());
    pthread_mutex_lock(&st->rmu);
    while (st->n_idle == 0 && st->n_open == PG_READERS_MAX)
        pthread_cond_wait(&st->rcv, &st->rmu);
    if (st->n_idle > 0) {
        *out = st->idle[--st->n_idle];
    } else {
        struct pgconn *c = NULL;
        for (size_t i = 0; i < PG_READERS_MAX && !c; i++)
            if (!st->readers[i].db)
                c = &st->readers[i];
        rc = c ? conn_open(c, st->url) : RF_ERR_DB;
        /* rf_store_open_readonly: PostgreSQL refuses any write on them too */
        if (rc == 0 && st->files.readonly &&
            (rc = rf_pg_sql(c, "SET default_transaction_read_only = on")) != 0)
            conn_close(c);
        if (rc == 0) {
            st->n_open++;
            *out = c;
        }
    }
    pthread_mutex_unlock(&st->rmu);
    if (rc == 0 && (rc = rf_pg_ensure(*out)) != 0)
        rf_pg_reader_put(st, *out);
    return rc;
}

void rf_pg_reader_put(struct rf_store *st, struct pgconn *c)
{
    if (rf_pg_in_tx(c)) /* a read that failed half-way */
        rf_pg_sql(c, "ROLLBACK");
    pthread_mutex_lock(&st->rmu);
    st->idle[st->n_idle++] = c;
    pthread_cond_signal(&st->rcv);
    pthread_mutex_unlock(&st->rmu);
}

/* ---- schema ---- */

static int schema_version(struct pgconn *c, int *v)
{
    PGresult *r = PQexecParams(c->db,
                               "SELECT CASE WHEN to_regclass('refuge_schema') IS NULL THEN -1 "
                               "ELSE (SELECT version FROM refuge_schema) END",
                               0, NULL, NULL, NULL, NULL, 0);
    int rc = pg_ok(r) && PQntuples(r) == 1 ? 0 : pg_err(r, c->db);
    if (rc == 0)
        *v = PQgetisnull(r, 0, 0) ? 0 : atoi(PQgetvalue(r, 0, 0));
    PQclear(r);
    return rc;
}

static int migrate(struct pgconn *c)
{
    char sql[400];
    /* under the lock too: two processes creating the table at once would
     * collide in PostgreSQL's catalog even with IF NOT EXISTS */
    snprintf(sql, sizeof(sql),
             "BEGIN; SELECT pg_advisory_xact_lock(%lld);"
             "CREATE TABLE IF NOT EXISTS refuge_schema("
             " one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),"
             " version INTEGER NOT NULL);"
             "INSERT INTO refuge_schema(version) VALUES (0) ON CONFLICT DO NOTHING; COMMIT;",
             (long long)PG_MIGRATE_LOCK);
    int rc = rf_pg_sql(c, sql);
    for (;;) {
        int v = 0;
        if (rc != 0)
            break;
        snprintf(sql, sizeof(sql), "BEGIN; SELECT pg_advisory_xact_lock(%lld);",
                 (long long)PG_MIGRATE_LOCK);
        if ((rc = rf_pg_sql(c, sql)) != 0 || (rc = schema_version(c, &v)) != 0)
            break;
        if (v > rf_schema_version) {
            rf_log_num(RF_LOG_ERROR, "store: database schema is newer than this program", "version",
                       v);
            rc = RF_ERR_VERSION;
            break;
        }
        if (v == rf_schema_version) {
            rc = rf_pg_commit(c);
            break;
        }
        snprintf(sql, sizeof(sql), "UPDATE refuge_schema SET version = %d", v + 1);
        if ((rc = rf_pg_sql(c, rf_migrations[v].pg)) != 0 || (rc = rf_pg_sql(c, sql)) != 0 ||
            (rc = rf_pg_commit(c)) != 0) {
            rf_log_num(RF_LOG_ERROR, "store: migration failed", "to_version", v + 1);
            break;
        }
        rf_log_num(RF_LOG_INFO, "store: schema migrated", "version", v + 1);
    }
    if (rf_pg_in_tx(c))
        rf_pg_sql(c, "ROLLBACK");
    return rc;
}

/* ---- an import's database (store_pg_migrate.c) ---- */

int rf_pg_empty(struct pgconn *c, int *empty)
{
    PGresult *r = PQexecParams(c->db,
                               "SELECT (SELECT count(*) FROM pg_class k JOIN pg_namespace n"
                               " ON n.oid = k.relnamespace WHERE n.nspname = current_schema()"
                               " AND k.relkind IN ('r', 'p', 'v', 'm', 'S', 'f'))"
                               " + (SELECT count(*) FROM pg_proc f JOIN pg_namespace n"
                               " ON n.oid = f.pronamespace WHERE n.nspname = current_schema()"
                               " AND f.proname LIKE 'refuge%')",
                               0, NULL, NULL, NULL, NULL, 0);
    int rc = pg_ok(r) && PQntuples(r) == 1 ? 0 : pg_err(r, c->db);
    if (rc == 0)
        *empty = strcmp(PQgetvalue(r, 0, 0), "0") == 0;
    PQclear(r);
    return rc;
}

int rf_pg_schema_create(struct pgconn *c)
{
    char sql[160];
    snprintf(sql, sizeof(sql), "SELECT pg_advisory_xact_lock(%lld)", (long long)PG_MIGRATE_LOCK);
    int empty = 0, rc = rf_pg_sql(c, sql);
    if (rc == 0 && (rc = rf_pg_empty(c, &empty)) == 0 && !empty)
        rc = RF_ERR_EXISTS;
    if (rc == 0)
        rc = rf_pg_sql(c, "CREATE TABLE refuge_schema("
                          " one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),"
                          " version INTEGER NOT NULL);"
                          "INSERT INTO refuge_schema(version) VALUES (0)");
    for (int v = 0; rc == 0 && v < rf_schema_version; v++)
        rc = rf_pg_sql(c, rf_migrations[v].pg);
    snprintf(sql, sizeof(sql), "UPDATE refuge_schema SET version = %d", rf_schema_version);
    return rc == 0 ? rf_pg_sql(c, sql) : rc;
}

/* ---- recovery ---- */

static int older_than(int dir_fd, const char *name, time_t age)
{
    struct stat sb;
    if (fstatat(dir_fd, name, &sb, AT_SYMLINK_NOFOLLOW) != 0)
        return 0;
    return sb.st_mtime + age < time(NULL);
}

static int blob_referenced_on(struct pgconn *c, const char *name)
{
    struct pgp p = {0};
    PGresult *r;
    rf_pgp_text(&p, name);
    int rc = rf_pg_exec(c, P_BLOB_REFERENCED, &p, &r);
    if (rc != 0)
        return rc;
    rc = PQntuples(r) > 0 ? 1 : 0;
    PQclear(r);
    return rc;
}

static int store_blob_referenced(struct rf_store *st, const char *name)
{
    struct pgconn *c;
    int rc = rf_pg_reader_get(st, &c);
    if (rc != 0)
        return rc;
    rc = blob_referenced_on(c, name);
    rf_pg_reader_put(st, c);
    return rc;
}

struct sweep_ctx {
    struct rf_store *st;
};

/* An orphan is removed only once it is old: young ones may be another
 * process's put in flight. */
static int sweep_referenced(void *ctx, const char *name)
{
    struct sweep_ctx *sc = ctx;
    if (!older_than(sc->st->files.blobs_fd, name, PG_RECOVER_AGE))
        return 1;
    return blob_referenced_on(&sc->st->w, name);
}

static int clear_old_tmp(struct rf_store *st, long *n)
{
    int fd = dup(st->files.tmp_fd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    struct dirent *e;
    *n = 0;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return RF_ERR_IO;
    }
    rewinddir(d);
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || !older_than(st->files.tmp_fd, e->d_name, PG_RECOVER_AGE))
            continue;
        if (rf_blobdir_tmp_remove(&st->files, e->d_name) == 0)
            (*n)++;
    }
    closedir(d);
    return 0;
}

static int sweep_all(void *ctx, const char *name)
{
    struct sweep_ctx *sc = ctx;
    return blob_referenced_on(&sc->st->w, name);
}

static int recover(struct rf_store *st, int alone)
{
    long tmp = 0, orphans = 0;
    struct sweep_ctx sc = {st};
    if (alone) {
        int rc = rf_blobdir_clear_tmp(&st->files, &tmp);
        if (rc == 0)
            rc = rf_blobdir_sweep(&st->files, sweep_all, &sc, &orphans);
        if (tmp > 0)
            rf_log_num(RF_LOG_INFO, "store: removed unfinished temp files", "count", tmp);
        if (orphans > 0)
            rf_log_num(RF_LOG_INFO, "store: removed blobs no object names", "count", orphans);
        return rc;
    }
    int rc = clear_old_tmp(st, &tmp);
    if (rc == 0)
        rc = rf_blobdir_sweep(&st->files, sweep_referenced, &sc, &orphans);
    if (tmp > 0)
        rf_log_num(RF_LOG_INFO, "store: removed unfinished temp files", "count", tmp);
    if (orphans > 0)
        rf_log_num(RF_LOG_INFO, "store: removed blobs no object names", "count", orphans);
    return rc;
}

/* ---- open / close ---- */

static void pg_close(struct rf_store *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < PG_READERS_MAX; i++)
        conn_close(&st->readers[i]);
    conn_close(&st->w);
    rf_blobdir_close(&st->files);
    free(st->files.dead.name);
    free(st->calls);
    free(st->params);
    if (st->users_fd >= 0)
        close(st->users_fd); /* and its flock with it */
    free(st->datadir);
    if (st->url) {
        sodium_memzero(st->url, strlen(st->url)); /* it may hold a password */
        free(st->url);
    }
    pthread_cond_destroy(&st->rcv);
    pthread_mutex_destroy(&st->rmu);
    pthread_mutex_destroy(&st->files.wmu);
    pthread_mutex_destroy(&st->files.fault_mu);
    free(st);
}

extern const struct rf_store_ops rf_pg_ops;

int rf_pg_open(struct rf_store **out, const char *datadir, const char *url, int mode)
{
    int readonly = mode == RF_PG_READONLY;
    int rc, do_recover = 0;
    *out = NULL;
    if ((rc = rf_pq_load()) != 0)
        return rc;
    struct rf_store *st = calloc(1, sizeof(*st));
    if (!st)
        return RF_ERR_NOMEM;
    pthread_mutex_init(&st->files.fault_mu, NULL);
    pthread_mutex_init(&st->files.wmu, NULL);
    pthread_mutex_init(&st->rmu, NULL);
    pthread_cond_init(&st->rcv, NULL);
    st->files.ops = &rf_pg_ops;
    st->files.dir_fd = st->files.blobs_fd = st->files.tmp_fd = st->files.lock_fd = -1;
    st->users_fd = -1;
    if (!(st->url = strdup(url)) || !(st->datadir = strdup(datadir))) {
        rc = RF_ERR_NOMEM;
        goto out;
    }
    if (readonly) {
        int v = 0;
        struct pgconn *c;
        if ((rc = rf_blobdir_open_readonly(&st->files, datadir)) != 0)
            goto out;
        if ((rc = rf_pg_reader_get(st, &c)) != 0)
            goto out;
        rc = schema_version(c, &v);
        rf_pg_reader_put(st, c);
        if (rc == 0 && v > rf_schema_version)
            rc = RF_ERR_VERSION;
        if (rc == 0 && v <= 0)
            rc = RF_ERR_NOT_FOUND;
        if (rc == 0)
            *out = st, st = NULL;
        goto out;
    }
    if (mode == RF_PG_IMPORT) {
        /* an empty database, left as it is: the import creates the schema
         * in its own transaction (store_pg_migrate.c) */
        int empty = 0;
        if ((rc = conn_open(&st->w, st->url)) != 0 || (rc = rf_pg_empty(&st->w, &empty)) != 0)
            goto out;
        if (!empty) {
            rc = RF_ERR_EXISTS; /* the caller says so */
            goto out;
        }
    }
    if ((rc = rf_blobdir_open(&st->files, datadir, &do_recover, store_blob_referenced)) != 0)
        goto out;
    (void)do_recover; /* DIR/lock is SQLite's rule; DIR/users is this backend's */
    st->users_fd =
        openat(st->files.dir_fd, "users", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (st->users_fd < 0) {
        rc = rf_store_errno(errno);
        goto out;
    }
    int alone = flock(st->users_fd, LOCK_EX | LOCK_NB) == 0;
    if (!alone && flock(st->users_fd, LOCK_SH) != 0) {
        rc = rf_store_errno(errno);
        goto out;
    }
    if (mode == RF_PG_IMPORT) {
        *out = st; /* no schema yet: no migration, nothing to recover */
        st = NULL;
        goto out;
    }
    if ((rc = conn_open(&st->w, st->url)) != 0)
        goto out;
    if ((rc = migrate(&st->w)) != 0)
        goto out;
    if ((rc = recover(st, alone)) != 0)
        goto out;
    randombytes_buf(st->writer, sizeof(st->writer));
    {
        struct pgp p = {0};
        rf_pgp_i64(&p, (int64_t)rf_store_today() - 30);
        if ((rc = rf_pg_run(&st->w, P_MARK_PRUNE, &p, NULL)) != 0)
            goto out;
    }
    if (alone && flock(st->users_fd, LOCK_SH) != 0) { /* others may come now */
        rc = rf_store_errno(errno);
        goto out;
    }
    *out = st;
    st = NULL;
out:
    if (rc != 0 && !(mode == RF_PG_IMPORT && rc == RF_ERR_EXISTS))
        rf_log_error("store: open failed (PostgreSQL)", rc);
    pg_close(st);
    return rc;
}

/* ---- counts, usage, maintenance ---- */

static int pg_counts(struct rf_store *st, struct rf_store_counts *out)
{
    static const char *const sql[] = {
        "SELECT kind::bigint, count(*), coalesce(sum(size), 0)::bigint FROM objects GROUP BY kind",
        ("SELECT (SELECT count(*) FROM sources WHERE case_id <> 'teamconfig'),"
         " (SELECT count(*) FROM staff), 0::bigint"),
        ("SELECT count(*), coalesce(max(CASE WHEN action = 'purge' THEN day END), 0)::bigint,"
         " 0::bigint FROM audit"),
    };
    struct pgconn *c;
    memset(out, 0, sizeof(*out));
    out->schema_program = rf_schema_version;
    int rc = rf_pg_reader_get(st, &c);
    if (rc != 0)
        return rc;
    rc = schema_version(c, &out->schema);
    if (rc == 0) /* one snapshot for every count */
        rc = rf_pg_sql(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    for (int i = 0; rc == 0 && i < 3; i++) {
        PGresult *r = PQexecParams(c->db, sql[i], 0, NULL, NULL, NULL, NULL, 1);
        if (!pg_ok(r)) {
            rc = pg_err(r, c->db);
            PQclear(r);
            break;
        }
        for (int row = 0; row < PQntuples(r); row++) {
            int64_t a = rf_pg_i64(r, row, 0), b = rf_pg_i64(r, row, 1), d = rf_pg_i64(r, row, 2);
            if (i == 0) {
                size_t k = a >= 0 && a < RF_STORE_KINDS ? (size_t)a : RF_STORE_KINDS - 1;
                out->objects[k] += b > 0 ? (uint64_t)b : 0;
                out->object_bytes[k] += d > 0 ? (uint64_t)d : 0;
            } else if (i == 1) {
                out->cases = a > 0 ? (uint64_t)a : 0;
                out->staff = b > 0 ? (uint64_t)b : 0;
            } else {
                out->audit = a > 0 ? (uint64_t)a : 0;
                out->last_purge_day = b > 0 && b <= UINT32_MAX ? (uint32_t)b : 0;
            }
        }
        PQclear(r);
    }
    rf_pg_reader_put(st, c);
    return rc;
}

/* db_bytes: the database's size as PostgreSQL reports it; wal_bytes: 0 (the
 * cluster's log is the cluster's, shared by its databases). */
static int pg_usage(struct rf_store *st, struct rf_store_usage *out)
{
    struct pgconn *c;
    memset(out, 0, sizeof(*out));
    int rc = rf_pg_reader_get(st, &c);
    if (rc != 0)
        return rc;
    PGresult *r = PQexecParams(c->db, "SELECT pg_database_size(current_database())::bigint", 0,
                               NULL, NULL, NULL, NULL, 1);
    if (pg_ok(r) && PQntuples(r) == 1) {
        int64_t v = rf_pg_i64(r, 0, 0);
        out->db_bytes = v > 0 ? (uint64_t)v : 0;
    } else {
        rc = pg_err(r, c->db);
    }
    PQclear(r);
    rf_pg_reader_put(st, c);
    if (rc != 0)
        return rc;
    return rf_blobdir_usage(&st->files, &out->blob_bytes, &out->blob_files);
}

/* The archive of backup.c, its database member a SQLite file of this
 * database's rows (backup_export.c): restore gives a SQLite instance. */
static int pg_backup(struct rf_store *st, int fd, struct rf_backup_info *info)
{
    return rf_backup_write(st, st->datadir, rf_backup_export_snapshot, fd, info);
}

const struct rf_store_ops rf_pg_ops = {
    .name = "postgresql",
    .secure_delete = 0,
    .close = pg_close,
    .setting_get = rf_pg_setting_get,
    .source_by_lookup = rf_pg_source_by_lookup,
    .source_by_case = rf_pg_source_by_case,
    .objects_since = rf_pg_objects_since,
    .objects_of_source = rf_pg_objects_of_source,
    .object_get = rf_pg_object_get,
    .object_read = rf_pg_object_read,
    .objects_range = rf_pg_objects_range,
    .object_open = rf_pg_object_open,
    .staff_get = rf_pg_staff_get,
    .roster_latest = rf_pg_roster_latest,
    .roster_get = rf_pg_roster_get,
    .staff_list = rf_pg_staff_list,
    .grants_for = rf_pg_grants_for,
    .audit_list = rf_pg_audit_list,
    .checkpoint = rf_pg_checkpoint,
    .backup = pg_backup,
    .counts = pg_counts,
    .usage = pg_usage,
    .batch = &rf_pg_batch,
    .export_rows = rf_pg_export,
    .import_begin = rf_pg_import_begin,
    .import_row = rf_pg_import_row,
    .import_end = rf_pg_import_end,
    .session = rf_pg_session,
};
