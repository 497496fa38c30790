/*
 * store_pg_write.c - the writing half of the PostgreSQL backend: the ops of
 * rf_store_apply on the writer connection, and retention (rf_store_purge).
 *
 * Group commit. A batch is one transaction (BEGIN ... COMMIT, READ
 * COMMITTED) with a SAVEPOINT per op and one per group, run by the driver
 * both backends share (batch.c) with the primitives below, so an op's or a group's failure is
 * undone alone while the rest commits; a failure of the transaction itself (BEGIN, COMMIT, a
 * savepoint, the connection) fails every op with one error. rf_store_apply
 * returns once COMMIT returned, and COMMIT returns once PostgreSQL flushed
 * the commit record (synchronous_commit = on, set on every connection):
 * nothing is acknowledged before it is durable.
 *
 * A COMMIT whose answer is lost with the connection (PostgreSQL crashed or
 * restarted) may have committed. The batch's transaction also sets this
 * process's row of commit_marks to the batch's number; after reconnecting,
 * that row says whether the batch is in (rf_pg_committed). The transaction
 * id alone would not: after a crash PostgreSQL reuses the ids whose WAL
 * never reached the disk, so txid_status may answer "committed" about
 * another process's transaction, and a lost batch would be told "sent".
 *
 * Ordered numbers (store_pg.c): an object's seq and a grant's id come from
 * UPDATE counters ... RETURNING, whose row lock this transaction then holds
 * until it ends; an audit entry takes the same lock (SELECT ... FOR UPDATE)
 * before reading the chain's last link. Blob files of deleted objects are
 * unlinked only after the COMMIT that removed their rows.
 */
#include "lib/apisig.h"
#include "lib/audit.h"
#include "lib/envelope.h"
#include "lib/err.h"
#include "lib/log.h"
#include "store/commit.h"
#include "store/pg_internal.h"

#include <assert.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NONCE_PRUNE_STEP 4

/* One int8 column of the single row a statement returns. */
static int exec_i64(struct pgconn *c, enum pg_stmt id, const struct pgp *p, int64_t *v)
{
    PGresult *r;
    int rc = rf_pg_exec(c, id, p, &r);
    if (rc != 0)
        return rc;
    if (PQntuples(r) != 1)
        rc = RF_ERR_DB;
    else
        *v = rf_pg_i64(r, 0, 0);
    PQclear(r);
    return rc;
}

static int pg_setting_put(struct rf_store *st, struct rf_op *op)
{
    struct pgconn *c = &st->w;
    struct pgp p = {0};
    if (!op->key || !*op->key || strlen(op->key) > PG_SETTING_KEY_MAX || (!op->data && op->len))
        return RF_ERR_INVALID;
    rf_pgp_text(&p, op->key);
    rf_pgp_bytes(&p, op->data, op->len);
    return rf_pg_run(c, P_SETTING_PUT, &p, NULL);
}

static int pg_source_create(struct rf_store *st, struct rf_op *op)
{
    struct pgconn *c = &st->w;
    struct rf_source src;
    struct pgp p = {0};
    PGresult *r;
    rf_pgp_bytes(&p, op->lookup_id, 32);
    int rc = rf_pg_exec(c, P_SOURCE_BY_LOOKUP, &p, &r);
    if (rc != 0)
        return rc;
    int taken = PQntuples(r) > 0;
    PQclear(r);
    if (taken)
        return RF_ERR_EXISTS;
    memset(&src, 0, sizeof(src));
    memcpy(src.pk, op->pk, sizeof(src.pk));
    src.day = rf_store_today();
    for (int tries = 0; tries < PG_CASE_ID_TRIES; tries++) {
        rf_batch_case_id(src.case_id);
        memset(&p, 0, sizeof(p));
        rf_pgp_bytes(&p, op->lookup_id, 32);
        rf_pgp_text(&p, src.case_id);
        rf_pgp_bytes(&p, src.pk, 32);
        rf_pgp_i64(&p, src.day);
        if ((rc = rf_pg_exec(c, P_SOURCE_INSERT, &p, &r)) != 0)
            return rc; /* a lookup id inserted meanwhile by another process: RF_ERR_EXISTS */
        int got = PQntuples(r) == 1;
        if (got)
            src.id = rf_pg_i64(r, 0, 0);
        PQclear(r);
        if (got) {
            op->source = src;
            return 0;
        }
    }
    return RF_ERR_DB;
}

