/*
 * migrate.c - rf_store_migrate: every row of one store into another, of any
 * backend, through the backends' row export and import (store.h; the rows
 * of store_sqlite_migrate.c and store_pg_migrate.c) and the blob layer.
 *
 * The rows stream from the source's export callback straight into the
 * target's import transaction, one at a time. An object row that names a
 * blob file first has that file copied into the target's DIR/blobs through
 * a blob of the target (DIR/tmp, fsync, rename, fsync of the directory: the
 * same durable path as every put), in IO_CHUNK pieces, its size checked
 * against the row; the row then names the copy. So memory stays constant
 * whatever the instance holds, and no committed row ever names a blob that
 * is not durable. An inline object row of a kind the target keeps only as
 * blobs (rf_store_blob_only: replies, on PostgreSQL) becomes a blob file of
 * the target the same way. On any failure the import is rolled back: the target's
 * database holds nothing, and the blob copies are unnamed files its next
 * open removes (the command deletes the new data directory anyway).
 */
#include "lib/err.h"
#include "lib/log.h"
#include "store/store_internal.h"

#include <errno.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define IO_CHUNK (64 * 1024)

struct mig {
    struct rf_store *from, *to;
    struct rf_migrate_info *info;
    uint8_t *buf; /* IO_CHUNK */
};

__attribute__((format(printf, 2, 3))) static void why(struct rf_migrate_info *info, const char *fmt,
                                                      ...)
{
    va_list ap;
    if (info->why[0])
        return; /* the first reason is the one that counts */
    va_start(ap, fmt);
    vsnprintf(info->why, sizeof(info->why), fmt, ap);
    va_end(ap);
}

/* Copies blob name of m->from (size bytes, as its row says) into a new blob
 * of m->to; out receives the copy's name. */
static int copy_blob(struct mig *m, const char *name, uint64_t size, char out[RF_BLOB_NAME_LEN + 1])
{
    int fd = -1;
    uint64_t have = 0, done = 0;
    struct rf_blob *b = NULL;
    int rc = rf_blobdir_open_blob(rf_store_files_of(m->from), name, &fd, &have);
    if (rc != 0) {
        why(m->info, "a file an object names is missing or unreadable in DIR/blobs (%s)",
            rf_strerror(rc));
        return rc;
    }
    if (have != size) {
        why(m->info, "a file in DIR/blobs is not the size its object says (%llu, not %llu bytes)",
            (unsigned long long)have, (unsigned long long)size);
        close(fd);
        return RF_ERR_FORMAT;
    }
    if ((rc = rf_blob_begin(m->to, &b)) != 0)
        why(m->info, "cannot write a file into the new data directory (%s)", rf_strerror(rc));
    while (rc == 0 && done < size) {
        ssize_t r = read(fd, m->buf, IO_CHUNK);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = RF_ERR_IO;
            why(m->info, "cannot read a file in DIR/blobs (it shrank, or: %s)",
                r < 0 ? strerror(errno) : "end of file");
            break;
        }
        if ((rc = rf_blob_write(b, m->buf, (size_t)r)) != 0)
            why(m->info, "cannot write a file into the new data directory (%s)", rf_strerror(rc));
        done += (uint64_t)r;
    }
    close(fd);
    if (rc == 0 && done != size)
        rc = RF_ERR_FORMAT;
    if (rc != 0) {
        rf_blob_abort(b);
        return rc;
    }
    if ((rc = rf_blob_commit(b, out)) != 0) {
        why(m->info, "cannot make a copied file durable in the new data directory (%s)",
            rf_strerror(rc));
        return rc;
    }
    m->info->blobs++;
    m->info->blob_bytes += size;
    return 0;
}

/* Writes inline bytes of an object row into a new blob of m->to (a kind the
 * target keeps only as blobs: rf_store_blob_only); out receives its name. */
