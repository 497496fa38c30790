/*
 * store_sqlite_migrate.c - the SQLite backend's rows out and rows in for a
 * migration between backends (store.h, rf_store_export / rf_store_import_*;
 * the driver is migrate.c).
 *
 * Export: one read transaction on a reader connection, so every row comes
 * from one snapshot; each table of rf_tables in its key order, one row at a
 * time (sqlite3_step: constant memory), then the counters: the last object
 * seq handed out is sqlite_sequence's (AUTOINCREMENT: never reused, so it
 * may be above max(seq) when the newest objects were deleted; a caseworker's
 * cursor may stand there), the last grant id max(grants.id). Before any row,
 * the database's tables and their columns are compared with rf_tables: one
 * the list lacks is RF_ERR_VERSION, never left behind silently.
 *
 * Import: one IMMEDIATE transaction on the writer, held (with the writer's
 * mutex) from rf_store_import_begin to rf_store_import_end. The database
 * must hold nothing but the schema's own teamconfig row, which is moved out
 * of the way (id -1) and then takes the exported teamconfig row's values
 * (its delete trigger forbids deleting it).
 */
#include "lib/err.h"
#include "lib/log.h"
#include "store/sqlite_internal.h"

#include <stdio.h>
#include <string.h>

#define SQL_MAX 512

/* 0 if the database's tables and columns are exactly rf_tables' */
static int schema_known(sqlite3 *db)
{
    sqlite3_stmt *s = NULL;
    int rc = rf_sqlite_err(sqlite3_prepare_v2(
        db,
        "SELECT m.name, (SELECT count(*) FROM pragma_table_info(m.name)) FROM sqlite_master m"
        " WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
        -1, &s, NULL));
    unsigned seen = 0, n = 0;
    while (rc == 0) {
        int step = sqlite3_step(s);
        if (step == SQLITE_DONE)
            break;
        if (step != SQLITE_ROW) {
            rc = rf_sqlite_err(step);
            break;
        }
        const char *name = (const char *)sqlite3_column_text(s, 0);
        if (name && rf_table_not_carried(name))
            continue;
        int t = 0;
        while (t < RF_TAB_COUNTERS && (!name || strcmp(name, rf_tables[t].name) != 0))
            t++;
        if (t == RF_TAB_COUNTERS ||
            sqlite3_column_int64(s, 1) != (sqlite3_int64)strlen(rf_tables[t].types)) {
            rf_log_info("store: export: the database holds a table or column this program does "
                        "not carry");
            rc = RF_ERR_VERSION;
            break;
        }
        seen |= 1u << t;
        n++;
    }
    sqlite3_finalize(s);
    if (rc == 0 && (n != RF_TAB_COUNTERS || seen != (1u << RF_TAB_COUNTERS) - 1))
        rc = RF_ERR_VERSION;
    return rc;
}

static int export_table(sqlite3 *db, enum rf_table t,
                        int (*emit)(void *ctx, const struct rf_row *row), void *ctx)
{
    static const uint8_t empty[1];
    const struct rf_table_desc *d = &rf_tables[t];
    char sql[SQL_MAX];
    snprintf(sql, sizeof(sql), "SELECT %s FROM %s ORDER BY %s", d->cols, d->name, d->key);
    sqlite3_stmt *s = NULL;
    int rc = rf_sqlite_err(sqlite3_prepare_v2(db, sql, -1, &s, NULL));
    struct rf_row row;
    memset(&row, 0, sizeof(row));
    row.table = t;
    row.n = (unsigned)strlen(d->types);
    while (rc == 0) {
        int step = sqlite3_step(s);
        if (step == SQLITE_DONE)
            break;
        if (step != SQLITE_ROW) {
            rc = rf_sqlite_err(step);
            break;
        }
        for (unsigned i = 0; i < row.n; i++) {
            struct rf_cell *c = &row.cell[i];
            memset(c, 0, sizeof(*c));
            int type = sqlite3_column_type(s, (int)i);
            if (type == SQLITE_NULL) {
                c->null = 1;
            } else if (d->types[i] == 'i') {
                if (type != SQLITE_INTEGER)
                    rc = RF_ERR_FORMAT;
                c->i = sqlite3_column_int64(s, (int)i);
            } else {
                c->p = d->types[i] == 't' ? sqlite3_column_text(s, (int)i)
                                          : sqlite3_column_blob(s, (int)i);
                c->len = (size_t)sqlite3_column_bytes(s, (int)i);
                if (!c->p)
                    c->p = empty;
            }
        }
        if (rc == 0)
            rc = emit(ctx, &row);
    }
    sqlite3_finalize(s);
    return rc;
}

