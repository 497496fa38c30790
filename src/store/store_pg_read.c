/*
 * store_pg_read.c - the PostgreSQL backend's reads: settings, sources,
 * objects, staff and rosters, grants, the audit log. Every read borrows a
 * connection from the reader pool (store_pg.c); each statement reads one
 * committed snapshot (READ COMMITTED), concurrently with every writer.
 */
#include "lib/audit.h"
#include "lib/err.h"
#include "store/pg_internal.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* A read: takes a reader, runs id with p, calls fn for each row while it
 * returns 0 (stops on 1), gives the reader back. */
typedef int (*row_fn)(const PGresult *r, int row, void *ctx);

static int read_rows(struct rf_store *st, enum pg_stmt id, const struct pgp *p, row_fn fn,
                     void *ctx, size_t *rows)
{
    struct pgconn *c;
    PGresult *r = NULL;
    size_t n = 0;
    int rc = rf_pg_reader_get(st, &c);
    if (rc != 0)
        return rc;
    rc = rf_pg_exec(c, id, p, &r);
    rf_pg_reader_put(st, c);
    for (int i = 0; rc == 0 && i < PQntuples(r); i++) {
        rc = fn(r, i, ctx);
        if (rc < 0)
            break;
        n++;
        if (rc == 1)
            break;
    }
    if (rc == 1)
        rc = 0;
    PQclear(r);
    if (rows)
        *rows = n;
    return rc;
}

static int read_one(struct rf_store *st, enum pg_stmt id, const struct pgp *p, row_fn fn, void *ctx)
{
    size_t n = 0;
    int rc = read_rows(st, id, p, fn, ctx, &n);
    if (rc == 0 && n == 0)
        rc = RF_ERR_NOT_FOUND;
    return rc;
}

static int put_col(struct rf_buf *out, const PGresult *r, int row, int col)
{
    return rf_buf_put(out, PQgetvalue(r, row, col), (size_t)PQgetlength(r, row, col));
}

static int row_buf0(const PGresult *r, int row, void *ctx)
{
    int rc = put_col(ctx, r, row, 0);
    return rc != 0 ? rc : 1;
}

static int64_t cap_limit(size_t cap)
{
    return cap > INT64_MAX ? INT64_MAX : (int64_t)cap;
}

int rf_pg_setting_get(struct rf_store *st, const char *key, struct rf_buf *out)
{
    struct pgp p = {0};
    if (!key || !*key || strlen(key) > PG_SETTING_KEY_MAX)
        return RF_ERR_INVALID;
    rf_pgp_text(&p, key);
    return read_one(st, P_SETTING_GET, &p, row_buf0, out);
}

static int row_source(const PGresult *r, int row, void *ctx)
{
    struct rf_source *src = ctx;
    int rc;
    memset(src, 0, sizeof(*src));
    src->id = rf_pg_i64(r, row, 0);
    if ((rc = rf_pg_text(src->case_id, sizeof(src->case_id), r, row, 1)) != 0 ||
        (rc = rf_pg_fixed(src->pk, sizeof(src->pk), r, row, 2)) != 0)
        return rc;
    src->day = (uint32_t)rf_pg_i64(r, row, 3);
    return 1;
}

int rf_pg_source_by_lookup(struct rf_store *st, const uint8_t lookup_id[32], struct rf_source *out)
{
    struct pgp p = {0};
    rf_pgp_bytes(&p, lookup_id, 32);
    return read_one(st, P_SOURCE_BY_LOOKUP, &p, row_source, out);
}

int rf_pg_source_by_case(struct rf_store *st, const char *case_id, struct rf_source *out)
{
    struct pgp p = {0};
    if (!case_id || strlen(case_id) != RF_CASE_ID_LEN)
        return RF_ERR_NOT_FOUND;
    rf_pgp_text(&p, case_id);
    return read_one(st, P_SOURCE_BY_CASE, &p, row_source, out);
}

struct object_rows {
    struct rf_object *out;
    size_t cap, n;
};

