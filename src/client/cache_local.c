/*
 * cache_local.c - the local case database's rows in the client's cache
 * (see cache.h; schema and upgrades in cache.c): digests of objects,
 * per-case summaries and board rows, all sealed by local.c before they get
 * here, and the "digested up to" mark.
 *
 * The mark (meta "digested"): every object numbered at or below it has a
 * digest row (readable or not). It moves only up, only over objects that
 * have one (rf_cache_digested_advance looks at the rows themselves, in one
 * statement; rf_cache_digested_advance_to takes the word of a digest pass
 * that knows), and never past the sync position: a sync stores every new
 * object above that position, so no object appears below the mark later.
 * An object left without a digest (an event naming a roster this client
 * has not verified yet) holds the mark below it until it is digested. The
 * "anything undigested?" question is then a range of the objects table
 * above the mark, plus the unreadable digests a grant arrived for, found
 * from the grants (grant_keys) alone: no join over every object.
 */
#include "client/cache.h"
#include "client/cache_internal.h"
#include "lib/err.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int rf_cache_objects_all(struct rf_cache *c, struct rf_cobj **out, size_t *n)
{
    sqlite3_stmt *st;
    if (rf_cache_prepare(
            c, "SELECT seq, case_id, kind, size, day, roster FROM objects ORDER BY seq", &st) != 0)
        return RF_ERR_DB;
    int rc = rf_cache_collect(st, out, n);
    sqlite3_finalize(st);
    return rc;
}

int rf_cache_digest_put(struct rf_cache *c, int64_t seq, const char *case_id, int readable,
                        const uint8_t *blob, size_t n)
{
    sqlite3_stmt *st;
    if (rf_cache_kept(
            c, KEPT_DIGEST_PUT,
            "INSERT OR REPLACE INTO digests(seq, case_id, readable, blob) VALUES(?, ?, ?, ?)",
            &st) != 0)
        return RF_ERR_DB;
    sqlite3_bind_int64(st, 1, seq);
    sqlite3_bind_text(st, 2, case_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, readable ? 1 : 0);
    if (blob)
        sqlite3_bind_blob64(st, 4, blob, n, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 4);
    int s = sqlite3_step(st);
    rf_cache_done(st);
    return s == SQLITE_DONE ? 0 : RF_ERR_DB;
}

int rf_cache_undigested(struct rf_cache *c, struct rf_cobj **out, size_t *n)
{
    return rf_cache_undigested_after(c, INT64_MIN, out, n);
}

int rf_cache_undigested_after(struct rf_cache *c, int64_t after, struct rf_cobj **out, size_t *n)
{
    sqlite3_stmt *st;
    int64_t mark = 0;
    int rc = rf_cache_meta_get(c, "digested", &mark);
    if (rc != 0)
        return rc;
    /* above the mark (and after): objects with no digest, or an unreadable
     * one a grant arrived for; between after and the mark: only the
     * unreadable ones a grant arrived for, looked up from the grants */
    if (rf_cache_prepare(c,
                         "SELECT o.seq, o.case_id, o.kind, o.size, o.day, o.roster, o.pack"
                         " FROM objects o LEFT JOIN digests d ON d.seq = o.seq"
                         " WHERE o.seq > ?3 AND (d.seq IS NULL OR (d.readable = 0 AND"
                         " EXISTS (SELECT 1 FROM grant_keys g WHERE g.seq = o.seq)))"
                         " UNION ALL" /* disjoint: above the mark, at or below it */
                         " SELECT o.seq, o.case_id, o.kind, o.size, o.day, o.roster, o.pack"
                         " FROM objects o"
                         " JOIN digests d ON d.seq = o.seq AND d.readable = 0"
                         " WHERE o.seq IN (SELECT seq FROM grant_keys WHERE seq > ?1 AND seq <= ?2)"
                         " ORDER BY 1",
                         &st) != 0)
        return RF_ERR_DB;
    sqlite3_bind_int64(st, 1, after);
    sqlite3_bind_int64(st, 2, mark);
    sqlite3_bind_int64(st, 3, after > mark ? after : mark);
    rc = rf_cache_collect(st, out, n);
    sqlite3_finalize(st);
    return rc;
}

int rf_cache_objects_max(struct rf_cache *c, int64_t *max)
{
    sqlite3_stmt *st;
    *max = 0;
    if (rf_cache_prepare(c, "SELECT IFNULL(MAX(seq), 0) FROM objects", &st) != 0)
        return RF_ERR_DB;
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW)
        *max = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return s == SQLITE_ROW ? 0 : RF_ERR_DB;
}

/* Moves the mark up to what sql (one row, one value; ?1 bound to arg)
 * gives, never down; *mark (may be NULL) receives it. */
