/*
 * cache_pages.c - the board pages of the local case database (cache.h
 * "Board pages"; the pages' format is docs/protocol.md 16, sealed and
 * opened by local_pages.c): the table board_pages(page, blob), and in meta
 * the generation the pages hold the rows of ("board_pages_gen") and their
 * count ("board_pages_n"). The trigger board_pages_stale (cache.c's schema)
 * drops them all when a board row is deleted; a row written again takes a
 * new generation, newer than the pages, and is read from the board.
 */
#include "client/cache.h"
#include "client/cache_internal.h"
#include "lib/err.h"

#include <pthread.h>
#include <string.h>

static int meta_int(sqlite3 *db, const char *key, int64_t *v)
{
    sqlite3_stmt *st;
    *v = 0;
    if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = ?1", -1, &st, NULL) != SQLITE_OK)
        return RF_ERR_DB;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW)
        *v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return s == SQLITE_ROW || s == SQLITE_DONE ? 0 : RF_ERR_DB;
}

/* The pages' info on db (in the caller's read transaction). */
static int info_of(sqlite3 *db, struct rf_cache_pages_info *i)
{
    sqlite3_stmt *st;
    memset(i, 0, sizeof(*i));
    int rc = meta_int(db, "board_pages_gen", &i->gen);
    if (rc == 0)
        rc = meta_int(db, "board_pages_n", &i->npages);
    if (rc == 0)
        rc = meta_int(db, "board_gen", &i->board_gen);
    if (rc == 0 && (i->gen <= 0 || i->npages <= 0))
        i->gen = i->npages = 0;
    if (rc != 0)
        return rc;
    /* both counted on the board's indexes, not its rows */
    i->count = rf_cache_single_int(db, "SELECT count(*) FROM board");
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM board WHERE gen > ?1", -1, &st, NULL) !=
        SQLITE_OK)
        return RF_ERR_DB;
    sqlite3_bind_int64(st, 1, i->gen);
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW)
        i->delta = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return s == SQLITE_ROW && i->count >= 0 ? 0 : RF_ERR_DB;
}

