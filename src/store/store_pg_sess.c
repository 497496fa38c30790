/*
 * store_pg_sess.c - person session rows on PostgreSQL (store.h, "person
 * sessions"): what lets a person who logged in through one `refuge serve`
 * be served by the next. Each call is one statement in its own transaction
 * on a reader connection (synchronous_commit on: a logout is durable when
 * it returns, so a crash of PostgreSQL cannot bring an ended session back),
 * never the writer, so sessions never wait behind a batch of submissions.
 * The quota count is one conditional UPDATE: two processes counting for one
 * session at once are serialised by the row's lock and cannot pass the
 * quota together.
 */
#include "lib/err.h"
#include "store/pg_internal.h"

#include <stdlib.h>
#include <string.h>

static int row_read(const PGresult *r, const uint8_t id[32], struct rf_session_row *out)
{
    int n = PQgetlength(r, 0, 1);
    if (PQgetisnull(r, 0, 1) || n <= 0 || n > RF_SESSION_SEALED_MAX)
        return RF_ERR_DB;
    int rc = rf_pg_fixed(out->keyid, 8, r, 0, 0);
    if (rc != 0)
        return rc;
    memcpy(out->id, id, 32);
    memcpy(out->sealed, PQgetvalue(r, 0, 1), (size_t)n);
    out->sealed_len = (size_t)n;
    out->until = rf_pg_i64(r, 0, 2);
    out->day = (uint32_t)rf_pg_i64(r, 0, 3);
    out->msgs = (uint32_t)rf_pg_i64(r, 0, 4);
    out->bytes = (uint64_t)rf_pg_i64(r, 0, 5);
    return 0;
}

static int sess_params(const struct rf_sess_call *c, enum pg_stmt id, struct pgp *p)
{
    memset(p, 0, sizeof(*p));
    switch (id) {
    case P_SESS_PUT:
        rf_pgp_bytes(p, c->row->id, 32);
        rf_pgp_bytes(p, c->row->keyid, 8);
        rf_pgp_bytes(p, c->row->sealed, c->row->sealed_len);
        rf_pgp_i64(p, c->row->until);
        rf_pgp_i64(p, (int64_t)c->row->day);
        rf_pgp_i64(p, (int64_t)c->max);
        rf_pgp_i64(p, c->now);
        return 0;
    case P_SESS_GET:
    case P_SESS_EXISTS:
        rf_pgp_bytes(p, c->id, 32);
        rf_pgp_i64(p, c->now);
        return 0;
    case P_SESS_TOUCH:
        rf_pgp_bytes(p, c->id, 32);
        rf_pgp_i64(p, c->now);
        rf_pgp_i64(p, c->until);
        return 0;
    case P_SESS_DELETE:
        rf_pgp_bytes(p, c->id, 32);
        return 0;
    case P_SESS_COUNT:
        rf_pgp_bytes(p, c->id, 32);
        rf_pgp_i64(p, c->now);
        rf_pgp_i64(p, (int64_t)c->day);
        rf_pgp_i64(p, (int64_t)c->bytes);
        rf_pgp_i64(p, (int64_t)c->max_msgs);
        rf_pgp_i64(p, (int64_t)c->max_bytes);
        return 0;
    case P_SESS_CHARGE:
        rf_pgp_bytes(p, c->id, 32);
        rf_pgp_i64(p, c->now);
        rf_pgp_i64(p, (int64_t)c->day);
        rf_pgp_i64(p, (int64_t)c->bytes);
        rf_pgp_i64(p, (int64_t)c->max_bytes);
        return 0;
    case P_SESS_REAP:
    case P_SESS_LIVE:
        rf_pgp_i64(p, c->now);
        return 0;
    default:
        return RF_ERR_INVALID;
    }
}

/* Runs one statement on a reader connection; GET fills c->out, EXISTS and
 * LIVE c->n (rows found / the count), the writes c->n (rows changed). */
static int sess_exec(struct rf_store *st, enum pg_stmt id, struct rf_sess_call *c)
{
    struct pgconn *conn;
    struct pgp p;
    PGresult *r = NULL;
    int rc = sess_params(c, id, &p);
    if (rc != 0)
        return rc;
    if ((rc = rf_pg_reader_get(st, &conn)) != 0)
        return rc;
    rc = rf_pg_exec(conn, id, &p, &r);
    if (rc == 0) {
        if (id == P_SESS_GET)
            rc = PQntuples(r) == 1 ? row_read(r, c->id, c->out) : RF_ERR_NOT_FOUND;
        else if (id == P_SESS_LIVE)
            c->n = PQntuples(r) == 1 ? (uint64_t)rf_pg_i64(r, 0, 0) : 0;
        else if (id == P_SESS_EXISTS)
            c->n = (uint64_t)PQntuples(r);
        else
            c->n = strtoull(PQcmdTuples(r), NULL, 10);
    }
    PQclear(r);
    rf_pg_reader_put(st, conn);
    return rc;
}

int rf_pg_session(struct rf_store *st, struct rf_sess_call *c)
{
    int rc;
    switch (c->kind) {
    case RF_SESS_GET:
        return sess_exec(st, P_SESS_GET, c);
    case RF_SESS_LIVE:
        return sess_exec(st, P_SESS_LIVE, c);
    case RF_SESS_PUT:
        rc = sess_exec(st, P_SESS_PUT, c);
        return rc == 0 && c->n == 0 ? RF_ERR_BUSY : rc;
    case RF_SESS_TOUCH:
        rc = sess_exec(st, P_SESS_TOUCH, c);
        return rc == 0 && c->n == 0 ? RF_ERR_NOT_FOUND : rc;
    case RF_SESS_DELETE:
        return sess_exec(st, P_SESS_DELETE, c);
    case RF_SESS_REAP:
        return sess_exec(st, P_SESS_REAP, c);
    case RF_SESS_CHARGE:
        rc = sess_exec(st, P_SESS_CHARGE, c);
        return rc == 0 && c->n == 0 ? RF_ERR_NOT_FOUND : rc;
    case RF_SESS_COUNT:
        rc = sess_exec(st, P_SESS_COUNT, c);
        if (rc == 0 && c->n == 0) { /* over the quota, or gone? */
            rc = sess_exec(st, P_SESS_EXISTS, c);
            rc = rc != 0 ? rc : c->n > 0 ? RF_ERR_LIMIT : RF_ERR_NOT_FOUND;
        }
        return rc;
    }
    return RF_ERR_INVALID;
}