static int row_object(const PGresult *r, int row, void *ctx)
{
    struct object_rows *x = ctx;
    if (x->n >= x->cap)
        return 1;
    struct rf_object *o = &x->out[x->n];
    memset(o, 0, sizeof(*o));
    o->seq = rf_pg_i64(r, row, 0);
    o->source_id = rf_pg_i64(r, row, 1);
    int rc = rf_pg_text(o->case_id, sizeof(o->case_id), r, row, 2);
    if (rc != 0)
        return rc;
    o->kind = (uint8_t)rf_pg_i64(r, row, 3);
    o->size = (uint64_t)rf_pg_i64(r, row, 4);
    o->day = (uint32_t)rf_pg_i64(r, row, 5);
    o->in_blob = (int)rf_pg_i64(r, row, 6);
    o->roster = (uint32_t)rf_pg_i64(r, row, 7);
    x->n++;
    return 0;
}

int rf_pg_objects_since(struct rf_store *st, int64_t after, struct rf_object *out, size_t cap,
                        size_t *n)
{
    struct object_rows x = {out, cap, 0};
    struct pgp p = {0};
    *n = 0;
    if (cap == 0)
        return 0;
    rf_pgp_i64(&p, after);
    rf_pgp_i64(&p, cap_limit(cap));
    int rc = read_rows(st, P_OBJECTS_SINCE, &p, row_object, &x, NULL);
    *n = rc == 0 ? x.n : 0;
    return rc;
}

int rf_pg_objects_of_source(struct rf_store *st, int64_t source_id, unsigned kinds,
                            struct rf_object *out, size_t cap, size_t *n)
{
    struct object_rows x = {out, cap, 0};
    struct pgp p = {0};
    *n = 0;
    if (cap == 0)
        return 0;
    rf_pgp_i64(&p, source_id);
    rf_pgp_i64(&p, (int64_t)(kinds & 0xffffffffu));
    rf_pgp_i64(&p, cap_limit(cap));
    int rc = read_rows(st, P_OBJECTS_OF_SOURCE, &p, row_object, &x, NULL);
    *n = rc == 0 ? x.n : 0;
    return rc;
}

int rf_pg_object_get(struct rf_store *st, int64_t seq, struct rf_object *out)
{
    struct object_rows x = {out, 1, 0};
    struct pgp p = {0};
    rf_pgp_i64(&p, seq);
    return read_one(st, P_OBJECT_GET, &p, row_object, &x);
}

struct object_data {
    struct rf_buf *inl;
    char blob[RF_BLOB_NAME_LEN + 1];
};

static int row_object_data(const PGresult *r, int row, void *ctx)
{
    struct object_data *d = ctx;
    int rc = !PQgetisnull(r, row, 1) ? rf_pg_text(d->blob, sizeof(d->blob), r, row, 1)
                                     : put_col(d->inl, r, row, 0);
    return rc != 0 ? rc : 1;
}

static int object_data(struct rf_store *st, int64_t seq, struct object_data *d)
{
    struct pgp p = {0};
    rf_pgp_i64(&p, seq);
    return read_one(st, P_OBJECT_DATA, &p, row_object_data, d);
}

int rf_pg_object_read(struct rf_store *st, int64_t seq, struct rf_buf *out)
{
    struct object_data d = {out, ""};
    size_t before = out->len;
    int rc = object_data(st, seq, &d);
    if (rc == 0 && d.blob[0]) /* in a blob: read the file (out's limit bounds it) */
        rc = rf_blobdir_read_blob(&st->files, d.blob, out);
    if (rc != 0)
        out->len = before;
    return rc;
}

int rf_pg_object_open(struct rf_store *st, int64_t seq, int *fd, uint64_t *size)
{
    struct rf_buf inl;
    struct object_data d = {&inl, ""};
    rf_buf_init(&inl, RF_INLINE_MAX);
    *fd = -1;
    *size = 0;
    int rc = object_data(st, seq, &d);
    if (rc == 0)
        rc = rf_blobdir_object_fd(&st->files, &inl, d.blob, fd, size);
    rf_buf_free(&inl);
    return rc;
}

/* GET /api/v1/objects/data: each row with its ciphertext (small blobs read
 * from their file into a scratch buffer) handed to the caller's fn. */
struct range_rows {
    struct rf_store *st;
    uint64_t max_size;
    rf_store_range_fn fn;
    void *ctx;
    struct rf_buf scratch;
};