int rf_cache_board_pages_info(struct rf_cache *c, struct rf_cache_pages_info *i)
{
    int own = sqlite3_get_autocommit(c->db);
    if (own && sqlite3_exec(c->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
        return RF_ERR_DB;
    int rc = info_of(c->db, i);
    if (own)
        sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL);
    return rc;
}

int rf_cache_board_pages_clear(struct rf_cache *c)
{
    return rf_cache_exec(c, "DELETE FROM board_pages;"
                            " DELETE FROM meta WHERE key IN ('board_pages_gen', 'board_pages_n')") == 0
               ? 0
               : RF_ERR_DB;
}

int rf_cache_board_page_put(struct rf_cache *c, int64_t page, const uint8_t *blob, size_t n)
{
    return rf_cache_put_keyed(c, "INSERT OR REPLACE INTO board_pages(page, blob) VALUES(?1, ?2)",
                              page, blob, n);
}

int rf_cache_board_pages_set(struct rf_cache *c, int64_t gen, int64_t npages)
{
    int rc = rf_cache_meta_set(c, "board_pages_gen", gen);
    return rc == 0 ? rf_cache_meta_set(c, "board_pages_n", npages) : rc;
}

/* Pages [lo, hi) of one snapshot, on db (its own read transaction when
 * snapshot is set, with its info), each to page(ctx); every page number
 * there, in order, or RF_ERR_FORMAT. */
struct pages_part {
    sqlite3 *db;
    int64_t lo, hi;
    const struct rf_cache_pages_read *r;
    void *ctx;
    int snapshot;
    struct rf_cache_pages_info info;
    int rc;
};

static void *pages_part_read(void *arg)
{
    struct pages_part *p = arg;
    sqlite3_stmt *st = NULL;
    int64_t want = p->lo;
    int s = SQLITE_ERROR;
    p->rc = RF_ERR_DB;
    if (p->snapshot && sqlite3_exec(p->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
        return NULL;
    if (p->snapshot && info_of(p->db, &p->info) != 0)
        goto out;
    if (rf_cache_range_stmt(p->db,
                            "SELECT page, blob FROM board_pages WHERE page >= ?1 AND page < ?2"
                            " ORDER BY page",
                            p->lo, p->hi, &st) != 0)
        goto out;
    p->rc = 0;
    while (p->rc == 0 && (s = sqlite3_step(st)) == SQLITE_ROW) {
        if (sqlite3_column_int64(st, 0) != want++) {
            p->rc = RF_ERR_FORMAT;
            break;
        }
        p->rc = p->r->page(p->ctx, want - 1, sqlite3_column_blob(st, 1),
                           (size_t)sqlite3_column_bytes(st, 1));
    }
    if (p->rc == 0 && s != SQLITE_DONE)
        p->rc = RF_ERR_DB;
    if (p->rc == 0 && want != p->hi)
        p->rc = RF_ERR_FORMAT; /* a page missing at the end */
out:
    sqlite3_finalize(st);
    if (p->snapshot)
        sqlite3_exec(p->db, "COMMIT", NULL, NULL, NULL);
    if (p->rc == 0 && p->r->done)
        p->r->done(p->ctx);
    return NULL;
}

static int delta_rows(sqlite3 *db, struct rf_cache_pages_read *r)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT case_id, gen, last_seq, blob FROM board WHERE gen > ?1", -1,
                           &st, NULL) != SQLITE_OK)
        return RF_ERR_DB;
    sqlite3_bind_int64(st, 1, r->info.gen);
    int s, rc = 0;
    while (rc == 0 && (s = sqlite3_step(st)) == SQLITE_ROW)
        rc = r->delta(r->ctx[0], (const char *)sqlite3_column_text(st, 0),
                      sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 2),
                      sqlite3_column_blob(st, 3), (size_t)sqlite3_column_bytes(st, 3));
    if (rc == 0 && s != SQLITE_DONE)
        rc = RF_ERR_DB;
    sqlite3_finalize(st);
    return rc;
}

int rf_cache_board_pages_each2(struct rf_cache *c, struct rf_cache_pages_read *r)
{
    int own = sqlite3_get_autocommit(c->db);
    if (own && sqlite3_exec(c->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
        return RF_ERR_DB;
    int rc = info_of(c->db, &r->info);
    if (rc == 0 && r->info.gen == 0)
        rc = RF_ERR_NOT_FOUND;
    if (rc == 0)
        rc = delta_rows(c->db, r);
    if (rc == 0 && r->between)
        rc = r->between(r->arg);
    int64_t n = r->info.npages;
    struct pages_part part[2] = {
        {.db = c->db, .lo = 0, .hi = n, .r = r, .ctx = r->ctx[0]},
        {.lo = n, .hi = n, .r = r, .ctx = r->ctx[1], .snapshot = 1},
    };
    pthread_t th;
    int two = 0, started = 0;
    if (rc == 0 && own && n >= 2 && (part[1].db = rf_cache_reader_open(c)) != NULL) {
        two = 1;
        part[0].hi = part[1].lo = n / 2;
        started = pthread_create(&th, NULL, pages_part_read, &part[1]) == 0;
    }
    if (rc == 0)
        pages_part_read(&part[0]);
    if (two && started)
        pthread_join(th, NULL);
    else if (two && rc == 0)
        pages_part_read(&part[1]);
    if (two)
        sqlite3_close(part[1].db);
    if (own)
        sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL);
    if (rc == 0)
        rc = part[0].rc ? part[0].rc : two ? part[1].rc : 0;
    if (rc == 0 && two && memcmp(&part[1].info, &r->info, sizeof(r->info)) != 0)
        rc = RF_ERR_BUSY; /* the second half saw another moment */
    return rc;
}
