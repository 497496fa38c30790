/*
 * store_pg_migrate.c - the PostgreSQL backend's rows out and rows in for a
 * migration between backends (store.h, rf_store_export / rf_store_import_*;
 * the driver is migrate.c).
 *
 * Export: one REPEATABLE READ, READ ONLY transaction on a reader
 * connection (one snapshot for every table), each table read through a
 * cursor FETCH_ROWS rows at a time in binary (constant memory), then the
 * counters row as it stands. Before any row, the schema's tables and
 * columns are compared with rf_tables (refuge_schema and counters are the
 * backend's own): one the list lacks is RF_ERR_VERSION.
 *
 * Import: the store was opened by rf_store_create_import (RF_PG_IMPORT): an
 * empty database, no schema. rf_store_import_begin opens ONE transaction
 * on the writer (held with the writer's mutex until rf_store_import_end),
 * takes the migration lock, checks the database is still empty and creates
 * the schema in it (rf_pg_schema_create); every row is an INSERT in that
 * transaction; the counters row sets counters (the next seq and grant id
 * follow the carried ones) and the sources id sequence is moved past the
 * carried ids. A failure anywhere, or a crash, rolls everything back: the
 * database is as empty as before, schema included.
 */
#include "lib/err.h"
#include "lib/log.h"
#include "store/pg_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SQL_MAX 640
#define FETCH_ROWS 64

static int res_ok(PGresult *r)
{
    ExecStatusType t = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    return t == PGRES_COMMAND_OK || t == PGRES_TUPLES_OK;
}

/* what a failed statement says, without its message (it may quote values) */
static int res_err(PGresult *r, PGconn *db)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    if (PQstatus(db) != CONNECTION_OK)
        return RF_ERR_DB;
    if (state && strcmp(state, "53100") == 0)
        return RF_ERR_NOSPACE;
    if (state && strncmp(state, "23", 2) == 0)
        return RF_ERR_EXISTS; /* a constraint: the rows do not fit together */
    return RF_ERR_DB;
}

static int query(PGconn *db, const char *sql, PGresult **out)
{
    PGresult *r = PQexecParams(db, sql, 0, NULL, NULL, NULL, NULL, 1);
    if (!res_ok(r)) {
        int rc = res_err(r, db);
        PQclear(r);
        return rc;
    }
    *out = r;
    return 0;
}

static int64_t be_int(const PGresult *r, int row, int col)
{
    const unsigned char *v = (const unsigned char *)PQgetvalue(r, row, col);
    int n = PQgetlength(r, row, col);
    uint64_t u = 0;
    for (int i = 0; i < n; i++)
        u = u << 8 | v[i];
    if (n == 4)
        return (int64_t)(int32_t)(uint32_t)u;
    if (n == 2)
        return (int64_t)(int16_t)(uint16_t)u;
    return (int64_t)u;
}

static int schema_known(PGconn *db)
{
    PGresult *r;
    int rc = query(db,
                   "SELECT c.table_name::text, count(*)::bigint FROM information_schema.columns c"
                   " WHERE c.table_schema = current_schema()"
                   " AND c.table_name NOT IN ('refuge_schema', 'counters')"
                   " GROUP BY c.table_name",
                   &r);
    if (rc != 0)
        return rc;
    unsigned seen = 0;
    int n = PQntuples(r), carried = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        const char *name = PQgetvalue(r, i, 0);
        if (rf_table_not_carried(name))
            continue;
        carried++;
        int t = 0;
        while (t < RF_TAB_COUNTERS && strcmp(name, rf_tables[t].name) != 0)
            t++;
        if (t == RF_TAB_COUNTERS || be_int(r, i, 1) != (int64_t)strlen(rf_tables[t].types))
            rc = RF_ERR_VERSION;
        else
            seen |= 1u << t;
    }
    PQclear(r);
    if (rc == 0 && (carried != RF_TAB_COUNTERS || seen != (1u << RF_TAB_COUNTERS) - 1))
        rc = RF_ERR_VERSION;
    if (rc == RF_ERR_VERSION)
        rf_log_info("store: export: the database holds a table or column this program does not "
                    "carry");
    return rc;
}

static int export_table(PGconn *db, enum rf_table t,
                        int (*emit)(void *ctx, const struct rf_row *row), void *ctx)
{
    const struct rf_table_desc *d = &rf_tables[t];
    char sql[SQL_MAX];
    snprintf(sql, sizeof(sql),
             "DECLARE refuge_rows NO SCROLL CURSOR FOR SELECT %s FROM %s ORDER BY %s", d->cols,
             d->name, d->key);
    PGresult *r;
    int rc = query(db, sql, &r);
    if (rc != 0)
        return rc;
    PQclear(r);
    struct rf_row row;
    memset(&row, 0, sizeof(row));
    row.table = t;
    row.n = (unsigned)strlen(d->types);
    for (;;) {
        snprintf(sql, sizeof(sql), "FETCH %d FROM refuge_rows", FETCH_ROWS);
        if ((rc = query(db, sql, &r)) != 0)
            break;
        int n = PQntuples(r);
        for (int k = 0; k < n && rc == 0; k++) {
            for (unsigned i = 0; i < row.n; i++) {
                struct rf_cell *c = &row.cell[i];
                memset(c, 0, sizeof(*c));
                if (PQgetisnull(r, k, (int)i))
                    c->null = 1;
                else if (d->types[i] == 'i')
                    c->i = be_int(r, k, (int)i);
                else {
                    c->p = (const uint8_t *)PQgetvalue(r, k, (int)i);
                    c->len = (size_t)PQgetlength(r, k, (int)i);
                }
            }
            rc = emit(ctx, &row);
        }
        PQclear(r);
        if (rc != 0 || n < FETCH_ROWS)
            break;
    }
    if (rc == 0 && (rc = query(db, "CLOSE refuge_rows", &r)) == 0)
        PQclear(r);
    return rc;
}

