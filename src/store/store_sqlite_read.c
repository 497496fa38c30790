/*
 * store_sqlite_read.c - the SQLite backend's reads: settings, sources,
 * objects, staff and rosters, grants, the audit log, counts and usage. Every
 * read borrows a connection from the reader pool (store_sqlite.c), so reads
 * run on any thread, concurrently with the writer (WAL).
 */
#include "lib/audit.h"
#include "lib/err.h"
#include "lib/log.h"
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

/* ---- reads ---- */

static int put_column(struct rf_buf *out, sqlite3_stmt *s, int col)
{
    const void *p = sqlite3_column_blob(s, col);
    int n = sqlite3_column_bytes(s, col);
    if (n < 0 || (n > 0 && !p))
        return RF_ERR_NOMEM;
    return rf_buf_put(out, p, (size_t)n);
}

int rf_sqlite_copy_fixed(void *dst, size_t n, sqlite3_stmt *s, int col)
{
    const void *p = sqlite3_column_blob(s, col);
    if ((size_t)sqlite3_column_bytes(s, col) != n || !p)
        return RF_ERR_DB;
    memcpy(dst, p, n);
    return 0;
}

int rf_sqlite_copy_text(char *dst, size_t cap, sqlite3_stmt *s, int col)
{
    const unsigned char *p = sqlite3_column_text(s, col);
    int n = sqlite3_column_bytes(s, col);
    if (!p || n < 0 || (size_t)n >= cap)
        return RF_ERR_DB;
    memcpy(dst, p, (size_t)n);
    dst[n] = '\0';
    return 0;
}

/* A read: takes a reader, prepares id, calls bind, steps: fn for each row
 * while it returns 0 (stops on 1), then gives everything back. */
typedef int (*row_fn)(sqlite3_stmt *s, void *ctx);
typedef void (*bind_fn)(sqlite3_stmt *s, const void *args);

static int read_rows(struct rf_store *st, enum stmt_id id, bind_fn bind, const void *args,
                     row_fn fn, void *ctx, size_t *rows)
{
    struct conn *c;
    sqlite3_stmt *s = NULL;
    size_t n = 0;
    int rc = rf_sqlite_reader_get(st, &c);
    if (rc != 0)
        return rc;
    if ((rc = rf_sqlite_stmt(c, id, &s)) != 0)
        goto out;
    bind(s, args);
    for (;;) {
        int r = sqlite3_step(s);
        if (r == SQLITE_DONE)
            break;
        if (r != SQLITE_ROW) {
            rc = rf_sqlite_err(r);
            break;
        }
        rc = fn(s, ctx);
        if (rc < 0)
            break;
        n++;
        if (rc == 1)
            break;
    }
    if (rc == 1)
        rc = 0;
    rf_sqlite_done(s);
out:
    rf_sqlite_reader_put(st, c);
    if (rows)
        *rows = n;
    return rc;
}

/* The single row of a keyed read: RF_ERR_NOT_FOUND if there is none. */
static int read_one(struct rf_store *st, enum stmt_id id, bind_fn bind, const void *args, row_fn fn,
                    void *ctx)
{
    size_t n = 0;
    int rc = read_rows(st, id, bind, args, fn, ctx, &n);
    if (rc == 0 && n == 0)
        rc = RF_ERR_NOT_FOUND;
    return rc;
}

static void bind_text1(sqlite3_stmt *s, const void *args)
{
    sqlite3_bind_text(s, 1, args, -1, SQLITE_STATIC);
}

static void bind_key32(sqlite3_stmt *s, const void *args)
{
    sqlite3_bind_blob(s, 1, args, 32, SQLITE_STATIC);
}

static void bind_int1(sqlite3_stmt *s, const void *args)
{
    sqlite3_bind_int64(s, 1, *(const int64_t *)args);
}

static void bind_none(sqlite3_stmt *s, const void *args)
{
    (void)s;
    (void)args;
}

static int row_buf0(sqlite3_stmt *s, void *ctx)
{
    int rc = put_column(ctx, s, 0);
    return rc != 0 ? rc : 1;
}