static int row_range(const PGresult *r, int row, void *ctx)
{
    struct range_rows *x = ctx;
    struct rf_object o;
    struct object_rows one = {&o, 1, 0};
    int rc = row_object(r, row, &one);
    if (rc != 0)
        return rc;
    const uint8_t *data = NULL;
    size_t len = 0;
    if (o.size <= x->max_size) {
        if (!PQgetisnull(r, row, 9)) {
            char blob[RF_BLOB_NAME_LEN + 1];
            if ((rc = rf_pg_text(blob, sizeof(blob), r, row, 9)) != 0)
                return rc;
            rf_buf_reset(&x->scratch);
            if ((rc = rf_blobdir_read_blob(&x->st->files, blob, &x->scratch)) != 0)
                return rc;
            data = x->scratch.data;
            len = x->scratch.len;
        } else if (!PQgetisnull(r, row, 8)) {
            data = (const uint8_t *)PQgetvalue(r, row, 8);
            len = (size_t)PQgetlength(r, row, 8);
        }
        if (len != o.size)
            return RF_ERR_DB;
        if (!data)
            data = (const uint8_t *)"";
    }
    return x->fn(x->ctx, &o, data, len);
}

int rf_pg_objects_range(struct rf_store *st, int64_t after, int64_t upto, size_t cap,
                        uint64_t max_size, rf_store_range_fn fn, void *ctx)
{
    struct range_rows x = {st, max_size, fn, ctx, {0}};
    struct pgp p = {0};
    rf_pgp_i64(&p, after);
    rf_pgp_i64(&p, upto);
    rf_pgp_i64(&p, cap_limit(cap));
    rf_pgp_i64(&p, max_size > INT64_MAX ? INT64_MAX : (int64_t)max_size);
    rf_buf_init(&x.scratch, max_size > RF_INLINE_MAX ? RF_INLINE_MAX : (size_t)max_size);
    int rc = read_rows(st, P_OBJECTS_RANGE, &p, row_range, &x, NULL);
    rf_buf_free(&x.scratch);
    return rc;
}

static int row_staff(const PGresult *r, int row, void *ctx)
{
    struct rf_staff_rec *s = ctx;
    int rc;
    if ((rc = rf_pg_fixed(s->box_pk, sizeof(s->box_pk), r, row, 0)) != 0 ||
        (rc = rf_pg_text(s->name, sizeof(s->name), r, row, 1)) != 0)
        return rc;
    s->day = (uint32_t)rf_pg_i64(r, row, 2);
    return 1;
}

int rf_pg_staff_get(struct rf_store *st, const uint8_t sign_pk[32], struct rf_staff_rec *out)
{
    struct pgp p = {0};
    memset(out, 0, sizeof(*out));
    memcpy(out->sign_pk, sign_pk, sizeof(out->sign_pk));
    rf_pgp_bytes(&p, sign_pk, 32);
    return read_one(st, P_STAFF_GET, &p, row_staff, out);
}

struct roster_row {
    uint32_t *version;
    struct rf_buf *raw;
};

static int row_roster_latest(const PGresult *r, int row, void *ctx)
{
    struct roster_row *x = ctx;
    *x->version = (uint32_t)rf_pg_i64(r, row, 0);
    int rc = put_col(x->raw, r, row, 1);
    return rc != 0 ? rc : 1;
}

int rf_pg_roster_latest(struct rf_store *st, uint32_t *version, struct rf_buf *raw)
{
    struct roster_row x = {version, raw};
    return read_one(st, P_ROSTER_LATEST, NULL, row_roster_latest, &x);
}

int rf_pg_roster_get(struct rf_store *st, uint32_t version, struct rf_buf *raw)
{
    struct pgp p = {0};
    rf_pgp_i64(&p, version);
    return read_one(st, P_ROSTER_GET, &p, row_buf0, raw);
}

struct staff_rows {
    struct rf_staff_rec *out;
    size_t cap, n;
};

static int row_staff_list(const PGresult *r, int row, void *ctx)
{
    struct staff_rows *x = ctx;
    if (x->n >= x->cap)
        return 1;
    struct rf_staff_rec *o = &x->out[x->n];
    memset(o, 0, sizeof(*o));
    int rc;
    if ((rc = rf_pg_fixed(o->sign_pk, sizeof(o->sign_pk), r, row, 0)) != 0 ||
        (rc = rf_pg_fixed(o->box_pk, sizeof(o->box_pk), r, row, 1)) != 0 ||
        (rc = rf_pg_text(o->name, sizeof(o->name), r, row, 2)) != 0)
        return rc;
    o->day = (uint32_t)rf_pg_i64(r, row, 3);
    x->n++;
    return 0;
}