static int pg_object_put(struct rf_store *st, struct rf_op *op)
{
    struct pgconn *c = &st->w;
    int in_blob = op->blob_name[0] != '\0';
    uint64_t size;
    int64_t seq = 0;
    int rc = rf_batch_object_check(&st->files, op, &size);
    /* the number, and the lock that orders this commit among all writers */
    if (rc != 0 || (rc = exec_i64(c, P_SEQ_NEXT, NULL, &seq)) != 0)
        return rc;
    struct pgp p = {0};
    rf_pgp_i64(&p, seq);
    rf_pgp_i64(&p, op->source_id);
    rf_pgp_i64(&p, op->kind);
    rf_pgp_i64(&p, (int64_t)size);
    rf_pgp_i64(&p, rf_store_today());
    if (in_blob) {
        rf_pgp_null(&p);
        rf_pgp_text(&p, op->blob_name);
    } else {
        rf_pgp_bytes(&p, op->data, op->len);
        rf_pgp_null(&p);
    }
    if ((rc = rf_pg_run(c, P_OBJECT_INSERT, &p, NULL)) != 0)
        return rc;
    op->seq = seq;
    return 0;
}

static int pg_object_delete(struct rf_store *st, struct rf_op *op, char dead[RF_BLOB_NAME_LEN + 1])
{
    struct pgconn *c = &st->w;
    struct pgp p = {0};
    PGresult *r;
    rf_pgp_i64(&p, op->seq);
    rf_pgp_i64(&p, op->source_id);
    int rc = rf_pg_exec(c, P_OBJECT_DELETE, &p, &r);
    if (rc != 0)
        return rc;
    if (PQntuples(r) != 1)
        rc = RF_ERR_NOT_FOUND;
    else if (!PQgetisnull(r, 0, 0))
        rc = rf_pg_text(dead, RF_BLOB_NAME_LEN + 1, r, 0, 0);
    PQclear(r);
    return rc;
}

static int pg_token_put(struct rf_store *st, struct rf_op *op)
{
    struct pgconn *c = &st->w;
    struct pgp p = {0};
    rf_pgp_bytes(&p, op->token_hash, 32);
    rf_pgp_i64(&p, op->role);
    rf_pgp_i64(&p, rf_store_today());
    return rf_pg_run(c, P_TOKEN_PUT, &p, NULL);
}

static int pg_token_use(struct rf_store *st, struct rf_op *op)
{
    struct pgconn *c = &st->w;
    struct pgp p = {0};
    PGresult *r;
    rf_pgp_bytes(&p, op->token_hash, 32);
    int rc = rf_pg_exec(c, P_TOKEN_USE, &p, &r);
    if (rc != 0)
        return rc;
    if (PQntuples(r) != 1) {
        rc = RF_ERR_NOT_FOUND;
    } else {
        op->role = (int)rf_pg_i64(r, 0, 0);
        /* the op's savepoint rolls the use back: the token stays valid */
        if (op->require_admin && op->role != 1)
            rc = RF_ERR_AUTH;
    }
    PQclear(r);
    return rc;
}

static int pg_staff_put(struct rf_store *st, struct rf_op *op)
{
    struct pgconn *c = &st->w;
    const struct rf_staff_rec *s = &op->staff;
    struct pgp p = {0};
    size_t nlen = strnlen(s->name, sizeof(s->name));
    if (nlen == 0 || nlen == sizeof(s->name))
        return RF_ERR_INVALID;
    rf_pgp_bytes(&p, s->sign_pk, 32);
    rf_pgp_bytes(&p, s->box_pk, 32);
    rf_pgp_bytes(&p, s->name, nlen);
    rf_pgp_i64(&p, rf_store_today());
    return rf_pg_run(c, P_STAFF_PUT, &p, NULL);
}

/* Rosters form a chain: each put is exactly the next version (1 first).
 * Two processes putting the same version: the primary key refuses the
 * second (RF_ERR_EXISTS), as a retry would be. */
static int pg_roster_put(struct rf_store *st, struct rf_op *op)
{
    struct pgconn *c = &st->w;
    int64_t latest = 0;
    if (!op->data || op->len == 0)
        return RF_ERR_INVALID;
    int rc = exec_i64(c, P_ROSTER_MAX, NULL, &latest);
    if (rc != 0)
        return rc;
    if ((int64_t)op->version <= latest)
        return RF_ERR_EXISTS;
    if ((int64_t)op->version != latest + 1)
        return RF_ERR_ROSTER;
    struct pgp p = {0};
    rf_pgp_i64(&p, op->version);
    rf_pgp_bytes(&p, op->data, op->len);
    return rf_pg_run(c, P_ROSTER_PUT, &p, NULL);
}

