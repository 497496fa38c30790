/* cache_local_test.c - the local case database's rows (cache_local.c) and
 * the listing built on them: the "digested" mark covers only objects with
 * a digest and never passes the sync position or an object left for a
 * roster not verified yet, and an unreadable object below it that a grant
 * arrived for is still found; a version-3 home gets board rows that carry
 * every field `refuge cases` lists, and a version-4 home (JSON board rows)
 * gets them packed (version 6); and `refuge cases` from the board rows is
 * exactly the listing from the summaries (every field, order, filter; the
 * rows, and the bytes printed as text and --json) on a home with varied
 * cases, one of them with intake answers only JSON can hold. */
#include "client/cache.h"
#include "client/cmd.h"
#include "client/local.h"
#include "client/out.h"
#include "lib/boardrow.h"
#include "lib/casekey.h"
#include "lib/err.h"
#include "lib/roster.h"

#include <sqlite3.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "test_local.h"
#include "test_home.h"

#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int64_t mark(struct rf_cache *c)
{
    int64_t v = -1;
    assert_int_equal(rf_cache_meta_get(c, "digested", &v), 0);
    return v;
}

/* The objects rf_cache_undigested_after lists, as a bit per seq (1..63). */
static uint64_t undigested(struct rf_cache *c, int64_t after)
{
    struct rf_cobj *o = NULL;
    size_t n = 0;
    uint64_t bits = 0;
    assert_int_equal(rf_cache_undigested_after(c, after, &o, &n), 0);
    for (size_t i = 0; i < n; i++) {
        assert_true(o[i].seq > 0 && o[i].seq < 64);
        assert_true(i == 0 || o[i].seq > o[i - 1].seq); /* in order, once each */
        bits |= (uint64_t)1 << o[i].seq;
    }
    free(o);
    return bits;
}

#define BIT(s) ((uint64_t)1 << (s))

/* A cold sync drops the objects' and the digests' case indexes while it
 * writes (rf_cache_bulk_objects, rf_cache_bulk_digests) and builds them
 * again: the digests' only when none exists yet, in the transaction (a
 * rollback brings it back); a cache closed without the objects' one (a
 * sync cut off) gets it back when opened. */
static int has_index(struct home *t, const char *name)
{
    char path[PATH_MAX + 16];
    sqlite3 *db;
    sqlite3_stmt *st;
    snprintf(path, sizeof(path), "%s/cache.db", t->h.dir);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM sqlite_schema WHERE name = ?", -1, &st, NULL),
        SQLITE_OK);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

static void cold_sync_case_indexes(void **state)
{
    (void)state;
    struct home t;
    int dropped = 9;
    home_new(&t, "bulk");
    assert_int_equal(rf_cache_bulk_objects(t.c, 1), 0);
    assert_int_equal(has_index(&t, "objects_case"), 0);
    assert_int_equal(rf_cache_bulk_objects(t.c, 0), 0);
    assert_int_equal(has_index(&t, "objects_case"), 1);
    /* cut off between the two: back at the next open */
    assert_int_equal(rf_cache_bulk_objects(t.c, 1), 0);
    rf_cache_close(t.c);
    assert_int_equal(has_index(&t, "objects_case"), 0);
    assert_int_equal(rf_cache_open(&t.c, &t.h), 0);
    assert_int_equal(has_index(&t, "objects_case"), 1);

    /* no digest yet: dropped in the transaction, back on 0 or at a rollback */
    assert_int_equal(rf_cache_begin(t.c), 0);
    assert_int_equal(rf_cache_bulk_digests(t.c, 1, &dropped), 0);
    assert_int_equal(dropped, 1);
    assert_int_equal(rf_cache_bulk_digests(t.c, 0, &dropped), 0);
    assert_int_equal(rf_cache_commit(t.c), 0);
    assert_int_equal(has_index(&t, "digests_case"), 1);
    assert_int_equal(rf_cache_begin(t.c), 0);
    assert_int_equal(rf_cache_bulk_digests(t.c, 1, &dropped), 0);
    assert_int_equal(dropped, 1);
    rf_cache_rollback(t.c);
    assert_int_equal(has_index(&t, "digests_case"), 1);
    /* a digest row there: kept */
    assert_int_equal(rf_cache_digest_put(t.c, 1, "abcde23456", 0, NULL, 0), 0);
    assert_int_equal(rf_cache_begin(t.c), 0);
    assert_int_equal(rf_cache_bulk_digests(t.c, 1, &dropped), 0);
    assert_int_equal(dropped, 0);
    assert_int_equal(rf_cache_bulk_digests(t.c, 0, &dropped), 0);
    assert_int_equal(rf_cache_commit(t.c), 0);
    assert_int_equal(has_index(&t, "digests_case"), 1);
    home_free(&t);
}

/* The database file's write version (header byte 18): 2 in WAL, 1 with a
 * rollback journal. */
static int file_mode(struct home *t)
{
    char path[PATH_MAX + 16];
    uint8_t head[20];
    snprintf(path, sizeof(path), "%s/cache.db", t->h.dir);
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, head, sizeof(head), 0), (ssize_t)sizeof(head));
    close(fd);
    return head[18];
}

/* A cold digest leaves WAL for a rollback journal and comes back
 * (rf_cache_bulk_journal); not with a digest row there, nor while another
 * connection has the database open; a process cut off in between gets WAL
 * back at the next open. */