int rf_pg_staff_list(struct rf_store *st, struct rf_staff_rec *out, size_t cap, size_t *n)
{
    struct staff_rows x = {out, cap, 0};
    struct pgp p = {0};
    *n = 0;
    if (cap == 0)
        return 0;
    rf_pgp_i64(&p, cap_limit(cap));
    int rc = read_rows(st, P_STAFF_LIST, &p, row_staff_list, &x, NULL);
    *n = rc == 0 ? x.n : 0;
    return rc;
}

struct grant_rows {
    struct rf_grant_rec *out;
    size_t cap, n;
};

static int row_grant(const PGresult *r, int row, void *ctx)
{
    struct grant_rows *x = ctx;
    if (x->n >= x->cap)
        return 1;
    struct rf_grant_rec *g = &x->out[x->n];
    memset(g, 0, sizeof(*g));
    g->id = rf_pg_i64(r, row, 0);
    g->seq = rf_pg_i64(r, row, 1);
    int rc;
    if ((rc = rf_pg_fixed(g->keyid, sizeof(g->keyid), r, row, 2)) != 0 ||
        (rc = rf_pg_fixed(g->granter, sizeof(g->granter), r, row, 3)) != 0 ||
        (rc = rf_pg_fixed(g->grant, sizeof(g->grant), r, row, 4)) != 0)
        return rc;
    x->n++;
    return 0;
}

int rf_pg_grants_for(struct rf_store *st, const uint8_t keyid[8], int64_t after,
                     struct rf_grant_rec *out, size_t cap, size_t *n)
{
    struct grant_rows x = {out, cap, 0};
    struct pgp p = {0};
    *n = 0;
    if (cap == 0)
        return 0;
    rf_pgp_bytes(&p, keyid, 8);
    rf_pgp_i64(&p, after);
    rf_pgp_i64(&p, cap_limit(cap));
    int rc = read_rows(st, P_GRANTS_FOR, &p, row_grant, &x, NULL);
    *n = rc == 0 ? x.n : 0;
    return rc;
}

struct audit_rows {
    struct rf_audit_entry *out;
    size_t cap, n;
};

static int row_audit(const PGresult *r, int row, void *ctx)
{
    struct audit_rows *x = ctx;
    if (x->n >= x->cap)
        return 1;
    struct rf_audit_entry *e = &x->out[x->n];
    memset(e, 0, sizeof(*e));
    e->id = (uint64_t)rf_pg_i64(r, row, 0);
    e->day = (uint32_t)rf_pg_i64(r, row, 1);
    int rc;
    if ((rc = rf_pg_fixed(e->actor, sizeof(e->actor), r, row, 2)) != 0 ||
        (rc = rf_pg_text(e->action, sizeof(e->action), r, row, 3)) != 0 ||
        (rc = rf_pg_text(e->target, sizeof(e->target), r, row, 4)) != 0 ||
        (rc = rf_pg_fixed(e->prev, sizeof(e->prev), r, row, 5)) != 0 ||
        (rc = rf_pg_fixed(e->hash, sizeof(e->hash), r, row, 6)) != 0)
        return rc;
    if (!PQgetisnull(r, row, 7)) { /* the signed request (audit v2) */
        int len = PQgetlength(r, row, 7);
        if (len < 1 || len > RF_AUDIT_REQ_MAX)
            return RF_ERR_DB;
        memcpy(e->req, PQgetvalue(r, row, 7), (size_t)len);
        e->req_len = (uint16_t)len;
    }
    x->n++;
    return 0;
}

int rf_pg_audit_list(struct rf_store *st, uint64_t after, struct rf_audit_entry *out, size_t cap,
                     size_t *n)
{
    struct audit_rows x = {out, cap, 0};
    struct pgp p = {0};
    *n = 0;
    if (cap == 0)
        return 0;
    rf_pgp_i64(&p, after > INT64_MAX ? INT64_MAX : (int64_t)after);
    rf_pgp_i64(&p, cap_limit(cap));
    int rc = read_rows(st, P_AUDIT_LIST, &p, row_audit, &x, NULL);
    *n = rc == 0 ? x.n : 0;
    return rc;
}
