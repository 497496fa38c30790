/*
 * cache.c - the client's local SQLite cache (see cache.h).
 *
 * Schema (version 7, PRAGMA user_version):
 *   meta(key PRIMARY KEY, value)            -- "last_seq", "stored_floor", ...
 *   objects(seq PRIMARY KEY, case_id, kind, size, day, data BLOB NULL,
 *           roster, pack NULL)
 *       the ciphertext is at offset pack of objects/pack (cache_pack.c:
 *       what a sync stores), or in data (an object stored outside a write
 *       transaction, or before the pack), or, both NULL, the file
 *       objects/<seq> next to the database (over RF_CACHE_INLINE_MAX);
 *       roster is the version the server says was in force when it stored
 *       the object (state.h)
 *   rosters(version PRIMARY KEY, raw BLOB)  -- the verified roster chain
 *   blobs(key PRIMARY KEY, value BLOB)      -- e.g. the audit anchor
 *   digests(seq PRIMARY KEY, case_id, readable, blob)  -- sealed by local.c:
 *       a verified event's packed (lib/evrow.h, version 7), others JSON
 *   summaries(case_id PRIMARY KEY, last_seq, blob)     -- sealed by local.c
 *   outbox(id PRIMARY KEY AUTOINCREMENT, case_id, schedule, day, env)
 *       env is the sealed event envelope (ciphertext to the roster)
 *   grant_keys(seq, grant)                  -- grants for this client's key, every
 *       granter's (a member may post junk: readers try each), at most
 *       RF_GRANTS_PER_KEY_MAX per object
 *   grants(seq PRIMARY KEY, grant)          -- before grant_keys (one per object);
 *       its rows move to grant_keys at open
 *   granted(seq, keyid)                     -- grants this client made
 *   pins(case_id PRIMARY KEY, pk BLOB)      -- the person's key per case
 *   board(case_id PRIMARY KEY, gen, last_seq, blob)    -- sealed by local.c: the
 *       compact row the desk's board and `refuge cases` show (version 3); written with its
 *       summary in one savepoint, gen from meta "board_gen" (one more at
 *       every write, never reused), so a reader finds what changed since it
 *       last looked with an index range (board_gen), and `refuge cases`
 *       reads them in the listing's order (board_order); deleted with its
 *       summary (trigger board_gone)
 *   casekeys(case_id, keyid, seq, roster, maker, verified, sealed) (version 5)
 *       -- the case keys this client holds (cache_casekey.c): seq is the
 *       CASEKEY object's (0: made here, not posted yet), roster and maker its
 *       fields, verified 1/-1/0 (signature and maker's membership checked
 *       good / bad / not yet), sealed the object's plaintext sealed by local.c
 *   meta "digested" (version 4): every object numbered at or below it has
 *       a digest row (cache_local.c), so "anything undigested?" is a range
 *       of objects above it plus a look at the grants
 * WAL mode, synchronous NORMAL: the cache can always be rebuilt from the
 * server, so a lost last transaction costs a re-download, not data.
 *
 * Version 7 -> 8: the board pages (table board_pages, trigger
 * board_pages_stale; cache_pages.c, docs/protocol.md 16), created empty by
 * the schema. An older client refuses version 8: a row it deleted would
 * leave the pages behind the truth without the trigger.
 *
 * Version 6 -> 7: a verified event's digest row is packed (lib/evrow.h)
 * in place of JSON; the JSON rows already there are read as before (local.c
 * tells them by their first byte), so nothing is rewritten. An older client
 * refuses version 7: it would take a packed row for a damaged one.
 *
 * Versions 2 to 5 -> 6: board rows are packed (lib/boardrow.h, in place
 * of JSON), so the rows already there are built again from their
 * summaries (meta "board_fill", as 3 -> 4). Version 5 is another branch's
 * (a table of its own); its upgrade runs first, then this one.
 *
 * Version 3 -> 4: board rows carry what `refuge cases` lists (checklist,
 * notes, first_day, urgency beside the version 3 fields), so the rows
 * already there are built again (meta "board_fill", as 2 -> 3). The
 * "digested" mark starts absent (0): the first digest check looks at every
 * object once, as before, and sets it.
 *
 * Version 2 -> 3 adds board (created empty by the schema) and sets meta
 * "board_fill": local.c builds the rows of the summaries already there the
 * next time the home is opened with its key (rf_local_new).
 *
 * Version 1 -> 2 adds objects.roster; the objects downloaded before it (and
 * their digests and summaries) are forgotten, so the next sync downloads
 * them again with the roster version each was stored under. The outbox,
 * rosters, grants and blobs stay.
 */