static void cold_digest_journal(void **state)
{
    (void)state;
    struct home t;
    int sw = 9;
    home_new(&t, "journal");
    assert_int_equal(file_mode(&t), 2);
    assert_int_equal(rf_cache_bulk_journal(t.c, 1, &sw), 0);
    assert_int_equal(sw, 1);
    assert_int_equal(file_mode(&t), 1);
    assert_int_equal(rf_cache_begin(t.c), 0);
    assert_int_equal(rf_cache_digest_put(t.c, 1, "abcde23456", 0, NULL, 0), 0);
    assert_int_equal(rf_cache_commit(t.c), 0);
    assert_int_equal(rf_cache_bulk_journal(t.c, 0, &sw), 0);
    assert_int_equal(sw, 0);
    assert_int_equal(file_mode(&t), 2);
    /* a digest row there: kept in WAL */
    assert_int_equal(rf_cache_bulk_journal(t.c, 1, &sw), 0);
    assert_int_equal(sw, 0);
    assert_int_equal(file_mode(&t), 2);
    home_free(&t);

    home_new(&t, "journal2");
    char path[PATH_MAX + 16];
    sqlite3 *other;
    snprintf(path, sizeof(path), "%s/cache.db", t.h.dir);
    assert_int_equal(sqlite3_open(path, &other), SQLITE_OK);
    assert_int_equal(sqlite3_exec(other, "SELECT count(*) FROM meta", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(rf_cache_bulk_journal(t.c, 1, &sw), 0);
    assert_int_equal(sw, 0); /* not alone: WAL stays */
    assert_int_equal(file_mode(&t), 2);
    sqlite3_close(other);
    /* cut off between the two: WAL again at the next open */
    assert_int_equal(rf_cache_bulk_journal(t.c, 1, &sw), 0);
    assert_int_equal(sw, 1);
    rf_cache_close(t.c);
    assert_int_equal(file_mode(&t), 1);
    assert_int_equal(rf_cache_open(&t.c, &t.h), 0);
    assert_int_equal(file_mode(&t), 2);
    home_free(&t);
}

static void digested_mark(void **state)
{
    (void)state;
    struct home t;
    struct rf_local *l;
    home_new(&t, "mark");
    intake(&t, 1, "abcde23456", "asylum", "high", 1);
    intake(&t, 2, "bcdef34567", "visa", "low", 2); /* not sealed to Anna */
    ev(&t, 3, "abcde23456", 1, 1, "stage", "verifying");
    assert_int_equal(rf_cache_set_last_seq(t.c, 3), 0);
    assert_int_equal(rf_local_new(&l, t.c, t.anna), 0);
    assert_int_equal(mark(t.c), 0); /* a new home: no mark yet, everything is looked at */
    assert_int_equal(undigested(t.c, INT64_MIN), BIT(1) | BIT(2) | BIT(3));
    assert_int_equal(rf_local_update(l, NULL), 0);
    assert_int_equal(mark(t.c), 3);
    assert_int_equal(undigested(t.c, INT64_MIN), 0);

    /* a grant arrives for the unreadable object below the mark: found from
     * the grants (a junk one here: it opens nothing, so it stays listed,
     * as before the mark) */
    uint8_t g[RF_GRANT_BYTES];
    randombytes_buf(g, sizeof(g));
    assert_int_equal(rf_cache_grant_put(t.c, 2, g), 0);
    assert_int_equal(undigested(t.c, INT64_MIN), BIT(2));
    assert_int_equal(undigested(t.c, 1), BIT(2));
    assert_int_equal(undigested(t.c, 2), 0); /* only above after */
    assert_int_equal(rf_local_update(l, NULL), 0);
    assert_int_equal(undigested(t.c, INT64_MIN), BIT(2));
    assert_int_equal(mark(t.c), 3);

    /* an event naming a roster not verified yet gets no digest: the mark
     * stays below it, however much above it is digested */
    ev(&t, 4, "abcde23456", 2, 2, "stage", "planning");
    intake(&t, 5, "cdefg45678", "shelter", "high", 1);
    assert_int_equal(rf_cache_set_last_seq(t.c, 5), 0);
    assert_int_equal(rf_local_update(l, NULL), 0);
    assert_int_equal(mark(t.c), 3);
    assert_int_equal(undigested(t.c, INT64_MIN), BIT(2) | BIT(4));
    assert_int_equal(undigested(t.c, 4), 0);

    /* an object above the sync position (not stored by a sync) is digested,
     * but the mark never passes the position */
    ev(&t, 7, "cdefg45678", 1, 3, "tag", "urgent");
    assert_int_equal(rf_local_update(l, NULL), 0);
    assert_int_equal(undigested(t.c, INT64_MIN), BIT(2) | BIT(4));
    /* once 4 has its digest (the roster verified), the mark moves up to the
     * sync position, then with it */
    assert_int_equal(rf_cache_digest_put(t.c, 4, "abcde23456", 0, NULL, 0), 0);
    int64_t m = 0;
    assert_int_equal(rf_cache_digested_advance(t.c, &m), 0);
    assert_int_equal(m, 5);
    assert_int_equal(mark(t.c), 5);
    assert_int_equal(rf_cache_set_last_seq(t.c, 9), 0);
    assert_int_equal(rf_local_update(l, NULL), 0); /* nothing to digest: the mark still moves */
    assert_int_equal(mark(t.c), 7);
    /* it never moves down */
    assert_int_equal(rf_cache_digested_advance(t.c, &m), 0);
    assert_int_equal(m, 7);
    rf_local_free(l);
    home_free(&t);
}

/* One case's board row, opened (NULL: none). */
struct pick {
    const struct rf_local *l;
    const char *id;
    json_t *row;
};

static int pick_row(void *ctx, const char *case_id, int64_t gen, int64_t last_seq,
                    const uint8_t *blob, size_t n)
{
    struct pick *p = ctx;
    (void)gen;
    (void)last_seq;
    if (strcmp(case_id, p->id) != 0)
        return 0;
    struct rf_buf plain;
    rf_buf_init_secure(&plain, 1 << 20);
    assert_int_equal(rf_local_board_open(p->l, case_id, blob, n, &plain), 0);
    struct rf_boardrow br;
    if (rf_boardrow_parse(&br, plain.data, plain.len) == 0) /* else NULL: not packed */
        p->row = rf_boardrow_to_json(&br);
    rf_buf_free(&plain);
    return 0;
}

static json_t *board_of(const struct rf_local *l, struct rf_cache *c, const char *case_id)
{
    struct pick p = {l, case_id, NULL};
    int64_t count = 0;
    assert_int_equal(rf_cache_board_since(c, 0, pick_row, &p, &count), 0);
    return p.row;
}

static int user_version(const char *path)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* Cache version 3 -> 4: a home whose board rows were written by version 3
 * (no checklist, notes, first_day, urgency) opens, and its rows are built
 * again, once, with the key. */
static void version_3_home_gets_full_board_rows(void **state)
{
    (void)state;
    struct home t;
    struct rf_local *l;
    char path[PATH_MAX];
    home_new(&t, "v3");
    assert_int_equal(rf_home_path(&t.h, "cache.db", path, sizeof(path)), 0);
    intake(&t, 1, "abcde23456", "asylum", "high", 1);
    ev(&t, 2, "abcde23456", 1, 1, "check", "passport");
    ev(&t, 3, "abcde23456", 1, 2, "note", "called back");
    assert_int_equal(rf_cache_set_last_seq(t.c, 3), 0);
    assert_int_equal(rf_local_new(&l, t.c, t.anna), 0);
    assert_int_equal(rf_local_update(l, NULL), 0);
    json_t *full = board_of(l, t.c, "abcde23456");
    assert_non_null(full);
    assert_true(json_is_true(json_object_get(json_object_get(full, "checklist"), "passport")));
    assert_int_equal(json_integer_value(json_object_get(full, "notes")), 1);
    assert_int_equal(json_integer_value(json_object_get(full, "first_day")), 20100);
    assert_string_equal(json_string_value(json_object_get(full, "urgency")), "high");
    assert_string_equal(json_string_value(json_object_get(full, "need")), "asylum");
    /* the row as version 3 wrote it */
    json_t *old = json_deep_copy(full);
    json_object_del(old, "checklist");
    json_object_del(old, "notes");
    json_object_del(old, "first_day");
    json_object_del(old, "urgency");
    char *s = json_dumps(old, JSON_COMPACT);
    struct rf_buf sealed;
    rf_buf_init(&sealed, 1 << 20);
    assert_int_equal(rf_local_seal(l, "board:abcde23456", (const uint8_t *)s, strlen(s), &sealed),
                     0);
    assert_int_equal(rf_cache_board_put(t.c, "abcde23456", 3, sealed.data, sealed.len), 0);
    rf_out_json_free(s);
    rf_buf_free(&sealed);
    json_decref(old);
    json_t *v3 = board_of(l, t.c, "abcde23456");
    assert_null(v3); /* JSON, not a packed row */
    rf_local_free(l);
    rf_cache_close(t.c);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 3", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    assert_int_equal(rf_cache_open(&t.c, &t.h), 0);
    assert_int_equal(user_version(path), 8);
    int64_t fill = 0;
    assert_int_equal(rf_cache_meta_get(t.c, "board_fill", &fill), 0);
    assert_int_equal(fill, 1);
    assert_int_equal(mark(t.c), 3); /* the mark stays: the digests are the same */
    assert_int_equal(rf_local_new(&l, t.c, t.anna), 0); /* builds the rows again */
    assert_int_equal(rf_cache_meta_get(t.c, "board_fill", &fill), 0);
    assert_int_equal(fill, 0);
    json_t *again = board_of(l, t.c, "abcde23456");
    assert_true(json_equal(again, full));
    json_decref(again);
    json_decref(full);
    rf_local_free(l);
    rf_cache_close(t.c);
    /* a version-1 home forgets its digests: its mark goes too */
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "CREATE TABLE o2 AS SELECT seq, case_id, kind, size, day, data"
                                  " FROM objects; DROP TABLE objects;"
                                  " ALTER TABLE o2 RENAME TO objects; PRAGMA user_version = 1",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(rf_cache_open(&t.c, &t.h), 0);
    assert_int_equal(user_version(path), 8);
    assert_int_equal(mark(t.c), 0);
    home_free(&t);
}

/* Cache version 4 -> 6: a home whose board rows are JSON (as version 4
 * wrote them: every key, null where the summary had none) opens, its rows
 * are built again packed, once, with the key, and read back the same. */
static void version_4_home_gets_packed_board_rows(void **state)
{
    (void)state;
    struct home t;
    struct rf_local *l;
    char path[PATH_MAX];
    home_new(&t, "v4");
    assert_int_equal(rf_home_path(&t.h, "cache.db", path, sizeof(path)), 0);
    intake(&t, 1, "abcde23456", "asylum", "high", 1);
    ev(&t, 2, "abcde23456", 1, 1, "tag", "urgent");
    ev(&t, 3, "abcde23456", 1, 2, "check", "passport");
    assert_int_equal(rf_cache_set_last_seq(t.c, 3), 0);
    assert_int_equal(rf_local_new(&l, t.c, t.anna), 0);
    assert_int_equal(rf_local_update(l, NULL), 0);
    json_t *full = board_of(l, t.c, "abcde23456");
    assert_non_null(full);
    assert_true(json_is_null(json_object_get(full, "due"))); /* a key with null */
    /* the row as version 4 wrote it: JSON */
    char *js = json_dumps(full, JSON_COMPACT);
    struct rf_buf sealed;
    rf_buf_init(&sealed, 1 << 20);
    assert_int_equal(rf_local_seal(l, "board:abcde23456", (const uint8_t *)js, strlen(js), &sealed),
                     0);
    assert_int_equal(rf_cache_board_put(t.c, "abcde23456", 3, sealed.data, sealed.len), 0);
    rf_out_json_free(js);
    rf_buf_free(&sealed);
    assert_null(board_of(l, t.c, "abcde23456")); /* not packed: not read as a row */
    rf_local_free(l);
    rf_cache_close(t.c);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 4", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    assert_int_equal(rf_cache_open(&t.c, &t.h), 0);
    assert_int_equal(user_version(path), 8);
    int64_t fill = 0;
    assert_int_equal(rf_cache_meta_get(t.c, "board_fill", &fill), 0);
    assert_int_equal(fill, 1);
    assert_int_equal(mark(t.c), 3);                     /* the digests stay */
    assert_int_equal(rf_local_new(&l, t.c, t.anna), 0); /* packs the rows */
    assert_int_equal(rf_cache_meta_get(t.c, "board_fill", &fill), 0);
    assert_int_equal(fill, 0);
    json_t *again = board_of(l, t.c, "abcde23456");
    assert_true(json_equal(again, full));
    json_decref(again);
    json_decref(full);
    rf_local_free(l);
    rf_cache_close(t.c);
    /* a version 5 (another branch's) is taken to 6 the same way */
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 5", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(rf_cache_open(&t.c, &t.h), 0);
    assert_int_equal(user_version(path), 8);
    assert_int_equal(rf_cache_meta_get(t.c, "board_fill", &fill), 0);
    assert_int_equal(fill, 1);
    home_free(&t);
}

/* What fn printed to stdout, as a string (free()). */
static char *printed(struct rf_ctx *x, const struct rf_view_filter *f, int json)
{
    char path[PATH_MAX];
    const char *tmp = getenv("REFUGE_TEST_TMP");
    snprintf(path, sizeof(path), "%s/cache_local_test_out.%d", tmp ? tmp : "/tmp", (int)getpid());
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    assert_true(saved >= 0 && fd >= 0);
    assert_true(dup2(fd, STDOUT_FILENO) >= 0);
    int rc = rf_view_cases_print(x, f, json);
    fflush(stdout);
    assert_true(dup2(saved, STDOUT_FILENO) >= 0);
    close(saved);
    assert_int_equal(rc, 0);
    off_t n = lseek(fd, 0, SEEK_END);
    char *out = calloc(1, (size_t)n + 1);
    assert_non_null(out);
    assert_int_equal(pread(fd, out, (size_t)n, 0), n);
    close(fd);
    unlink(path);
    return out;
}

/* The JSON route's bytes for the rows: jansson's own dump of
 * {"cases": rows without "pending"}, as `refuge cases --json` printed
 * before the packed rows. */
static char *jansson_listing(json_t *rows)
{
    json_t *copy = json_deep_copy(rows), *r;
    size_t i;
    json_array_foreach(copy, i, r) json_object_del(r, "pending");
    json_t *j = json_pack("{so}", "cases", copy);
    char *d = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(j);
    size_t n = strlen(d);
    char *out = malloc(n + 2);
    memcpy(out, d, n);
    memcpy(out + n, "\n", 2);
    rf_out_json_free(d);
    return out;
}

/* The listing both ways: from the board rows (rf_view_cases without a
 * text) and from the summaries (an empty text matches every case). */
static void same_listing(struct rf_ctx *x, const char *stage, const char *tag, const char *assignee,
                         size_t want)
{
    struct rf_view_filter fast = {.stage = stage, .tag = tag, .assignee = assignee};
    struct rf_view_filter slow = fast;
    slow.search = "";
    json_t *a = NULL, *b = NULL;
    size_t ta = 0, tb = 0;
    assert_int_equal(rf_view_cases(x, &fast, &a, &ta), 0);
    rf_view_forget();
    assert_int_equal(rf_view_cases(x, &slow, &b, &tb), 0);
    char *sa = json_dumps(a, JSON_COMPACT), *sb = json_dumps(b, JSON_COMPACT);
    if (strcmp(sa, sb) != 0)
        fail_msg("board rows: %s\nsummaries: %s", sa, sb);
    assert_int_equal(ta, tb);
    assert_int_equal(json_array_size(a), want);
    /* the bytes printed, text and JSON, both routes; JSON as jansson dumps */
    for (int json = 0; json < 2; json++) {
        char *pa = printed(x, &fast, json), *pb = printed(x, &slow, json);
        if (strcmp(pa, pb) != 0)
            fail_msg("printed from the board rows:\n%s\nfrom the summaries:\n%s", pa, pb);
        if (json) {
            char *pj = jansson_listing(a);
            if (strcmp(pa, pj) != 0)
                fail_msg("printed:\n%s\njansson:\n%s", pa, pj);
            free(pj);
        } else {
            assert_non_null(strstr(pa, want ? "CASE  " : "No case matches."));
        }
        free(pa);
        free(pb);
    }
    rf_out_json_free(sa);
    rf_out_json_free(sb);
    json_decref(a);
    json_decref(b);
}

static void listing_from_board_rows_is_the_summaries(void **state)
{
    (void)state;
    struct home t;
    struct rf_local *l;
    home_new(&t, "list");
    /* five cases: stages, assignees, tags, due dates, checklist, notes, an
     * unreadable intake, an event for a roster not verified yet, a pending
     * (outbox) event; the same last activity for two of them (order by id) */
    intake(&t, 1, "aaaaa22222", "asylum", "high", 1);
    intake(&t, 2, "bbbbb33333", "visa", "low", 1);
    intake(&t, 3, "ccccc44444", "shelter", "medium", 2); /* not sealed to Anna */
    intake(&t, 4, "ddddd55555", "money", "low", 1);
    ev(&t, 5, "aaaaa22222", 1, 1, "stage", "verifying");
    ev(&t, 6, "aaaaa22222", 1, 2, "assign", "Anna");
    ev(&t, 7, "aaaaa22222", 1, 3, "tag", "urgent");
    ev(&t, 8, "aaaaa22222", 1, 4, "due", "2027-01-15");
    ev(&t, 9, "aaaaa22222", 1, 5, "check", "passport");
    ev(&t, 10, "bbbbb33333", 1, 1, "tag", "family");
    ev(&t, 11, "bbbbb33333", 1, 2, "note", "a note");
    ev(&t, 12, "bbbbb33333", 1, 3, "stage", "planning");
    ev(&t, 13, "ddddd55555", 1, 1, "tag", "urgent");
    ev(&t, 14, "ddddd55555", 2, 2, "stage", "closed"); /* roster 2: not verified yet */
    ev(&t, 15, "eeeee66666", 1, 1, "assign", "Anna");  /* a case with events only */
    /* answers only JSON can hold (lib/boardrow.h tag JSON), and strings
     * that need escaping and sanitising */
    static const char odd[] =
        "{\"v\":1,\"type\":\"intake\",\"lang\":\"en\",\"answers\":[{\"id\":\"need\","
        "\"value\":[\"food\",3,{\"a\":[true,null,1.5]}]},{\"id\":\"urgency\",\"value\":"
        "\"d\u00eda \\u0007 \\\"q\\\" \\\\ \\t \\u202e\"}],\"text\":\"hi\"}";
    seal_obj(t.c, 16, "fffff77777", RF_KIND_MESSAGE, (const uint8_t(*)[32])t.pks, 1,
             (const uint8_t *)odd, strlen(odd));
    static const char esc[] =
        "{\"v\":1,\"type\":\"intake\",\"lang\":\"en\",\"answers\":[{\"id\":\"need\","
        "\"value\":[\"\u0436\u0438\u043b\u044c\u0435\",\"tab\\there\"]}],\"text\":\"hi\"}";
    seal_obj(t.c, 17, "ggggg88888", RF_KIND_MESSAGE, (const uint8_t(*)[32])t.pks, 1,
             (const uint8_t *)esc, strlen(esc));
    /* tags past the column's 31 bytes (the cell cut where the JSON route's
     * snprintf cuts it), one of them not ASCII (sanitised, counted in
     * columns) */
    ev(&t, 18, "ggggg88888", 1, 1, "tag", "a-tag-long-enough-to-be-cut-here");
    ev(&t, 19, "ggggg88888", 1, 2, "tag", "\u0441\u0440\u043e\u0447\u043d\u043e");
    ev(&t, 20, "ggggg88888", 1, 3, "tag", "zz");
    assert_int_equal(rf_cache_set_last_seq(t.c, 20), 0);
    struct rf_buf env;
    rf_buf_init(&env, 1 << 20);
    event_in(t.c, 0, "bbbbb33333", t.anna, (const uint8_t(*)[32])t.pks, 1, 1, 9, "assign", "Anna",
             &env);
    assert_int_equal(rf_cache_outbox_add(t.c, "bbbbb33333", -1, 20100, env.data, env.len), 0);
    rf_buf_free(&env);
    assert_int_equal(rf_local_new(&l, t.c, t.anna), 0);
    assert_int_equal(rf_local_update(l, NULL), 0);
    struct rf_ctx x;
    memset(&x, 0, sizeof(x));
    x.k = t.anna;
    x.c = t.c;
    x.l = l;
    same_listing(&x, NULL, NULL, NULL, 7);
    /* the rows shared out among threads (parts of 1 row, blocks of 2 rows
     * for --json), every filter: the same bytes */
    rf_view_cases_part_rows = 1;
    rf_view_cases_block_rows = 2;
    rf_cache_board_split_rows = 1; /* the board read as two halves, on two connections */
    same_listing(&x, NULL, NULL, NULL, 7);
    same_listing(&x, "new", NULL, NULL, 5);
    same_listing(&x, NULL, "urgent", NULL, 2);
    same_listing(&x, "closed", NULL, NULL, 0);
    rf_view_cases_block_rows = 1;
    same_listing(&x, NULL, NULL, "Anna", 3);
    rf_view_cases_part_rows = 2048;
    rf_view_cases_block_rows = 1024;
    rf_cache_board_split_rows = 16384;
    /* the board read as one and as two halves: the same rows, in order */
    struct rf_cache_board_list one, two;
    rf_cache_board_split_rows = SIZE_MAX;
    assert_int_equal(rf_cache_board_list(t.c, &one), 0);
    rf_cache_board_split_rows = 1;
    assert_int_equal(rf_cache_board_list(t.c, &two), 0);
    rf_cache_board_split_rows = 16384;
    assert_int_equal(one.n, 7);
    assert_int_equal(two.n, one.n);
    for (size_t i = 0; i < one.n; i++) {
        assert_string_equal(two.rows[i].case_id, one.rows[i].case_id);
        assert_int_equal(two.rows[i].last_seq, one.rows[i].last_seq);
        assert_int_equal(two.rows[i].gen, one.rows[i].gen);
        assert_int_equal(two.rows[i].n, one.rows[i].n);
        assert_memory_equal(two.rows[i].blob, one.rows[i].blob, one.rows[i].n);
        assert_true(i == 0 || one.rows[i].last_seq <= one.rows[i - 1].last_seq);
    }
    rf_cache_board_list_free(&one);
    rf_cache_board_list_free(&two);
    same_listing(&x, "verifying", NULL, NULL, 1);
    same_listing(&x, "new", NULL, NULL, 5);
    same_listing(&x, NULL, "urgent", NULL, 2);
    same_listing(&x, NULL, NULL, "Anna", 3);
    same_listing(&x, "planning", "family", "Anna", 1);
    same_listing(&x, "closed", NULL, NULL, 0);
    same_listing(&x, NULL, "\u0441\u0440\u043e\u0447\u043d\u043e", NULL, 1);
    struct rf_view_filter cut = {0};
    char *text = printed(&x, &cut, 0);
    assert_non_null(strstr(text, "a-tag-long-enough-to-be-cut-her\n"));
    free(text);
    /* a listing row: every field, pending marked */
    struct rf_view_filter f = {.stage = "planning"};
    json_t *rows = NULL;
    size_t total = 0;
    assert_int_equal(rf_view_cases(&x, &f, &rows, &total), 0);
    assert_int_equal(total, 7);
    json_t *r = json_array_get(rows, 0);
    assert_string_equal(json_string_value(json_object_get(r, "case")), "bbbbb33333");
    assert_true(json_is_true(json_object_get(r, "pending")));
    assert_int_equal(json_integer_value(json_object_get(r, "notes")), 1);
    assert_string_equal(json_string_value(json_object_get(r, "need")), "visa");
    json_decref(rows);
    rf_view_forget();
    rf_local_free(l);
    home_free(&t);
}

/* ---------------------------------------------------- the board pages */

/* Every row rf_local_board_each2 hands out, as "id last_seq gen hex(row)"
 * lines sorted; and the same from the board table itself. */
struct seen_rows {
    char lines[64][1024];
    size_t n, done;
};

static void put_line(char *out, const char *id, int64_t last_seq, const uint8_t *row, size_t n)
{
    int k = snprintf(out, 1024, "%s %lld ", id, (long long)last_seq);
    for (size_t i = 0; i < n && k + 3 < 1024; i++)
        k += snprintf(out + k, 1024 - (size_t)k, "%02x", row[i]);
}

static int seen_row(void *ctx, const char *case_id, int64_t gen, int64_t last_seq,
                    const uint8_t *row, size_t n)
{
    struct seen_rows *s = ctx;
    (void)gen;
    assert_true(s->n < 64);
    put_line(s->lines[s->n++], case_id, last_seq, row, n);
    return 0;
}

static void seen_done(void *ctx)
{
    ((struct seen_rows *)ctx)->done++;
}

static int line_cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* The rows read the way the listing reads them are the board's. */
static int rows_are_the_board(struct rf_local *l, struct rf_cache *c, size_t want)
{
    static struct seen_rows a[2], b;
    struct rf_cache_board_list list;
    struct rf_buf plain;
    memset(a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    void *ctx[2] = {&a[0], &a[1]};
    int rc = rf_local_board_each2(l, seen_row, seen_done, ctx);
    if (rc != 0)
        return rc;
    assert_true(a[0].done == 1 && a[1].done <= 1);
    for (size_t i = 0; i < a[1].n; i++)
        memcpy(a[0].lines[a[0].n++], a[1].lines[i], 1024);
    rf_buf_init_secure(&plain, 1 << 20);
    assert_int_equal(rf_cache_board_list(c, &list), 0);
    for (size_t i = 0; i < list.n; i++) {
        rf_buf_reset(&plain);
        assert_int_equal(
            rf_local_board_open(l, list.rows[i].case_id, list.rows[i].blob, list.rows[i].n, &plain),
            0);
        put_line(b.lines[b.n++], list.rows[i].case_id, list.rows[i].last_seq, plain.data, plain.len);
    }
    rf_cache_board_list_free(&list);
    rf_buf_free(&plain);
    assert_int_equal(a[0].n, want);
    assert_int_equal(b.n, want);
    qsort(a[0].lines, a[0].n, 1024, line_cmp);
    qsort(b.lines, b.n, 1024, line_cmp);
    for (size_t i = 0; i < want; i++)
        assert_string_equal(a[0].lines[i], b.lines[i]);
    return 0;
}

static void db_exec(struct home *t, const char *sql)
{
    char path[PATH_MAX + 16];
    sqlite3 *db;
    snprintf(path, sizeof(path), "%s/cache.db", t->h.dir);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

/* The board pages (local_pages.c): built after an update once the board is
 * large enough, read with the rows newer than them (a newer row stands in
 * for its case's entry), dropped when a row is deleted; a page damaged,
 * missing or of another generation makes the read RF_ERR_BUSY (the listing
 * then reads the rows: the same bytes printed). */
static void board_pages(void **state)
{
    (void)state;
    struct home t;
    struct rf_local *l;
    struct rf_cache_pages_info info;
    char id[16];
    home_new(&t, "pages");
    for (int i = 0; i < 30; i++) {
        snprintf(id, sizeof(id), "p%04dq2222", i);
        intake(&t, 1 + i, id, i % 2 ? "visa" : "asylum", "high", 1);
    }
    ev(&t, 31, "p0003q2222", 1, 1, "tag", "urgent");
    assert_int_equal(rf_cache_set_last_seq(t.c, 31), 0);
    rf_local_pages_min_rows = 16; /* 30 rows: pages; 2 newer rows stay newer */
    rf_local_page_bytes = 1024;   /* several pages, on both halves */
    assert_int_equal(rf_local_new(&l, t.c, t.anna), 0);
    assert_int_equal(rf_local_update(l, NULL), 0);
    assert_int_equal(rf_cache_board_pages_info(t.c, &info), 0);
    assert_true(info.gen > 0 && info.npages >= 4 && info.count == 30 && info.delta == 0);
    assert_int_equal(rows_are_the_board(l, t.c, 30), 0);
    struct rf_ctx x;
    memset(&x, 0, sizeof(x));
    x.k = t.anna;
    x.c = t.c;
    x.l = l;
    struct rf_view_filter all = {0};
    char *from_pages = printed(&x, &all, 0);
    assert_non_null(strstr(from_pages, "p0003q2222"));

    /* a row written after the pages: read from the board, once */
    ev(&t, 32, "p0007q2222", 1, 1, "stage", "planning");
    assert_int_equal(rf_cache_set_last_seq(t.c, 32), 0);
    assert_int_equal(rf_local_update(l, NULL), 0);
    int64_t gen = info.gen;
    assert_int_equal(rf_cache_board_pages_info(t.c, &info), 0);
    assert_true(info.gen == gen && info.delta == 1);
    assert_int_equal(rows_are_the_board(l, t.c, 30), 0);
    char *with_newer = printed(&x, &all, 0);
    assert_non_null(strstr(with_newer, "planning"));
    /* the same bytes as from the rows alone (no pages) */
    db_exec(&t, "DELETE FROM meta WHERE key = 'board_pages_gen'");
    assert_int_equal(rf_cache_board_pages_info(t.c, &info), 0);
    assert_int_equal(info.gen, 0);
    rf_local_pages_min_rows = 1000; /* the listing's update does not build them again */
    char *from_rows = printed(&x, &all, 0);
    assert_string_equal(with_newer, from_rows);
    rf_local_pages_min_rows = 16;
    int built = 0;
    assert_int_equal(rf_local_board_pages_refresh(l, 1, &built), 0);
    assert_int_equal(built, 1);
    assert_int_equal(rf_cache_board_pages_info(t.c, &info), 0);
    assert_true(info.gen > gen && info.delta == 0);

    /* damaged, missing, of another generation: RF_ERR_BUSY, the listing the same */
    db_exec(&t, "UPDATE board_pages SET blob = substr(blob, 1, 30) || x'00' || substr(blob, 32)"
                " WHERE page = 1");
    assert_int_equal(rows_are_the_board(l, t.c, 30), RF_ERR_BUSY);
    char *damaged = printed(&x, &all, 0);
    assert_string_equal(damaged, from_rows);
    assert_int_equal(rf_local_board_pages_refresh(l, 1, NULL), 0);
    assert_int_equal(rows_are_the_board(l, t.c, 30), 0);
    db_exec(&t, "DELETE FROM board_pages WHERE page = (SELECT max(page) FROM board_pages)");
    assert_int_equal(rows_are_the_board(l, t.c, 30), RF_ERR_BUSY);
    assert_int_equal(rf_local_board_pages_refresh(l, 1, NULL), 0);
    db_exec(&t, "UPDATE meta SET value = value + 1 WHERE key = 'board_pages_gen'");
    assert_int_equal(rows_are_the_board(l, t.c, 30), RF_ERR_BUSY);
    assert_int_equal(rf_local_board_pages_refresh(l, 1, NULL), 0);

    /* a board row damaged: no pages built (the update goes on), the
     * listing reads the rows and skips it */
    db_exec(&t, "UPDATE board SET blob = substr(blob, 1, 30) || x'00' || substr(blob, 32)"
                " WHERE case_id = 'p0005q2222'");
    built = 9;
    assert_int_equal(rf_local_board_pages_refresh(l, 1, &built), 0);
    assert_int_equal(built, 0);
    assert_int_equal(rf_cache_board_pages_info(t.c, &info), 0);
    assert_int_equal(info.gen, 0);
    char *skipped = printed(&x, &all, 0);
    assert_null(strstr(skipped, "p0005q2222"));
    assert_non_null(strstr(skipped, "p0006q2222"));
    free(skipped);
    db_exec(&t, "DELETE FROM summaries WHERE case_id = 'p0005q2222'");
    assert_int_equal(rf_local_board_pages_refresh(l, 1, &built), 0);
    assert_int_equal(built, 1);

    /* a row deleted: every page dropped (the trigger), the rows read */
    db_exec(&t, "DELETE FROM summaries WHERE case_id = 'p0011q2222'");
    assert_int_equal(rf_cache_board_pages_info(t.c, &info), 0);
    assert_true(info.gen == 0 && info.npages == 0 && info.count == 28);
    assert_int_equal(rows_are_the_board(l, t.c, 28), 0);
    char *deleted = printed(&x, &all, 0); /* its update builds them again */
    assert_null(strstr(deleted, "p0011q2222"));
    assert_int_equal(rf_cache_board_pages_info(t.c, &info), 0);
    assert_true(info.gen > 0 && info.count == 28);
    char *deleted2 = printed(&x, &all, 0);
    assert_string_equal(deleted, deleted2);
    assert_int_equal(rows_are_the_board(l, t.c, 28), 0);
    free(from_pages);
    free(with_newer);
    free(from_rows);
    free(damaged);
    free(deleted);
    free(deleted2);
    rf_local_pages_min_rows = 2048;
    rf_local_page_bytes = 64 * 1024;
    rf_view_forget();
    rf_local_free(l);
    home_free(&t);
}

struct keyrows {
    struct rf_ccasekey k[8];
    size_t n;
};

static int keyrow(void *ctx, const struct rf_ccasekey *k, const uint8_t *sealed, size_t n)
{
    struct keyrows *r = ctx;
    assert_true(n > 0 && sealed != NULL);
    r->k[r->n++] = *k;
    return 0;
}

/* A CASEKEY object of case_id for key K, sealed to Anna, at seq; and an
 * event version 2 under K at seq2. */
static void casekey_and_v2(struct home *t, int64_t seq, int64_t seq2, const char *case_id,
                           const uint8_t key[RF_CASEKEY_BYTES], unsigned lamport)
{
    struct rf_buf plain, ev, ct;
    char body[512], id[33];
    uint8_t rid[16];
    rf_buf_init(&plain, 4096);
    rf_buf_init(&ev, 1 << 16);
    rf_buf_init(&ct, 1 << 16);
    assert_int_equal(rf_casekey_encode(&plain, t->anna, case_id, 1, key), 0);
    seal_obj(t->c, seq, case_id, RF_KIND_CASEKEY, (const uint8_t(*)[32])t->pks, 1, plain.data,
             plain.len);
    randombytes_buf(rid, sizeof(rid));
    sodium_bin2hex(id, sizeof(id), rid, sizeof(rid));
    snprintf(body, sizeof(body),
             "{\"v\":1,\"id\":\"%s\",\"lamport\":%u,\"roster\":1,\"author\":\"x\","
             "\"day\":20100,\"op\":\"note\",\"value\":\"under a case key\"}",
             id, lamport);
    assert_int_equal(rf_event_sign(&ev, t->anna, case_id, (const uint8_t *)body, strlen(body)), 0);
    assert_int_equal(rf_casekey_event_seal(&ct, key, case_id, ev.data, ev.len), 0);
    struct rf_cobj o = {seq2, "", RF_KIND_EVENT, ct.len, 20100, 1, 0};
    snprintf(o.case_id, sizeof(o.case_id), "%s", case_id);
    assert_int_equal(rf_cache_object_put(t->c, &o, ct.data, ct.len), 0);
    rf_buf_free(&plain);
    rf_buf_free(&ev);
    rf_buf_free(&ct);
}

static size_t nevents(struct rf_local *l, const char *case_id)
{
    struct rf_ev *ev = NULL;
    size_t n = 0;
    assert_int_equal(rf_local_events(l, case_id, &ev, &n, NULL), 0);
    rf_local_events_free(ev, n);
    return n;
}

/* Cache version 4 -> 5 (and 6): a home digested by version 4 (a CASEKEY object as
 * "other", an event version 2 as broken) gets the casekeys table, loses
 * those two digests only, its mark moves below them, and the next update
 * reads the key and the event. */
static void version_4_home_reads_case_keys(void **state)
{
    (void)state;
    struct home t;
    struct rf_local *l;
    char path[PATH_MAX];
    uint8_t key[RF_CASEKEY_BYTES];
    rf_casekey_new(key);
    home_new(&t, "v4keys");
    assert_int_equal(rf_home_path(&t.h, "cache.db", path, sizeof(path)), 0);
    intake(&t, 1, "abcde23456", "asylum", "high", 1);
    ev(&t, 2, "abcde23456", 1, 1, "note", "an envelope");
    casekey_and_v2(&t, 3, 4, "abcde23456", key, 2);
    ev(&t, 5, "abcde23456", 1, 3, "note", "another envelope");
    assert_int_equal(rf_cache_set_last_seq(t.c, 5), 0);
    assert_int_equal(rf_local_new(&l, t.c, t.anna), 0);
    assert_int_equal(rf_local_update(l, NULL), 0);
    assert_int_equal(nevents(l, "abcde23456"), 3);
    assert_int_equal(mark(t.c), 5);
    /* as version 4 left it: no casekeys table, two digests that say nothing */
    struct rf_buf junk;
    rf_buf_init(&junk, 4096);
    assert_int_equal(rf_local_seal(l, "digest:3", (const uint8_t *)"{\"k\":\"other\"}", 13, &junk),
                     0);
    assert_int_equal(rf_cache_digest_put(t.c, 3, "abcde23456", 1, junk.data, junk.len), 0);
    rf_buf_reset(&junk);
    assert_int_equal(rf_local_seal(l, "digest:4", (const uint8_t *)"{\"k\":\"broken\"}", 14, &junk),
                     0);
    assert_int_equal(rf_cache_digest_put(t.c, 4, "abcde23456", 1, junk.data, junk.len), 0);
    rf_buf_free(&junk);
    rf_local_free(l);
    rf_cache_close(t.c);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db, "DROP TABLE casekeys; PRAGMA user_version = 4", NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);

    assert_int_equal(rf_cache_open(&t.c, &t.h), 0);
    assert_int_equal(user_version(path), 8);
    assert_int_equal(mark(t.c), 2); /* below the first object to digest again */
    assert_int_equal(undigested(t.c, INT64_MIN), BIT(3) | BIT(4));
    assert_int_equal(rf_local_new(&l, t.c, t.anna), 0);
    assert_int_equal(rf_local_update(l, NULL), 0);
    assert_int_equal(nevents(l, "abcde23456"), 3);
    assert_int_equal(mark(t.c), 5);
    struct rf_ckeys ks;
    assert_int_equal(rf_ckeys_init(&ks, RF_CKEYS_MAX), 0);
    assert_int_equal(rf_local_casekeys_load(l, "abcde23456", NULL, &ks), 0);
    assert_int_equal(ks.n, 1);
    assert_memory_equal(ks.keys[0], key, RF_CASEKEY_BYTES);
    assert_int_equal(ks.rows[0].seq, 3);
    assert_int_equal(ks.rows[0].verified, 0); /* readers leave the signature to writers */
    rf_ckeys_free(&ks);
    rf_local_free(l);
    home_free(&t);
}

/* The casekeys table: a key made here (seq 0) listed first, the same key
 * as the digest stores it (seq 7) beside it until the post says seq 7,
 * which leaves one row, verified; flags set; the unreadable events of a
 * case listed (to digest again when its key arrives); and K never in the
 * clear on disk. */
static void casekeys_table(void **state)
{
    (void)state;
    struct home t;
    struct rf_local *l;
    struct keyrows r;
    char path[PATH_MAX];
    uint8_t key[RF_CASEKEY_BYTES], other[RF_CASEKEY_BYTES];
    rf_casekey_new(key);
    rf_casekey_new(other);
    home_new(&t, "ck");
    assert_int_equal(rf_local_new(&l, t.c, t.anna), 0);
    struct rf_buf plain, row;
    rf_buf_init(&plain, 4096);
    rf_buf_init(&row, 4096);
    assert_int_equal(rf_casekey_encode(&plain, t.anna, "abcde23456", 1, key), 0);
    struct rf_ccasekey k = {"abcde23456", {0}, 0, 1, {0}, 1};
    rf_casekey_id(k.keyid, key);
    memcpy(k.maker, t.anna->sign_pk, 32);
    assert_int_equal(rf_local_casekey_seal(l, "abcde23456", k.keyid, plain.data, plain.len, &row),
                     0);
    assert_int_equal(rf_cache_casekey_put(t.c, &k, row.data, row.len), 0);
    struct rf_ccasekey d = k;
    d.seq = 7;
    d.verified = 0;
    assert_int_equal(rf_cache_casekey_put(t.c, &d, row.data, row.len), 0);
    assert_int_equal(rf_cache_casekey_put(t.c, &d, row.data, row.len), 0); /* once */
    memset(&r, 0, sizeof(r));
    assert_int_equal(rf_cache_casekeys(t.c, "abcde23456", NULL, keyrow, &r), 0);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.k[0].seq, 0);
    assert_int_equal(r.k[1].seq, 7);
    assert_int_equal(rf_cache_casekey_posted(t.c, "abcde23456", k.keyid, 7), 0);
    memset(&r, 0, sizeof(r));
    assert_int_equal(rf_cache_casekeys(t.c, "abcde23456", k.keyid, keyrow, &r), 0);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.k[0].seq, 7);
    assert_int_equal(r.k[0].verified, 1);
    assert_int_equal(rf_cache_casekey_set_verified(t.c, &r.k[0], -1), 0);
    memset(&r, 0, sizeof(r));
    assert_int_equal(rf_cache_casekeys(t.c, "abcde23456", NULL, keyrow, &r), 0);
    assert_int_equal(r.k[0].verified, -1);
    memset(&r, 0, sizeof(r));
    assert_int_equal(rf_cache_casekeys(t.c, "zzzzz23456", NULL, keyrow, &r), 0);
    assert_int_equal(r.n, 0);
    /* a row of another case does not open as this case's (ad binds the case) */
    struct rf_ckeys ks;
    assert_int_equal(rf_ckeys_init(&ks, RF_CKEYS_MAX), 0);
    struct rf_ccasekey moved = k;
    snprintf(moved.case_id, sizeof(moved.case_id), "zzzzz23456");
    assert_int_equal(rf_ckeys_add(l, &ks, &moved, row.data, row.len), 0);
    assert_int_equal(ks.n, 0);
    assert_int_equal(rf_ckeys_add(l, &ks, &k, row.data, row.len), 0);
    assert_int_equal(ks.n, 1);
    rf_ckeys_free(&ks);
    /* unreadable events: an event under a key not held */
    casekey_and_v2(&t, 8, 9, "abcde23456", other, 1);
    assert_int_equal(rf_cache_digest_put(t.c, 8, "abcde23456", 0, NULL, 0), 0);
    assert_int_equal(rf_cache_digest_put(t.c, 9, "abcde23456", 0, NULL, 0), 0);
    struct rf_cobj *objs = NULL;
    size_t n = 0;
    assert_int_equal(rf_cache_unreadable_events(t.c, "abcde23456", &objs, &n), 0);
    assert_int_equal(n, 1); /* the event, not the CASEKEY */
    assert_int_equal(objs[0].seq, 9);
    free(objs);
    rf_buf_free(&plain);
    rf_buf_free(&row);
    rf_local_free(l);
    rf_cache_close(t.c);
    /* K is nowhere in the clear on disk */
    const char *files[] = {"cache.db", "cache.db-wal"};
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(rf_home_path(&t.h, files[i], path, sizeof(path)), 0);
        FILE *f = fopen(path, "rb");
        if (!f)
            continue;
        static uint8_t buf[1 << 22];
        size_t got = fread(buf, 1, sizeof(buf), f);
        fclose(f);
        for (size_t j = 0; j + RF_CASEKEY_BYTES <= got; j++)
            assert_false(memcmp(buf + j, key, RF_CASEKEY_BYTES) == 0);
    }
    sodium_free(t.anna);
    sodium_free(t.boris);
}

