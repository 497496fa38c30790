/* migrate_test.c - moving a store to another backend (store.h:
 * rf_store_export, rf_store_import_*, rf_store_migrate), on both backends:
 * a SQLite store with every kind of row (settings, cases, inline objects,
 * blob files, a teamconfig event, tokens, staff, rosters, grants, an audit
 * chain, a deletion schedule, nonces, a deleted newest object) is moved into
 * a new SQLite store, into PostgreSQL and from there back into SQLite; each
 * time the whole export (every row, every blob's bytes, the counters) is the
 * same. A target that is not empty is refused and left as it was; a move
 * that fails half-way leaves an empty database empty; a table the program
 * does not know stops the export. Replies (what a person may delete) are
 * blob files on PostgreSQL, which does not zero a deleted row: put there
 * small, or carried there inline from SQLite, they become files, and their
 * deletion unlinks the file; SQLite keeps them inline. The PostgreSQL half
 * runs when
 * REFUGE_TEST_PG is set and says so loudly when it is not. */
#include "lib/buf.h"
#include "lib/err.h"
#include "store/store.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "test_tmp.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pg_test_db.h"

/* lib/envelope.h's RF_KIND_REPLY (the store takes kinds as numbers) */
#define RF_KIND_REPLY_T 3

static char root[512];

static int setup(void **state)
{
    (void)state;
    const char *base = getenv("REFUGE_TEST_TMP");
    snprintf(root, sizeof(root), "%s/migrate-XXXXXX", base && *base ? base : "/tmp");
    return mkdtemp(root) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

static void path_of(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", root, name);
}

static void apply1(struct rf_store *st, struct rf_op *op)
{
    assert_int_equal(rf_store_apply(st, op, 1), 0);
    assert_int_equal(rf_op_status(op), 0);
}

static int64_t put_object(struct rf_store *st, int64_t source, uint8_t kind, unsigned flags,
                          size_t n, uint8_t fill)
{
    struct rf_put *p = NULL;
    uint8_t piece[4096];
    memset(piece, fill, sizeof(piece));
    assert_int_equal(rf_put_begin(st, flags, &p), 0);
    for (size_t off = 0; off < n; off += sizeof(piece))
        assert_int_equal(rf_put_write(p, piece, n - off < sizeof(piece) ? n - off : sizeof(piece)),
                         0);
    struct rf_op op;
    assert_int_equal(rf_op_object_put(&op, source, kind, p), 0);
    apply1(st, &op);
    int64_t seq = rf_op_seq(&op);
    rf_put_free(p);
    return seq;
}

/* A store with a row in every table. */
static void fill(struct rf_store *st)
{
    struct rf_op op;
    uint8_t lookup[32], pk[32], hash[32], nonce[16], grant[88], keyid[8];
    static const uint8_t value[] = "setting value";
    rf_op_setting_put(&op, "instance.test", value, sizeof(value));
    apply1(st, &op);
    int64_t src[3];
    for (int i = 0; i < 3; i++) {
        memset(lookup, 0x10 + i, sizeof(lookup));
        memset(pk, 0x20 + i, sizeof(pk));
        rf_op_source_create(&op, lookup, pk);
        apply1(st, &op);
        src[i] = rf_op_source(&op)->id;
    }
    struct rf_source team;
    assert_int_equal(rf_store_source_by_case(st, "teamconfig", &team), 0);
    int64_t first = put_object(st, src[0], 1, 0, 3000, 0xa1);
    put_object(st, src[0], 2, RF_PUT_BLOB, 70000, 0xa2);     /* a file: a blob */
    put_object(st, src[1], 1, 0, RF_INLINE_MAX + 100, 0xa3); /* spilled: a blob */
    put_object(st, team.id, 4, 0, 500, 0xa4);                /* a team event */
    memset(hash, 0x31, sizeof(hash));
    rf_op_token_put(&op, hash, 1);
    apply1(st, &op);
    memset(hash, 0x32, sizeof(hash));
    rf_op_token_put(&op, hash, 0);
    apply1(st, &op);
    rf_op_token_use(&op, hash, 0);
    apply1(st, &op);
    struct rf_staff_rec s = {.day = 0};
    memset(s.sign_pk, 0x41, 32);
    memset(s.box_pk, 0x42, 32);
    snprintf(s.name, sizeof(s.name), "Alice");
    rf_op_staff_put(&op, &s);
    apply1(st, &op);
    static const uint8_t roster[] = "a roster (the store does not read it)";
    rf_op_roster_put(&op, 1, roster, sizeof(roster));
    apply1(st, &op);
    memset(keyid, 0x51, sizeof(keyid));
    memset(grant, 0x52, sizeof(grant));
    memcpy(grant, keyid, sizeof(keyid));
    rf_op_grant_put(&op, first, keyid, s.sign_pk, grant);
    apply1(st, &op);
    rf_op_audit(&op, s.sign_pk, "fetch", "17", NULL, 0);
    apply1(st, &op);
    rf_op_audit(&op, NULL, "purge", "", NULL, 0);
    apply1(st, &op);
    rf_op_case_schedule(&op, src[2], 30000);
    apply1(st, &op);
    memset(nonce, 0x61, sizeof(nonce));
    rf_op_nonce_put(&op, nonce, (int64_t)time(NULL));
    apply1(st, &op);
    /* the newest object deleted: the last seq handed out is above every row */
    int64_t last = put_object(st, src[1], 3, 0, 100, 0xa5);
    rf_op_object_delete(&op, last, src[1]);
    apply1(st, &op);
}

/* A digest of a store's whole export: every row, a blob's bytes instead of
 * its name, the counters. */
struct digest {
    struct rf_store *st;
    crypto_generichash_state h;
    uint64_t rows[RF_TAB_COUNT];
    int64_t counters[2];
};

static void hash_u64(struct digest *d, uint64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (56 - 8 * i));
    crypto_generichash_update(&d->h, b, sizeof(b));
}

