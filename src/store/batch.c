/*
 * batch.c - rf_store_apply and rf_store_purge for every backend
 * (store_internal.h, "the batch driver"): the savepoint per op and per
 * group, each op's and group's own fate and status, the blobs of deleted
 * objects unlinked only after COMMIT, the log of a failed transaction; the
 * purge's transaction per case and its audit entry; and what the backends'
 * ops share (an object put's checks, case ids, nonce slots, an audit
 * entry's fields). The backends give their primitives (struct
 * rf_batch_ops): SQLite's in store_sqlite_write.c, PostgreSQL's (with its
 * pipelined fast path and the lost-COMMIT resolution) in store_pg_write.c.
 * docs/storage.md, "Durability protocol".
 */
#include "lib/apisig.h"
#include "lib/audit.h"
#include "lib/err.h"
#include "lib/log.h"
#include "store/commit.h"
#include "store/store_internal.h"

#include <assert.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int rf_dead_reserve(struct rf_dead *d, size_t n)
{
    if (n <= d->cap)
        return 0;
    void *p = realloc(d->name, n * sizeof(*d->name));
    if (!p)
        return RF_ERR_NOMEM;
    d->name = p;
    d->cap = n;
    return 0;
}

/* An error that means the transaction, not just the op, is in trouble. */
static int batch_fatal(int rc)
{
    return rc == RF_ERR_NOSPACE || rc == RF_ERR_IO || rc == RF_ERR_NOMEM || rc == RF_ERR_DB;
}

/* One op, by its type. */
static int apply_op(struct rf_store *st, const struct rf_batch_ops *bo, struct rf_op *op,
                    char dead[RF_BLOB_NAME_LEN + 1])
{
    switch (op->type) {
    case RF_OP_SETTING_PUT:
        return bo->setting_put(st, op);
    case RF_OP_SOURCE_CREATE:
        return bo->source_create(st, op);
    case RF_OP_OBJECT_PUT:
        return bo->object_put(st, op);
    case RF_OP_OBJECT_DELETE:
        return bo->object_delete(st, op, dead);
    case RF_OP_TOKEN_PUT:
        return bo->token_put(st, op);
    case RF_OP_TOKEN_USE:
        return bo->token_use(st, op);
    case RF_OP_STAFF_PUT:
        return bo->staff_put(st, op);
    case RF_OP_ROSTER_PUT:
        return bo->roster_put(st, op);
    case RF_OP_GRANT_PUT:
        return bo->grant_put(st, op);
    case RF_OP_AUDIT_APPEND:
        return bo->audit_append(st, op);
    case RF_OP_CASE_SCHEDULE:
        return bo->case_schedule(st, op);
    case RF_OP_NONCE_PUT:
        return bo->nonce_put(st, op);
    }
    return RF_ERR_INVALID;
}

/* Runs one op under its own savepoint; 0 (whatever the op's status), or the
 * error that sinks the transaction. */
static int apply_one(struct rf_store *st, const struct rf_batch_ops *bo, struct rf_op *op,
                     char *dead)
{
    int rc = bo->savepoint(st, 0);
    if (rc != 0)
        return rc;
    dead[0] = '\0';
    op->status = apply_op(st, bo, op, dead);
    if (op->status == 0)
        return bo->release(st, 0);
    dead[0] = '\0';
    if (!bo->in_tx(st)) /* the transaction went (rolled back, or with the connection) */
        return batch_fatal(op->status) ? op->status : RF_ERR_DB;
    if ((rc = bo->rollback_to(st, 0)) != 0 || (rc = bo->release(st, 0)) != 0)
        return rc;
    if (bo->op_sinks && bo->op_sinks(st, op->status))
        return RF_ERR_DB;
    return 0;
}

/* Runs ops[0..g) all-or-nothing under the group savepoint. */
static int apply_group(struct rf_store *st, const struct rf_batch_ops *bo, struct rf_op *ops,
                       size_t g, char (*dead)[RF_BLOB_NAME_LEN + 1])
{
    int rc = bo->savepoint(st, 1);
    if (rc != 0)
        return rc;
    int failed = 0;
    for (size_t i = 0; i < g; i++) {
        if ((rc = apply_one(st, bo, &ops[i], dead[i])) != 0)
            return rc;
        if (ops[i].status != 0) {
            failed = ops[i].status;
            break;
        }
    }
    if (failed == 0)
        return bo->release(st, 1);
    for (size_t i = 0; i < g; i++) {
        ops[i].status = failed;
        dead[i][0] = '\0';
    }
    if ((rc = bo->rollback_to(st, 1)) != 0 || (rc = bo->release(st, 1)) != 0)
        return rc;
    return 0;
}