int rf_pg_export(struct rf_store *st, int (*emit)(void *ctx, const struct rf_row *row), void *ctx)
{
    struct pgconn *c;
    int rc = rf_pg_reader_get(st, &c);
    if (rc != 0)
        return rc;
    rc = rf_pg_sql(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    if (rc == 0)
        rc = schema_known(c->db);
    for (int t = 0; rc == 0 && t < RF_TAB_COUNTERS; t++)
        rc = export_table(c->db, (enum rf_table)t, emit, ctx);
    if (rc == 0) {
        PGresult *r;
        if ((rc = query(c->db, "SELECT seq, grant_id FROM counters", &r)) == 0) {
            struct rf_row row;
            memset(&row, 0, sizeof(row));
            row.table = RF_TAB_COUNTERS;
            row.n = 2;
            if (PQntuples(r) == 1) {
                row.cell[0].i = be_int(r, 0, 0);
                row.cell[1].i = be_int(r, 0, 1);
                rc = emit(ctx, &row);
            } else {
                rc = RF_ERR_DB;
            }
            PQclear(r);
        }
    }
    if (rf_pg_in_tx(c))
        rf_pg_sql(c, "ROLLBACK"); /* read only: nothing to keep */
    rf_pg_reader_put(st, c);
    return rc;
}

/* ---- import ---- */

int rf_pg_import_begin(struct rf_store *st)
{
    pthread_mutex_lock(&st->files.wmu);
    int rc = rf_pg_sql(&st->w, "BEGIN");
    if (rc == 0)
        rc = rf_pg_schema_create(&st->w);
    /* the schema's own teamconfig row makes way for the carried one */
    if (rc == 0)
        rc = rf_pg_sql(&st->w, "UPDATE sources SET id = -1 WHERE case_id = 'teamconfig'");
    if (rc != 0) {
        if (rf_pg_in_tx(&st->w))
            rf_pg_sql(&st->w, "ROLLBACK");
        pthread_mutex_unlock(&st->files.wmu);
    }
    return rc;
}

static const char *cast_of(char type)
{
    return type == 'i' ? "bigint" : type == 't' ? "text" : "bytea";
}

int rf_pg_import_row(struct rf_store *st, const struct rf_row *row)
{
    char sql[SQL_MAX];
    const char *v[RF_ROW_COLS];
    int len[RF_ROW_COLS], fmt[RF_ROW_COLS];
    char num[RF_ROW_COLS][8];
    const char *types = row->table == RF_TAB_COUNTERS ? "ii" : rf_tables[row->table].types;
    static const char empty[1];
    if (row->table == RF_TAB_COUNTERS) {
        /* never behind a carried row: the next seq and grant id go past them */
        snprintf(sql, sizeof(sql),
                 "UPDATE counters SET seq = greatest($1::bigint,"
                 " (SELECT coalesce(max(seq), 0) FROM objects)),"
                 " grant_id = greatest($2::bigint, (SELECT coalesce(max(id), 0) FROM grants))");
    } else if (row->table == RF_TAB_SOURCES && !row->cell[2].null && row->cell[2].len == 10 &&
               memcmp(row->cell[2].p, "teamconfig", 10) == 0) {
        snprintf(sql, sizeof(sql),
                 "UPDATE sources SET id = $1::bigint, lookup_id = $2::bytea, pk = $4::bytea,"
                 " day = $5::bigint, delete_day = $6::bigint WHERE case_id = $3::text");
    } else {
        const struct rf_table_desc *d = &rf_tables[row->table];
        int k = snprintf(sql, sizeof(sql), "INSERT INTO %s(%s) VALUES (", d->name, d->cols);
        for (unsigned i = 0; i < row->n; i++)
            k += snprintf(sql + k, sizeof(sql) - (size_t)k, "%s$%u::%s", i ? ", " : "", i + 1,
                          cast_of(d->types[i]));
        snprintf(sql + k, sizeof(sql) - (size_t)k, ")");
    }
    for (unsigned i = 0; i < row->n; i++) {
        const struct rf_cell *c = &row->cell[i];
        fmt[i] = 1;
        if (c->null) {
            v[i] = NULL;
            len[i] = 0;
        } else if (types[i] == 'i') {
            uint64_t u = (uint64_t)c->i;
            for (int b = 0; b < 8; b++)
                num[i][b] = (char)(u >> (56 - 8 * b));
            v[i] = num[i];
            len[i] = 8;
        } else {
            if (c->len > INT32_MAX)
                return RF_ERR_INVALID;
            v[i] = c->len ? (const char *)c->p : empty;
            len[i] = (int)c->len;
        }
    }
    PGresult *r = PQexecParams(st->w.db, sql, (int)row->n, NULL, v, len, fmt, 1);
    int rc = res_ok(r) ? 0 : res_err(r, st->w.db);
    if (rc == 0 && strcmp(PQcmdTuples(r), "1") != 0)
        rc = RF_ERR_DB;
    PQclear(r);
    return rc;
}

int rf_pg_import_end(struct rf_store *st, int commit)
{
    int rc = 0;
    if (commit)
        rc = rf_pg_sql(&st->w, "SELECT setval(pg_get_serial_sequence('sources', 'id'),"
                               " greatest((SELECT max(id) FROM sources), 1))");
    if (commit && rc == 0)
        rc = rf_pg_commit(&st->w); /* synchronous_commit on: durable when it returns */
    if (rf_pg_in_tx(&st->w))
        rf_pg_sql(&st->w, "ROLLBACK");
    pthread_mutex_unlock(&st->files.wmu);
    return rc;
}