static int pg_grant_put(struct rf_store *st, struct rf_op *op)
{
    struct pgconn *c = &st->w;
    int64_t id = 0;
    if (!op->data || op->len != sizeof(((struct rf_grant_rec *)0)->grant) || op->seq <= 0 ||
        memcmp(op->data, op->keyid, sizeof(op->keyid)) != 0)
        return RF_ERR_INVALID;
    int rc = exec_i64(c, P_GRANT_ID_NEXT, NULL, &id);
    if (rc != 0)
        return rc;
    struct pgp p = {0};
    rf_pgp_i64(&p, id);
    rf_pgp_i64(&p, op->seq);
    rf_pgp_bytes(&p, op->keyid, sizeof(op->keyid));
    rf_pgp_bytes(&p, op->pk, sizeof(op->pk));
    rf_pgp_bytes(&p, op->data, op->len);
    rf_pgp_i64(&p, RF_GRANTS_PER_KEY_MAX);
    return rf_pg_run(c, P_GRANT_PUT, &p, NULL);
}

/* As in the SQLite backend: deletes up to max nonces two slots old (0: all). */
static int nonce_prune(struct pgconn *c, int64_t now, int64_t max)
{
    struct pgp p = {0};
    rf_pgp_i64(&p, rf_batch_nonce_slot(now) - 2);
    if (max > 0)
        rf_pgp_i64(&p, max);
    else
        rf_pgp_null(&p); /* LIMIT NULL: all */
    return rf_pg_run(c, P_NONCE_PRUNE, &p, NULL);
}

static int pg_nonce_put(struct rf_store *st, struct rf_op *op)
{
    struct pgconn *c = &st->w;
    int rc = nonce_prune(c, (int64_t)time(NULL), NONCE_PRUNE_STEP);
    if (rc != 0)
        return rc;
    struct pgp p = {0};
    rf_pgp_bytes(&p, op->nonce, sizeof(op->nonce));
    rf_pgp_i64(&p, rf_batch_nonce_slot(op->ts));
    return rf_pg_run(c, P_NONCE_PUT, &p, NULL); /* stored already: RF_ERR_EXISTS */
}

/* Appends the next link of the audit chain inside the open transaction,
 * holding the ordering lock, so no other process links to the same entry. */
static int audit_append(struct pgconn *c, const uint8_t actor[32], const char *action,
                        const char *target, const uint8_t *req, size_t req_len)
{
    struct rf_audit_entry e;
    PGresult *r;
    if (!rf_batch_audit_ok(action, target, req, req_len))
        return RF_ERR_INVALID;
    memset(&e, 0, sizeof(e));
    int rc = rf_pg_run(c, P_ORDER_LOCK, NULL, NULL);
    if (rc != 0 || (rc = rf_pg_exec(c, P_AUDIT_LAST, NULL, &r)) != 0)
        return rc;
    if (PQntuples(r) == 1) {
        e.id = (uint64_t)rf_pg_i64(r, 0, 0) + 1;
        rc = rf_pg_fixed(e.prev, sizeof(e.prev), r, 0, 1);
    } else {
        e.id = 1; /* prev stays zeros */
    }
    PQclear(r);
    if (rc != 0)
        return rc;
    if ((rc = rf_batch_audit_fill(&e, actor, action, target, req, req_len)) != 0)
        return rc;
    struct pgp p = {0};
    rf_pgp_i64(&p, (int64_t)e.id);
    rf_pgp_i64(&p, e.day);
    rf_pgp_bytes(&p, e.actor, sizeof(e.actor));
    rf_pgp_text(&p, e.action);
    rf_pgp_text(&p, e.target);
    rf_pgp_bytes(&p, e.prev, sizeof(e.prev));
    rf_pgp_bytes(&p, e.hash, sizeof(e.hash));
    if (e.req_len > 0)
        rf_pgp_bytes(&p, e.req, e.req_len);
    else
        rf_pgp_null(&p);
    return rf_pg_run(c, P_AUDIT_INSERT, &p, NULL);
}

static int pg_audit_append(struct rf_store *st, struct rf_op *op)
{
    /* data/len: the signed request record of a caseworker's action (audit v2) */
    return audit_append(&st->w, op->pk, op->key, op->target, op->data, op->data ? op->len : 0);
}