int rf_sqlite_setting_get(struct rf_store *st, const char *key, struct rf_buf *out)
{
    if (!key || !*key || strlen(key) > SETTING_KEY_MAX)
        return RF_ERR_INVALID;
    return read_one(st, S_SETTING_GET, bind_text1, key, row_buf0, out);
}

static int row_source(sqlite3_stmt *s, void *ctx)
{
    struct rf_source *src = ctx;
    int rc;
    memset(src, 0, sizeof(*src));
    src->id = sqlite3_column_int64(s, 0);
    if ((rc = rf_sqlite_copy_text(src->case_id, sizeof(src->case_id), s, 1)) != 0 ||
        (rc = rf_sqlite_copy_fixed(src->pk, sizeof(src->pk), s, 2)) != 0)
        return rc;
    src->day = (uint32_t)sqlite3_column_int64(s, 3);
    return 1;
}

int rf_sqlite_source_by_lookup(struct rf_store *st, const uint8_t lookup_id[32],
                               struct rf_source *out)
{
    return read_one(st, S_SOURCE_BY_LOOKUP, bind_key32, lookup_id, row_source, out);
}

int rf_sqlite_source_by_case(struct rf_store *st, const char *case_id, struct rf_source *out)
{
    if (!case_id || strlen(case_id) != RF_CASE_ID_LEN)
        return RF_ERR_NOT_FOUND;
    return read_one(st, S_SOURCE_BY_CASE, bind_text1, case_id, row_source, out);
}

struct object_rows {
    struct rf_object *out;
    size_t cap, n;
};

static int row_object(sqlite3_stmt *s, void *ctx)
{
    struct object_rows *r = ctx;
    if (r->n >= r->cap)
        return 1;
    struct rf_object *o = &r->out[r->n];
    memset(o, 0, sizeof(*o));
    o->seq = sqlite3_column_int64(s, 0);
    o->source_id = sqlite3_column_int64(s, 1);
    int rc = rf_sqlite_copy_text(o->case_id, sizeof(o->case_id), s, 2);
    if (rc != 0)
        return rc;
    o->kind = (uint8_t)sqlite3_column_int(s, 3);
    o->size = (uint64_t)sqlite3_column_int64(s, 4);
    o->day = (uint32_t)sqlite3_column_int64(s, 5);
    o->in_blob = sqlite3_column_int(s, 6);
    o->roster = (uint32_t)sqlite3_column_int64(s, 7);
    r->n++;
    return 0;
}

static int64_t cap_limit(size_t cap)
{
    return cap > INT64_MAX ? INT64_MAX : (int64_t)cap;
}

struct since_args {
    int64_t after, cap;
};

static void bind_since(sqlite3_stmt *s, const void *args)
{
    const struct since_args *a = args;
    sqlite3_bind_int64(s, 1, a->after);
    sqlite3_bind_int64(s, 2, a->cap);
}

int rf_sqlite_objects_since(struct rf_store *st, int64_t after, struct rf_object *out, size_t cap,
                            size_t *n)
{
    struct object_rows r = {out, cap, 0};
    struct since_args a = {after, cap_limit(cap)};
    *n = 0;
    if (cap == 0)
        return 0;
    int rc = read_rows(st, S_OBJECTS_SINCE, bind_since, &a, row_object, &r, NULL);
    *n = rc == 0 ? r.n : 0;
    return rc;
}

struct of_source_args {
    int64_t source_id, kinds, cap;
};

static void bind_of_source(sqlite3_stmt *s, const void *args)
{
    const struct of_source_args *a = args;
    sqlite3_bind_int64(s, 1, a->source_id);
    sqlite3_bind_int64(s, 2, a->kinds);
    sqlite3_bind_int64(s, 3, a->cap);
}

