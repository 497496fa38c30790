/*
 * store_sqlite_sess.c - person session rows on SQLite (store.h, "person
 * sessions"). Only used when the admin runs the server with a session key;
 * by default SQLite's single server keeps sessions in memory alone. Writes
 * go through the writer connection under its mutex (SQLite has one writer),
 * outside any batch, each its own durable transaction; reads borrow a
 * reader.
 */
#include "lib/err.h"
#include "store/sqlite_internal.h"

#include <string.h>

static int row_read(sqlite3_stmt *s, struct rf_session_row *out)
{
    int n = sqlite3_column_bytes(s, 1);
    const void *p = sqlite3_column_blob(s, 1);
    if (n <= 0 || n > RF_SESSION_SEALED_MAX || p == NULL)
        return RF_ERR_DB;
    int rc = rf_sqlite_copy_fixed(out->keyid, 8, s, 0);
    if (rc != 0)
        return rc;
    memcpy(out->sealed, p, (size_t)n);
    out->sealed_len = (size_t)n;
    out->until = sqlite3_column_int64(s, 2);
    out->day = (uint32_t)sqlite3_column_int64(s, 3);
    out->msgs = (uint32_t)sqlite3_column_int64(s, 4);
    out->bytes = (uint64_t)sqlite3_column_int64(s, 5);
    return 0;
}

/* Reads on a reader: GET, EXISTS (as RF_SESS_COUNT's second look), LIVE. */
static int sess_read(struct rf_store *st, enum stmt_id id, struct rf_sess_call *c)
{
    struct conn *r;
    sqlite3_stmt *s;
    int rc = rf_sqlite_reader_get(st, &r);
    if (rc != 0)
        return rc;
    if ((rc = rf_sqlite_stmt(r, id, &s)) != 0)
        goto out;
    if (id == S_SESS_LIVE) {
        sqlite3_bind_int64(s, 1, c->now);
    } else {
        rf_sqlite_bind_bytes(s, 1, c->id, 32);
        sqlite3_bind_int64(s, 2, c->now);
    }
    int step = sqlite3_step(s);
    if (step == SQLITE_ROW) {
        if (id == S_SESS_GET) {
            memcpy(c->out->id, c->id, 32);
            rc = row_read(s, c->out);
        } else {
            c->n = (uint64_t)sqlite3_column_int64(s, 0);
        }
    } else {
        rc = step == SQLITE_DONE ? RF_ERR_NOT_FOUND : rf_sqlite_err(step);
    }
    rf_sqlite_done(s);
out:
    rf_sqlite_reader_put(st, r);
    return rc;
}

static int sess_write(struct rf_store *st, enum stmt_id id, struct rf_sess_call *c)
{
    sqlite3_stmt *s;
    pthread_mutex_lock(&st->files.wmu);
    int rc = rf_sqlite_stmt(&st->w, id, &s);
    if (rc != 0)
        goto out;
    switch (id) {
    case S_SESS_PUT:
        rf_sqlite_bind_bytes(s, 1, c->row->id, 32);
        rf_sqlite_bind_bytes(s, 2, c->row->keyid, 8);
        rf_sqlite_bind_bytes(s, 3, c->row->sealed, c->row->sealed_len);
        sqlite3_bind_int64(s, 4, c->row->until);
        sqlite3_bind_int64(s, 5, (sqlite3_int64)c->row->day);
        sqlite3_bind_int64(s, 6, (sqlite3_int64)c->max);
        sqlite3_bind_int64(s, 7, c->now);
        break;
    case S_SESS_TOUCH:
        rf_sqlite_bind_bytes(s, 1, c->id, 32);
        sqlite3_bind_int64(s, 2, c->now);
        sqlite3_bind_int64(s, 3, c->until);
        break;
    case S_SESS_DELETE:
        rf_sqlite_bind_bytes(s, 1, c->id, 32);
        break;
    case S_SESS_COUNT:
        rf_sqlite_bind_bytes(s, 1, c->id, 32);
        sqlite3_bind_int64(s, 2, c->now);
        sqlite3_bind_int64(s, 3, (sqlite3_int64)c->day);
        sqlite3_bind_int64(s, 4, (sqlite3_int64)c->bytes);
        sqlite3_bind_int64(s, 5, (sqlite3_int64)c->max_msgs);
        sqlite3_bind_int64(s, 6, (sqlite3_int64)c->max_bytes);
        break;
    case S_SESS_CHARGE:
        rf_sqlite_bind_bytes(s, 1, c->id, 32);
        sqlite3_bind_int64(s, 2, c->now);
        sqlite3_bind_int64(s, 3, (sqlite3_int64)c->day);
        sqlite3_bind_int64(s, 4, (sqlite3_int64)c->bytes);
        sqlite3_bind_int64(s, 5, (sqlite3_int64)c->max_bytes);
        break;
    default: /* S_SESS_REAP */
        sqlite3_bind_int64(s, 1, c->now);
        break;
    }
    int step = sqlite3_step(s);
    rc = step == SQLITE_DONE ? 0 : rf_sqlite_err(step);
    if (rc == 0 && step != SQLITE_DONE)
        rc = RF_ERR_DB;
    c->n = rc == 0 ? (uint64_t)sqlite3_changes(st->w.db) : 0;
    rf_sqlite_done(s);
out:
    pthread_mutex_unlock(&st->files.wmu);
    return rc;
}

int rf_sqlite_session(struct rf_store *st, struct rf_sess_call *c)
{
    int rc;
    switch (c->kind) {
    case RF_SESS_GET:
        return sess_read(st, S_SESS_GET, c);
    case RF_SESS_LIVE:
        return sess_read(st, S_SESS_LIVE, c);
    case RF_SESS_PUT:
        rc = sess_write(st, S_SESS_PUT, c);
        return rc == 0 && c->n == 0 ? RF_ERR_BUSY : rc;
    case RF_SESS_TOUCH:
        rc = sess_write(st, S_SESS_TOUCH, c);
        return rc == 0 && c->n == 0 ? RF_ERR_NOT_FOUND : rc;
    case RF_SESS_DELETE:
        return sess_write(st, S_SESS_DELETE, c);
    case RF_SESS_CHARGE:
        rc = sess_write(st, S_SESS_CHARGE, c);
        return rc == 0 && c->n == 0 ? RF_ERR_NOT_FOUND : rc;
    case RF_SESS_REAP:
        return sess_write(st, S_SESS_REAP, c);
    case RF_SESS_COUNT:
        rc = sess_write(st, S_SESS_COUNT, c);
        if (rc == 0 && c->n == 0) /* over the quota, or gone? */
            rc = sess_read(st, S_SESS_EXISTS, c) == 0 ? RF_ERR_LIMIT : RF_ERR_NOT_FOUND;
        return rc;
    }
    return RF_ERR_INVALID;
}