static int pg_case_schedule(struct rf_store *st, struct rf_op *op)
{
    struct pgconn *c = &st->w;
    struct pgp p = {0};
    uint64_t changed = 0;
    rf_pgp_i64(&p, op->source_id);
    if (op->day == 0)
        rf_pgp_null(&p);
    else
        rf_pgp_i64(&p, op->day);
    int rc = rf_pg_run(c, P_CASE_SCHEDULE, &p, &changed);
    if (rc != 0)
        return rc;
    return changed == 1 ? 0 : RF_ERR_NOT_FOUND;
}

/* ---- the pipelined batch: object puts in one round trip ----
 *
 * A batch of object puts only (people's submissions, replies, events) that
 * pass their checks goes as one pipeline: BEGIN, txid_current, the counter
 * moved by n at once (its row lock taken, as UPDATE counters does for one),
 * and the n INSERTs numbering themselves seq - (n - 1 - i) from the moved
 * counter, in order; then COMMIT as for any batch. Two round trips for the
 * whole batch instead of four per object and two per group. Ordering is as
 * before: the counter's lock is taken before any number is used and held to
 * COMMIT, the roster read after it. If any statement fails, the transaction
 * is rolled back and the batch runs the ordinary way (a savepoint per op
 * and per group), which gives each op and group its own fate. */
static int fast_reserve(struct rf_store *st, size_t n)
{
    if (n + 4 <= st->calls_cap)
        return 0;
    struct pg_call *c = realloc(st->calls, (n + 4) * sizeof(*c));
    if (!c)
        return RF_ERR_NOMEM;
    st->calls = c;
    struct pgp *p = realloc(st->params, (n + 2) * sizeof(*p));
    if (!p)
        return RF_ERR_NOMEM;
    st->params = p;
    st->calls_cap = n + 4;
    return 0;
}

/* 1 if every op is an object put that passes the checks pg_object_put makes
 * before it writes: only then the pipeline can be expected to succeed. */
static int fast_eligible(struct rf_store *st, const struct rf_op *ops, size_t n)
{
    uint64_t size;
    for (size_t i = 0; i < n; i++)
        if (ops[i].type != RF_OP_OBJECT_PUT || rf_batch_object_check(&st->files, &ops[i], &size))
            return 0;
    return 1;
}

/* The parameters of this batch's mark (P_MARK_PUT): the writer's row set to
 * st->batch, numbered by rf_pg_apply. */
static void mark_params(struct rf_store *st, struct pgp *p)
{
    rf_pgp_bytes(p, st->writer, sizeof(st->writer));
    rf_pgp_i64(p, st->batch);
    rf_pgp_i64(p, rf_store_today());
}

/* BEGIN and every op of the batch, in one round trip; 0 and each op's seq
 * and status set, or an error with the transaction to roll back. */
static int apply_fast(struct rf_store *st, struct rf_op *ops, size_t n, int64_t *xid)
{
    struct pg_call *calls = st->calls;
    struct pgp *p = st->params;
    int rc;
    memset(p, 0, (n + 2) * sizeof(*p));
    rf_pgp_i64(&p[n], (int64_t)n);
    mark_params(st, &p[n + 1]);
    calls[0] = (struct pg_call){.id = P_BEGIN};
    calls[1] = (struct pg_call){.id = P_TXID};
    calls[2] = (struct pg_call){.id = P_SEQ_RESERVE, .p = &p[n]};
    int64_t day = rf_store_today();
    for (size_t i = 0; i < n; i++) {
        const struct rf_op *op = &ops[i];
        rf_pgp_i64(&p[i], (int64_t)(n - 1 - i));
        rf_pgp_i64(&p[i], op->source_id);
        rf_pgp_i64(&p[i], op->kind);
        if (op->blob_name[0] != '\0') {
            rf_pgp_i64(&p[i], (int64_t)op->size);
            rf_pgp_i64(&p[i], day);
            rf_pgp_null(&p[i]);
            rf_pgp_text(&p[i], op->blob_name);
        } else {
            rf_pgp_i64(&p[i], (int64_t)op->len);
            rf_pgp_i64(&p[i], day);
            rf_pgp_bytes(&p[i], op->data, op->len);
            rf_pgp_null(&p[i]);
        }
        calls[3 + i] = (struct pg_call){.id = P_OBJECT_INSERT_AT, .p = &p[i]};
    }
    calls[n + 3] = (struct pg_call){.id = P_MARK_PUT, .p = &p[n + 1]};
    if ((rc = rf_pg_pipeline(&st->w, calls, n + 4)) != 0)
        return rc;
    for (size_t i = 0; i < n + 3 && rc == 0; i++)
        if (i != 0 && PQntuples(calls[i].res) != 1)
            rc = RF_ERR_DB;
    if (rc == 0) {
        *xid = rf_pg_i64(calls[1].res, 0, 0);
        for (size_t i = 0; i < n; i++) {
            ops[i].seq = rf_pg_i64(calls[3 + i].res, 0, 0);
            ops[i].status = 0;
            st->files.dead.name[i][0] = '\0';
        }
    }
    for (size_t i = 0; i < n + 4; i++)
        PQclear(calls[i].res);
    return rc;
}