int rf_sqlite_objects_of_source(struct rf_store *st, int64_t source_id, unsigned kinds,
                                struct rf_object *out, size_t cap, size_t *n)
{
    struct object_rows r = {out, cap, 0};
    struct of_source_args a = {source_id, (int64_t)(kinds & 0xffffffffu), cap_limit(cap)};
    *n = 0;
    if (cap == 0)
        return 0;
    int rc = read_rows(st, S_OBJECTS_OF_SOURCE, bind_of_source, &a, row_object, &r, NULL);
    *n = rc == 0 ? r.n : 0;
    return rc;
}

int rf_sqlite_object_get(struct rf_store *st, int64_t seq, struct rf_object *out)
{
    struct object_rows r = {out, 1, 0};
    return read_one(st, S_OBJECT_GET, bind_int1, &seq, row_object, &r);
}

/* The ciphertext of one object: inline bytes copied out, or the blob's name. */
struct object_data {
    struct rf_buf *inl;
    char blob[RF_BLOB_NAME_LEN + 1];
};

static int row_object_data(sqlite3_stmt *s, void *ctx)
{
    struct object_data *d = ctx;
    if (sqlite3_column_type(s, 1) != SQLITE_NULL) {
        int rc = rf_sqlite_copy_text(d->blob, sizeof(d->blob), s, 1);
        return rc != 0 ? rc : 1;
    }
    int rc = put_column(d->inl, s, 0);
    return rc != 0 ? rc : 1;
}

int rf_sqlite_object_read(struct rf_store *st, int64_t seq, struct rf_buf *out)
{
    struct object_data d = {out, ""};
    size_t before = out->len;
    int rc = read_one(st, S_OBJECT_DATA, bind_int1, &seq, row_object_data, &d);
    if (rc == 0 && d.blob[0]) /* in a blob: read the file (out's limit bounds it) */
        rc = rf_blobdir_read_blob(&st->files, d.blob, out);
    if (rc != 0)
        out->len = before;
    return rc;
}

int rf_sqlite_object_open(struct rf_store *st, int64_t seq, int *fd, uint64_t *size)
{
    struct rf_buf inl;
    struct object_data d = {&inl, ""};
    rf_buf_init(&inl, RF_INLINE_MAX);
    *fd = -1;
    *size = 0;
    int rc = read_one(st, S_OBJECT_DATA, bind_int1, &seq, row_object_data, &d);
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
    size_t cap, n;
};

static int row_range(sqlite3_stmt *s, void *ctx)
{
    struct range_rows *x = ctx;
    struct rf_object o;
    struct object_rows one = {&o, 1, 0};
    int rc = row_object(s, &one);
    if (rc != 0)
        return rc;
    const uint8_t *data = NULL;
    size_t len = 0;
    if (o.size <= x->max_size) {
        if (sqlite3_column_type(s, 9) != SQLITE_NULL) {
            char blob[RF_BLOB_NAME_LEN + 1];
            if ((rc = rf_sqlite_copy_text(blob, sizeof(blob), s, 9)) != 0)
                return rc;
            rf_buf_reset(&x->scratch);
            if ((rc = rf_blobdir_read_blob(&x->st->files, blob, &x->scratch)) != 0)
                return rc;
            data = x->scratch.data;
            len = x->scratch.len;
        } else {
            int n = sqlite3_column_bytes(s, 8);
            data = sqlite3_column_blob(s, 8);
            if (n < 0 || (n > 0 && !data))
                return RF_ERR_NOMEM;
            len = (size_t)n;
        }
        if (len != o.size)
            return RF_ERR_DB;
        if (!data)
            data = (const uint8_t *)"";
    }
    rc = x->fn(x->ctx, &o, data, len);
    if (rc == 0 && ++x->n >= x->cap)
        return 1;
    return rc;
}

struct range_args {
    int64_t after, upto, cap, max_size;
};

static void bind_range(sqlite3_stmt *s, const void *args)
{
    const struct range_args *a = args;
    sqlite3_bind_int64(s, 1, a->after);
    sqlite3_bind_int64(s, 2, a->upto);
    sqlite3_bind_int64(s, 3, a->cap);
    sqlite3_bind_int64(s, 4, a->max_size);
}

