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
#include "lib/err.h"
#include "lib/roster.h"

#include <sqlite3.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "test_local.h"

#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct home {
    struct rf_home h;
    struct rf_staff_keys *anna, *boris; /* Anna on the roster; Boris a stranger */
    uint8_t pks[2][32];
    struct rf_cache *c;
};

static void home_new(struct home *t, const char *name)
{
    const char *tmp = getenv("REFUGE_TEST_TMP");
    memset(t, 0, sizeof(*t));
    snprintf(t->h.dir, sizeof(t->h.dir), "%s/cache_local_test_%s.%d", tmp ? tmp : "/tmp", name,
             (int)getpid());
    assert_int_equal(rf_home_create(&t->h), 0);
    t->anna = sodium_malloc(sizeof(*t->anna));
    t->boris = sodium_malloc(sizeof(*t->boris));
    assert_int_equal(rf_staff_keys_generate(t->anna, "Anna"), 0);
    assert_int_equal(rf_staff_keys_generate(t->boris, "Boris"), 0);
    memcpy(t->pks[0], t->anna->box_pk, 32);
    memcpy(t->pks[1], t->boris->box_pk, 32);
    struct rf_roster *r = calloc(1, sizeof(*r));
    struct rf_buf raw;
    rf_buf_init(&raw, RF_ROSTER_MAX_BYTES);
    make_roster(r, 1, NULL);
    add_member(r, t->anna, RF_ROLE_ADMIN);
    assert_int_equal(rf_roster_sign(&raw, r, t->anna), 0);
    assert_int_equal(rf_cache_open(&t->c, &t->h), 0);
    assert_int_equal(rf_cache_roster_put(t->c, 1, raw.data, raw.len), 0);
    rf_buf_free(&raw);
    free(r);
}

static void home_free(struct home *t)
{
    rf_cache_close(t->c);
    sodium_free(t->anna);
    sodium_free(t->boris);
}

static void intake(struct home *t, int64_t seq, const char *case_id, const char *need,
                   const char *urgency, size_t npk)
{
    char body[512];
    snprintf(body, sizeof(body),
             "{\"v\":1,\"type\":\"intake\",\"lang\":\"en\",\"answers\":[{\"id\":\"need\","
             "\"value\":\"%s\"},{\"id\":\"urgency\",\"value\":\"%s\"}],\"text\":\"hello\"}",
             need, urgency);
    /* npk 1: sealed to Anna; else to Boris alone (Anna cannot open it) */
    seal_obj(t->c, seq, case_id, RF_KIND_MESSAGE,
             npk == 1 ? (const uint8_t(*)[32])t->pks : (const uint8_t(*)[32]) & t->pks[1], 1,
             (const uint8_t *)body, strlen(body));
}

static void ev(struct home *t, int64_t seq, const char *case_id, unsigned roster, unsigned lamport,
               const char *op, const char *value)
{
    event_in(t->c, seq, case_id, t->anna, (const uint8_t(*)[32])t->pks, 1, roster, lamport, op,
             value, NULL);
}

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
    assert_int_equal(user_version(path), 6);
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
    assert_int_equal(user_version(path), 6);
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
    assert_int_equal(user_version(path), 6);
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
    assert_int_equal(user_version(path), 6);
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
    assert_int_equal(rf_cache_set_last_seq(t.c, 17), 0);
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
    same_listing(&x, NULL, NULL, NULL, 7);
    same_listing(&x, "new", NULL, NULL, 5);
    same_listing(&x, NULL, "urgent", NULL, 2);
    same_listing(&x, "closed", NULL, NULL, 0);
    rf_view_cases_block_rows = 1;
    same_listing(&x, NULL, NULL, "Anna", 3);
    rf_view_cases_part_rows = 2048;
    rf_view_cases_block_rows = 1024;
    same_listing(&x, "verifying", NULL, NULL, 1);
    same_listing(&x, "new", NULL, NULL, 5);
    same_listing(&x, NULL, "urgent", NULL, 2);
    same_listing(&x, NULL, NULL, "Anna", 3);
    same_listing(&x, "planning", "family", "Anna", 1);
    same_listing(&x, "closed", NULL, NULL, 0);
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

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    rf_out_init(); /* as rf_client_main does: jansson memory is wiped on free */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(digested_mark),
        cmocka_unit_test(version_3_home_gets_full_board_rows),
        cmocka_unit_test(version_4_home_gets_packed_board_rows),
        cmocka_unit_test(listing_from_board_rows_is_the_summaries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