/* Runs the ops inside the open transaction; 0, or the error that sinks it. */
static int apply_ops(struct rf_store *st, const struct rf_batch_ops *bo, struct rf_op *ops,
                     size_t n, char (*dead)[RF_BLOB_NAME_LEN + 1])
{
    for (size_t i = 0; i < n;) {
        size_t g = ops[i].group > 1 ? ops[i].group : 1;
        if (g > n - i)
            return RF_ERR_INVALID;
        int rc = g == 1 ? apply_one(st, bo, &ops[i], dead[i])
                        : apply_group(st, bo, &ops[i], g, &dead[i]);
        if (rc != 0)
            return rc;
        i += g;
    }
    return 0;
}

int rf_batch_apply(struct rf_store *st, struct rf_op *ops, size_t n)
{
    struct rf_store_files *f = rf_store_files_of(st);
    const struct rf_batch_ops *bo = f->ops->batch;
    pthread_mutex_t *wmu = &f->wmu;
    struct rf_dead *dead = &f->dead;
    int applied = 0;
    int rc;
    if (n == 0)
        return 0;
    assert(!rf_committer_in_completion());
    if (f->readonly) {
        for (size_t i = 0; i < n; i++)
            ops[i].status = RF_ERR_INVALID;
        return RF_ERR_INVALID;
    }
    pthread_mutex_lock(wmu);
    if ((rc = rf_dead_reserve(dead, n)) != 0)
        goto fail;
    rc = bo->batch_begin ? bo->batch_begin(st, ops, n, &applied) : bo->tx_begin(st);
    if (rc != 0)
        goto fail;
    if (!applied && (rc = apply_ops(st, bo, ops, n, dead->name)) != 0)
        goto fail;
    if (bo->batch_commit)
        rc = bo->batch_commit(st, applied);
    else if ((rc = rf_store_fault_hit(f)) == 0)
        rc = bo->tx_commit(st);
    if (rc != 0)
        goto fail;
    size_t nd = 0;
    for (size_t i = 0; i < n; i++)
        if (dead->name[i][0])
            memcpy(dead->name[nd++], dead->name[i], RF_BLOB_NAME_LEN + 1);
    if (nd > 0)
        rf_blobdir_unlink(f, dead->name, nd);
    pthread_mutex_unlock(wmu);
    rf_store_settle(st, ops, n);
    return 0;
fail:
    if (bo->in_tx(st))
        bo->rollback(st);
    for (size_t i = 0; i < n; i++)
        ops[i].status = rc;
    int log = !bo->log_failure || bo->log_failure(st, rc);
    pthread_mutex_unlock(wmu);
    if (log)
        rf_log_error("store: transaction failed", rc);
    rf_store_settle(st, ops, n);
    return rc;
}

/* ---- retention ---- */

/* One transaction: purges the next expired case; pc->id = 0 when none is left. */
static int purge_one(struct rf_store *st, int64_t after, uint32_t today, uint32_t inactive,
                     struct rf_purge_case *pc)
{
    struct rf_store_files *f = rf_store_files_of(st);
    const struct rf_batch_ops *bo = f->ops->batch;
    pthread_mutex_t *wmu = &f->wmu;
    struct rf_dead *dead = &f->dead;
    memset(pc, 0, sizeof(*pc));
    pthread_mutex_lock(wmu);
    int rc = bo->tx_begin(st);
    if (rc == 0)
        rc = bo->purge_next(st, dead, after, today, inactive, pc);
    if (rc == 0 && pc->id == 0) {
        bo->rollback(st); /* nothing was written */
        pthread_mutex_unlock(wmu);
        return 0;
    }
    if (rc == 0)
        rc = rf_store_fault_hit(f);
    if (rc == 0)
        rc = bo->tx_commit(st);
    if (rc != 0) {
        if (bo->in_tx(st))
            bo->rollback(st);
        pc->id = 0;
        pthread_mutex_unlock(wmu);
        return rc;
    }
    if (pc->blobs > 0)
        rf_blobdir_unlink(f, dead->name, pc->blobs);
    pthread_mutex_unlock(wmu);
    return 0;
}

