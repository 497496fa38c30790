/*
 * batch.c - rf_store_apply for every backend (store_internal.h, "the batch
 * driver"): the savepoint per op and per group, each op's and group's own
 * fate and status, the blobs of deleted objects unlinked only after COMMIT,
 * the log of a failed transaction. The backends give their primitives
 * (struct rf_batch_ops): SQLite's in store_sqlite_write.c, PostgreSQL's
 * (with its pipelined fast path and the lost-COMMIT resolution) in
 * store_pg_write.c. docs/storage.md, "Durability protocol".
 */
#include "lib/err.h"
#include "lib/log.h"
#include "store/commit.h"
#include "store/store_internal.h"

#include <assert.h>
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

/* Runs one op under its own savepoint; 0 (whatever the op's status), or the
 * error that sinks the transaction. */
static int apply_one(struct rf_store *st, const struct rf_batch_ops *bo, struct rf_op *op,
                     char *dead)
{
    int rc = bo->savepoint(st, 0);
    if (rc != 0)
        return rc;
    dead[0] = '\0';
    op->status = bo->apply_op(st, op, dead);
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

int rf_batch_apply(struct rf_store *st, const struct rf_batch_ops *bo, pthread_mutex_t *wmu,
                   struct rf_dead *dead, struct rf_op *ops, size_t n)
{
    struct rf_store_files *f = rf_store_files_of(st);
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
    if ((rc = bo->begin(st, ops, n, &applied)) != 0)
        goto fail;
    if (!applied && (rc = apply_ops(st, bo, ops, n, dead->name)) != 0)
        goto fail;
    if ((rc = bo->commit(st, applied)) != 0)
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
