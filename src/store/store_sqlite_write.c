/*
 * store_sqlite_write.c - the writing half of the SQLite backend: the ops of
 * rf_store_apply on the writer connection, and retention (rf_store_purge).
 * Connections, statements, open/close and reads are in store_sqlite.c; what
 * both halves share is in sqlite_internal.h.
 *
 * Durability. journal_mode=WAL, synchronous=FULL: COMMIT returns after the
 * WAL is fsynced. rf_store_apply (the driver both backends share, batch.c,
 * with the primitives below) wraps a batch in BEGIN IMMEDIATE ... COMMIT
 * with a SAVEPOINT per op, so one op's failure is undone alone while the
 * others commit; a failure of the transaction itself (BEGIN, COMMIT, a
 * savepoint, or SQLite rolling back on its own after an I/O error) fails
 * every op with one error. Blob files of deleted objects are unlinked only
 * after the COMMIT that removed their rows.
 *
 * Retention (rf_store_purge): one transaction per expired case, holding the
 * writer like a batch does, re-checking the case's expiry inside it; its blob
 * files are unlinked after that commit, so a crash mid-purge loses nothing
 * that should stay and leaves at worst orphan blobs the next open removes.
 */
#include "lib/apisig.h"
#include "lib/audit.h"
#include "lib/envelope.h"
#include "lib/err.h"
#include "lib/log.h"
#include "store/commit.h"
#include "store/sqlite_internal.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Expired nonces deleted by each RF_OP_NONCE_PUT: more than one, so the
 * table shrinks faster than it grows once a slot has expired. */
#define NONCE_PRUNE_STEP 4

/* ---- writes (writer connection, inside a transaction) ---- */

/* Steps a write statement expected to return nothing. */
static int step_done(sqlite3_stmt *s)
{
    int r = sqlite3_step(s);
    rf_sqlite_done(s);
    return r == SQLITE_DONE ? 0 : rf_sqlite_err(r);
}

static int sq_setting_put(struct rf_store *st, struct rf_op *op)
{
    struct conn *c = &st->w;
    sqlite3_stmt *s = NULL;
    if (!op->key || !*op->key || strlen(op->key) > SETTING_KEY_MAX || (!op->data && op->len))
        return RF_ERR_INVALID;
    int rc = rf_sqlite_stmt(c, S_SETTING_PUT, &s);
    if (rc != 0)
        return rc;
    sqlite3_bind_text(s, 1, op->key, -1, SQLITE_STATIC);
    rf_sqlite_bind_bytes(s, 2, op->data, op->len);
    return step_done(s);
}

static int sq_source_create(struct rf_store *st, struct rf_op *op)
{
    struct conn *c = &st->w;
    sqlite3_stmt *s = NULL;
    struct rf_source src;
    int rc = rf_sqlite_stmt(c, S_SOURCE_BY_LOOKUP, &s);
    if (rc != 0)
        return rc;
    sqlite3_bind_blob(s, 1, op->lookup_id, 32, SQLITE_STATIC);
    int r = sqlite3_step(s);
    rf_sqlite_done(s);
    if (r == SQLITE_ROW)
        return RF_ERR_EXISTS;
    if (r != SQLITE_DONE)
        return rf_sqlite_err(r);

    if ((rc = rf_sqlite_stmt(c, S_SOURCE_INSERT, &s)) != 0)
        return rc;
    memset(&src, 0, sizeof(src));
    memcpy(src.pk, op->pk, sizeof(src.pk));
    src.day = rf_store_today();
    for (int tries = 0; tries < CASE_ID_TRIES; tries++) {
        rf_batch_case_id(src.case_id);
        sqlite3_bind_blob(s, 1, op->lookup_id, 32, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, src.case_id, RF_CASE_ID_LEN, SQLITE_STATIC);
        sqlite3_bind_blob(s, 3, src.pk, 32, SQLITE_STATIC);
        sqlite3_bind_int64(s, 4, src.day);
        r = sqlite3_step(s);
        rf_sqlite_done(s);
        if (r == SQLITE_DONE) {
            src.id = sqlite3_last_insert_rowid(c->db);
            op->source = src;
            return 0;
        }
        if (r != SQLITE_CONSTRAINT_UNIQUE) /* the lookup is free: only case_id collides */
            return rf_sqlite_err(r);
    }
    return RF_ERR_DB;
}