static int on_row(void *ctx, const struct rf_row *row)
{
    struct digest *d = ctx;
    d->rows[row->table]++;
    hash_u64(d, row->table);
    hash_u64(d, row->n);
    if (row->table == RF_TAB_COUNTERS) {
        d->counters[0] = row->cell[0].i;
        d->counters[1] = row->cell[1].i;
    }
    for (unsigned i = 0; i < row->n; i++) {
        const struct rf_cell *c = &row->cell[i];
        hash_u64(d, (uint64_t)c->null);
        if (c->null)
            continue;
        if (row->table == RF_TAB_OBJECTS && i == 6) { /* the blob: its bytes */
            int fd = -1;
            uint64_t size = 0;
            uint8_t buf[8192];
            ssize_t r;
            assert_int_equal(rf_store_object_open(d->st, row->cell[0].i, &fd, &size), 0);
            assert_int_equal(size, (uint64_t)row->cell[3].i);
            while ((r = read(fd, buf, sizeof(buf))) > 0)
                crypto_generichash_update(&d->h, buf, (size_t)r);
            close(fd);
            continue;
        }
        hash_u64(d, (uint64_t)c->i);
        hash_u64(d, c->len);
        if (c->len)
            crypto_generichash_update(&d->h, c->p, c->len);
    }
    return 0;
}

static void digest_of(struct rf_store *st, struct digest *d, uint8_t out[32])
{
    memset(d, 0, sizeof(*d));
    d->st = st;
    crypto_generichash_init(&d->h, NULL, 0, 32);
    assert_int_equal(rf_store_export(st, on_row, d), 0);
    crypto_generichash_final(&d->h, out, 32);
}

/* crypto_generichash_state wants 64-byte alignment, which a stack frame
 * under ASan's use-after-return detection does not give */
static struct digest *new_digest(void)
{
    size_t n = (sizeof(struct digest) + 63) / 64 * 64;
    struct digest *d = aligned_alloc(64, n);
    assert_non_null(d);
    return d;
}

static void same_store(struct rf_store *a, struct rf_store *b)
{
    struct digest *da = new_digest(), *db = new_digest();
    uint8_t ha[32], hb[32];
    digest_of(a, da, ha);
    digest_of(b, db, hb);
    for (int t = 0; t < RF_TAB_COUNT; t++)
        assert_int_equal(da->rows[t], db->rows[t]);
    assert_int_equal(da->rows[RF_TAB_COUNTERS], 1);
    assert_int_equal(da->counters[0], db->counters[0]);
    assert_int_equal(da->counters[1], db->counters[1]);
    assert_memory_equal(ha, hb, 32);
    free(da);
    free(db);
}

/* A store opened from an existing directory, for a migration into it. */
static struct rf_store *source_store(const char *name)
{
    char dir[600];
    struct rf_store *st = NULL;
    path_of(dir, sizeof(dir), name);
    assert_int_equal(rf_store_open(&st, dir), 0);
    assert_true(rf_store_alone(st));
    return st;
}

