/*
 * put.c - the backend-neutral half of the store's write interface: puts (the
 * sink an object's ciphertext is written into), the op constructors and
 * accessors, and rf_store_settle, which every backend's rf_store_apply runs
 * before it returns.
 *
 * A put holds its ciphertext in memory while it is at most RF_INLINE_MAX
 * bytes, then in a temp blob file (rf_blob_*), the bytes held so far written
 * out once and the rest streamed; RF_PUT_BLOB starts with the file.
 * rf_op_object_put commits the blob (durable, named) before the op names it.
 *
 * Who deletes a durable blob whose row never came:
 * - its op failed in rf_store_apply (alone, with its group or with the
 *   batch): rf_store_settle, at once, and marks the put settled;
 * - its op never reached rf_store_apply (the committer refused it, or a
 *   later put of the same submission failed first): rf_put_free, since the
 *   put is not settled.
 * A blob named by a row is never deleted here (rf_blob_discard asks the
 * backend's "still referenced?" predicate first). A put's settled flag is
 * written by the thread that ran rf_store_apply before the op's completion
 * runs, and read by rf_put_free after it: the completion's hand-off orders
 * them.
 *
 * Invariant: p->mem is non-empty only while p->blob and p->name are unset.
 */
#include "lib/buf.h"
#include "lib/envelope.h"
#include "lib/err.h"
#include "store/commit.h"
#include "store/store_internal.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

struct rf_put {
    struct rf_store *st;
    struct rf_buf mem;    /* the ciphertext while small */
    struct rf_blob *blob; /* once spilled, until committed */
    uint64_t size;
    int err;                         /* first failure: every later call fails so */
    char name[RF_BLOB_NAME_LEN + 1]; /* the durable blob, once committed */
    int settled;                     /* its op went through rf_store_apply */
};

static int put_spill(struct rf_put *p)
{
    int rc = rf_blob_begin(p->st, &p->blob);
    if (rc == 0 && p->mem.len > 0)
        rc = rf_blob_write(p->blob, p->mem.data, p->mem.len);
    rf_buf_free(&p->mem);
    rf_buf_init(&p->mem, RF_INLINE_MAX);
    return rc;
}

int rf_put_begin(struct rf_store *st, unsigned flags, struct rf_put **out)
{
    assert(!rf_committer_in_completion());
    *out = NULL;
    if (st == NULL)
        return RF_ERR_INVALID;
    struct rf_put *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return RF_ERR_NOMEM;
    p->st = st;
    rf_buf_init(&p->mem, RF_INLINE_MAX);
    if (flags & RF_PUT_BLOB) {
        int rc = put_spill(p);
        if (rc != 0) {
            rf_put_free(p);
            return rc;
        }
    }
    *out = p;
    return 0;
}

int rf_put_write(struct rf_put *p, const uint8_t *data, size_t n)
{
    int rc;
    if (p == NULL || p->name[0] != '\0')
        return RF_ERR_INVALID;
    if (p->err != 0)
        return p->err;
    if (p->blob == NULL && n <= RF_INLINE_MAX - p->mem.len) {
        rc = rf_buf_put(&p->mem, data, n);
    } else {
        rc = p->blob == NULL ? put_spill(p) : 0;
        if (rc == 0)
            rc = rf_blob_write(p->blob, data, n);
    }
    if (rc != 0) {
        p->err = rc;
        return rc;
    }
    p->size += n;
    return 0;
}

uint64_t rf_put_size(const struct rf_put *p)
{
    return p ? p->size : 0;
}

void rf_put_free(struct rf_put *p)
{
    if (p == NULL)
        return;
    rf_blob_abort(p->blob);
    if (p->name[0] != '\0' && !p->settled)
        (void)rf_blob_discard(p->st, p->name);
    rf_buf_free(&p->mem);
    free(p);
}

/* ---- constructors ---- */

static void op_init(struct rf_op *op, enum rf_op_type type)
{
    memset(op, 0, sizeof(*op));
    op->type = type;
}

void rf_op_setting_put(struct rf_op *op, const char *key, const uint8_t *data, size_t len)
{
    op_init(op, RF_OP_SETTING_PUT);
    op->key = key;
    op->data = data;
    op->len = len;
}

void rf_op_source_create(struct rf_op *op, const uint8_t lookup_id[32], const uint8_t pk[32])
{
    op_init(op, RF_OP_SOURCE_CREATE);
    memcpy(op->lookup_id, lookup_id, sizeof(op->lookup_id));
    memcpy(op->pk, pk, sizeof(op->pk));
}