#include "client/cache.h"
#include "client/cache_internal.h"
#include "lib/err.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const schema =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=NORMAL;"
    "PRAGMA cache_size=-32768;"        /* 32 MiB at most, as used: a sync reads each case back */
    "PRAGMA wal_autocheckpoint=16384;" /* 64 MiB of WAL between checkpoints: a sync writes in bulk
                                        */
    "PRAGMA mmap_size=2147418112;"     /* reads without a copy: a sync reads every case back */
    "PRAGMA temp_store=MEMORY;"        /* savepoints' journals and sorts: no temporary file */
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS objects(seq INTEGER PRIMARY KEY, case_id TEXT NOT NULL,"
    " kind INTEGER NOT NULL, size INTEGER NOT NULL, day INTEGER NOT NULL, data BLOB,"
    " roster INTEGER NOT NULL DEFAULT 0, pack INTEGER);"
    "CREATE INDEX IF NOT EXISTS objects_case ON objects(case_id, seq);"
    "CREATE TABLE IF NOT EXISTS rosters(version INTEGER PRIMARY KEY, raw BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS blobs(key TEXT PRIMARY KEY, value BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS digests(seq INTEGER PRIMARY KEY, case_id TEXT NOT NULL,"
    " readable INTEGER NOT NULL, blob BLOB);"
    "CREATE INDEX IF NOT EXISTS digests_case ON digests(case_id, seq);"
    "CREATE TABLE IF NOT EXISTS summaries(case_id TEXT PRIMARY KEY, last_seq INTEGER NOT NULL,"
    " blob BLOB NOT NULL);"
    "CREATE INDEX IF NOT EXISTS summaries_order ON summaries(last_seq);"
    "CREATE TABLE IF NOT EXISTS outbox(id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " case_id TEXT NOT NULL, schedule INTEGER NOT NULL, day INTEGER NOT NULL, env BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS grants(seq INTEGER PRIMARY KEY, grant BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS grant_keys(seq INTEGER NOT NULL, grant BLOB NOT NULL,"
    " PRIMARY KEY(seq, grant));"
    "INSERT OR IGNORE INTO grant_keys(seq, grant) SELECT seq, grant FROM grants;"
    "DELETE FROM grants WHERE seq IS NOT NULL;" /* no truncation: no write when empty */
    "CREATE TABLE IF NOT EXISTS granted(seq INTEGER NOT NULL, keyid BLOB NOT NULL,"
    " PRIMARY KEY(seq, keyid));"
    "CREATE TABLE IF NOT EXISTS pins(case_id TEXT PRIMARY KEY, pk BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS board(case_id TEXT PRIMARY KEY, gen INTEGER NOT NULL,"
    " last_seq INTEGER NOT NULL, blob BLOB NOT NULL);"
    "CREATE INDEX IF NOT EXISTS board_gen ON board(gen);"
    "CREATE INDEX IF NOT EXISTS board_order ON board(last_seq);"
    "CREATE TRIGGER IF NOT EXISTS board_gone AFTER DELETE ON summaries BEGIN"
    " DELETE FROM board WHERE case_id = old.case_id; END;"
    /* the board pages (cache_pages.c): a copy of the rows up to a
     * generation; a row deleted leaves them behind the truth: all dropped */
    "CREATE TABLE IF NOT EXISTS board_pages(page INTEGER PRIMARY KEY, blob BLOB NOT NULL);"
    "CREATE TRIGGER IF NOT EXISTS board_pages_stale AFTER DELETE ON board BEGIN"
    " DELETE FROM board_pages;"
    " DELETE FROM meta WHERE key IN ('board_pages_gen', 'board_pages_n'); END;"
    "CREATE TABLE IF NOT EXISTS casekeys(case_id TEXT NOT NULL, keyid BLOB NOT NULL,"
    " seq INTEGER NOT NULL, roster INTEGER NOT NULL, maker BLOB NOT NULL,"
    " verified INTEGER NOT NULL, sealed BLOB NOT NULL, PRIMARY KEY(case_id, keyid, seq));"
    "CREATE INDEX IF NOT EXISTS casekeys_keyid ON casekeys(keyid);";

#define CACHE_VERSION 8

/* Version 4 -> 5 (case keys, events version 2): the casekeys table is in
 * the schema; a version 4 client digested a CASEKEY object as "other" and
 * an event version 2 as broken, so those digests are dropped and the
 * "digested" mark moves below the first of them: the next update digests
 * them again (and rebuilds their cases' summaries). Version 5 also added
 * objects.pack (cache_pack.c, in place at open). */
static const char *const upgrade_4_5 =
    "UPDATE meta SET value = MIN(value, (SELECT IFNULL(MIN(seq) - 1, value) FROM objects"
    " WHERE kind = 9 OR (kind = 4 AND substr(data, 1, 4) = X'52464532')))"
    " WHERE key = 'digested';"
    "DELETE FROM digests WHERE seq IN (SELECT seq FROM objects WHERE kind = 9 OR"
    " (kind = 4 AND substr(data, 1, 4) = X'52464532'));"
    "PRAGMA user_version = 5;";

/* Versions 2 to 5 -> 6: the board rows of the summaries already there are
 * built (again, packed) by local.c, which has the key (the table itself is
 * in the schema). */
static const char *const upgrade_to_6 =
    "INSERT OR REPLACE INTO meta(key, value) VALUES('board_fill', 1);"
    "PRAGMA user_version = 8;";

/* Takes a version-1 cache (objects without roster) to version 2 (and 4): the
 * objects are downloaded again at the next sync. Large objects' files are
 * removed with their rows. */
static const char *const upgrade_1_2 =
    "BEGIN IMMEDIATE;"
    "ALTER TABLE objects ADD COLUMN roster INTEGER NOT NULL DEFAULT 0;"
    "DELETE FROM digests;"
    "DELETE FROM summaries;"
    "DELETE FROM meta WHERE key IN ('last_seq', 'stored_floor', 'stored_max', 'digested');"
    "PRAGMA user_version = 8;"; /* no summary left: no board row to build */

static int cache_version(sqlite3 *db, int *v)
{
    sqlite3_stmt *st;
    *v = 0;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
        return RF_ERR_DB;
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW)
        *v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return s == SQLITE_ROW ? 0 : RF_ERR_DB;
}

/* Whether the objects table already has the roster column (a new cache). */
static int has_column(sqlite3 *db, const char *name)
{
    sqlite3_stmt *st;
    int found = 0;
    if (sqlite3_prepare_v2(db, "SELECT 1 FROM pragma_table_info('objects') WHERE name = ?", -1, &st,
                           NULL) != SQLITE_OK)
        return 0;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    found = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    return found;
}

static int upgrade(struct rf_cache *c)
{
    int v = 0;
    int rc = cache_version(c->db, &v);
    if (rc != 0 || v == CACHE_VERSION)
        return rc;
    if (v > CACHE_VERSION)
        return RF_ERR_VERSION;
    if (v >= 2 && v <= 4 && sqlite3_exec(c->db, upgrade_4_5, NULL, NULL, NULL) != SQLITE_OK)
        return RF_ERR_DB;
    if (v >= 2 && v <= 5) /* 5 -> 6: the board rows packed (built again); and 7 */
        return sqlite3_exec(c->db, upgrade_to_6, NULL, NULL, NULL) == SQLITE_OK ? 0 : RF_ERR_DB;
    /* 6 -> 7 -> 8 (a new cache too: created just now by the schema; 7 -> 8
     * is the board pages' table and trigger, in the schema, no page yet) */
    if (v == 6 || v == 7 || has_column(c->db, "roster"))
        return sqlite3_exec(c->db, "PRAGMA user_version = 8", NULL, NULL, NULL) == SQLITE_OK
                   ? 0
                   : RF_ERR_DB;
    if (sqlite3_exec(c->db, upgrade_1_2, NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(c->db, "DELETE FROM objects; COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
        return RF_ERR_DB;
    }
    /* no row names a large object's file any more */
    DIR *d = opendir(c->objdir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        char path[PATH_MAX];
        if (e->d_name[0] != '.' &&
            snprintf(path, sizeof(path), "%s/%s", c->objdir, e->d_name) < (int)sizeof(path))
            unlink(path);
    }
    if (d)
        closedir(d);
    return 0;
}

int rf_cache_open(struct rf_cache **out, const struct rf_home *h)
{
    char path[PATH_MAX];
    *out = NULL;
    struct rf_cache *c = calloc(1, sizeof(*c));
    if (!c)
        return RF_ERR_NOMEM;
    c->pack_fd = -1;
    int rc = rf_home_path(h, "cache.db", path, sizeof(path));
    if (rc == 0)
        rc = rf_home_path(h, "objects", c->objdir, sizeof(c->objdir));
    if (rc != 0)
        goto fail;
    if (mkdir(c->objdir, 0700) != 0 && errno != EEXIST) {
        rc = RF_ERR_IO;
        goto fail;
    }
    mode_t old = umask(077);
    int src = sqlite3_open_v2(
        path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    umask(old);
    if (src != SQLITE_OK) {
        rc = RF_ERR_DB;
        goto fail;
    }
    sqlite3_busy_timeout(c->db, 5000);
    if (sqlite3_exec(c->db, schema, NULL, NULL, NULL) != SQLITE_OK) {
        rc = RF_ERR_DB;
        goto fail;
    }
    rc = upgrade(c);
    /* objects.pack (cache_pack.c): a column added in place with version 5
     * (an older client refuses a version 5 cache, so none reads a packed
     * row's NULL data as a missing file) */
    if (rc == 0 && !has_column(c->db, "pack") &&
        sqlite3_exec(c->db, "ALTER TABLE objects ADD COLUMN pack INTEGER", NULL, NULL, NULL) !=
            SQLITE_OK)
        rc = RF_ERR_DB;
    if (rc != 0)
        goto fail;
    *out = c;
    return 0;
fail:
    rf_cache_close(c);
    return rc;
}

void rf_cache_close(struct rf_cache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < sizeof(c->kept) / sizeof(c->kept[0]); i++)
        sqlite3_finalize(c->kept[i]);
    sqlite3_close(c->db);
    rf_pack_close(c);
    free(c);
}

int rf_cache_exec(struct rf_cache *c, const char *sql)
{
    return sqlite3_exec(c->db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : RF_ERR_DB;
}

int rf_cache_begin(struct rf_cache *c)
{
    int rc = rf_cache_exec(c, "BEGIN IMMEDIATE");
    if (rc == 0)
        rf_pack_begin(c);
    return rc;
}

int rf_cache_commit(struct rf_cache *c)
{
    int rc = c->in_wtx ? rf_pack_commit(c) : 0; /* the pack's bytes on disk first */
    if (rc != 0) {
        rf_cache_rollback(c);
        return rc;
    }
    rc = rf_cache_exec(c, "COMMIT");
    if (c->in_wtx)
        rf_pack_end(c, rc == 0 || sqlite3_get_autocommit(c->db));
    return rc;
}

void rf_cache_rollback(struct rf_cache *c)
{
    rf_cache_exec(c, "ROLLBACK");
    if (c->in_wtx)
        rf_pack_end(c, 0);
}

int rf_cache_prepare(struct rf_cache *c, const char *sql, sqlite3_stmt **st)
{
    return sqlite3_prepare_v2(c->db, sql, -1, st, NULL) == SQLITE_OK ? 0 : RF_ERR_DB;
}

/* A statement prepared once and kept (the desk's board runs these for
 * every row of a page: parsing the SQL each time was a tenth of a board in
 * the profile; a cold sync runs four of them for every object: a tenth of
 * its client CPU). The caller resets it after stepping (rf_cache_done), so no read
 * transaction stays open. */
int rf_cache_kept(struct rf_cache *c, int slot, const char *sql, sqlite3_stmt **st)
{
    if (!c->kept[slot] && sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
                                             &c->kept[slot], NULL) != SQLITE_OK)
        return RF_ERR_DB;
    *st = c->kept[slot];
    return 0;
}

void rf_cache_done(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

int rf_cache_last_seq(struct rf_cache *c, int64_t *seq)
{
    sqlite3_stmt *st;
    *seq = 0;
    if (rf_cache_prepare(c, "SELECT value FROM meta WHERE key='last_seq'", &st) != 0)
        return RF_ERR_DB;
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW)
        *seq = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return (s == SQLITE_ROW || s == SQLITE_DONE) ? 0 : RF_ERR_DB;
}

int rf_cache_set_last_seq(struct rf_cache *c, int64_t seq)
{
    sqlite3_stmt *st;
    if (rf_cache_prepare(c, "INSERT OR REPLACE INTO meta(key, value) VALUES('last_seq', ?)", &st) !=
        0)
        return RF_ERR_DB;
    sqlite3_bind_int64(st, 1, seq);
    int s = sqlite3_step(st);
    sqlite3_finalize(st);
    return s == SQLITE_DONE ? 0 : RF_ERR_DB;
}

int rf_cache_object_put(struct rf_cache *c, const struct rf_cobj *o, const uint8_t *data,
                        size_t len)
{
    sqlite3_stmt *st;
    int64_t off = -1;
    if (data && len > 0 && len == o->size) { /* into the pack, if in a write transaction */
        int rc = rf_pack_append(c, data, len, &off);
        if (rc != 0 && rc != RF_ERR_INVALID)
            return rc;
        if (rc != 0)
            off = -1;
    }
    if (rf_cache_kept(c, KEPT_OBJECT_PUT,
                      "INSERT OR REPLACE INTO objects(seq, case_id, kind, size, day, data, roster,"
                      " pack) VALUES(?, ?, ?, ?, ?, ?, ?, ?)",
                      &st) != 0)
        return RF_ERR_DB;
    sqlite3_bind_int64(st, 1, o->seq);
    sqlite3_bind_text(st, 2, o->case_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, o->kind);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)o->size);
    sqlite3_bind_int64(st, 5, o->day);
    if (data && off < 0)
        sqlite3_bind_blob64(st, 6, data, len, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 6);
    sqlite3_bind_int64(st, 7, o->roster);
    if (off >= 0)
        sqlite3_bind_int64(st, 8, off);
    else
        sqlite3_bind_null(st, 8);
    int s = sqlite3_step(st);
    rf_cache_done(st);
    return s == SQLITE_DONE ? 0 : RF_ERR_DB;
}

int rf_cache_file_path(struct rf_cache *c, int64_t seq, int tmp, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/%lld%s", c->objdir, (long long)seq, tmp ? ".tmp" : "");
    return (n < 0 || (size_t)n >= cap) ? RF_ERR_LIMIT : 0;
}

static int stream_file(const char *path, rf_sink_fn sink, void *ctx)
{
    uint8_t *chunk = malloc(RF_ENV_CHUNK);
    int rc = 0;
    if (!chunk)
        return RF_ERR_NOMEM;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        free(chunk);
        return errno == ENOENT ? RF_ERR_NOT_FOUND : RF_ERR_IO;
    }
    for (;;) {
        ssize_t k = read(fd, chunk, RF_ENV_CHUNK);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            rc = RF_ERR_IO;
            break;
        }
        if (k == 0)
            break;
        rc = sink(ctx, chunk, (size_t)k);
        if (rc != 0)
            break;
    }
    close(fd);
    free(chunk);
    return rc;
}