/* ---- the primitives of batches and retention (the drivers: batch.c) ---- */

static int pg_tx_begin(struct rf_store *st)
{
    int rc = rf_pg_ensure(&st->w);
    return rc != 0 ? rc : rf_pg_sql(&st->w, "BEGIN");
}

static int pg_tx_commit(struct rf_store *st)
{
    return rf_pg_commit(&st->w);
}

/* BEGIN, after the pipelined batch if the ops are eligible for it (then
 * *applied: every op ran); the batch's number and transaction id in st. */
static int pg_begin(struct rf_store *st, struct rf_op *ops, size_t n, int *applied)
{
    struct pgconn *c = &st->w;
    int rc = rf_pg_ensure(c);
    if (rc != 0)
        return rc;
    st->xid = 0;
    st->batch++; /* its mark, written by the batch's transaction */
    int fast = fast_eligible(st, ops, n) && fast_reserve(st, n) == 0;
    if (fast && (rc = apply_fast(st, ops, n, &st->xid)) != 0) {
        /* nothing of it committed: the ordinary way decides op by op (on a
         * connection found broken, a fresh one: it was idle, or the
         * transaction went with it) */
        fast = 0;
        if (PQstatus(c->db) == CONNECTION_OK ? rf_pg_sql(c, "ROLLBACK") != 0 : rf_pg_ensure(c) != 0)
            return rc;
    }
    *applied = fast;
    return fast ? 0 : rf_pg_begin(c, &st->xid);
}

static int pg_savepoint(struct rf_store *st, int group)
{
    return rf_pg_sql(&st->w, group ? "SAVEPOINT grp" : "SAVEPOINT op");
}

static int pg_release(struct rf_store *st, int group)
{
    return rf_pg_sql(&st->w, group ? "RELEASE grp" : "RELEASE op");
}

static int pg_rollback_to(struct rf_store *st, int group)
{
    return rf_pg_sql(&st->w, group ? "ROLLBACK TO grp" : "ROLLBACK TO op");
}

/* the connection went, and the transaction with it */
static int pg_in_tx(struct rf_store *st)
{
    return st->w.db && rf_pg_in_tx(&st->w);
}

/* an error of the connection or the server, not of the op: the batch */
static int pg_op_sinks(struct rf_store *st, int status)
{
    return status == RF_ERR_DB && PQstatus(st->w.db) != CONNECTION_OK;
}

/* The batch's mark (unless the pipeline wrote it), then COMMIT. */
static int pg_commit(struct rf_store *st, int applied)
{
    struct pgconn *c = &st->w;
    int rc;
    if (!applied) {
        struct pgp mp = {0};
        mark_params(st, &mp);
        if ((rc = rf_pg_run(c, P_MARK_PUT, &mp, NULL)) != 0)
            return rc;
    }
    if ((rc = rf_store_fault_hit(&st->files)) != 0)
        return rc;
    if ((rc = rf_pg_commit(c)) != 0 && PQstatus(c->db) != CONNECTION_OK) {
        /* COMMIT was sent and its answer lost with the connection (PostgreSQL
         * crashed or restarted): it may have committed. Ask, rather than
         * tell people "not saved" about what is stored (they would send it
         * again); unknown stays a failure: never a false "sent". */
        int done = rf_pg_committed(c, st->xid, st->writer, st->batch);
        if (done == 1) {
            rf_log_info("store: a COMMIT's answer was lost; the batch is committed");
            rc = 0;
        } else if (done == 0) {
            rf_log_info("store: a COMMIT's answer was lost; the batch did not commit");
        } else {
            rf_log_info("store: a COMMIT's answer was lost and PostgreSQL stayed unreachable; "
                        "its batch is reported as not stored");
        }
    }
    return rc;
}