static void moved_into_sqlite(void **state)
{
    (void)state;
    char dir[600];
    struct rf_store *a = source_store("a"), *b = NULL, *again = NULL;
    fill(a);
    struct digest *d = new_digest();
    uint8_t h[32];
    digest_of(a, d, h);
    assert_true(d->counters[0] > 0 && d->rows[RF_TAB_OBJECTS] == 4 && d->rows[RF_TAB_AUDIT] == 2);
    int64_t last = d->counters[0];
    free(d);

    path_of(dir, sizeof(dir), "b");
    assert_int_equal(rf_store_create_import(&b, dir, NULL), 0);
    struct rf_migrate_info info;
    assert_int_equal(rf_store_migrate(a, b, &info), 0);
    assert_int_equal(info.blobs, 2);
    assert_int_equal(info.blob_bytes, 70000 + RF_INLINE_MAX + 100);
    same_store(a, b);
    /* not empty any more: refused, and nothing changes */
    assert_int_equal(rf_store_import_begin(b), RF_ERR_EXISTS);
    assert_int_equal(rf_store_migrate(a, b, &info), RF_ERR_EXISTS);
    assert_non_null(strstr(info.why, "not empty"));
    same_store(a, b);
    rf_store_close(b);
    assert_int_equal(rf_store_create_import(&again, dir, NULL), RF_ERR_EXISTS);
    /* the next object's number is past the deleted one's */
    assert_int_equal(rf_store_open(&b, dir), 0);
    int64_t seq = put_object(b, 1, 4, 0, 10, 0x77);
    assert_true(seq > last);
    rf_store_close(b);
    rf_store_close(a);
}