int rf_cache_object_stream(struct rf_cache *c, int64_t seq, rf_sink_fn sink, void *ctx)
{
    sqlite3_stmt *st;
    char path[PATH_MAX];
    if (rf_cache_kept(c, KEPT_OBJECT_STREAM,
                      "SELECT data IS NULL, data, pack, size FROM objects WHERE seq = ?", &st) != 0)
        return RF_ERR_DB;
    sqlite3_bind_int64(st, 1, seq);
    int s = sqlite3_step(st), rc;
    if (s != SQLITE_ROW) {
        rf_cache_done(st);
        return s == SQLITE_DONE ? RF_ERR_NOT_FOUND : RF_ERR_DB;
    }
    if (sqlite3_column_type(st, 2) != SQLITE_NULL) { /* in the pack */
        int64_t off = sqlite3_column_int64(st, 2), size = sqlite3_column_int64(st, 3);
        rf_cache_done(st);
        return size < 0 || size > RF_CACHE_INLINE_MAX
                   ? RF_ERR_FORMAT
                   : rf_pack_read(c, off, (size_t)size, sink, ctx);
    }
    if (sqlite3_column_int(st, 0)) {
        rf_cache_done(st);
        rc = rf_cache_file_path(c, seq, 0, path, sizeof(path));
        return rc ? rc : stream_file(path, sink, ctx);
    }
    const uint8_t *p = sqlite3_column_blob(st, 1);
    size_t n = (size_t)sqlite3_column_bytes(st, 1);
    rc = 0;
    for (size_t off = 0; rc == 0 && off < n; off += RF_ENV_CHUNK) {
        size_t k = n - off < RF_ENV_CHUNK ? n - off : RF_ENV_CHUNK;
        rc = sink(ctx, p + off, k);
    }
    rf_cache_done(st);
    return rc;
}