static int advance(struct rf_cache *c, const char *sql, int64_t arg, int64_t *mark)
{
    sqlite3_stmt *st;
    int64_t old = 0, now = 0;
    int rc = rf_cache_meta_get(c, "digested", &old);
    if (rc != 0)
        return rc;
    if (rf_cache_prepare(c, sql, &st) != 0)
        return RF_ERR_DB;
    sqlite3_bind_int64(st, 1, arg == INT64_MIN ? old : arg);
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW)
        now = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (s != SQLITE_ROW)
        return RF_ERR_DB;
    if (now > old)
        rc = rf_cache_meta_set(c, "digested", now);
    if (rc == 0 && mark)
        *mark = now > old ? now : old;
    return rc;
}

int rf_cache_bulk_objects(struct rf_cache *c, int on)
{
    return rf_cache_exec(c,
                         on ? "DROP INDEX IF EXISTS objects_case"
                            : "CREATE INDEX IF NOT EXISTS objects_case ON objects(case_id, seq)");
}

int rf_cache_bulk_digests(struct rf_cache *c, int on, int *dropped)
{
    if (!on)
        return *dropped ? rf_cache_exec(c, "CREATE INDEX IF NOT EXISTS digests_case ON"
                                           " digests(case_id, seq)")
                        : 0;
    sqlite3_stmt *st;
    *dropped = 0;
    if (rf_cache_prepare(c, "SELECT EXISTS (SELECT 1 FROM digests)", &st) != 0)
        return RF_ERR_DB;
    int s = sqlite3_step(st), any = s == SQLITE_ROW && sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (s != SQLITE_ROW)
        return RF_ERR_DB;
    if (any)
        return 0;
    int rc = rf_cache_exec(c, "DROP INDEX IF EXISTS digests_case");
    *dropped = rc == 0;
    return rc;
}

static int journal_mode(struct rf_cache *c, const char *sql, const char *want)
{
    sqlite3_stmt *st;
    if (rf_cache_prepare(c, sql, &st) != 0)
        return 0;
    int ok = sqlite3_step(st) == SQLITE_ROW &&
             strcmp((const char *)sqlite3_column_text(st, 0) ? (const char *)sqlite3_column_text(st, 0)
                                                              : "",
                    want) == 0;
    sqlite3_finalize(st);
    return ok;
}

int rf_cache_bulk_journal(struct rf_cache *c, int on, int *switched)
{
    if (!on) {
        int back = !*switched || journal_mode(c, "PRAGMA journal_mode=WAL", "wal");
        *switched = 0;
        return back ? 0 : RF_ERR_DB;
    }
    *switched = 0;
    sqlite3_stmt *st;
    if (!sqlite3_get_autocommit(c->db) ||
        rf_cache_prepare(c, "SELECT EXISTS (SELECT 1 FROM digests)", &st) != 0)
        return 0;
    int s = sqlite3_step(st), any = s != SQLITE_ROW || sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (!any)
        *switched = journal_mode(c, "PRAGMA journal_mode=TRUNCATE", "truncate");
    return 0;
}

int rf_cache_digested_advance_to(struct rf_cache *c, int64_t upto)
{
    return advance(c,
                   "SELECT MIN(?1, (SELECT IFNULL(MAX(seq), 0) FROM objects),"
                   " IFNULL((SELECT value FROM meta WHERE key = 'last_seq'), 0))",
                   upto, NULL);
}

int rf_cache_digested_advance(struct rf_cache *c, int64_t *mark)
{
    /* up to the first object above the mark (?1) with no digest, the
     * largest object and the sync position, whichever is lowest */
    return advance(c,
                   "SELECT MIN(IFNULL((SELECT o.seq - 1 FROM objects o WHERE o.seq > ?1"
                   " AND NOT EXISTS (SELECT 1 FROM digests d WHERE d.seq = o.seq)"
                   " ORDER BY o.seq LIMIT 1),"
                   " (SELECT IFNULL(MAX(seq), 0) FROM objects)),"
                   " (SELECT IFNULL(MAX(seq), 0) FROM objects),"
                   " IFNULL((SELECT value FROM meta WHERE key = 'last_seq'), 0))",
                   INT64_MIN, mark);
}

int rf_cache_digests(struct rf_cache *c, const char *case_id, rf_cache_row_fn fn, void *ctx)
{
    sqlite3_stmt *st;
    if (rf_cache_kept(
            c, KEPT_CASE_DIGESTS,
            "SELECT seq, blob FROM digests WHERE case_id = ? AND readable = 1 ORDER BY seq",
            &st) != 0)
        return RF_ERR_DB;
    sqlite3_bind_text(st, 1, case_id, -1, SQLITE_STATIC);
    int s, rc = 0;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        rc = fn(ctx, sqlite3_column_int64(st, 0), sqlite3_column_blob(st, 1),
                (size_t)sqlite3_column_bytes(st, 1));
        if (rc != 0)
            break;
    }
    if (rc == 0 && s != SQLITE_DONE)
        rc = RF_ERR_DB;
    rf_cache_done(st);
    return rc;
}