int rf_sqlite_objects_range(struct rf_store *st, int64_t after, int64_t upto, size_t cap,
                            uint64_t max_size, rf_store_range_fn fn, void *ctx)
{
    struct range_rows x = {st, max_size, fn, ctx, {0}, cap, 0};
    struct range_args a = {after, upto, cap_limit(cap),
                           max_size > INT64_MAX ? INT64_MAX : (int64_t)max_size};
    rf_buf_init(&x.scratch, max_size > RF_INLINE_MAX ? RF_INLINE_MAX : (size_t)max_size);
    int rc = read_rows(st, S_OBJECTS_RANGE, bind_range, &a, row_range, &x, NULL);
    rf_buf_free(&x.scratch);
    return rc;
}

static int row_staff(sqlite3_stmt *s, void *ctx)
{
    struct rf_staff_rec *r = ctx;
    int rc;
    if ((rc = rf_sqlite_copy_fixed(r->box_pk, sizeof(r->box_pk), s, 0)) != 0 ||
        (rc = rf_sqlite_copy_text(r->name, sizeof(r->name), s, 1)) != 0)
        return rc;
    r->day = (uint32_t)sqlite3_column_int64(s, 2);
    return 1;
}

int rf_sqlite_staff_get(struct rf_store *st, const uint8_t sign_pk[32], struct rf_staff_rec *out)
{
    memset(out, 0, sizeof(*out));
    memcpy(out->sign_pk, sign_pk, sizeof(out->sign_pk));
    return read_one(st, S_STAFF_GET, bind_key32, sign_pk, row_staff, out);
}

struct roster_row {
    uint32_t *version;
    struct rf_buf *raw;
};

static int row_roster_latest(sqlite3_stmt *s, void *ctx)
{
    struct roster_row *r = ctx;
    *r->version = (uint32_t)sqlite3_column_int64(s, 0);
    int rc = put_column(r->raw, s, 1);
    return rc != 0 ? rc : 1;
}

int rf_sqlite_roster_latest(struct rf_store *st, uint32_t *version, struct rf_buf *raw)
{
    struct roster_row r = {version, raw};
    return read_one(st, S_ROSTER_LATEST, bind_none, NULL, row_roster_latest, &r);
}

int rf_sqlite_roster_get(struct rf_store *st, uint32_t version, struct rf_buf *raw)
{
    int64_t v = version;
    return read_one(st, S_ROSTER_GET, bind_int1, &v, row_buf0, raw);
}

struct staff_rows {
    struct rf_staff_rec *out;
    size_t cap, n;
};

static int row_staff_list(sqlite3_stmt *s, void *ctx)
{
    struct staff_rows *r = ctx;
    if (r->n >= r->cap)
        return 1;
    struct rf_staff_rec *o = &r->out[r->n];
    memset(o, 0, sizeof(*o));
    int rc;
    if ((rc = rf_sqlite_copy_fixed(o->sign_pk, sizeof(o->sign_pk), s, 0)) != 0 ||
        (rc = rf_sqlite_copy_fixed(o->box_pk, sizeof(o->box_pk), s, 1)) != 0 ||
        (rc = rf_sqlite_copy_text(o->name, sizeof(o->name), s, 2)) != 0)
        return rc;
    o->day = (uint32_t)sqlite3_column_int64(s, 3);
    r->n++;
    return 0;
}

static void bind_cap1(sqlite3_stmt *s, const void *args)
{
    sqlite3_bind_int64(s, 1, *(const int64_t *)args);
}

int rf_sqlite_staff_list(struct rf_store *st, struct rf_staff_rec *out, size_t cap, size_t *n)
{
    struct staff_rows r = {out, cap, 0};
    int64_t lim = cap_limit(cap);
    *n = 0;
    if (cap == 0)
        return 0;
    int rc = read_rows(st, S_STAFF_LIST, bind_cap1, &lim, row_staff_list, &r, NULL);
    *n = rc == 0 ? r.n : 0;
    return rc;
}