static int sq_object_put(struct rf_store *st, struct rf_op *op)
{
    struct conn *c = &st->w;
    sqlite3_stmt *s = NULL;
    int in_blob = op->blob_name[0] != '\0';
    uint64_t size;
    int rc = rf_batch_object_check(&st->files, op, &size);
    if (rc != 0 || (rc = rf_sqlite_stmt(c, S_OBJECT_INSERT, &s)) != 0)
        return rc;
    sqlite3_bind_int64(s, 1, op->source_id);
    sqlite3_bind_int(s, 2, op->kind);
    sqlite3_bind_int64(s, 3, (int64_t)size);
    sqlite3_bind_int64(s, 4, rf_store_today());
    if (in_blob) {
        sqlite3_bind_null(s, 5);
        sqlite3_bind_text(s, 6, op->blob_name, RF_BLOB_NAME_LEN, SQLITE_STATIC);
    } else {
        rf_sqlite_bind_bytes(s, 5, op->data, op->len);
        sqlite3_bind_null(s, 6);
    }
    if ((rc = step_done(s)) != 0)
        return rc;
    op->seq = sqlite3_last_insert_rowid(c->db);
    return 0;
}

static int sq_object_delete(struct rf_store *st, struct rf_op *op, char dead[RF_BLOB_NAME_LEN + 1])
{
    struct conn *c = &st->w;
    sqlite3_stmt *s = NULL;
    int rc = rf_sqlite_stmt(c, S_OBJECT_DELETE, &s);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(s, 1, op->seq);
    sqlite3_bind_int64(s, 2, op->source_id);
    int r = sqlite3_step(s);
    if (r == SQLITE_ROW) {
        if (sqlite3_column_type(s, 0) != SQLITE_NULL)
            rc = rf_sqlite_copy_text(dead, RF_BLOB_NAME_LEN + 1, s, 0);
        r = sqlite3_step(s);
        if (rc == 0)
            rc = r == SQLITE_DONE ? 0 : rf_sqlite_err(r);
    } else {
        rc = r == SQLITE_DONE ? RF_ERR_NOT_FOUND : rf_sqlite_err(r);
    }
    rf_sqlite_done(s);
    return rc;
}

static int sq_token_put(struct rf_store *st, struct rf_op *op)
{
    struct conn *c = &st->w;
    sqlite3_stmt *s = NULL;
    int rc = rf_sqlite_stmt(c, S_TOKEN_PUT, &s);
    if (rc != 0)
        return rc;
    sqlite3_bind_blob(s, 1, op->token_hash, 32, SQLITE_STATIC);
    sqlite3_bind_int(s, 2, op->role);
    sqlite3_bind_int64(s, 3, rf_store_today());
    return step_done(s);
}

static int sq_token_use(struct rf_store *st, struct rf_op *op)
{
    struct conn *c = &st->w;
    sqlite3_stmt *s = NULL;
    int rc = rf_sqlite_stmt(c, S_TOKEN_USE, &s);
    if (rc != 0)
        return rc;
    sqlite3_bind_blob(s, 1, op->token_hash, 32, SQLITE_STATIC);
    int r = sqlite3_step(s);
    if (r == SQLITE_ROW) {
        op->role = sqlite3_column_int(s, 0);
        r = sqlite3_step(s);
        rc = r == SQLITE_DONE ? 0 : rf_sqlite_err(r);
        /* the op's savepoint rolls the use back: the token stays valid */
        if (rc == 0 && op->require_admin && op->role != 1)
            rc = RF_ERR_AUTH;
    } else {
        rc = r == SQLITE_DONE ? RF_ERR_NOT_FOUND : rf_sqlite_err(r);
    }
    rf_sqlite_done(s);
    return rc;
}

static int sq_staff_put(struct rf_store *st, struct rf_op *op)
{
    struct conn *c = &st->w;
    sqlite3_stmt *s = NULL;
    const struct rf_staff_rec *r = &op->staff;
    size_t nlen = strnlen(r->name, sizeof(r->name));
    if (nlen == 0 || nlen == sizeof(r->name))
        return RF_ERR_INVALID;
    int rc = rf_sqlite_stmt(c, S_STAFF_PUT, &s);
    if (rc != 0)
        return rc;
    sqlite3_bind_blob(s, 1, r->sign_pk, 32, SQLITE_STATIC);
    sqlite3_bind_blob(s, 2, r->box_pk, 32, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, r->name, (int)nlen, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, rf_store_today());
    return step_done(s);
}