int rf_cache_digest_scan(struct rf_cache *c, const char *lo, const char *hi, int blobs,
                         rf_cache_case_row_fn fn, void *ctx)
{
    sqlite3_stmt *st;
    char sql[192];
    snprintf(sql, sizeof(sql),
             "SELECT case_id, seq, %s FROM digests NOT INDEXED WHERE readable = 1%s",
             blobs ? "blob" : "length(blob)", lo ? " AND case_id >= ?1 AND case_id <= ?2" : "");
    if (rf_cache_prepare(c, sql, &st) != 0)
        return RF_ERR_DB;
    if (lo) {
        sqlite3_bind_text(st, 1, lo, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, hi, -1, SQLITE_STATIC);
    }
    int s, rc = 0;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        const char *cid = (const char *)sqlite3_column_text(st, 0);
        if (!cid)
            continue;
        if (blobs)
            rc = fn(ctx, cid, sqlite3_column_int64(st, 1), sqlite3_column_blob(st, 2),
                    (size_t)sqlite3_column_bytes(st, 2));
        else
            rc = fn(ctx, cid, sqlite3_column_int64(st, 1), NULL,
                    (size_t)sqlite3_column_int64(st, 2));
        if (rc != 0)
            break;
    }
    if (rc == 0 && s != SQLITE_DONE)
        rc = RF_ERR_DB;
    sqlite3_finalize(st);
    return rc;
}

int rf_cache_object_scan(struct rf_cache *c, const char *lo, const char *hi, rf_cache_obj_fn fn,
                         void *ctx)
{
    sqlite3_stmt *st;
    if (rf_cache_prepare(c,
                         "SELECT seq, case_id, kind, size, day, roster FROM objects NOT INDEXED"
                         " WHERE case_id >= ?1 AND case_id <= ?2",
                         &st) != 0)
        return RF_ERR_DB;
    sqlite3_bind_text(st, 1, lo, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, hi, -1, SQLITE_STATIC);
    int s, rc = 0;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        struct rf_cobj o;
        rf_cache_row_cobj(st, &o);
        rc = fn(ctx, &o);
        if (rc != 0)
            break;
    }
    if (rc == 0 && s != SQLITE_DONE)
        rc = RF_ERR_DB;
    sqlite3_finalize(st);
    return rc;
}

/* One kept statement without rows (SAVEPOINT, RELEASE, ...): 0 or RF_ERR_DB. */
static int kept_exec(struct rf_cache *c, int slot, const char *sql)
{
    sqlite3_stmt *st;
    if (rf_cache_kept(c, slot, sql, &st) != 0)
        return RF_ERR_DB;
    int s = sqlite3_step(st);
    rf_cache_done(st);
    return s == SQLITE_DONE ? 0 : RF_ERR_DB;
}

/* One kept statement with a case id, a number and a blob bound (or nothing
 * where NULL/0). */
static int step3(struct rf_cache *c, int slot, const char *sql, const char *case_id, int64_t num,
                 const uint8_t *blob, size_t n)
{
    sqlite3_stmt *st;
    if (rf_cache_kept(c, slot, sql, &st) != 0)
        return RF_ERR_DB;
    sqlite3_bind_text(st, 1, case_id, -1, SQLITE_STATIC);
    if (sqlite3_bind_parameter_count(st) >= 2)
        sqlite3_bind_int64(st, 2, num);
    if (sqlite3_bind_parameter_count(st) >= 3)
        sqlite3_bind_blob64(st, 3, blob, n, SQLITE_STATIC);
    int s = sqlite3_step(st);
    rf_cache_done(st);
    return s == SQLITE_DONE ? 0 : RF_ERR_DB;
}

/* The board row of a case, with the next board_gen (the caller holds a
 * savepoint). */
static int board_put(struct rf_cache *c, const char *case_id, int64_t last_seq,
                     const uint8_t *board, size_t bn)
{
    int rc = kept_exec(c, KEPT_BOARD_GEN,
                       "INSERT INTO meta(key, value) VALUES('board_gen', 1)"
                       " ON CONFLICT(key) DO UPDATE SET value = value + 1");
    if (rc == 0)
        rc = step3(c, KEPT_BOARD_PUT,
                   "INSERT OR REPLACE INTO board(case_id, gen, last_seq, blob) VALUES(?1,"
                   " (SELECT value FROM meta WHERE key = 'board_gen'), ?2, ?3)",
                   case_id, last_seq, board, bn);
    return rc;
}