int rf_cache_object_stream_at(struct rf_cache *c, const struct rf_cobj *o, rf_sink_fn sink,
                              void *ctx)
{
    if (o->pack > 0 && o->size <= RF_CACHE_INLINE_MAX)
        return rf_pack_read(c, o->pack - 1, (size_t)o->size, sink, ctx);
    return rf_cache_object_stream(c, o->seq, sink, ctx);
}

int rf_cache_cases(struct rf_cache *c, struct rf_ccase **out, size_t *n)
{
    sqlite3_stmt *st;
    size_t cap = 64, k = 0;
    int rc = 0;
    *out = NULL;
    *n = 0;
    if (rf_cache_prepare(
            c,
            "SELECT case_id, MIN(day), MAX(day), SUM(kind = 1), SUM(kind = 2), SUM(kind = 3),"
            " MIN(CASE WHEN kind = 1 THEN seq END), MAX(seq) FROM objects"
            " GROUP BY case_id ORDER BY MAX(seq) DESC",
            &st) != 0)
        return RF_ERR_DB;
    struct rf_ccase *v = malloc(cap * sizeof(*v));
    if (!v) {
        sqlite3_finalize(st);
        return RF_ERR_NOMEM;
    }
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        if (k == cap) {
            struct rf_ccase *nv = realloc(v, 2 * cap * sizeof(*v));
            if (!nv) {
                rc = RF_ERR_NOMEM;
                break;
            }
            v = nv;
            cap *= 2;
        }
        struct rf_ccase *cs = &v[k++];
        memset(cs, 0, sizeof(*cs));
        snprintf(cs->case_id, sizeof(cs->case_id), "%s", (const char *)sqlite3_column_text(st, 0));
        cs->first_day = (uint32_t)sqlite3_column_int64(st, 1);
        cs->last_day = (uint32_t)sqlite3_column_int64(st, 2);
        cs->messages = (unsigned)sqlite3_column_int(st, 3);
        cs->files = (unsigned)sqlite3_column_int(st, 4);
        cs->replies = (unsigned)sqlite3_column_int(st, 5);
        cs->first_message_seq = sqlite3_column_int64(st, 6);
        cs->last_seq = sqlite3_column_int64(st, 7);
    }
    if (rc == 0 && s != SQLITE_DONE)
        rc = RF_ERR_DB;
    sqlite3_finalize(st);
    if (rc != 0) {
        free(v);
        return rc;
    }
    *out = v;
    *n = k;
    return 0;
}