int rf_op_object_put(struct rf_op *op, int64_t source_id, uint8_t kind, struct rf_put *p)
{
    assert(!rf_committer_in_completion());
    op_init(op, RF_OP_OBJECT_PUT);
    if (p == NULL || p->name[0] != '\0')
        return RF_ERR_INVALID;
    if (p->err != 0)
        return p->err;
    op->source_id = source_id;
    op->kind = kind;
    op->put = p;
    if (p->blob == NULL && rf_store_blob_only(p->st, kind)) {
        int rc = put_spill(p); /* the bytes never reach a database row */
        if (rc != 0) {
            p->err = rc;
            return rc;
        }
    }
    if (p->blob == NULL) {
        op->data = p->mem.data;
        op->len = p->mem.len;
        op->size = p->mem.len;
        return 0;
    }
    int rc = rf_blob_commit(p->blob, p->name);
    p->blob = NULL; /* freed by commit, whatever it said */
    if (rc != 0) {
        p->err = rc;
        p->name[0] = '\0';
        return rc;
    }
    memcpy(op->blob_name, p->name, sizeof(op->blob_name));
    op->size = p->size;
    return 0;
}

int rf_store_blob_only(struct rf_store *st, unsigned kind)
{
    return kind == RF_KIND_REPLY && !rf_store_files_of(st)->ops->secure_delete;
}

void rf_op_object_delete(struct rf_op *op, int64_t seq, int64_t source_id)
{
    op_init(op, RF_OP_OBJECT_DELETE);
    op->seq = seq;
    op->source_id = source_id;
}

void rf_op_token_put(struct rf_op *op, const uint8_t token_hash[32], int role)
{
    op_init(op, RF_OP_TOKEN_PUT);
    memcpy(op->token_hash, token_hash, sizeof(op->token_hash));
    op->role = role;
}

void rf_op_token_use(struct rf_op *op, const uint8_t token_hash[32], int require_admin)
{
    op_init(op, RF_OP_TOKEN_USE);
    memcpy(op->token_hash, token_hash, sizeof(op->token_hash));
    op->require_admin = require_admin;
}

void rf_op_staff_put(struct rf_op *op, const struct rf_staff_rec *staff)
{
    op_init(op, RF_OP_STAFF_PUT);
    op->staff = *staff;
}

void rf_op_roster_put(struct rf_op *op, uint32_t version, const uint8_t *raw, size_t len)
{
    op_init(op, RF_OP_ROSTER_PUT);
    op->version = version;
    op->data = raw;
    op->len = len;
}

void rf_op_grant_put(struct rf_op *op, int64_t seq, const uint8_t keyid[8],
                     const uint8_t granter[32], const uint8_t grant[88])
{
    op_init(op, RF_OP_GRANT_PUT);
    op->seq = seq;
    memcpy(op->keyid, keyid, sizeof(op->keyid));
    memcpy(op->pk, granter, sizeof(op->pk));
    op->data = grant;
    op->len = 88;
}

void rf_op_audit(struct rf_op *op, const uint8_t *actor, const char *action, const char *target,
                 const uint8_t *req, size_t req_len)
{
    op_init(op, RF_OP_AUDIT_APPEND);
    if (actor != NULL)
        memcpy(op->pk, actor, sizeof(op->pk));
    op->key = action;
    op->target = target;
    if (req != NULL) {
        op->data = req;
        op->len = req_len;
    }
}

void rf_op_case_schedule(struct rf_op *op, int64_t source_id, uint32_t day)
{
    op_init(op, RF_OP_CASE_SCHEDULE);
    op->source_id = source_id;
    op->day = day;
}

void rf_op_nonce_put(struct rf_op *op, const uint8_t nonce[16], int64_t ts)
{
    op_init(op, RF_OP_NONCE_PUT);
    memcpy(op->nonce, nonce, sizeof(op->nonce));
    op->ts = ts;
}

/* ---- accessors ---- */

int rf_op_status(const struct rf_op *op)
{
    return op->status;
}

int64_t rf_op_seq(const struct rf_op *op)
{
    return op->seq;
}

const struct rf_source *rf_op_source(const struct rf_op *op)
{
    return &op->source;
}

int rf_op_role(const struct rf_op *op)
{
    return op->role;
}

/* ---- after a batch ---- */

void rf_store_settle(struct rf_store *st, struct rf_op *ops, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct rf_op *op = &ops[i];
        if (op->type != RF_OP_OBJECT_PUT || op->put == NULL)
            continue; /* a blob named by hand (rf_blob_commit: tests, tools) stays the caller's */
        op->put->settled = 1;
        if (op->status != 0 && op->blob_name[0] != '\0' && !rf_store_files_of(st)->readonly)
            (void)rf_blob_discard(st, op->blob_name); /* no row names it */
    }
}