int rf_cache_summaries_bulk(struct rf_cache *c, int on)
{
    sqlite3_stmt *st;
    c->bulk_gen = 0;
    if (!on)
        return 0;
    int rc = kept_exec(c, KEPT_BOARD_GEN,
                       "INSERT INTO meta(key, value) VALUES('board_gen', 1)"
                       " ON CONFLICT(key) DO UPDATE SET value = value + 1");
    if (rc != 0)
        return rc;
    if (rf_cache_kept(c, KEPT_BOARD_GEN_READ, "SELECT value FROM meta WHERE key = 'board_gen'",
                      &st) != 0)
        return RF_ERR_DB;
    if (sqlite3_step(st) == SQLITE_ROW)
        c->bulk_gen = sqlite3_column_int64(st, 0);
    rf_cache_done(st);
    return c->bulk_gen > 0 ? 0 : RF_ERR_DB;
}

/* A summary and its board row in a bulk refresh: the caller's transaction
 * is the unit (it rolls back whole on a failure), and every row takes the
 * refresh's one board generation. */
static int summary_put_bulk(struct rf_cache *c, const char *case_id, int64_t last_seq,
                            const uint8_t *blob, size_t n, const uint8_t *board, size_t bn)
{
    sqlite3_stmt *st;
    int rc = step3(c, KEPT_SUMMARY_PUT,
                   "INSERT OR REPLACE INTO summaries(case_id, last_seq, blob) VALUES(?1, ?2, ?3)",
                   case_id, last_seq, blob, n);
    if (rc != 0 || !board)
        return rc != 0 ? rc
                       : step3(c, KEPT_BOARD_DELETE, "DELETE FROM board WHERE case_id = ?1",
                               case_id, 0, NULL, 0);
    if (rf_cache_kept(c, KEPT_BOARD_PUT_GEN,
                      "INSERT OR REPLACE INTO board(case_id, gen, last_seq, blob)"
                      " VALUES(?1, ?4, ?2, ?3)",
                      &st) != 0)
        return RF_ERR_DB;
    sqlite3_bind_text(st, 1, case_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, last_seq);
    sqlite3_bind_blob64(st, 3, board, bn, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, c->bulk_gen);
    int s = sqlite3_step(st);
    rf_cache_done(st);
    return s == SQLITE_DONE ? 0 : RF_ERR_DB;
}

int rf_cache_summary_put(struct rf_cache *c, const char *case_id, int64_t last_seq,
                         const uint8_t *blob, size_t n, const uint8_t *board, size_t bn)
{
    c->summary_writes++; /* even if it failed or is rolled back: only ever too careful */
    if (c->bulk_gen)
        return summary_put_bulk(c, case_id, last_seq, blob, n, board, bn);
    int rc = kept_exec(c, KEPT_SAVEPOINT_SUMMARY, "SAVEPOINT summary_put");
    if (rc != 0)
        return rc;
    rc = step3(c, KEPT_SUMMARY_PUT,
               "INSERT OR REPLACE INTO summaries(case_id, last_seq, blob) VALUES(?1, ?2, ?3)",
               case_id, last_seq, blob, n);
    if (rc == 0 && board)
        rc = board_put(c, case_id, last_seq, board, bn);
    else if (rc == 0) /* a row with no board row (the team's configuration) */
        rc = step3(c, KEPT_BOARD_DELETE, "DELETE FROM board WHERE case_id = ?1", case_id, 0, NULL,
                   0);
    if (rc != 0)
        kept_exec(c, KEPT_ROLLBACK_SUMMARY, "ROLLBACK TO summary_put");
    kept_exec(c, KEPT_RELEASE_SUMMARY, "RELEASE summary_put");
    return rc;
}

int rf_cache_board_put(struct rf_cache *c, const char *case_id, int64_t last_seq,
                       const uint8_t *board, size_t bn)
{
    c->summary_writes++;
    int rc = kept_exec(c, KEPT_SAVEPOINT_BOARD, "SAVEPOINT board_put");
    if (rc != 0)
        return rc;
    rc = board_put(c, case_id, last_seq, board, bn);
    if (rc != 0)
        kept_exec(c, KEPT_ROLLBACK_BOARD, "ROLLBACK TO board_put");
    kept_exec(c, KEPT_RELEASE_BOARD, "RELEASE board_put");
    return rc;
}

/* Calls fn for each row of st (case_id, gen, last_seq, blob), in order,
 * until fn fails; RF_ERR_DB if the step does not end cleanly. */
static int board_each(sqlite3_stmt *st, rf_cache_board_fn fn, void *ctx)
{
    int s, rc = 0;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        rc = fn(ctx, (const char *)sqlite3_column_text(st, 0), sqlite3_column_int64(st, 1),
                sqlite3_column_int64(st, 2), sqlite3_column_blob(st, 3),
                (size_t)sqlite3_column_bytes(st, 3));
        if (rc != 0)
            return rc;
    }
    return s == SQLITE_DONE ? 0 : RF_ERR_DB;
}