/* Reads rows (seq, case_id, kind, size, day, roster) of st into a malloc'd array. */
void rf_cache_row_cobj(sqlite3_stmt *st, struct rf_cobj *o)
{
    const char *cid = (const char *)sqlite3_column_text(st, 1);
    memset(o, 0, sizeof(*o));
    o->seq = sqlite3_column_int64(st, 0);
    snprintf(o->case_id, sizeof(o->case_id), "%s", cid ? cid : "");
    o->kind = (uint8_t)sqlite3_column_int(st, 2);
    o->size = (uint64_t)sqlite3_column_int64(st, 3);
    o->day = (uint32_t)sqlite3_column_int64(st, 4);
    o->roster = (uint32_t)sqlite3_column_int64(st, 5);
    if (sqlite3_column_count(st) > 6 && sqlite3_column_type(st, 6) == SQLITE_INTEGER &&
        sqlite3_column_int64(st, 6) >= 0)
        o->pack = sqlite3_column_int64(st, 6) + 1;
}

int rf_cache_collect(sqlite3_stmt *st, struct rf_cobj **out, size_t *n)
{
    size_t cap = 64, k = 0;
    int rc = 0, s;
    struct rf_cobj *v = malloc(cap * sizeof(*v));
    *out = NULL;
    *n = 0;
    if (!v)
        return RF_ERR_NOMEM;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        if (k == cap) {
            struct rf_cobj *nv = realloc(v, 2 * cap * sizeof(*v));
            if (!nv) {
                rc = RF_ERR_NOMEM;
                break;
            }
            v = nv;
            cap *= 2;
        }
        rf_cache_row_cobj(st, &v[k++]);
    }
    if (rc == 0 && s != SQLITE_DONE)
        rc = RF_ERR_DB;
    if (rc != 0) {
        free(v);
        return rc;
    }
    *out = v;
    *n = k;
    return 0;
}

int rf_cache_case_objects(struct rf_cache *c, const char *case_id, struct rf_cobj **out, size_t *n)
{
    sqlite3_stmt *st;
    *out = NULL;
    *n = 0;
    if (rf_cache_kept(c, KEPT_CASE_OBJECTS,
                      "SELECT seq, case_id, kind, size, day, roster FROM objects"
                      " WHERE case_id = ? ORDER BY seq",
                      &st) != 0)
        return RF_ERR_DB;
    sqlite3_bind_text(st, 1, case_id, -1, SQLITE_STATIC);
    int rc = rf_cache_collect(st, out, n);
    rf_cache_done(st);
    if (rc == 0 && *n == 0) {
        free(*out);
        *out = NULL;
        rc = RF_ERR_NOT_FOUND;
    }
    return rc;
}

int rf_cache_roster_max(struct rf_cache *c, uint32_t *version)
{
    sqlite3_stmt *st;
    *version = 0;
    if (rf_cache_prepare(c, "SELECT IFNULL(MAX(version), 0) FROM rosters", &st) != 0)
        return RF_ERR_DB;
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW)
        *version = (uint32_t)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return s == SQLITE_ROW ? 0 : RF_ERR_DB;
}