static int sink_buf(void *ctx, const uint8_t *p, size_t n)
{
    return rf_buf_put(ctx, p, n);
}

static size_t pack_size(struct home *t)
{
    char path[PATH_MAX + 16];
    struct stat sb;
    snprintf(path, sizeof(path), "%s/objects/pack", t->h.dir);
    return stat(path, &sb) == 0 ? (size_t)sb.st_size : 0;
}

/* The objects' pack (cache_pack.c): objects stored in a write transaction
 * go to objects/pack, read back byte-exact on this handle (in the
 * transaction, from the buffer; after it, from the file) and on another;
 * a rolled-back transaction leaves no byte in the pack and no row; an
 * object stored outside a transaction stays in its row; more than the
 * buffer holds is written out on the way. */
static void objects_pack(void **state)
{
    (void)state;
    struct home t;
    home_new(&t, "pack");
    enum { N = 3000 };
    uint8_t *obj = malloc(2000);
    struct rf_buf got;
    rf_buf_init(&got, 1u << 30);
    assert_int_equal(rf_cache_begin(t.c), 0);
    for (int i = 1; i <= N; i++) {
        struct rf_cobj o = {.seq = i, .kind = RF_KIND_EVENT, .size = 1000 + (uint64_t)(i % 997)};
        snprintf(o.case_id, sizeof(o.case_id), "case%06d", i % 50);
        memset(obj, i & 0xff, (size_t)o.size);
        assert_int_equal(rf_cache_object_put(t.c, &o, obj, (size_t)o.size), 0);
        if (i % 1000 == 0) { /* read back in the transaction */
            rf_buf_reset(&got);
            assert_int_equal(rf_cache_object_stream(t.c, i, sink_buf, &got), 0);
            assert_int_equal(got.len, o.size);
            assert_memory_equal(got.data, obj, got.len);
        }
    }
    assert_int_equal(rf_cache_commit(t.c), 0);
    size_t after = pack_size(&t);
    assert_int_equal(after, 4489563); /* every object once (more than the 4 MiB buffer) */
    struct rf_cache *other = NULL;
    assert_int_equal(rf_cache_open(&other, &t.h), 0);
    for (int i = 1; i <= N; i += 7) {
        size_t size = 1000 + (size_t)(i % 997);
        memset(obj, i & 0xff, size);
        rf_buf_reset(&got);
        assert_int_equal(rf_cache_object_stream(other, i, sink_buf, &got), 0);
        assert_int_equal(got.len, size);
        assert_memory_equal(got.data, obj, size);
    }
    /* a rolled-back transaction: nothing in the pack, no row */
    assert_int_equal(rf_cache_begin(t.c), 0);
    struct rf_cobj o = {.seq = N + 1, .kind = RF_KIND_EVENT, .size = 1500};
    snprintf(o.case_id, sizeof(o.case_id), "case000001");
    memset(obj, 0xab, 1500);
    assert_int_equal(rf_cache_object_put(t.c, &o, obj, 1500), 0);
    rf_cache_rollback(t.c);
    assert_int_equal(pack_size(&t), after);
    rf_buf_reset(&got);
    assert_int_equal(rf_cache_object_stream(other, N + 1, sink_buf, &got), RF_ERR_NOT_FOUND);
    /* outside a transaction: in its row, the pack unchanged */
    assert_int_equal(rf_cache_object_put(t.c, &o, obj, 1500), 0);
    assert_int_equal(pack_size(&t), after);
    rf_buf_reset(&got);
    assert_int_equal(rf_cache_object_stream(other, N + 1, sink_buf, &got), 0);
    assert_int_equal(got.len, 1500);
    assert_memory_equal(got.data, obj, 1500);
    rf_cache_close(other);
    rf_buf_free(&got);
    free(obj);
    home_free(&t);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    rf_out_init(); /* as rf_client_main does: jansson memory is wiped on free */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(digested_mark),
        cmocka_unit_test(cold_sync_case_indexes),
        cmocka_unit_test(cold_digest_journal),
        cmocka_unit_test(version_3_home_gets_full_board_rows),
        cmocka_unit_test(version_4_home_gets_packed_board_rows),
        cmocka_unit_test(version_4_home_reads_case_keys),
        cmocka_unit_test(casekeys_table),
        cmocka_unit_test(listing_from_board_rows_is_the_summaries),
        cmocka_unit_test(board_pages),
        cmocka_unit_test(objects_pack),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