/* Rosters form a chain: each put is exactly the next version (1 first). */
static int sq_roster_put(struct rf_store *st, struct rf_op *op)
{
    struct conn *c = &st->w;
    sqlite3_stmt *s = NULL;
    if (!op->data || op->len == 0)
        return RF_ERR_INVALID;
    int rc = rf_sqlite_stmt(c, S_ROSTER_MAX, &s);
    if (rc != 0)
        return rc;
    int r = sqlite3_step(s);
    int64_t latest = r == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
    rf_sqlite_done(s);
    if (r != SQLITE_ROW)
        return rf_sqlite_err(r);
    if ((int64_t)op->version <= latest)
        return RF_ERR_EXISTS;
    if ((int64_t)op->version != latest + 1)
        return RF_ERR_ROSTER;
    if ((rc = rf_sqlite_stmt(c, S_ROSTER_PUT, &s)) != 0)
        return rc;
    sqlite3_bind_int64(s, 1, op->version);
    rf_sqlite_bind_bytes(s, 2, op->data, op->len);
    return step_done(s);
}

static int sq_grant_put(struct rf_store *st, struct rf_op *op)
{
    struct conn *c = &st->w;
    sqlite3_stmt *s = NULL;
    if (!op->data || op->len != sizeof(((struct rf_grant_rec *)0)->grant) || op->seq <= 0 ||
        memcmp(op->data, op->keyid, sizeof(op->keyid)) != 0)
        return RF_ERR_INVALID;
    int rc = rf_sqlite_stmt(c, S_GRANT_PUT, &s);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(s, 1, op->seq);
    sqlite3_bind_blob(s, 2, op->keyid, sizeof(op->keyid), SQLITE_STATIC);
    sqlite3_bind_blob(s, 3, op->pk, sizeof(op->pk), SQLITE_STATIC);
    sqlite3_bind_blob(s, 4, op->data, (int)op->len, SQLITE_STATIC);
    sqlite3_bind_int(s, 5, RF_GRANTS_PER_KEY_MAX);
    return step_done(s);
}

/* Deletes up to max nonces whose slot is two or more behind now's: a nonce
 * of time ts lies in slot ts / W, so ts < (slot + 1) * W, and once now is in
 * slot + 2 every request of time ts is out of the window (now - ts > W) and
 * refused for its clock before its nonce is looked at. max 0: all of them. */
static int nonce_prune(struct conn *c, int64_t now, int64_t max)
{
    sqlite3_stmt *s = NULL;
    int rc = rf_sqlite_stmt(c, S_NONCE_PRUNE, &s);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(s, 1, rf_batch_nonce_slot(now) - 2);
    sqlite3_bind_int64(s, 2, max > 0 ? max : -1);
    return step_done(s);
}

static int sq_nonce_put(struct rf_store *st, struct rf_op *op)
{
    struct conn *c = &st->w;
    sqlite3_stmt *s = NULL;
    int rc = nonce_prune(c, (int64_t)time(NULL), NONCE_PRUNE_STEP);
    if (rc != 0)
        return rc;
    if ((rc = rf_sqlite_stmt(c, S_NONCE_PUT, &s)) != 0)
        return rc;
    sqlite3_bind_blob(s, 1, op->nonce, sizeof(op->nonce), SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, rf_batch_nonce_slot(op->ts));
    return step_done(s); /* a nonce already there: RF_ERR_EXISTS (primary key) */
}