int rf_cache_board_since(struct rf_cache *c, int64_t after, rf_cache_board_fn fn, void *ctx,
                         int64_t *count)
{
    sqlite3_stmt *st = NULL;
    *count = 0;
    /* one read transaction: the rows and the count are of one moment */
    int own = sqlite3_get_autocommit(c->db);
    if (own && rf_cache_exec(c, "BEGIN") != 0)
        return RF_ERR_DB;
    int rc = rf_cache_kept(c, KEPT_BOARD_SINCE,
                           "SELECT case_id, gen, last_seq, blob FROM board"
                           " WHERE gen > ? ORDER BY gen",
                           &st);
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, after);
        rc = board_each(st, fn, ctx);
        rf_cache_done(st);
    }
    if (rc == 0 && rf_cache_kept(c, KEPT_BOARD_COUNT, "SELECT count(*) FROM board", &st) == 0) {
        if (sqlite3_step(st) == SQLITE_ROW)
            *count = sqlite3_column_int64(st, 0);
        else
            rc = RF_ERR_DB;
        rf_cache_done(st);
    } else if (rc == 0) {
        rc = RF_ERR_DB;
    }
    if (own)
        rf_cache_exec(c, "COMMIT");
    return rc;
}

/* Every board row read in the table's own order (one sequential scan:
 * ORDER BY over the board_order index looks every row up by rowid and
 * sorts the ties, about ten times as long at 100,000 rows), kept
 * (ciphertext and case ids, which the database holds in the clear too) and
 * sorted here: a radix sort on last_seq (descending), then the rare runs of
 * one last_seq by case id (NULL first, as SQLite sorts it). */
static int id_cmp(const struct rf_cache_board_row *x, const struct rf_cache_board_row *y)
{
    if (!x->case_id || !y->case_id)
        return (x->case_id != NULL) - (y->case_id != NULL);
    return strcmp(x->case_id, y->case_id);
}

int rf_cache_board_sort(struct rf_cache_board_row *r, size_t n)
{
    if (n < 2)
        return 0;
    struct rf_cache_board_row *tmp = malloc(n * sizeof(*tmp));
    if (!tmp)
        return RF_ERR_NOMEM;
    struct rf_cache_board_row *from = r, *to = tmp;
    for (int shift = 0; shift < 64; shift += 8) {
        size_t count[257] = {0};
        for (size_t i = 0; i < n; i++) /* descending: the complement of the ordered key */
            count[1 + (uint8_t)(~((uint64_t)from[i].last_seq ^ (1ULL << 63)) >> shift)]++;
        if (count[1 + (uint8_t)(~((uint64_t)from[0].last_seq ^ (1ULL << 63)) >> shift)] == n)
            continue; /* every row has this byte alike */
        for (int k = 0; k < 256; k++)
            count[k + 1] += count[k];
        for (size_t i = 0; i < n; i++)
            to[count[(uint8_t)(~((uint64_t)from[i].last_seq ^ (1ULL << 63)) >> shift)]++] = from[i];
        struct rf_cache_board_row *t = from;
        from = to;
        to = t;
    }
    if (from != r)
        memcpy(r, from, n * sizeof(*r));
    free(tmp);
    for (size_t i = 1; i < n; i++) { /* runs of one last_seq, by case id */
        if (r[i].last_seq != r[i - 1].last_seq || id_cmp(&r[i - 1], &r[i]) <= 0)
            continue;
        struct rf_cache_board_row v = r[i];
        size_t j = i;
        while (j > 0 && r[j - 1].last_seq == v.last_seq && id_cmp(&r[j - 1], &v) > 0) {
            r[j] = r[j - 1];
            j--;
        }
        r[j] = v;
    }
    return 0;
}

int rf_cache_board_count(struct rf_cache *c, size_t *n)
{
    sqlite3_stmt *st;
    *n = 0;
    if (rf_cache_prepare(c, "SELECT count(*) FROM board", &st) != 0)
        return RF_ERR_DB;
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW && sqlite3_column_int64(st, 0) > 0)
        *n = (size_t)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return s == SQLITE_ROW ? 0 : RF_ERR_DB;
}

/* One range of the board's rowids (lo, hi], read on a connection in one
 * read transaction with the board's generation and row count of that
 * snapshot: the rows (case id and blob offsets into kept until done). */
struct board_part {
    sqlite3 *db;
    int64_t lo, hi;
    size_t hint;             /* rows expected */
    rf_cache_board_fn fn;    /* set: each row handed to fn(ctx, ...) as it is read, nothing kept */
    void (*done)(void *ctx); /* with fn: after the last row, on the same thread */
    void *ctx;
    struct rf_cache_board_row *rows;
    size_t n;
    struct rf_buf *kept;
    int snapshot; /* one of two parts: its own read transaction, gen and count */
    int64_t gen;
    int64_t count;
    int rc;
};