/* Appends the "purge" entry (actor: the server) in a transaction of its own. */
static int purge_audit(struct rf_store *st, const struct rf_purge_counts *n)
{
    struct rf_store_files *f = rf_store_files_of(st);
    const struct rf_batch_ops *bo = f->ops->batch;
    pthread_mutex_t *wmu = &f->wmu;
    char target[RF_AUDIT_TARGET_MAX + 1];
    snprintf(target, sizeof(target), "cases=%llu objects=%llu", (unsigned long long)n->cases,
             (unsigned long long)n->objects);
    pthread_mutex_lock(wmu);
    int rc = bo->tx_begin(st);
    if (rc == 0)
        rc = bo->purge_audit(st, target);
    if (rc == 0)
        rc = rf_store_fault_hit(f);
    if (rc == 0)
        rc = bo->tx_commit(st);
    if (rc != 0 && bo->in_tx(st))
        bo->rollback(st);
    pthread_mutex_unlock(wmu);
    return rc;
}

int rf_batch_purge(struct rf_store *st, uint32_t today, uint32_t inactive_days,
                   struct rf_purge_counts *out)
{
    struct rf_store_files *f = rf_store_files_of(st);
    struct rf_purge_counts n = {0, 0, 0};
    int64_t after = 0;
    int rc;
    *out = n;
    if (f->readonly)
        return RF_ERR_INVALID;
    for (;;) {
        struct rf_purge_case pc;
        rc = purge_one(st, after, today, inactive_days, &pc);
        if (rc != 0 || pc.id == 0)
            break;
        n.cases++;
        n.objects += pc.objects;
        n.blobs += pc.blobs;
        after = pc.id;
    }
    /* what was deleted is recorded even if a later case failed */
    int arc = purge_audit(st, &n);
    if (rc == 0)
        rc = arc;
    if (f->ops->batch->purge_done)
        f->ops->batch->purge_done(st, &n);
    if (rc != 0)
        rf_log_error("store: purge failed", rc);
    *out = n;
    return rc;
}

/* ---- what both backends' ops share ---- */

int rf_batch_object_check(struct rf_store_files *f, const struct rf_op *op, uint64_t *size)
{
    int rc;
    if (op->kind >= 32)
        return RF_ERR_INVALID;
    if (op->blob_name[0] != '\0') {
        if (!rf_blob_name_valid(op->blob_name))
            return RF_ERR_INVALID;
        if ((rc = rf_blobdir_stat(f, op->blob_name, size)) != 0)
            return rc;
        if (*size != op->size || *size > INT64_MAX)
            return RF_ERR_INVALID;
    } else {
        if (op->len > RF_INLINE_MAX)
            return RF_ERR_LIMIT;
        if (!op->data && op->len)
            return RF_ERR_INVALID;
        *size = op->len;
    }
    return 0;
}

void rf_batch_case_id(char out[RF_CASE_ID_LEN + 1])
{
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
    for (size_t i = 0; i < RF_CASE_ID_LEN; i++)
        out[i] = alphabet[randombytes_uniform(32)];
    out[RF_CASE_ID_LEN] = '\0';
}

int64_t rf_batch_nonce_slot(int64_t t)
{
    return t >= 0 ? t / RF_APISIG_MAX_SKEW : -((-t + RF_APISIG_MAX_SKEW - 1) / RF_APISIG_MAX_SKEW);
}

/* Printable ASCII only, min..max bytes: audit fields are shown to people. */
static int audit_text_ok(const char *t, size_t min, size_t max)
{
    size_t n = t ? strnlen(t, max + 1) : 0;
    if (n < min || n > max)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (t[i] < 0x20 || t[i] > 0x7e)
            return 0;
    return 1;
}

int rf_batch_audit_ok(const char *action, const char *target, const uint8_t *req, size_t req_len)
{
    return audit_text_ok(action, 1, RF_AUDIT_ACTION_MAX) &&
           audit_text_ok(target ? target : "", 0, RF_AUDIT_TARGET_MAX) &&
           req_len <= RF_AUDIT_REQ_MAX && (req_len == 0 || req != NULL);
}

int rf_batch_audit_fill(struct rf_audit_entry *e, const uint8_t actor[32], const char *action,
                        const char *target, const uint8_t *req, size_t req_len)
{
    if (!target)
        target = "";
    e->day = rf_store_today();
    memcpy(e->actor, actor, sizeof(e->actor));
    memcpy(e->action, action, strlen(action) + 1);
    memcpy(e->target, target, strlen(target) + 1);
    if (req_len > 0)
        memcpy(e->req, req, req_len);
    e->req_len = (uint16_t)req_len;
    return rf_audit_hash(e->hash, e);
}
