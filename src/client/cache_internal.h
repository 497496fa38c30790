/*
 * cache_internal.h - what the two files of the client's cache share
 * (cache.c: opening, the schema and its upgrades, objects, rosters, meta,
 * outbox, grants, pins; cache_local.c: the sealed rows of the local case
 * database: digests, summaries, board rows, and the "digested up to" mark;
 * cache_casekey.c: the case keys; cache_pages.c: the board pages).
 * Nothing outside them may include it.
 */
#ifndef RF_CLIENT_CACHE_INTERNAL_H
#define RF_CLIENT_CACHE_INTERNAL_H

#include "client/cache.h"

#include <limits.h>
#include <sqlite3.h>
#include <stdint.h>

enum {
    KEPT_CASE_LAST,
    KEPT_META_GET,
    KEPT_BOARD_SINCE,
    KEPT_BOARD_COUNT,
    KEPT_OBJECT_PUT,
    KEPT_OBJECT_STREAM,
    KEPT_DIGEST_PUT,
    KEPT_GRANTS_GET,
    KEPT_CASE_DIGESTS,
    KEPT_CASE_OBJECTS,
    KEPT_CASE_OUTBOX,
    KEPT_SUMMARY_PUT,
    KEPT_BOARD_GEN,
    KEPT_BOARD_PUT,
    KEPT_BOARD_DELETE,
    KEPT_SAVEPOINT_SUMMARY,
    KEPT_RELEASE_SUMMARY,
    KEPT_ROLLBACK_SUMMARY,
    KEPT_SAVEPOINT_BOARD,
    KEPT_RELEASE_BOARD,
    KEPT_ROLLBACK_BOARD,
    KEPT_BOARD_GEN_READ,
    KEPT_BOARD_PUT_GEN,
    KEPT_CASEKEYS_FIND,
    KEPT_CASEKEYS_ALL,
    KEPT_CASEKEYS_UNREADABLE,
    KEPT_CASEKEYS_PUT,
    KEPT_COUNT
};

struct rf_cache {
    sqlite3 *db;
    char objdir[PATH_MAX];
    int64_t summary_writes; /* summary rows written through this handle */
    int64_t bulk_gen;       /* in a bulk refresh (rf_cache_summaries_bulk): its board
                             * generation, else 0 */
    /* the objects' pack (cache_pack.c) */
    int pack_fd;       /* -1 until first used */
    int in_wtx;        /* inside rf_cache_begin .. commit/rollback */
    int pack_known;    /* pack_base/pack_end read in this transaction */
    int64_t pack_base; /* the pack's size at the transaction's first append */
    int64_t pack_end;  /* its logical end, buffer included */
    uint8_t *pack_buf; /* appends not written yet */
    size_t pack_buflen;
    uint8_t *win; /* read window, in a write transaction only */
    int64_t win_off;
    size_t win_len;
    sqlite3_stmt *kept[KEPT_COUNT]; /* statements run for every row of a board page, every
                                     * object of a sync or every case's summary (rf_cache_kept) */
};

/* cache_local.c: one integer a query gives (-1 if none); a second
 * connection to the cache's database, for reading only (NULL if none). */
int64_t rf_cache_single_int(sqlite3 *db, const char *sql);
/* sql prepared on db with its two bounds ?1 = lo, ?2 = hi bound (a split
 * read's half: the board's rowids, the board pages). */
int rf_cache_range_stmt(sqlite3 *db, const char *sql, int64_t lo, int64_t hi, sqlite3_stmt **st);
sqlite3 *rf_cache_reader_open(struct rf_cache *c);

/* cache.c: one row of sql (?1 an integer key, ?2 a blob) written. */
int rf_cache_put_keyed(struct rf_cache *c, const char *sql, int64_t key, const uint8_t *blob,
                       size_t n);

/* The pack (cache_pack.c). */
void rf_pack_begin(struct rf_cache *c);
/* Appends n bytes (in a write transaction: else RF_ERR_INVALID, and the
 * caller keeps them in the row); *off is where they are. */
int rf_pack_append(struct rf_cache *c, const uint8_t *p, size_t n, int64_t *off);
/* Before COMMIT: what this transaction appended is written and on disk. */
int rf_pack_commit(struct rf_cache *c);
/* After COMMIT (committed 1) or ROLLBACK (0: the appends are cut off). */
void rf_pack_end(struct rf_cache *c, int committed);
/* n bytes at off to sink (RF_ERR_NOT_FOUND if the pack is shorter). */
int rf_pack_read(struct rf_cache *c, int64_t off, size_t n, rf_sink_fn sink, void *ctx);
void rf_pack_close(struct rf_cache *c);

/* One statement of SQL without rows: 0 or RF_ERR_DB. */
int rf_cache_exec(struct rf_cache *c, const char *sql);
/* A statement the caller finalizes. */
int rf_cache_prepare(struct rf_cache *c, const char *sql, sqlite3_stmt **st);
/* A statement prepared once per handle and kept in slot; the caller resets
 * it with rf_cache_done after stepping (no read transaction stays open). */
int rf_cache_kept(struct rf_cache *c, int slot, const char *sql, sqlite3_stmt **st);
void rf_cache_done(sqlite3_stmt *st);
/* One row (seq, case_id, kind, size, day, roster) of st. */
void rf_cache_row_cobj(sqlite3_stmt *st, struct rf_cobj *o);
/* Reads the rows (seq, case_id, kind, size, day, roster) of st into a
 * malloc'd array (*n of them, possibly 0). */
int rf_cache_collect(sqlite3_stmt *st, struct rf_cobj **out, size_t *n);
/* Runs a one-row SELECT of a blob (bound to text key) into out;
 * RF_ERR_NOT_FOUND without a row. */
int rf_cache_get_blob(struct rf_cache *c, const char *sql, const char *key, struct rf_buf *out);

#endif