int rf_cache_range_stmt(sqlite3 *db, const char *sql, int64_t lo, int64_t hi, sqlite3_stmt **st)
{
    if (sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK)
        return RF_ERR_DB;
    sqlite3_bind_int64(*st, 1, lo);
    sqlite3_bind_int64(*st, 2, hi);
    return 0;
}

int64_t rf_cache_single_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static void *board_part_read(void *arg)
{
    struct board_part *p = arg;
    sqlite3_stmt *st = NULL;
    size_t cap = p->hint + 1;
    int s = SQLITE_ERROR;
    p->rc = RF_ERR_DB;
    p->rows = p->fn ? NULL : malloc(cap * sizeof(*p->rows));
    if (!p->fn && (!p->rows || rf_buf_reserve(p->kept, cap * 192) != 0)) {
        p->rc = RF_ERR_NOMEM;
        return NULL;
    }
    if (p->snapshot && sqlite3_exec(p->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
        return NULL;
    /* the snapshot's generation and count: the parts read on two
     * connections are one table only if they agree (a row written again
     * takes a new rowid and a new generation; a row deleted, one fewer) */
    if (p->snapshot) {
        p->gen = rf_cache_single_int(p->db, "SELECT value FROM meta WHERE key = 'board_gen'");
        p->count = rf_cache_single_int(p->db, "SELECT count(*) FROM board");
    }
    if (rf_cache_range_stmt(p->db,
                            "SELECT case_id, gen, last_seq, blob FROM board"
                            " WHERE rowid > ?1 AND rowid <= ?2",
                            p->lo, p->hi, &st) != 0)
        goto out;
    p->rc = 0;
    /* offsets first (the kept bytes move while they grow), pointers after */
    while (p->rc == 0 && (s = sqlite3_step(st)) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(st, 0);
        const void *blob = sqlite3_column_blob(st, 3);
        size_t bn = (size_t)sqlite3_column_bytes(st, 3);
        if (p->fn) {
            p->rc = p->fn(p->ctx, id, sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 2),
                          blob, bn);
            continue;
        }
        if (p->n == cap) {
            size_t ncap = cap * 2;
            struct rf_cache_board_row *r = realloc(p->rows, ncap * sizeof(*r));
            if (!r) {
                p->rc = RF_ERR_NOMEM;
                break;
            }
            p->rows = r;
            cap = ncap;
        }
        struct rf_cache_board_row *r = &p->rows[p->n++];
        r->last_seq = sqlite3_column_int64(st, 2);
        r->gen = sqlite3_column_int64(st, 1);
        r->case_id = id ? (const char *)(uintptr_t)(p->kept->len + 1) : NULL;
        if (id)
            p->rc = rf_buf_put(p->kept, id, strlen(id) + 1);
        r->blob = (const uint8_t *)(uintptr_t)p->kept->len;
        r->n = bn;
        if (p->rc == 0 && bn)
            p->rc = rf_buf_put(p->kept, blob, bn);
    }
    if (p->rc == 0 && s != SQLITE_DONE)
        p->rc = RF_ERR_DB;
out:
    sqlite3_finalize(st);
    if (p->snapshot)
        sqlite3_exec(p->db, "COMMIT", NULL, NULL, NULL);
    for (size_t i = 0; p->rc == 0 && i < p->n; i++) {
        struct rf_cache_board_row *r = &p->rows[i];
        if (r->case_id)
            r->case_id = (const char *)p->kept->data + ((uintptr_t)r->case_id - 1);
        r->blob = p->kept->data + (uintptr_t)r->blob;
    }
    if (p->rc == 0 && p->fn && p->done)
        p->done(p->ctx);
    if (p->rc == 0 && !p->fn) /* each part sorted on its thread, the two merged after */
        p->rc = rf_cache_board_sort(p->rows, p->n);
    return NULL;
}

int rf_cache_board_before(const struct rf_cache_board_row *x, const struct rf_cache_board_row *y)
{
    return x->last_seq != y->last_seq ? x->last_seq > y->last_seq : id_cmp(x, y) <= 0;
}

sqlite3 *rf_cache_reader_open(struct rf_cache *c)
{
    const char *path = sqlite3_db_filename(c->db, "main");
    sqlite3 *db = NULL;
    if (!path || !path[0] ||
        sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK ||
        sqlite3_exec(db, "PRAGMA mmap_size=2147418112;", NULL, NULL, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, 5000);
    return db;
}

size_t rf_cache_board_split_rows = 16384; /* fewer rows: one connection reads them as quickly */

/* Reads the board into part[0], or, from rf_cache_board_split_rows rows
 * (count) on, as two halves of its rowids at once: part[1] on a read-only
 * connection (closed here) and a thread of its own, each part's hint then
 * split_hint. Returns the parts read (1 or 2); *rc the first part's error,
 * or RF_ERR_BUSY with *differ 1 when the board was written between the two
 * snapshots. */
static int read_parts(struct rf_cache *c, size_t count, size_t split_hint,
                      struct board_part part[2], int *rc, int *differ)
{
    pthread_t th;
    int np = 1, started = 0;
    int64_t lo = rf_cache_single_int(c->db, "SELECT min(rowid) FROM board");
    int64_t hi = rf_cache_single_int(c->db, "SELECT max(rowid) FROM board");
    if (count >= rf_cache_board_split_rows && lo >= 0 && hi > lo && sqlite3_get_autocommit(c->db) &&
        (part[1].db = rf_cache_reader_open(c)) != NULL) {
        np = 2;
        part[0].snapshot = part[1].snapshot = 1;
        part[0].hi = part[1].lo = lo + (hi - lo) / 2;
        part[1].hi = INT64_MAX;
        part[0].hint = part[1].hint = split_hint;
        started = pthread_create(&th, NULL, board_part_read, &part[1]) == 0;
    }
    board_part_read(&part[0]);
    if (np == 2 && started)
        pthread_join(th, NULL);
    else if (np == 2)
        board_part_read(&part[1]);
    if (np == 2)
        sqlite3_close(part[1].db);
    *rc = part[0].rc ? part[0].rc : np == 2 ? part[1].rc : 0;
    *differ = *rc == 0 && np == 2 && (part[0].gen != part[1].gen || part[0].count != part[1].count);
    if (*differ)
        *rc = RF_ERR_BUSY;
    return np;
}

int rf_cache_board_list(struct rf_cache *c, struct rf_cache_board_list *out)
{
    memset(out, 0, sizeof(*out));
    rf_buf_init(&out->kept, (size_t)1 << 36);
    rf_buf_init(&out->kept2, (size_t)1 << 36);
    /* sized once from the count (an index's pages) and a row's usual bytes,
     * so neither grows (copies) while 100,000 rows arrive */
    size_t count = 0;
    if (rf_cache_board_count(c, &count) != 0)
        return RF_ERR_DB;
    /* a large board read as two halves of its rowids at once, the second
     * on a connection and thread of its own (SQLite's stepping and the
     * copies were the listing's longest serial part) */
    struct board_part part[2] = {
        {.db = c->db, .lo = INT64_MIN, .hi = INT64_MAX, .hint = count, .kept = &out->kept},
        {.kept = &out->kept2},
    };
    int rc = 0, again = 0; /* again: written between the snapshots, read again as one */
    int np = read_parts(c, count, count / 2 + count / 8, part, &rc, &again);
    if (rc == 0 && np == 2) { /* the two sorted parts merged */
        struct rf_cache_board_row *r = malloc((part[0].n + part[1].n + 1) * sizeof(*r));
        const struct rf_cache_board_row *a = part[0].rows, *b = part[1].rows;
        size_t i = 0, j = 0, k = 0;
        if (!r)
            rc = RF_ERR_NOMEM;
        while (r && (i < part[0].n || j < part[1].n))
            if (j == part[1].n || (i < part[0].n && rf_cache_board_before(&a[i], &b[j])))
                r[k++] = a[i++];
            else
                r[k++] = b[j++];
        if (r) {
            free(part[0].rows);
            part[0].rows = r;
            part[0].n = k;
        }
    }
    if (np == 2)
        free(part[1].rows);
    out->rows = part[0].rows;
    out->n = part[0].n;
    if (rc != 0)
        rf_cache_board_list_free(out);
    if (again) {
        size_t split = rf_cache_board_split_rows;
        rf_cache_board_split_rows = SIZE_MAX;
        rc = rf_cache_board_list(c, out);
        rf_cache_board_split_rows = split;
    }
    return rc;
}

int rf_cache_board_each2(struct rf_cache *c, rf_cache_board_fn fn, void (*done)(void *ctx),
                         void *const ctx[2])
{
    size_t count = 0;
    if (rf_cache_board_count(c, &count) != 0)
        return RF_ERR_DB;
    struct board_part part[2] = {
        {.db = c->db, .lo = INT64_MIN, .hi = INT64_MAX, .fn = fn, .done = done, .ctx = ctx[0]},
        {.hi = INT64_MAX, .fn = fn, .done = done, .ctx = ctx[1]},
    };
    int rc = 0, differ = 0;
    read_parts(c, count, 0, part, &rc, &differ);
    return rc;
}

void rf_cache_board_list_free(struct rf_cache_board_list *l)
{
    free(l->rows);
    rf_buf_free(&l->kept);
    rf_buf_free(&l->kept2);
    memset(l, 0, sizeof(*l));
}

int rf_cache_board_rows(struct rf_cache *c, rf_cache_board_fn fn, void *ctx)
{
    struct rf_cache_board_list l;
    int rc = rf_cache_board_list(c, &l);
    for (size_t i = 0; rc == 0 && i < l.n; i++)
        rc = fn(ctx, l.rows[i].case_id, l.rows[i].gen, l.rows[i].last_seq, l.rows[i].blob,
                l.rows[i].n);
    rf_cache_board_list_free(&l);
    return rc;
}

int rf_cache_summaries_mark(struct rf_cache *c, int64_t mark[2])
{
    sqlite3_stmt *st;
    mark[0] = c->summary_writes;
    mark[1] = 0;
    if (rf_cache_prepare(c, "PRAGMA data_version", &st) != 0)
        return RF_ERR_DB;
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW)
        mark[1] = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return s == SQLITE_ROW ? 0 : RF_ERR_DB;
}

int rf_cache_summary_get(struct rf_cache *c, const char *case_id, struct rf_buf *out)
{
    return rf_cache_get_blob(c, "SELECT blob FROM summaries WHERE case_id = ?", case_id, out);
}

int rf_cache_summaries(struct rf_cache *c, rf_cache_summary_fn fn, void *ctx)
{
    sqlite3_stmt *st;
    if (rf_cache_prepare(c, "SELECT case_id, blob FROM summaries ORDER BY last_seq DESC, case_id",
                         &st) != 0)
        return RF_ERR_DB;
    int s, rc = 0;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        rc = fn(ctx, (const char *)sqlite3_column_text(st, 0), sqlite3_column_blob(st, 1),
                (size_t)sqlite3_column_bytes(st, 1));
        if (rc != 0)
            break;
    }
    if (rc == 0 && s != SQLITE_DONE)
        rc = RF_ERR_DB;
    sqlite3_finalize(st);
    return rc;
}