int rf_cache_roster_get(struct rf_cache *c, uint32_t version, struct rf_buf *raw)
{
    sqlite3_stmt *st;
    if (rf_cache_prepare(c, "SELECT raw FROM rosters WHERE version = ?", &st) != 0)
        return RF_ERR_DB;
    sqlite3_bind_int64(st, 1, version);
    int s = sqlite3_step(st), rc;
    if (s == SQLITE_ROW)
        rc = rf_buf_put(raw, sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0));
    else
        rc = s == SQLITE_DONE ? RF_ERR_NOT_FOUND : RF_ERR_DB;
    sqlite3_finalize(st);
    return rc;
}

int rf_cache_put_keyed(struct rf_cache *c, const char *sql, int64_t key, const uint8_t *blob,
                       size_t n)
{
    sqlite3_stmt *st;
    if (rf_cache_prepare(c, sql, &st) != 0)
        return RF_ERR_DB;
    sqlite3_bind_int64(st, 1, key);
    sqlite3_bind_blob64(st, 2, blob, n, SQLITE_STATIC);
    int s = sqlite3_step(st);
    sqlite3_finalize(st);
    return s == SQLITE_DONE ? 0 : RF_ERR_DB;
}

int rf_cache_roster_put(struct rf_cache *c, uint32_t version, const uint8_t *raw, size_t n)
{
    return rf_cache_put_keyed(c, "INSERT OR REPLACE INTO rosters(version, raw) VALUES(?1, ?2)",
                              version, raw, n);
}

int rf_cache_case_last(struct rf_cache *c, const char *case_id, int64_t *seq)
{
    sqlite3_stmt *st;
    *seq = 0;
    if (rf_cache_kept(c, KEPT_CASE_LAST, "SELECT MAX(seq) FROM objects WHERE case_id = ?", &st) !=
        0)
        return RF_ERR_DB;
    sqlite3_bind_text(st, 1, case_id, -1, SQLITE_STATIC);
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW)
        *seq = sqlite3_column_int64(st, 0); /* NULL: 0 */
    rf_cache_done(st);
    return (s == SQLITE_ROW || s == SQLITE_DONE) ? 0 : RF_ERR_DB;
}

int rf_cache_mark(struct rf_cache *c, int64_t mark[3])
{
    sqlite3_stmt *st;
    mark[0] = mark[1] = mark[2] = 0;
    if (rf_cache_prepare(c,
                         "SELECT (SELECT MAX(seq) FROM objects), (SELECT COUNT(*) FROM grant_keys),"
                         " (SELECT value FROM meta WHERE key = 'last_seq')",
                         &st) != 0)
        return RF_ERR_DB;
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
        for (int i = 0; i < 3; i++)
            mark[i] = sqlite3_column_int64(st, i);
    }
    sqlite3_finalize(st);
    return s == SQLITE_ROW ? 0 : RF_ERR_DB;
}

int rf_cache_meta_get(struct rf_cache *c, const char *key, int64_t *v)
{
    sqlite3_stmt *st;
    *v = 0;
    if (rf_cache_kept(c, KEPT_META_GET, "SELECT value FROM meta WHERE key = ?", &st) != 0)
        return RF_ERR_DB;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW)
        *v = sqlite3_column_int64(st, 0);
    rf_cache_done(st);
    return (s == SQLITE_ROW || s == SQLITE_DONE) ? 0 : RF_ERR_DB;
}

int rf_cache_meta_set(struct rf_cache *c, const char *key, int64_t v)
{
    sqlite3_stmt *st;
    if (rf_cache_prepare(c, "INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)", &st) != 0)
        return RF_ERR_DB;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, v);
    int s = sqlite3_step(st);
    sqlite3_finalize(st);
    return s == SQLITE_DONE ? 0 : RF_ERR_DB;
}

/* Runs a one-row SELECT of a blob (bound to text key) into out. */
int rf_cache_get_blob(struct rf_cache *c, const char *sql, const char *key, struct rf_buf *out)
{
    sqlite3_stmt *st;
    if (rf_cache_prepare(c, sql, &st) != 0)
        return RF_ERR_DB;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int s = sqlite3_step(st), rc;
    if (s == SQLITE_ROW)
        rc = rf_buf_put(out, sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0));
    else
        rc = s == SQLITE_DONE ? RF_ERR_NOT_FOUND : RF_ERR_DB;
    sqlite3_finalize(st);
    return rc;
}

int rf_cache_blob_get(struct rf_cache *c, const char *key, struct rf_buf *out)
{
    return rf_cache_get_blob(c, "SELECT value FROM blobs WHERE key = ?", key, out);
}

int rf_cache_blob_set(struct rf_cache *c, const char *key, const uint8_t *p, size_t n)
{
    sqlite3_stmt *st;
    if (rf_cache_prepare(c, "INSERT OR REPLACE INTO blobs(key, value) VALUES(?, ?)", &st) != 0)
        return RF_ERR_DB;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_blob64(st, 2, p, n, SQLITE_STATIC);
    int s = sqlite3_step(st);
    sqlite3_finalize(st);
    return s == SQLITE_DONE ? 0 : RF_ERR_DB;
}

struct head_ctx {
    struct rf_buf *out;
    size_t max;
};

static int head_sink(void *v, const uint8_t *p, size_t n)
{
    struct head_ctx *h = v;
    size_t room = h->max - h->out->len;
    int rc = rf_buf_put(h->out, p, n < room ? n : room);
    if (rc == 0 && h->out->len == h->max)
        return RF_ERR_CANCELLED; /* enough: stop reading */
    return rc;
}