static void unknown_table_stops_the_export(void **state)
{
    (void)state;
    char dir[600], db[700];
    struct rf_store *a = source_store("a"), *b = NULL;
    fill(a);
    rf_store_close(a);
    path_of(dir, sizeof(dir), "a");
    snprintf(db, sizeof(db), "%s/refuge.db", dir);
    sqlite3 *s = NULL;
    assert_int_equal(sqlite3_open(db, &s), SQLITE_OK);
    assert_int_equal(sqlite3_exec(s, "CREATE TABLE later_feature(x INTEGER)", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(s);
    a = source_store("a");
    path_of(dir, sizeof(dir), "b");
    assert_int_equal(rf_store_create_import(&b, dir, NULL), 0);
    struct rf_migrate_info info;
    assert_int_equal(rf_store_migrate(a, b, &info), RF_ERR_VERSION);
    assert_non_null(strstr(info.why, "does not know"));
    struct rf_store_counts c;
    assert_int_equal(rf_store_counts(b, &c), 0); /* rolled back: still empty */
    assert_int_equal(c.cases + c.staff + c.audit + c.objects[1], 0);
    rf_store_close(b);
    rf_store_close(a);
}

static long long relations(const char *url)
{
    return pgt_int(url, "SELECT count(*) FROM pg_class k JOIN pg_namespace n"
                        " ON n.oid = k.relnamespace WHERE n.nspname = current_schema()");
}

static void moved_into_postgresql_and_back(void **state)
{
    (void)state;
    if (pgt_skipped("migration into PostgreSQL"))
        return;
    char dir[600], schema[24], url[1024], schema2[24], url2[1024];
    struct rf_store *a = source_store("a"), *c = NULL, *d = NULL, *e = NULL;
    fill(a);
    pgt_new(schema, url, sizeof(url));
    struct rf_migrate_info info;

    /* into PostgreSQL */
    path_of(dir, sizeof(dir), "c");
    assert_int_equal(rf_store_create_import(&c, dir, url), 0);
    assert_int_equal(relations(url), 0); /* nothing written before the import */
    assert_int_equal(rf_store_migrate(a, c, &info), 0);
    assert_int_equal(info.blobs, 2);
    rf_store_close(c);
    assert_int_equal(rf_store_open(&c, dir), 0);
    assert_string_equal(rf_store_backend(c), "postgresql");
    same_store(a, c);
    struct digest *dg = new_digest();
    uint8_t h[32];
    digest_of(a, dg, h);
    assert_int_equal(pgt_int(url, "SELECT seq FROM counters"), dg->counters[0]);
    free(dg);

    /* a non-empty database: refused before anything is written */
    long long rels = relations(url);
    path_of(dir, sizeof(dir), "refused");
    assert_int_equal(rf_store_create_import(&e, dir, url), RF_ERR_EXISTS);
    assert_int_equal(relations(url), rels);
    char f[700];
    snprintf(f, sizeof(f), "%s/database", dir);
    assert_int_equal(access(f, F_OK), -1);

    /* back from PostgreSQL into SQLite: its export and SQLite's import */
    path_of(dir, sizeof(dir), "d");
    assert_int_equal(rf_store_create_import(&d, dir, NULL), 0);
    assert_int_equal(rf_store_migrate(c, d, &info), 0);
    same_store(a, d);
    rf_store_close(d);

    /* a move that fails half-way (the target's disk fills during the
     * second blob) leaves the empty database empty: no schema either */
    pgt_new(schema2, url2, sizeof(url2));
    path_of(dir, sizeof(dir), "e");
    assert_int_equal(rf_store_create_import(&e, dir, url2), 0);
    rf_store_fault_inject(e, 5, RF_ERR_NOSPACE);
    assert_int_not_equal(rf_store_migrate(a, e, &info), 0);
    assert_non_null(strstr(info.why, "new data directory"));
    assert_int_equal(relations(url2), 0);
    rf_store_close(e);

    rf_store_close(c);
    rf_store_close(a);
    pgt_drop(schema);
    pgt_drop(schema2);
}

/* The number of files in DIR/blobs of the store at dir. */
static int blob_files(const char *dir)
{
    char path[700];
    snprintf(path, sizeof(path), "%s/blobs", dir);
    DIR *d = opendir(path);
    struct dirent *e;
    int n = 0;
    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static void object_is(struct rf_store *st, int64_t seq, int in_blob, size_t n, uint8_t fill)
{
    struct rf_object o;
    struct rf_buf b;
    assert_int_equal(rf_store_object_get(st, seq, &o), 0);
    assert_int_equal(o.in_blob, in_blob);
    assert_int_equal(o.size, n);
    rf_buf_init(&b, n + 1);
    assert_int_equal(rf_store_object_read(st, seq, &b), 0);
    assert_int_equal(b.len, n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(b.data[i], fill);
    rf_buf_free(&b);
}

static void replies_are_files_where_deleted_rows_stay(void **state)
{
    (void)state;
    char dir[600], pgdir[600], schema[24], url[1024];
    struct rf_op op;
    struct rf_store *a = source_store("a"), *c = NULL;
    uint8_t lookup[32], pk[32];
    memset(lookup, 0x71, sizeof(lookup));
    memset(pk, 0x72, sizeof(pk));
    rf_op_source_create(&op, lookup, pk);
    apply1(a, &op);
    int64_t src = rf_op_source(&op)->id;
    /* SQLite zeroes deleted rows (secure_delete): a small reply is inline */
    int64_t reply = put_object(a, src, RF_KIND_REPLY_T, 0, 3000, 0xb1);
    int64_t msg = put_object(a, src, 1, 0, 2000, 0xb2);
    object_is(a, reply, 0, 3000, 0xb1);
    object_is(a, msg, 0, 2000, 0xb2);
    path_of(dir, sizeof(dir), "a");
    assert_int_equal(blob_files(dir), 0);
    if (pgt_skipped("replies as files on PostgreSQL")) {
        rf_store_close(a);
        return;
    }
    /* carried into PostgreSQL: the reply becomes a file, the message not */
    pgt_new(schema, url, sizeof(url));
    path_of(pgdir, sizeof(pgdir), "c");
    assert_int_equal(rf_store_create_import(&c, pgdir, url), 0);
    struct rf_migrate_info info;
    assert_int_equal(rf_store_migrate(a, c, &info), 0);
    assert_int_equal(info.blobs, 1);
    assert_int_equal(info.blob_bytes, 3000);
    rf_store_close(c);
    assert_int_equal(rf_store_open(&c, pgdir), 0);
    object_is(c, reply, 1, 3000, 0xb1);
    object_is(c, msg, 0, 2000, 0xb2);
    assert_int_equal(pgt_int(url, "SELECT count(*) FROM objects WHERE kind = 3 AND data IS NOT "
                                  "NULL"),
                     0);
    assert_int_equal(blob_files(pgdir), 1);
    /* put on PostgreSQL: a small reply is a file too, a small message inline */
    int64_t reply2 = put_object(c, src, RF_KIND_REPLY_T, 0, 100, 0xb3);
    int64_t msg2 = put_object(c, src, 1, 0, 100, 0xb4);
    object_is(c, reply2, 1, 100, 0xb3);
    object_is(c, msg2, 0, 100, 0xb4);
    assert_int_equal(blob_files(pgdir), 2);
    /* the person deletes both replies: their files are unlinked */
    rf_op_object_delete(&op, reply, src);
    apply1(c, &op);
    rf_op_object_delete(&op, reply2, src);
    apply1(c, &op);
    assert_int_equal(blob_files(pgdir), 0);
    assert_int_equal(rf_store_object_get(c, reply2, &(struct rf_object){0}), RF_ERR_NOT_FOUND);
    rf_store_close(c);
    rf_store_close(a);
    pgt_drop(schema);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(moved_into_sqlite, setup, teardown),
        cmocka_unit_test_setup_teardown(unknown_table_stops_the_export, setup, teardown),
        cmocka_unit_test_setup_teardown(moved_into_postgresql_and_back, setup, teardown),
        cmocka_unit_test_setup_teardown(replies_are_files_where_deleted_rows_stay, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