static void pg_rollback(struct rf_store *st)
{
    rf_pg_sql(&st->w, "ROLLBACK");
}

/* An outage is logged once (rf_pg_outage_failure), not per batch. */
static int pg_log_failure(struct rf_store *st, int rc)
{
    struct pgconn *c = &st->w;
    return rc != RF_ERR_DB || !c->db || PQstatus(c->db) == CONNECTION_OK || rf_pg_outage_failure();
}

/* ---- retention (as in the SQLite backend: one transaction per case) ---- */

static int pg_purge_next(struct rf_store *st, struct rf_dead *dead, int64_t after, uint32_t today,
                         uint32_t inactive, struct rf_purge_case *pc)
{
    struct pgconn *c = &st->w;
    struct pgp p = {0};
    PGresult *r;
    memset(pc, 0, sizeof(*pc));
    rf_pgp_i64(&p, after);
    rf_pgp_i64(&p, today);
    rf_pgp_i64(&p, inactive);
    int rc = rf_pg_exec(c, P_PURGE_NEXT, &p, &r);
    if (rc != 0)
        return rc;
    if (PQntuples(r) == 1)
        pc->id = rf_pg_i64(r, 0, 0);
    PQclear(r);
    if (pc->id == 0)
        return 0;
    memset(&p, 0, sizeof(p));
    rf_pgp_i64(&p, pc->id);
    if ((rc = rf_pg_exec(c, P_PURGE_BLOBS, &p, &r)) != 0)
        return rc;
    int rows = PQntuples(r);
    if ((rc = rf_dead_reserve(dead, rows > 0 ? (size_t)rows : 1)) == 0)
        for (int i = 0; rc == 0 && i < rows; i++)
            if ((rc = rf_pg_text(dead->name[i], RF_BLOB_NAME_LEN + 1, r, i, 0)) == 0)
                pc->blobs++;
    PQclear(r);
    if (rc != 0 || (rc = rf_pg_run(c, P_PURGE_OBJECTS, &p, &pc->objects)) != 0)
        return rc;
    uint64_t gone = 0;
    if ((rc = rf_pg_run(c, P_PURGE_SOURCE, &p, &gone)) != 0)
        return rc;
    return gone == 1 ? 0 : RF_ERR_DB;
}

static int pg_purge_audit(struct rf_store *st, const char *target)
{
    static const uint8_t server[32];
    int rc = nonce_prune(&st->w, (int64_t)time(NULL), 0);
    return rc != 0 ? rc : audit_append(&st->w, server, "purge", target, NULL, 0);
}

const struct rf_batch_ops rf_pg_batch = {
    .tx_begin = pg_tx_begin,
    .tx_commit = pg_tx_commit,
    .rollback = pg_rollback,
    .in_tx = pg_in_tx,
    .savepoint = pg_savepoint,
    .release = pg_release,
    .rollback_to = pg_rollback_to,
    .setting_put = pg_setting_put,
    .source_create = pg_source_create,
    .object_put = pg_object_put,
    .object_delete = pg_object_delete,
    .token_put = pg_token_put,
    .token_use = pg_token_use,
    .staff_put = pg_staff_put,
    .roster_put = pg_roster_put,
    .grant_put = pg_grant_put,
    .audit_append = pg_audit_append,
    .case_schedule = pg_case_schedule,
    .nonce_put = pg_nonce_put,
    .batch_begin = pg_begin,
    .batch_commit = pg_commit,
    .op_sinks = pg_op_sinks,
    .log_failure = pg_log_failure,
    .purge_next = pg_purge_next,
    .purge_audit = pg_purge_audit,
};

/* PostgreSQL keeps a deleted row's bytes in the table until VACUUM marks
 * the space free and a later write reuses it, and in the WAL until the
 * segment is recycled: VACUUM objects makes the space reusable now. It
 * never zeroes it (docs/scale-out.md: what this means for deletion). */
int rf_pg_checkpoint(struct rf_store *st)
{
    assert(!rf_committer_in_completion());
    if (st->files.readonly)
        return RF_ERR_INVALID;
    pthread_mutex_lock(&st->files.wmu);
    int rc = rf_pg_ensure(&st->w);
    if (rc == 0)
        rc = rf_pg_sql(&st->w, "VACUUM objects");
    pthread_mutex_unlock(&st->files.wmu);
    return rc;
}
