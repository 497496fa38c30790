/*
 * backup_export.c - the database member of a backup for a backend whose
 * database is not a SQLite file (PostgreSQL): the store's rows exported
 * (rf_store_export: one snapshot, a REPEATABLE READ transaction on
 * PostgreSQL) straight into a fresh SQLite store made for it in
 * DIR/tmp/backup-<hex>.db.d, then copied by VACUUM INTO to the path backup.c
 * hands in (DIR/tmp/backup-<hex>.db), which backup.c then streams exactly as
 * it streams a SQLite instance's copy. So the archive is the SQLite
 * backend's: `refuge server restore` gives a SQLite instance.
 *
 * The rows are imported as they are: an object row keeps the name of its
 * blob, and no blob is copied (backup.c streams the blobs from DIR/blobs,
 * which this backend keeps too, and handles a blob deleted after the
 * snapshot). The import checks what it checks in a migration (migrate.c):
 * the rows fit the SQLite schema, one counters row, all in one
 * transaction. The temporary store is removed before this returns; a crash
 * leaves its directory in DIR/tmp, which the next open empties
 * (rf_blobdir_tmp_remove).
 */
#include "lib/err.h"
#include "lib/log.h"
#include "store/store_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct exp {
    struct rf_store *to;
    uint64_t counters;
};

static int on_row(void *ctx, const struct rf_row *row)
{
    struct exp *x = ctx;
    /* objects: seq, source_id, kind, size, day, data, blob, roster */
    if (row->table == RF_TAB_OBJECTS && !row->cell[6].null &&
        (row->cell[6].len != RF_BLOB_NAME_LEN || row->cell[3].i < 0))
        return RF_ERR_FORMAT;
    if (row->table == RF_TAB_COUNTERS)
        x->counters++;
    return rf_store_import_row(x->to, row);
}

int rf_backup_export_snapshot(struct rf_store *st, const char *path, struct rf_backup_info *info)
{
    struct exp x = {NULL, 0};
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(path) + strlen(".d/refuge.db") + 1;
    char *dir = malloc(n), *db = malloc(n), name[96];
    int rc = 0, made = 0;
    if (!dir || !db || strlen(base) + 3 > sizeof(name)) {
        rc = RF_ERR_NOMEM;
        goto out;
    }
    snprintf(dir, n, "%s.d", path);
    snprintf(db, n, "%s.d/refuge.db", path);
    snprintf(name, sizeof(name), "%s.d", base);
    made = 1;
    if ((rc = rf_sqlite_open(&x.to, dir)) != 0) {
        snprintf(info->why, sizeof(info->why),
                 "cannot create a temporary SQLite database in the data directory's tmp/ (%s)",
                 rf_strerror(rc));
        goto out;
    }
    if ((rc = rf_store_import_begin(x.to)) != 0) {
        snprintf(info->why, sizeof(info->why),
                 "cannot start filling the temporary SQLite database (%s)", rf_strerror(rc));
        goto out;
    }
    rc = rf_store_export(st, on_row, &x);
    if (rc == 0 && x.counters != 1)
        rc = RF_ERR_DB;
    int end = rf_store_import_end(x.to, rc == 0);
    if (rc != 0) {
        snprintf(info->why, sizeof(info->why), "cannot copy the rows out of the database (%s%s)",
                 rf_strerror(rc),
                 rc == RF_ERR_VERSION ? ": it holds a table or column this program does not know"
                                      : "");
        goto out;
    }
    if ((rc = end) != 0) {
        snprintf(info->why, sizeof(info->why), "the temporary SQLite database did not commit (%s)",
                 rf_strerror(rc));
        goto out;
    }
    if ((rc = rf_sqlite_vacuum_into(db, path)) != 0)
        snprintf(info->why, sizeof(info->why),
                 "cannot copy the temporary SQLite database (VACUUM INTO: %s)", rf_strerror(rc));
out:
    if (x.to)
        rf_store_close(x.to);
    if (made)
        rf_blobdir_tmp_remove(rf_store_files_of(st), name);
    free(dir);
    free(db);
    return rc;
}