/* Appends the next link of the audit chain inside the open transaction. */
static int audit_append(struct conn *c, const uint8_t actor[32], const char *action,
                        const char *target, const uint8_t *req, size_t req_len)
{
    struct rf_audit_entry e;
    sqlite3_stmt *s = NULL;
    if (!rf_batch_audit_ok(action, target, req, req_len))
        return RF_ERR_INVALID;
    memset(&e, 0, sizeof(e));
    int rc = rf_sqlite_stmt(c, S_AUDIT_LAST, &s);
    if (rc != 0)
        return rc;
    int r = sqlite3_step(s);
    if (r == SQLITE_ROW) {
        e.id = (uint64_t)sqlite3_column_int64(s, 0) + 1;
        rc = rf_sqlite_copy_fixed(e.prev, sizeof(e.prev), s, 1);
    } else if (r == SQLITE_DONE) {
        e.id = 1; /* prev stays zeros */
    } else {
        rc = rf_sqlite_err(r);
    }
    rf_sqlite_done(s);
    if (rc != 0)
        return rc;
    if ((rc = rf_batch_audit_fill(&e, actor, action, target, req, req_len)) != 0)
        return rc;
    if ((rc = rf_sqlite_stmt(c, S_AUDIT_INSERT, &s)) != 0)
        return rc;
    sqlite3_bind_int64(s, 1, (int64_t)e.id);
    sqlite3_bind_int64(s, 2, e.day);
    sqlite3_bind_blob(s, 3, e.actor, sizeof(e.actor), SQLITE_STATIC);
    sqlite3_bind_text(s, 4, e.action, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 5, e.target, -1, SQLITE_STATIC);
    sqlite3_bind_blob(s, 6, e.prev, sizeof(e.prev), SQLITE_STATIC);
    sqlite3_bind_blob(s, 7, e.hash, sizeof(e.hash), SQLITE_STATIC);
    if (e.req_len > 0)
        sqlite3_bind_blob(s, 8, e.req, e.req_len, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, 8);
    return step_done(s);
}

static int sq_audit_append(struct rf_store *st, struct rf_op *op)
{
    struct conn *c = &st->w;
    /* data/len: the signed request record of a caseworker's action (audit v2) */
    return audit_append(c, op->pk, op->key, op->target, op->data, op->data ? op->len : 0);
}

/* day 0 cancels; the teamconfig case refuses a day (trigger: RF_ERR_INVALID). */
static int sq_case_schedule(struct rf_store *st, struct rf_op *op)
{
    struct conn *c = &st->w;
    sqlite3_stmt *s = NULL;
    int rc = rf_sqlite_stmt(c, S_CASE_SCHEDULE, &s);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(s, 1, op->source_id);
    if (op->day == 0)
        sqlite3_bind_null(s, 2);
    else
        sqlite3_bind_int64(s, 2, op->day);
    if ((rc = step_done(s)) != 0)
        return rc;
    return sqlite3_changes(c->db) == 1 ? 0 : RF_ERR_NOT_FOUND;
}

/* ---- the primitives of batches and retention (the drivers: batch.c) ---- */

static int sq_tx_begin(struct rf_store *st)
{
    return rf_sqlite_run(&st->w, S_BEGIN);
}

static int sq_tx_commit(struct rf_store *st)
{
    return rf_sqlite_run(&st->w, S_COMMIT);
}

static void sq_rollback(struct rf_store *st)
{
    rf_sqlite_run(&st->w, S_ROLLBACK);
}

/* SQLite may have rolled the whole transaction back on its own */
static int sq_in_tx(struct rf_store *st)
{
    return !sqlite3_get_autocommit(st->w.db);
}

static int sq_savepoint(struct rf_store *st, int group)
{
    return rf_sqlite_run(&st->w, group ? S_GROUP_SAVEPOINT : S_SAVEPOINT);
}

static int sq_release(struct rf_store *st, int group)
{
    return rf_sqlite_run(&st->w, group ? S_GROUP_RELEASE : S_RELEASE);
}

static int sq_rollback_to(struct rf_store *st, int group)
{
    return rf_sqlite_run(&st->w, group ? S_GROUP_ROLLBACK_TO : S_ROLLBACK_TO);
}

/* ---- retention ---- */

/* Collects the blob names of source id's objects into dead. */
static int purge_collect_blobs(struct rf_store *st, struct rf_dead *dead, int64_t id, size_t *n)
{
    struct conn *c = &st->w;
    sqlite3_stmt *s = NULL;
    int rc = rf_sqlite_stmt(c, S_PURGE_BLOBS, &s);
    *n = 0;
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(s, 1, id);
    for (;;) {
        int r = sqlite3_step(s);
        if (r == SQLITE_DONE)
            break;
        if (r != SQLITE_ROW) {
            rc = rf_sqlite_err(r);
            break;
        }
        if ((rc = rf_dead_reserve(dead, *n + 1)) != 0 ||
            (rc = rf_sqlite_copy_text(dead->name[*n], RF_BLOB_NAME_LEN + 1, s, 0)) != 0)
            break;
        (*n)++;
    }
    rf_sqlite_done(s);
    return rc;
}