static int export_counters(sqlite3 *db, int (*emit)(void *ctx, const struct rf_row *row), void *ctx)
{
    sqlite3_stmt *s = NULL;
    int rc = rf_sqlite_err(sqlite3_prepare_v2(
        db,
        "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'objects'), 0),"
        " (SELECT coalesce(max(seq), 0) FROM objects)),"
        " (SELECT coalesce(max(id), 0) FROM grants)",
        -1, &s, NULL));
    if (rc == 0 && sqlite3_step(s) != SQLITE_ROW)
        rc = RF_ERR_DB;
    if (rc == 0) {
        struct rf_row row;
        memset(&row, 0, sizeof(row));
        row.table = RF_TAB_COUNTERS;
        row.n = 2;
        row.cell[0].i = sqlite3_column_int64(s, 0);
        row.cell[1].i = sqlite3_column_int64(s, 1);
        rc = emit(ctx, &row);
    }
    sqlite3_finalize(s);
    return rc;
}

int rf_sqlite_export(struct rf_store *st, int (*emit)(void *ctx, const struct rf_row *row),
                     void *ctx)
{
    struct conn *c;
    int rc = rf_sqlite_reader_get(st, &c);
    if (rc != 0)
        return rc;
    /* a read transaction: every table from one snapshot */
    rc = rf_sqlite_err(sqlite3_exec(c->db, "BEGIN", NULL, NULL, NULL));
    if (rc == 0)
        rc = schema_known(c->db);
    for (int t = 0; rc == 0 && t < RF_TAB_COUNTERS; t++)
        rc = export_table(c->db, (enum rf_table)t, emit, ctx);
    if (rc == 0)
        rc = export_counters(c->db, emit, ctx);
    sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL); /* read only: nothing to keep */
    rf_sqlite_reader_put(st, c);
    return rc;
}

/* ---- import ---- */

static int exec1(sqlite3 *db, const char *sql, int64_t a, int64_t *out)
{
    sqlite3_stmt *s = NULL;
    int rc = rf_sqlite_err(sqlite3_prepare_v2(db, sql, -1, &s, NULL));
    if (rc == 0 && sqlite3_bind_parameter_count(s) > 0)
        rc = rf_sqlite_err(sqlite3_bind_int64(s, 1, a));
    if (rc == 0) {
        int step = sqlite3_step(s);
        if (step == SQLITE_ROW && out)
            *out = sqlite3_column_int64(s, 0);
        else if (step != SQLITE_DONE && step != SQLITE_ROW)
            rc = rf_sqlite_err(step) ? rf_sqlite_err(step) : RF_ERR_DB;
    }
    sqlite3_finalize(s);
    return rc;
}

int rf_sqlite_import_begin(struct rf_store *st)
{
    int64_t rows = -1;
    pthread_mutex_lock(&st->files.wmu);
    int rc = rf_sqlite_err(sqlite3_exec(st->w.db, "BEGIN IMMEDIATE", NULL, NULL, NULL));
    if (rc == 0)
        rc = exec1(st->w.db,
                   "SELECT (SELECT count(*) FROM settings) + (SELECT count(*) FROM objects)"
                   " + (SELECT count(*) FROM enroll_tokens) + (SELECT count(*) FROM staff)"
                   " + (SELECT count(*) FROM rosters) + (SELECT count(*) FROM grants)"
                   " + (SELECT count(*) FROM audit) + (SELECT count(*) FROM nonces)"
                   " + (SELECT count(*) FROM sources WHERE case_id <> 'teamconfig')",
                   0, &rows);
    if (rc == 0 && rows != 0)
        rc = RF_ERR_EXISTS;
    if (rc == 0)
        rc = exec1(st->w.db, "UPDATE sources SET id = -1 WHERE case_id = 'teamconfig'", 0, NULL);
    if (rc != 0) {
        sqlite3_exec(st->w.db, "ROLLBACK", NULL, NULL, NULL);
        pthread_mutex_unlock(&st->files.wmu);
    }
    return rc;
}