struct grant_rows {
    struct rf_grant_rec *out;
    size_t cap, n;
};

static int row_grant(sqlite3_stmt *s, void *ctx)
{
    struct grant_rows *r = ctx;
    if (r->n >= r->cap)
        return 1;
    struct rf_grant_rec *g = &r->out[r->n];
    memset(g, 0, sizeof(*g));
    g->id = sqlite3_column_int64(s, 0);
    g->seq = sqlite3_column_int64(s, 1);
    int rc;
    if ((rc = rf_sqlite_copy_fixed(g->keyid, sizeof(g->keyid), s, 2)) != 0 ||
        (rc = rf_sqlite_copy_fixed(g->granter, sizeof(g->granter), s, 3)) != 0 ||
        (rc = rf_sqlite_copy_fixed(g->grant, sizeof(g->grant), s, 4)) != 0)
        return rc;
    r->n++;
    return 0;
}

struct grants_args {
    const uint8_t *keyid;
    int64_t after, cap;
};

static void bind_grants(sqlite3_stmt *s, const void *args)
{
    const struct grants_args *a = args;
    sqlite3_bind_blob(s, 1, a->keyid, 8, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, a->after);
    sqlite3_bind_int64(s, 3, a->cap);
}

int rf_sqlite_grants_for(struct rf_store *st, const uint8_t keyid[8], int64_t after,
                         struct rf_grant_rec *out, size_t cap, size_t *n)
{
    struct grant_rows r = {out, cap, 0};
    struct grants_args a = {keyid, after, cap_limit(cap)};
    *n = 0;
    if (cap == 0)
        return 0;
    int rc = read_rows(st, S_GRANTS_FOR, bind_grants, &a, row_grant, &r, NULL);
    *n = rc == 0 ? r.n : 0;
    return rc;
}

struct audit_rows {
    struct rf_audit_entry *out;
    size_t cap, n;
};

static int row_audit(sqlite3_stmt *s, void *ctx)
{
    struct audit_rows *r = ctx;
    if (r->n >= r->cap)
        return 1;
    struct rf_audit_entry *e = &r->out[r->n];
    memset(e, 0, sizeof(*e));
    e->id = (uint64_t)sqlite3_column_int64(s, 0);
    e->day = (uint32_t)sqlite3_column_int64(s, 1);
    int rc;
    if ((rc = rf_sqlite_copy_fixed(e->actor, sizeof(e->actor), s, 2)) != 0 ||
        (rc = rf_sqlite_copy_text(e->action, sizeof(e->action), s, 3)) != 0 ||
        (rc = rf_sqlite_copy_text(e->target, sizeof(e->target), s, 4)) != 0 ||
        (rc = rf_sqlite_copy_fixed(e->prev, sizeof(e->prev), s, 5)) != 0 ||
        (rc = rf_sqlite_copy_fixed(e->hash, sizeof(e->hash), s, 6)) != 0)
        return rc;
    if (sqlite3_column_type(s, 7) != SQLITE_NULL) { /* the signed request (audit v2) */
        int len = sqlite3_column_bytes(s, 7);
        const void *p = sqlite3_column_blob(s, 7);
        if (len < 1 || len > RF_AUDIT_REQ_MAX || p == NULL)
            return RF_ERR_DB;
        memcpy(e->req, p, (size_t)len);
        e->req_len = (uint16_t)len;
    }
    r->n++;
    return 0;
}

int rf_sqlite_audit_list(struct rf_store *st, uint64_t after, struct rf_audit_entry *out,
                         size_t cap, size_t *n)
{
    struct audit_rows r = {out, cap, 0};
    struct since_args a = {after > INT64_MAX ? INT64_MAX : (int64_t)after, cap_limit(cap)};
    *n = 0;
    if (cap == 0)
        return 0;
    int rc = read_rows(st, S_AUDIT_LIST, bind_since, &a, row_audit, &r, NULL);
    *n = rc == 0 ? r.n : 0;
    return rc;
}