/* Inside the open transaction: finds the next expired case after `after`
 * and deletes it with its objects (grants cascade). pc->id = 0: none left. */
static int sq_purge_next(struct rf_store *st, struct rf_dead *dead, int64_t after, uint32_t today,
                         uint32_t inactive, struct rf_purge_case *pc)
{
    struct conn *c = &st->w;
    sqlite3_stmt *s = NULL;
    memset(pc, 0, sizeof(*pc));
    int rc = rf_sqlite_stmt(c, S_PURGE_NEXT, &s);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(s, 1, after);
    sqlite3_bind_int64(s, 2, today);
    sqlite3_bind_int64(s, 3, inactive);
    int r = sqlite3_step(s);
    if (r == SQLITE_ROW)
        pc->id = sqlite3_column_int64(s, 0);
    rf_sqlite_done(s);
    if (r != SQLITE_ROW)
        return r == SQLITE_DONE ? 0 : rf_sqlite_err(r);
    if ((rc = purge_collect_blobs(st, dead, pc->id, &pc->blobs)) != 0)
        return rc;
    if ((rc = rf_sqlite_stmt(c, S_PURGE_OBJECTS, &s)) != 0)
        return rc;
    sqlite3_bind_int64(s, 1, pc->id);
    if ((rc = step_done(s)) != 0)
        return rc;
    pc->objects = (uint64_t)sqlite3_changes64(c->db);
    if ((rc = rf_sqlite_stmt(c, S_PURGE_SOURCE, &s)) != 0)
        return rc;
    sqlite3_bind_int64(s, 1, pc->id);
    if ((rc = step_done(s)) != 0)
        return rc;
    return sqlite3_changes(c->db) == 1 ? 0 : RF_ERR_DB;
}

/* The "purge" entry (actor: the server), and the nonces of an idle period,
 * not left for the next request. */
static int sq_purge_audit(struct rf_store *st, const char *target)
{
    static const uint8_t server[32];
    int rc = nonce_prune(&st->w, (int64_t)time(NULL), 0);
    return rc != 0 ? rc : audit_append(&st->w, server, "purge", target, NULL, 0);
}

/* Deleted pages are zeroed (secure_delete); a passive checkpoint (never
 * waits for readers while holding the writer) copies the zeroed pages into
 * the database file now. */
static void sq_purge_done(struct rf_store *st, const struct rf_purge_counts *n)
{
    if (n->cases == 0)
        return;
    pthread_mutex_lock(&st->files.wmu);
    sqlite3_wal_checkpoint_v2(st->w.db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    pthread_mutex_unlock(&st->files.wmu);
}

const struct rf_batch_ops rf_sqlite_batch = {
    .tx_begin = sq_tx_begin,
    .tx_commit = sq_tx_commit,
    .rollback = sq_rollback,
    .in_tx = sq_in_tx,
    .savepoint = sq_savepoint,
    .release = sq_release,
    .rollback_to = sq_rollback_to,
    .setting_put = sq_setting_put,
    .source_create = sq_source_create,
    .object_put = sq_object_put,
    .object_delete = sq_object_delete,
    .token_put = sq_token_put,
    .token_use = sq_token_use,
    .staff_put = sq_staff_put,
    .roster_put = sq_roster_put,
    .grant_put = sq_grant_put,
    .audit_append = sq_audit_append,
    .case_schedule = sq_case_schedule,
    .nonce_put = sq_nonce_put,
    .purge_next = sq_purge_next,
    .purge_audit = sq_purge_audit,
    .purge_done = sq_purge_done,
};

int rf_sqlite_checkpoint(struct rf_store *st)
{
    assert(!rf_committer_in_completion());
    if (st->files.readonly)
        return RF_ERR_INVALID;
    pthread_mutex_lock(&st->files.wmu);
    int r = sqlite3_wal_checkpoint_v2(st->w.db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
    pthread_mutex_unlock(&st->files.wmu);
    if ((r & 0xff) == SQLITE_BUSY || (r & 0xff) == SQLITE_LOCKED)
        return RF_ERR_BUSY;
    return rf_sqlite_err(r);
}