int rf_cache_summaries_seq(struct rf_cache *c, rf_cache_summary_seq_fn fn, void *ctx)
{
    sqlite3_stmt *st;
    if (rf_cache_prepare(c, "SELECT case_id, last_seq, blob FROM summaries", &st) != 0)
        return RF_ERR_DB;
    int s, rc = 0;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        rc = fn(ctx, (const char *)sqlite3_column_text(st, 0), sqlite3_column_int64(st, 1),
                sqlite3_column_blob(st, 2), (size_t)sqlite3_column_bytes(st, 2));
        if (rc != 0)
            break;
    }
    if (rc == 0 && s != SQLITE_DONE)
        rc = RF_ERR_DB;
    sqlite3_finalize(st);
    return rc;
}

int rf_cache_kind_count(struct rf_cache *c, uint8_t kind, int64_t lo, int64_t hi, int64_t *n)
{
    sqlite3_stmt *st;
    *n = 0;
    if (rf_cache_prepare(
            c, "SELECT COUNT(*) FROM objects WHERE seq > ?1 AND seq <= ?2 AND kind = ?3", &st) != 0)
        return RF_ERR_DB;
    sqlite3_bind_int64(st, 1, lo);
    sqlite3_bind_int64(st, 2, hi);
    sqlite3_bind_int(st, 3, kind);
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW)
        *n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return s == SQLITE_ROW ? 0 : RF_ERR_DB;
}