static int inline_to_blob(struct mig *m, const uint8_t *p, size_t n, char out[RF_BLOB_NAME_LEN + 1])
{
    struct rf_blob *b = NULL;
    int rc = rf_blob_begin(m->to, &b);
    if (rc == 0 && (rc = rf_blob_write(b, p, n)) != 0)
        rf_blob_abort(b);
    if (rc == 0)
        rc = rf_blob_commit(b, out);
    if (rc != 0) {
        why(m->info, "cannot write a reply as a file into the new data directory (%s)",
            rf_strerror(rc));
        return rc;
    }
    m->info->blobs++;
    m->info->blob_bytes += n;
    return 0;
}

static int on_row(void *ctx, const struct rf_row *row)
{
    struct mig *m = ctx;
    struct rf_row copy;
    char name[RF_BLOB_NAME_LEN + 1], copied[RF_BLOB_NAME_LEN + 1];
    int rc;
    if (row->table == RF_TAB_OBJECTS && !row->cell[6].null) {
        /* seq, source_id, kind, size, day, data, blob, roster */
        if (row->cell[6].len != RF_BLOB_NAME_LEN || row->cell[3].i < 0) {
            why(m->info, "an object row names a blob file badly");
            return RF_ERR_FORMAT;
        }
        memcpy(name, row->cell[6].p, RF_BLOB_NAME_LEN);
        name[RF_BLOB_NAME_LEN] = '\0';
        if ((rc = copy_blob(m, name, (uint64_t)row->cell[3].i, copied)) != 0)
            return rc;
        copy = *row;
        copy.cell[6].p = (const uint8_t *)copied;
        row = &copy;
    } else if (row->table == RF_TAB_OBJECTS && !row->cell[5].null && row->cell[2].i >= 0 &&
               rf_store_blob_only(m->to, (unsigned)row->cell[2].i)) {
        /* inline in the old database, a file in the new one (its backend
         * does not zero deleted rows, and the person may delete it) */
        if ((rc = inline_to_blob(m, row->cell[5].p, row->cell[5].len, copied)) != 0)
            return rc;
        copy = *row;
        copy.cell[5].null = 1;
        copy.cell[5].p = NULL;
        copy.cell[5].len = 0;
        copy.cell[6].null = 0;
        copy.cell[6].p = (const uint8_t *)copied;
        copy.cell[6].len = RF_BLOB_NAME_LEN;
        row = &copy;
    }
    if ((rc = rf_store_import_row(m->to, row)) != 0) {
        why(m->info, "the new database refused a row of the table %s (%s)",
            row->table < RF_TAB_COUNTERS ? rf_tables[row->table].name : "counters",
            rf_strerror(rc));
        return rc;
    }
    m->info->rows[row->table]++;
    return 0;
}

int rf_store_migrate(struct rf_store *from, struct rf_store *to, struct rf_migrate_info *info)
{
    struct mig m = {from, to, info, NULL};
    memset(info, 0, sizeof(*info));
    if (!(m.buf = malloc(IO_CHUNK)))
        return RF_ERR_NOMEM;
    int rc = rf_store_import_begin(to);
    if (rc != 0) {
        if (rc == RF_ERR_EXISTS)
            why(info, "the target database is not empty");
        else
            why(info, "cannot start the import into the new database (%s)", rf_strerror(rc));
        free(m.buf);
        return rc;
    }
    rc = rf_store_export(from, on_row, &m);
    if (rc != 0)
        why(info, "cannot read the old database (%s%s)", rf_strerror(rc),
            rc == RF_ERR_VERSION ? ": it holds a table or column this program does not know" : "");
    if (rc == 0 && info->rows[RF_TAB_COUNTERS] != 1) {
        why(info, "the old database gave no counters");
        rc = RF_ERR_DB;
    }
    int end = rf_store_import_end(to, rc == 0);
    if (rc == 0 && end != 0) {
        why(info, "the new database did not commit (%s)", rf_strerror(end));
        rc = end;
    }
    sodium_memzero(m.buf, IO_CHUNK);
    free(m.buf);
    return rc;
}