static int import_counters(struct rf_store *st, const struct rf_row *row)
{
    int64_t have = -1;
    int rc =
        exec1(st->w.db, "SELECT count(*) FROM sqlite_sequence WHERE name = 'objects'", 0, &have);
    if (rc == 0)
        rc = exec1(st->w.db,
                   have > 0 ? "UPDATE sqlite_sequence SET seq = max(seq, ?1) WHERE name = 'objects'"
                            : "INSERT INTO sqlite_sequence(name, seq) VALUES ('objects', ?1)",
                   row->cell[0].i, NULL);
    return rc; /* grant ids: rowids, max(id) + 1 follows */
}

int rf_sqlite_import_row(struct rf_store *st, const struct rf_row *row)
{
    if (row->table == RF_TAB_COUNTERS)
        return import_counters(st, row);
    const struct rf_table_desc *d = &rf_tables[row->table];
    char sql[SQL_MAX];
    if (row->table == RF_TAB_SOURCES && !row->cell[2].null && row->cell[2].len == 10 &&
        memcmp(row->cell[2].p, "teamconfig", 10) == 0)
        snprintf(sql, sizeof(sql),
                 "UPDATE sources SET id = ?1, lookup_id = ?2, pk = ?4, day = ?5, delete_day = ?6"
                 " WHERE case_id = ?3");
    else {
        int k = snprintf(sql, sizeof(sql), "INSERT INTO %s(%s) VALUES (", d->name, d->cols);
        for (unsigned i = 0; i < row->n; i++)
            k += snprintf(sql + k, sizeof(sql) - (size_t)k, i ? ", ?%u" : "?%u", i + 1);
        snprintf(sql + k, sizeof(sql) - (size_t)k, ")");
    }
    sqlite3_stmt *s = NULL;
    int rc = rf_sqlite_err(sqlite3_prepare_v2(st->w.db, sql, -1, &s, NULL));
    for (unsigned i = 0; rc == 0 && i < row->n; i++) {
        const struct rf_cell *c = &row->cell[i];
        int col = (int)i + 1, r;
        if (c->null)
            r = sqlite3_bind_null(s, col);
        else if (d->types[i] == 'i')
            r = sqlite3_bind_int64(s, col, c->i);
        else if (d->types[i] == 't')
            r = sqlite3_bind_text(s, col, (const char *)c->p, (int)c->len, SQLITE_STATIC);
        else {
            rc = rf_sqlite_bind_bytes(s, col, c->p, c->len);
            continue;
        }
        rc = rf_sqlite_err(r);
    }
    if (rc == 0) {
        int step = sqlite3_step(s);
        if (step != SQLITE_DONE)
            rc = rf_sqlite_err(step) ? rf_sqlite_err(step) : RF_ERR_DB;
        else if (sqlite3_changes(st->w.db) != 1)
            rc = RF_ERR_DB;
    }
    sqlite3_finalize(s);
    return rc;
}

int rf_sqlite_import_end(struct rf_store *st, int commit)
{
    int rc = 0;
    if (commit)
        rc = rf_sqlite_err(sqlite3_exec(st->w.db, "COMMIT", NULL, NULL, NULL));
    if (!commit || rc != 0)
        sqlite3_exec(st->w.db, "ROLLBACK", NULL, NULL, NULL);
    pthread_mutex_unlock(&st->files.wmu);
    return rc;
}