int rf_cache_digest_walk(struct rf_cache *c, uint8_t kind, int64_t after, rf_cache_walk_fn fn,
                         void *ctx)
{
    sqlite3_stmt *st;
    if (rf_cache_prepare(c,
                         "SELECT o.seq, o.case_id, o.kind, d.seq IS NOT NULL, d.readable, d.blob"
                         " FROM objects o LEFT JOIN digests d ON d.seq = o.seq"
                         " WHERE o.seq > ?1 AND o.kind = ?2 ORDER BY o.seq",
                         &st) != 0)
        return RF_ERR_DB;
    sqlite3_bind_int64(st, 1, after);
    sqlite3_bind_int(st, 2, kind);
    int s, rc = 0;
    while (rc == 0 && (s = sqlite3_step(st)) == SQLITE_ROW) {
        const char *case_id = (const char *)sqlite3_column_text(st, 1);
        const uint8_t *blob = sqlite3_column_blob(st, 5);
        rc = fn(ctx, sqlite3_column_int64(st, 0), case_id ? case_id : "",
                (uint8_t)sqlite3_column_int(st, 2), sqlite3_column_int(st, 3),
                sqlite3_column_int(st, 4), blob, (size_t)sqlite3_column_bytes(st, 5));
    }
    if (rc == 0 && s != SQLITE_DONE)
        rc = RF_ERR_DB;
    sqlite3_finalize(st);
    return rc > 0 ? 0 : rc;
}

int rf_cache_digests_reset(struct rf_cache *c)
{
    sqlite3_stmt *st;
    if (rf_cache_prepare(c, "DELETE FROM digests", &st) != 0)
        return RF_ERR_DB;
    int s = sqlite3_step(st);
    sqlite3_finalize(st);
    return s == SQLITE_DONE ? rf_cache_meta_set(c, "digested", 0) : RF_ERR_DB;
}