int rf_cache_object_head(struct rf_cache *c, int64_t seq, struct rf_buf *out, size_t max)
{
    struct head_ctx h = {out, max};
    if (max == 0)
        return RF_ERR_INVALID;
    int rc = rf_cache_object_stream(c, seq, head_sink, &h);
    return rc == RF_ERR_CANCELLED ? 0 : rc;
}

int rf_cache_case_ids(struct rf_cache *c, char (**out)[RF_CASE_ID_LEN + 1], size_t *n)
{
    sqlite3_stmt *st;
    size_t cap = 64, k = 0;
    int s, rc = 0;
    *out = NULL;
    *n = 0;
    if (rf_cache_prepare(
            c, "SELECT case_id FROM objects UNION SELECT case_id FROM outbox ORDER BY case_id",
            &st) != 0)
        return RF_ERR_DB;
    char(*v)[RF_CASE_ID_LEN + 1] = malloc(cap * sizeof(*v));
    if (!v) {
        sqlite3_finalize(st);
        return RF_ERR_NOMEM;
    }
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        if (k == cap) {
            char(*nv)[RF_CASE_ID_LEN + 1] = realloc(v, 2 * cap * sizeof(*v));
            if (!nv) {
                rc = RF_ERR_NOMEM;
                break;
            }
            v = nv;
            cap *= 2;
        }
        snprintf(v[k++], sizeof(v[0]), "%s", (const char *)sqlite3_column_text(st, 0));
    }
    if (rc == 0 && s != SQLITE_DONE)
        rc = RF_ERR_DB;
    sqlite3_finalize(st);
    if (rc != 0) {
        free(v);
        return rc;
    }
    *out = v;
    *n = k;
    return 0;
}

int rf_cache_outbox_add(struct rf_cache *c, const char *case_id, int schedule, uint32_t day,
                        const uint8_t *env, size_t n)
{
    sqlite3_stmt *st;
    if (rf_cache_prepare(c, "INSERT INTO outbox(case_id, schedule, day, env) VALUES(?, ?, ?, ?)",
                         &st) != 0)
        return RF_ERR_DB;
    sqlite3_bind_text(st, 1, case_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, schedule);
    sqlite3_bind_int64(st, 3, day);
    sqlite3_bind_blob64(st, 4, env, n, SQLITE_STATIC);
    int s = sqlite3_step(st);
    sqlite3_finalize(st);
    return s == SQLITE_DONE ? 0 : RF_ERR_DB;
}

/* Ends a statement of rf_cache_outbox_list: reset if kept, else finalized. */
static void outbox_stmt_end(sqlite3_stmt *st, int kept)
{
    if (kept)
        rf_cache_done(st);
    else
        sqlite3_finalize(st);
}

int rf_cache_outbox_list(struct rf_cache *c, const char *case_id, struct rf_coutbox **out,
                         size_t *n)
{
    sqlite3_stmt *st;
    size_t cap = 16, k = 0;
    int s, rc = 0;
    *out = NULL;
    *n = 0;
    /* by case: once per case of a sync's summaries, so kept */
    if (case_id
            ? rf_cache_kept(c, KEPT_CASE_OUTBOX,
                            "SELECT id, case_id, schedule, day FROM outbox WHERE case_id = ?"
                            " ORDER BY id",
                            &st)
            : rf_cache_prepare(c, "SELECT id, case_id, schedule, day FROM outbox ORDER BY id", &st))
        return RF_ERR_DB;
    if (case_id)
        sqlite3_bind_text(st, 1, case_id, -1, SQLITE_STATIC);
    struct rf_coutbox *v = malloc(cap * sizeof(*v));
    if (!v) {
        outbox_stmt_end(st, case_id != NULL);
        return RF_ERR_NOMEM;
    }
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        if (k == cap) {
            struct rf_coutbox *nv = realloc(v, 2 * cap * sizeof(*v));
            if (!nv) {
                rc = RF_ERR_NOMEM;
                break;
            }
            v = nv;
            cap *= 2;
        }
        struct rf_coutbox *o = &v[k++];
        o->id = sqlite3_column_int64(st, 0);
        snprintf(o->case_id, sizeof(o->case_id), "%s", (const char *)sqlite3_column_text(st, 1));
        o->schedule = sqlite3_column_int(st, 2);
        o->day = (uint32_t)sqlite3_column_int64(st, 3);
    }
    if (rc == 0 && s != SQLITE_DONE)
        rc = RF_ERR_DB;
    outbox_stmt_end(st, case_id != NULL);
    if (rc != 0) {
        free(v);
        return rc;
    }
    *out = v;
    *n = k;
    return 0;
}

int rf_cache_outbox_get(struct rf_cache *c, int64_t id, struct rf_buf *env)
{
    sqlite3_stmt *st;
    if (rf_cache_prepare(c, "SELECT env FROM outbox WHERE id = ?", &st) != 0)
        return RF_ERR_DB;
    sqlite3_bind_int64(st, 1, id);
    int s = sqlite3_step(st), rc;
    if (s == SQLITE_ROW)
        rc = rf_buf_put(env, sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0));
    else
        rc = s == SQLITE_DONE ? RF_ERR_NOT_FOUND : RF_ERR_DB;
    sqlite3_finalize(st);
    return rc;
}

int rf_cache_outbox_replace(struct rf_cache *c, int64_t id, const uint8_t *env, size_t n)
{
    sqlite3_stmt *st;
    if (rf_cache_prepare(c, "UPDATE outbox SET env = ? WHERE id = ?", &st) != 0)
        return RF_ERR_DB;
    sqlite3_bind_blob64(st, 1, env, n, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, id);
    int s = sqlite3_step(st);
    sqlite3_finalize(st);
    return s == SQLITE_DONE ? 0 : RF_ERR_DB;
}

int rf_cache_outbox_del(struct rf_cache *c, int64_t id)
{
    sqlite3_stmt *st;
    if (rf_cache_prepare(c, "DELETE FROM outbox WHERE id = ?", &st) != 0)
        return RF_ERR_DB;
    sqlite3_bind_int64(st, 1, id);
    int s = sqlite3_step(st);
    sqlite3_finalize(st);
    return s == SQLITE_DONE ? 0 : RF_ERR_DB;
}

int rf_cache_grant_put(struct rf_cache *c, int64_t seq, const uint8_t grant[RF_GRANT_BYTES])
{
    sqlite3_stmt *st;
    if (rf_cache_prepare(c,
                         "INSERT OR IGNORE INTO grant_keys(seq, grant) SELECT ?1, ?2 WHERE"
                         " (SELECT count(*) FROM grant_keys WHERE seq = ?1) < ?3",
                         &st) != 0)
        return RF_ERR_DB;
    sqlite3_bind_int64(st, 1, seq);
    sqlite3_bind_blob(st, 2, grant, RF_GRANT_BYTES, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, RF_GRANTS_PER_KEY_MAX);
    int s = sqlite3_step(st);
    sqlite3_finalize(st);
    return s == SQLITE_DONE ? 0 : RF_ERR_DB;
}

int rf_cache_grants_get(struct rf_cache *c, int64_t seq, uint8_t (*out)[RF_GRANT_BYTES], size_t cap,
                        size_t *n)
{
    sqlite3_stmt *st;
    *n = 0;
    if (rf_cache_kept(c, KEPT_GRANTS_GET,
                      "SELECT grant FROM grant_keys WHERE seq = ? ORDER BY rowid", &st) != 0)
        return RF_ERR_DB;
    sqlite3_bind_int64(st, 1, seq);
    int s = SQLITE_DONE;
    while (*n < cap && (s = sqlite3_step(st)) == SQLITE_ROW) {
        if (sqlite3_column_bytes(st, 0) != RF_GRANT_BYTES)
            continue; /* not a grant: ignored like a junk one */
        memcpy(out[(*n)++], sqlite3_column_blob(st, 0), RF_GRANT_BYTES);
    }
    int rc = *n == cap || s == SQLITE_DONE ? 0 : RF_ERR_DB;
    rf_cache_done(st);
    return rc;
}

int rf_cache_granted(struct rf_cache *c, int64_t seq, const uint8_t keyid[RF_ENV_KEYID_BYTES])
{
    sqlite3_stmt *st;
    if (rf_cache_prepare(c, "SELECT 1 FROM granted WHERE seq = ? AND keyid = ?", &st) != 0)
        return 0;
    sqlite3_bind_int64(st, 1, seq);
    sqlite3_bind_blob(st, 2, keyid, RF_ENV_KEYID_BYTES, SQLITE_STATIC);
    int s = sqlite3_step(st);
    sqlite3_finalize(st);
    return s == SQLITE_ROW;
}

int rf_cache_granted_put(struct rf_cache *c, int64_t seq, const uint8_t keyid[RF_ENV_KEYID_BYTES])
{
    sqlite3_stmt *st;
    if (rf_cache_prepare(c, "INSERT OR IGNORE INTO granted(seq, keyid) VALUES(?, ?)", &st) != 0)
        return RF_ERR_DB;
    sqlite3_bind_int64(st, 1, seq);
    sqlite3_bind_blob(st, 2, keyid, RF_ENV_KEYID_BYTES, SQLITE_STATIC);
    int s = sqlite3_step(st);
    sqlite3_finalize(st);
    return s == SQLITE_DONE ? 0 : RF_ERR_DB;
}

int rf_cache_pin_get(struct rf_cache *c, const char *case_id, uint8_t pk[32])
{
    sqlite3_stmt *st;
    if (rf_cache_prepare(c, "SELECT pk FROM pins WHERE case_id = ?", &st) != 0)
        return RF_ERR_DB;
    sqlite3_bind_text(st, 1, case_id, -1, SQLITE_STATIC);
    int s = sqlite3_step(st), rc = RF_ERR_NOT_FOUND;
    if (s == SQLITE_ROW && sqlite3_column_bytes(st, 0) == 32) {
        memcpy(pk, sqlite3_column_blob(st, 0), 32);
        rc = 0;
    } else if (s == SQLITE_ROW) {
        rc = RF_ERR_FORMAT;
    } else if (s != SQLITE_DONE) {
        rc = RF_ERR_DB;
    }
    sqlite3_finalize(st);
    return rc;
}

int rf_cache_pin_put(struct rf_cache *c, const char *case_id, const uint8_t pk[32])
{
    sqlite3_stmt *st;
    if (rf_cache_prepare(c, "INSERT OR IGNORE INTO pins(case_id, pk) VALUES(?, ?)", &st) != 0)
        return RF_ERR_DB;
    sqlite3_bind_text(st, 1, case_id, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, pk, 32, SQLITE_STATIC);
    int s = sqlite3_step(st);
    sqlite3_finalize(st);
    return s == SQLITE_DONE ? 0 : RF_ERR_DB;
}
