/* store_test.c - the SQLite store and its blob files, hunting for failure:
 * schema and reopen, every op and its refusals, exact bytes back for inline
 * and blob objects, one failing op failing alone, injected disk-full and
 * I/O errors leaving nothing behind, and crash leftovers removed on open.
 * Teams: grants are kept one per granter (bounded) and go with their
 * object, staff API nonces hold across a reopen and a second opener and are
 * pruned once out of the signature window, the audit chain
 * verifies across batches and rolled-back groups, the reserved teamconfig
 * case refuses all but events, and the purge removes exactly the expired
 * cases (scheduled or silent) with their objects, grants and blob files. */
#include "lib/apisig.h"
#include "lib/audit.h"
#include "lib/buf.h"
#include "lib/envelope.h"
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
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pg_test_db.h"

struct fixture {
    char root[512];
    char dir[600];
    struct rf_store *st;
    char schema[24];  /* PostgreSQL run: this test's schema */
    char pgurl[1024]; /* and the URL selecting it */
};

/* 0: the tests run on SQLite; 1: on PostgreSQL (the second run, main). */
static int on_pg;

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    const char *base = getenv("REFUGE_TEST_TMP");
    if (!f)
        return -1;
    snprintf(f->root, sizeof(f->root), "%s/store-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(f->root))
        return -1;
    snprintf(f->dir, sizeof(f->dir), "%s/data", f->root);
    if (on_pg) {
        pgt_new(f->schema, f->pgurl, sizeof(f->pgurl));
        if (rf_store_create(&f->st, f->dir, f->pgurl) != 0)
            return -1;
    } else if (rf_store_open(&f->st, f->dir) != 0) {
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    rf_store_close(f->st);
    nftw(f->root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    if (on_pg)
        pgt_drop(f->schema);
    free(f);
    return 0;
}

static void reopen(struct fixture *f)
{
    rf_store_close(f->st);
    f->st = NULL;
    assert_int_equal(rf_store_open(&f->st, f->dir), 0);
}

static int blob_exists(const struct fixture *f, const char *name)
{
    char path[700];
    snprintf(path, sizeof(path), "%s/blobs/%s", f->dir, name);
    return access(path, F_OK) == 0;
}

static int apply1(struct rf_store *st, struct rf_op *op)
{
    int rc = rf_store_apply(st, op, 1);
    return rc != 0 ? rc : op->status;
}

static struct rf_source make_source(struct rf_store *st, uint8_t tag)
{
    struct rf_op op = {.type = RF_OP_SOURCE_CREATE};
    memset(op.lookup_id, tag, sizeof(op.lookup_id));
    memset(op.pk, tag ^ 0x5a, sizeof(op.pk));
    assert_int_equal(apply1(st, &op), 0);
    return op.source;
}

static int64_t put_inline(struct rf_store *st, int64_t source_id, uint8_t kind, const uint8_t *p,
                          size_t n)
{
    struct rf_op op = {.type = RF_OP_OBJECT_PUT, .source_id = source_id, .kind = kind};
    op.data = p;
    op.len = n;
    assert_int_equal(apply1(st, &op), 0);
    assert_true(op.seq > 0);
    return op.seq;
}

static void write_blob(struct rf_store *st, const uint8_t *p, size_t n,
                       char name[RF_BLOB_NAME_LEN + 1])
{
    struct rf_blob *b = NULL;
    assert_int_equal(rf_blob_begin(st, &b), 0);
    /* in uneven pieces, as an upload arrives */
    for (size_t off = 0; off < n;) {
        size_t k = n - off < 7777 ? n - off : 7777;
        assert_int_equal(rf_blob_write(b, p + off, k), 0);
        off += k;
    }
    assert_int_equal(rf_blob_size(b), n);
    assert_int_equal(rf_blob_commit(b, name), 0);
    assert_int_equal(strlen(name), RF_BLOB_NAME_LEN);
}

static int64_t put_blob(struct rf_store *st, int64_t source_id, uint8_t kind, const uint8_t *p,
                        size_t n, char name[RF_BLOB_NAME_LEN + 1])
{
    struct rf_op op = {.type = RF_OP_OBJECT_PUT, .source_id = source_id, .kind = kind};
    write_blob(st, p, n, name);
    memcpy(op.blob_name, name, RF_BLOB_NAME_LEN + 1);
    op.size = n;
    assert_int_equal(apply1(st, &op), 0);
    return op.seq;
}

static void assert_fd_bytes(int fd, const uint8_t *p, size_t n)
{
    uint8_t *got = malloc(n + 1);
    size_t off = 0;
    assert_non_null(got);
    for (;;) {
        ssize_t r = read(fd, got + off, n + 1 - off);
        assert_true(r >= 0);
        if (r == 0)
            break;
        off += (size_t)r;
        assert_true(off <= n);
    }
    assert_int_equal(off, n);
    assert_memory_equal(got, p, n);
    free(got);
}

/* ---- schema ---- */

static void fresh_dir_is_migrated_private_and_reopens(void **state)
{
    struct fixture *f = *state;
    char path[700];
    struct stat sb;
    sqlite3 *db;
    sqlite3_stmt *s;

    assert_int_equal(stat(f->dir, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0700);
    if (on_pg) { /* the URL file (it may hold a password), no SQLite file */
        snprintf(path, sizeof(path), "%s/database", f->dir);
        assert_int_equal(stat(path, &sb), 0);
        assert_int_equal(sb.st_mode & 0777, 0600);
        snprintf(path, sizeof(path), "%s/refuge.db", f->dir);
        assert_int_not_equal(stat(path, &sb), 0);
        assert_string_equal(rf_store_backend(f->st), "postgresql");
    } else {
        assert_string_equal(rf_store_backend(f->st), "sqlite");
    }
    snprintf(path, sizeof(path), "%s/refuge.db", f->dir);
    if (on_pg)
        snprintf(path, sizeof(path), "%s/database", f->dir);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0077, 0);

    struct rf_op op = {
        .type = RF_OP_SETTING_PUT, .key = "salt", .data = (const uint8_t *)"abc", .len = 3};
    assert_int_equal(apply1(f->st, &op), 0);
    reopen(f);
    struct rf_buf b;
    rf_buf_init(&b, 100);
    assert_int_equal(rf_store_setting_get(f->st, "salt", &b), 0);
    assert_int_equal(b.len, 3);
    assert_memory_equal(b.data, "abc", 3);
    rf_buf_reset(&b);
    assert_int_equal(rf_store_setting_get(f->st, "nothing", &b), RF_ERR_NOT_FOUND);
    /* put replaces */
    op.data = (const uint8_t *)"z";
    op.len = 1;
    assert_int_equal(apply1(f->st, &op), 0);
    assert_int_equal(rf_store_setting_get(f->st, "salt", &b), 0);
    assert_int_equal(b.len, 1);
    rf_buf_free(&b);

    if (on_pg) { /* the expected version, every table */
        assert_int_equal(pgt_int(f->pgurl, "SELECT version FROM refuge_schema"), 7);
        assert_int_equal(pgt_int(f->pgurl, "SELECT count(*) FROM information_schema.tables "
                                           "WHERE table_schema = current_schema() AND "
                                           "table_name IN ('settings', 'sources', 'objects', "
                                           "'enroll_tokens', 'staff', 'rosters', 'grants', "
                                           "'audit', 'nonces', 'counters', 'sessions', "
                                           "'commit_marks')"),
                         12);
        return;
    }
    /* the database itself: WAL, the expected version, every table */
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(s, 0), "wal");
    sqlite3_finalize(s);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(s, 0), 7);
    sqlite3_finalize(s);
    assert_int_equal(
        sqlite3_prepare_v2(db,
                           "SELECT count(*) FROM sqlite_schema WHERE type = 'table' "
                           "AND name IN ('settings', 'sources', 'objects', "
                           "'enroll_tokens', 'staff', 'rosters', 'grants', 'audit', 'nonces', "
                           "'sessions')",
                           -1, &s, NULL),
        SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(s, 0), 10);
    sqlite3_finalize(s);
    sqlite3_close(db);
}

static void newer_schema_is_refused(void **state)
{
    struct fixture *f = *state;
    char path[700];
    sqlite3 *db;
    rf_store_close(f->st);
    f->st = NULL;
    if (on_pg) {
        pgt_exec(f->pgurl, "UPDATE refuge_schema SET version = 999");
        assert_int_equal(rf_store_open(&f->st, f->dir), RF_ERR_VERSION);
        assert_null(f->st);
        return;
    }
    snprintf(path, sizeof(path), "%s/refuge.db", f->dir);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 999", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(rf_store_open(&f->st, f->dir), RF_ERR_VERSION);
    assert_null(f->st);
}

/* ---- sources ---- */

static void sources_create_find_and_refuse_duplicates(void **state)
{
    struct fixture *f = *state;
    struct rf_source a = make_source(f->st, 1), got;
    assert_true(a.id > 0);
    assert_int_equal(strlen(a.case_id), RF_CASE_ID_LEN);
    assert_int_equal(strspn(a.case_id, "abcdefghijklmnopqrstuvwxyz234567"), RF_CASE_ID_LEN);
    assert_int_equal(a.day, rf_store_today());

    struct rf_op dup = {.type = RF_OP_SOURCE_CREATE};
    memset(dup.lookup_id, 1, 32);
    memset(dup.pk, 9, 32);
    assert_int_equal(rf_store_apply(f->st, &dup, 1), 0);
    assert_int_equal(dup.status, RF_ERR_EXISTS);

    uint8_t lookup[32];
    memset(lookup, 1, sizeof(lookup));
    assert_int_equal(rf_store_source_by_lookup(f->st, lookup, &got), 0);
    assert_int_equal(got.id, a.id);
    assert_string_equal(got.case_id, a.case_id);
    uint8_t pk[32];
    memset(pk, 1 ^ 0x5a, sizeof(pk));
    assert_memory_equal(got.pk, pk, 32); /* the first creator's key, not the duplicate's */

    memset(&got, 0, sizeof(got));
    assert_int_equal(rf_store_source_by_case(f->st, a.case_id, &got), 0);
    assert_int_equal(got.id, a.id);
    memset(lookup, 2, sizeof(lookup));
    assert_int_equal(rf_store_source_by_lookup(f->st, lookup, &got), RF_ERR_NOT_FOUND);
    assert_int_equal(rf_store_source_by_case(f->st, "aaaaaaaaaa", &got), RF_ERR_NOT_FOUND);
    assert_int_equal(rf_store_source_by_case(f->st, "short", &got), RF_ERR_NOT_FOUND);
    assert_int_equal(rf_store_source_by_case(f->st, "", &got), RF_ERR_NOT_FOUND);

    /* case ids are random, not sequential, and distinct */
    struct rf_source b = make_source(f->st, 3);
    assert_string_not_equal(a.case_id, b.case_id);
}

/* ---- objects ---- */

static void objects_inline_and_blob_read_back_exactly(void **state)
{
    struct fixture *f = *state;
    struct rf_source a = make_source(f->st, 1), b = make_source(f->st, 2);
    size_t big_n = 3 * 1024 * 1024 + 17;
    uint8_t small[2048], *big = malloc(big_n);
    char name[RF_BLOB_NAME_LEN + 1];
    assert_non_null(big);
    randombytes_buf(small, sizeof(small));
    randombytes_buf(big, big_n);

    int64_t s1 = put_inline(f->st, a.id, 1, small, sizeof(small));
    int64_t s2 = put_blob(f->st, a.id, 2, big, big_n, name);
    int64_t s3 = put_inline(f->st, b.id, 1, small, 10);
    int64_t s4 = put_inline(f->st, a.id, 3, small, 0); /* empty is legal */
    assert_true(s1 < s2 && s2 < s3 && s3 < s4);

    struct rf_object o;
    assert_int_equal(rf_store_object_get(f->st, s2, &o), 0);
    assert_int_equal(o.seq, s2);
    assert_int_equal(o.source_id, a.id);
    assert_string_equal(o.case_id, a.case_id);
    assert_int_equal(o.kind, 2);
    assert_int_equal(o.size, big_n);
    assert_int_equal(o.in_blob, 1);
    assert_int_equal(o.day, rf_store_today());
    assert_int_equal(rf_store_object_get(f->st, s4 + 100, &o), RF_ERR_NOT_FOUND);

    int fd = -1;
    uint64_t size = 0;
    assert_int_equal(rf_store_object_open(f->st, s1, &fd, &size), 0);
    assert_int_equal(size, sizeof(small));
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    assert_fd_bytes(fd, small, sizeof(small));
    close(fd);
    assert_int_equal(rf_store_object_open(f->st, s2, &fd, &size), 0);
    assert_int_equal(size, big_n);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    assert_fd_bytes(fd, big, big_n);
    close(fd);
    assert_int_equal(rf_store_object_open(f->st, s4, &fd, &size), 0);
    assert_int_equal(size, 0);
    assert_fd_bytes(fd, small, 0);
    close(fd);
    assert_int_equal(rf_store_object_open(f->st, 999999, &fd, &size), RF_ERR_NOT_FOUND);

    struct rf_buf buf;
    rf_buf_init(&buf, big_n);
    assert_int_equal(rf_store_object_read(f->st, s3, &buf), 0);
    assert_int_equal(buf.len, 10);
    assert_memory_equal(buf.data, small, 10);
    rf_buf_reset(&buf);
    assert_int_equal(rf_store_object_read(f->st, s2, &buf), 0);
    assert_int_equal(buf.len, big_n);
    assert_memory_equal(buf.data, big, big_n);
    rf_buf_free(&buf);
    rf_buf_init(&buf, 100); /* a reader's limit holds */
    assert_int_equal(rf_store_object_read(f->st, s2, &buf), RF_ERR_LIMIT);
    assert_int_equal(buf.len, 0);
    rf_buf_free(&buf);

    /* ordering, paging and the kind filter */
    struct rf_object list[10];
    size_t n = 0;
    assert_int_equal(rf_store_objects_since(f->st, 0, list, 10, &n), 0);
    assert_int_equal(n, 4);
    assert_int_equal(list[0].seq, s1);
    assert_int_equal(list[3].seq, s4);
    assert_string_equal(list[2].case_id, b.case_id);
    assert_int_equal(rf_store_objects_since(f->st, s1, list, 2, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(list[0].seq, s2);
    assert_int_equal(list[1].seq, s3);
    assert_int_equal(rf_store_objects_since(f->st, s4, list, 10, &n), 0);
    assert_int_equal(n, 0);

    assert_int_equal(rf_store_objects_of_source(f->st, a.id, 1u << 1 | 1u << 3, list, 10, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(list[0].seq, s1);
    assert_int_equal(list[1].seq, s4);
    assert_int_equal(rf_store_objects_of_source(f->st, a.id, 1u << 2, list, 10, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(list[0].seq, s2);
    assert_int_equal(rf_store_objects_of_source(f->st, a.id, ~0u, list, 10, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(rf_store_objects_of_source(f->st, a.id, 0, list, 10, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(rf_store_objects_of_source(f->st, b.id, ~0u, list, 10, &n), 0);
    assert_int_equal(n, 1);
    free(big);
}

static void object_put_refusals(void **state)
{
    struct fixture *f = *state;
    struct rf_source a = make_source(f->st, 1);
    uint8_t data[16] = {0};
    char name[RF_BLOB_NAME_LEN + 1];
    struct rf_op op = {.type = RF_OP_OBJECT_PUT, .source_id = a.id + 1000, .kind = 1};
    op.data = data;
    op.len = sizeof(data);
    assert_int_equal(apply1(f->st, &op), RF_ERR_NOT_FOUND); /* no such source */
    op.source_id = a.id;
    op.kind = 32;
    assert_int_equal(apply1(f->st, &op), RF_ERR_INVALID);
    op.kind = 1;
    uint8_t *huge = calloc(1, RF_INLINE_MAX + 1);
    op.data = huge;
    op.len = RF_INLINE_MAX + 1;
    assert_int_equal(apply1(f->st, &op), RF_ERR_LIMIT);
    free(huge);

    /* a blob name that was never committed, a malformed one, a wrong size */
    op.data = NULL;
    op.len = 0;
    memset(op.blob_name, 'a', RF_BLOB_NAME_LEN);
    op.blob_name[RF_BLOB_NAME_LEN] = '\0';
    assert_int_equal(apply1(f->st, &op), RF_ERR_NOT_FOUND);
    strcpy(op.blob_name, "../refuge.db");
    assert_int_equal(apply1(f->st, &op), RF_ERR_INVALID);
    write_blob(f->st, data, sizeof(data), name);
    memcpy(op.blob_name, name, sizeof(name));
    op.size = sizeof(data) + 1;
    assert_int_equal(apply1(f->st, &op), RF_ERR_INVALID);
    op.size = sizeof(data);
    assert_int_equal(apply1(f->st, &op), 0);
    /* two rows may not share a blob (deleting one would break the other) */
    assert_int_equal(apply1(f->st, &op), RF_ERR_EXISTS);

    size_t n = 9;
    struct rf_object list[4];
    assert_int_equal(rf_store_objects_since(f->st, 0, list, 4, &n), 0);
    assert_int_equal(n, 1);
}

static void delete_removes_row_and_blob_only_for_the_owner(void **state)
{
    struct fixture *f = *state;
    struct rf_source a = make_source(f->st, 1), b = make_source(f->st, 2);
    uint8_t data[5000];
    char name[RF_BLOB_NAME_LEN + 1];
    randombytes_buf(data, sizeof(data));
    int64_t sb = put_blob(f->st, a.id, 4, data, sizeof(data), name);
    int64_t si = put_inline(f->st, a.id, 4, data, 100);
    assert_true(blob_exists(f, name));

    struct rf_op del = {.type = RF_OP_OBJECT_DELETE, .seq = sb, .source_id = b.id};
    assert_int_equal(apply1(f->st, &del), RF_ERR_NOT_FOUND); /* not b's */
    assert_true(blob_exists(f, name));
    struct rf_object o;
    assert_int_equal(rf_store_object_get(f->st, sb, &o), 0);

    del.source_id = a.id;
    assert_int_equal(apply1(f->st, &del), 0);
    assert_false(blob_exists(f, name));
    assert_int_equal(rf_store_object_get(f->st, sb, &o), RF_ERR_NOT_FOUND);
    int fd;
    uint64_t size;
    assert_int_equal(rf_store_object_open(f->st, sb, &fd, &size), RF_ERR_NOT_FOUND);
    assert_int_equal(apply1(f->st, &del), RF_ERR_NOT_FOUND); /* twice */

    del.seq = si;
    assert_int_equal(apply1(f->st, &del), 0);
    size_t n = 9;
    struct rf_object list[4];
    assert_int_equal(rf_store_objects_of_source(f->st, a.id, ~0u, list, 4, &n), 0);
    assert_int_equal(n, 0);
    /* sequence numbers are never reused, so a sync cursor stays valid */
    int64_t next = put_inline(f->st, a.id, 4, data, 1);
    assert_true(next > si);
}

/* A deletion whose op fails later in its batch, or whose transaction fails,
 * must leave the blob in place. */
static void failed_delete_keeps_blob(void **state)
{
    struct fixture *f = *state;
    struct rf_source a = make_source(f->st, 1);
    uint8_t data[64] = {1};
    char name[RF_BLOB_NAME_LEN + 1];
    int64_t seq = put_blob(f->st, a.id, 1, data, sizeof(data), name);
    struct rf_op ops[2] = {{.type = RF_OP_OBJECT_DELETE, .seq = seq, .source_id = a.id},
                           {.type = RF_OP_SETTING_PUT, .key = "k", .data = data, .len = 1}};
    rf_store_fault_inject(f->st, 0, RF_ERR_IO);
    assert_int_equal(rf_store_apply(f->st, ops, 2), RF_ERR_IO);
    assert_int_equal(ops[0].status, RF_ERR_IO);
    assert_int_equal(ops[1].status, RF_ERR_IO);
    rf_store_fault_inject(f->st, -1, 0);
    assert_true(blob_exists(f, name));
    int fd;
    uint64_t size;
    assert_int_equal(rf_store_object_open(f->st, seq, &fd, &size), 0);
    assert_fd_bytes(fd, data, sizeof(data));
    close(fd);
}

/* ---- tokens, staff, rosters ---- */

static void token_is_used_once(void **state)
{
    struct fixture *f = *state;
    struct rf_op put = {.type = RF_OP_TOKEN_PUT, .role = 2};
    memset(put.token_hash, 7, 32);
    assert_int_equal(apply1(f->st, &put), 0);
    assert_int_equal(apply1(f->st, &put), RF_ERR_EXISTS);

    struct rf_op use = {.type = RF_OP_TOKEN_USE};
    memset(use.token_hash, 8, 32);
    assert_int_equal(apply1(f->st, &use), RF_ERR_NOT_FOUND);
    memset(use.token_hash, 7, 32);
    assert_int_equal(apply1(f->st, &use), 0);
    assert_int_equal(use.role, 2);
    use.role = 0;
    assert_int_equal(apply1(f->st, &use), RF_ERR_NOT_FOUND);
    reopen(f);
    assert_int_equal(apply1(f->st, &use), RF_ERR_NOT_FOUND); /* durable */

    /* two uses of one token in one batch: the second fails */
    struct rf_op two[2] = {{.type = RF_OP_TOKEN_PUT, .role = 1}, {.type = RF_OP_TOKEN_USE}};
    memset(two[0].token_hash, 9, 32);
    memset(two[1].token_hash, 9, 32);
    struct rf_op again = two[1];
    assert_int_equal(rf_store_apply(f->st, two, 2), 0);
    assert_int_equal(two[0].status, 0);
    assert_int_equal(two[1].status, 0);
    assert_int_equal(two[1].role, 1);
    assert_int_equal(apply1(f->st, &again), RF_ERR_NOT_FOUND);
}

static void staff_and_roster_chain(void **state)
{
    struct fixture *f = *state;
    struct rf_op sp = {.type = RF_OP_STAFF_PUT};
    struct rf_staff_rec got;
    memset(sp.staff.sign_pk, 1, 32);
    memset(sp.staff.box_pk, 2, 32);
    strcpy(sp.staff.name, "olena");
    assert_int_equal(apply1(f->st, &sp), 0);
    assert_int_equal(rf_store_staff_get(f->st, sp.staff.sign_pk, &got), 0);
    assert_memory_equal(got.box_pk, sp.staff.box_pk, 32);
    assert_string_equal(got.name, "olena");
    /* another key may not take the name */
    struct rf_op other = sp;
    memset(other.staff.sign_pk, 3, 32);
    assert_int_equal(apply1(f->st, &other), RF_ERR_EXISTS);
    assert_int_equal(rf_store_staff_get(f->st, other.staff.sign_pk, &got), RF_ERR_NOT_FOUND);
    /* the same key may be updated */
    memset(sp.staff.box_pk, 4, 32);
    assert_int_equal(apply1(f->st, &sp), 0);
    assert_int_equal(rf_store_staff_get(f->st, sp.staff.sign_pk, &got), 0);
    assert_int_equal(got.box_pk[0], 4);
    /* names must be terminated and non-empty */
    memset(other.staff.name, 'x', sizeof(other.staff.name));
    assert_int_equal(apply1(f->st, &other), RF_ERR_INVALID);
    other.staff.name[0] = '\0';
    assert_int_equal(apply1(f->st, &other), RF_ERR_INVALID);

    struct rf_buf raw;
    uint32_t v = 99;
    rf_buf_init(&raw, 1 << 16);
    assert_int_equal(rf_store_roster_latest(f->st, &v, &raw), RF_ERR_NOT_FOUND);
    struct rf_op rp = {
        .type = RF_OP_ROSTER_PUT, .version = 2, .data = (const uint8_t *)"r2", .len = 2};
    assert_int_equal(apply1(f->st, &rp), RF_ERR_ROSTER); /* 1 comes first */
    rp.version = 1;
    rp.data = (const uint8_t *)"r1";
    assert_int_equal(apply1(f->st, &rp), 0);
    assert_int_equal(apply1(f->st, &rp), RF_ERR_EXISTS);
    rp.version = 2;
    rp.data = (const uint8_t *)"r2";
    assert_int_equal(apply1(f->st, &rp), 0);
    rp.version = 4;
    assert_int_equal(apply1(f->st, &rp), RF_ERR_ROSTER);
    assert_int_equal(rf_store_roster_latest(f->st, &v, &raw), 0);
    assert_int_equal(v, 2);
    assert_int_equal(raw.len, 2);
    assert_memory_equal(raw.data, "r2", 2);
    rf_buf_reset(&raw);
    assert_int_equal(rf_store_roster_get(f->st, 1, &raw), 0);
    assert_memory_equal(raw.data, "r1", 2);
    rf_buf_reset(&raw);
    assert_int_equal(rf_store_roster_get(f->st, 3, &raw), RF_ERR_NOT_FOUND);
    rf_buf_free(&raw);
}

static struct rf_op roster_op(uint32_t version)
{
    struct rf_op rp = {
        .type = RF_OP_ROSTER_PUT, .version = version, .data = (const uint8_t *)"raw", .len = 3};
    return rp;
}

/* Every object carries the latest roster version at the moment it was stored
 * (issue 13, finding 3): set inside the storing transaction, so a roster
 * published earlier in the same batch counts, and it never decreases with
 * seq. Objects stored before any roster, or before schema 3, carry 0. */
static void objects_record_the_roster_they_were_stored_under(void **state)
{
    struct fixture *f = *state;
    struct rf_source src = make_source(f->st, 0x21);
    struct rf_object o;
    int64_t s0 = put_inline(f->st, src.id, 1, (const uint8_t *)"a", 1);
    assert_int_equal(rf_store_object_get(f->st, s0, &o), 0);
    assert_int_equal(o.roster, 0);

    struct rf_op r1 = roster_op(1);
    assert_int_equal(apply1(f->st, &r1), 0);
    int64_t s1 = put_inline(f->st, src.id, 4, (const uint8_t *)"b", 1);
    /* one batch: an object, then roster 2, then another object */
    struct rf_op ops[3] = {{.type = RF_OP_OBJECT_PUT, .source_id = src.id, .kind = 4},
                           roster_op(2),
                           {.type = RF_OP_OBJECT_PUT, .source_id = src.id, .kind = 4}};
    ops[0].data = ops[2].data = (const uint8_t *)"c";
    ops[0].len = ops[2].len = 1;
    assert_int_equal(rf_store_apply(f->st, ops, 3), 0);
    assert_int_equal(ops[0].status | ops[1].status | ops[2].status, 0);

    struct rf_object list[8];
    size_t n = 0;
    assert_int_equal(rf_store_objects_since(f->st, s0, list, 8, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(list[0].seq, s1);
    assert_int_equal(list[0].roster, 1);
    assert_int_equal(list[1].seq, ops[0].seq);
    assert_int_equal(list[1].roster, 1);
    assert_int_equal(list[2].seq, ops[2].seq);
    assert_int_equal(list[2].roster, 2);
    /* a failed roster put changes nothing */
    struct rf_op r9 = roster_op(9);
    assert_int_equal(apply1(f->st, &r9), RF_ERR_ROSTER);
    int64_t s3 = put_inline(f->st, src.id, 4, (const uint8_t *)"d", 1);
    assert_int_equal(rf_store_object_get(f->st, s3, &o), 0);
    assert_int_equal(o.roster, 2);
    assert_int_equal(rf_store_objects_of_source(f->st, src.id, 1u << 4, list, 8, &n), 0);
    assert_int_equal(n, 4);
    assert_int_equal(list[3].roster, 2);

    if (on_pg) /* no PostgreSQL database was ever at schema 2 */
        return;
    /* a schema-2 database: its objects read back as 0, new ones get the version */
    char path[700];
    sqlite3 *db;
    rf_store_close(f->st);
    f->st = NULL;
    snprintf(path, sizeof(path), "%s/refuge.db", f->dir);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "ALTER TABLE objects DROP COLUMN roster;"
                                  "ALTER TABLE audit DROP COLUMN request;"
                                  "PRAGMA user_version = 2",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(rf_store_open(&f->st, f->dir), 0);
    assert_int_equal(rf_store_object_get(f->st, s3, &o), 0);
    assert_int_equal(o.roster, 0);
    int64_t s4 = put_inline(f->st, src.id, 4, (const uint8_t *)"e", 1);
    assert_int_equal(rf_store_object_get(f->st, s4, &o), 0);
    assert_int_equal(o.roster, 2);
}

/* ---- batches ---- */

static void failing_op_fails_alone(void **state)
{
    struct fixture *f = *state;
    struct rf_source a = make_source(f->st, 1);
    uint8_t data[32] = {5};
    struct rf_op ops[5] = {
        {.type = RF_OP_SETTING_PUT, .key = "x", .data = data, .len = 1},
        {.type = RF_OP_SOURCE_CREATE}, /* lookup 1 is taken */
        {.type = RF_OP_OBJECT_PUT, .source_id = a.id, .kind = 1, .data = data, .len = 32},
        {.type = RF_OP_TOKEN_USE}, /* unknown */
        {.type = 0},               /* no such op */
    };
    memset(ops[1].lookup_id, 1, 32);
    assert_int_equal(rf_store_apply(f->st, ops, 5), 0);
    assert_int_equal(ops[0].status, 0);
    assert_int_equal(ops[1].status, RF_ERR_EXISTS);
    assert_int_equal(ops[2].status, 0);
    assert_int_equal(ops[3].status, RF_ERR_NOT_FOUND);
    assert_int_equal(ops[4].status, RF_ERR_INVALID);
    struct rf_buf b;
    rf_buf_init(&b, 10);
    assert_int_equal(rf_store_setting_get(f->st, "x", &b), 0);
    rf_buf_free(&b);
    struct rf_object o;
    assert_int_equal(rf_store_object_get(f->st, ops[2].seq, &o), 0);

    /* a failing op's partial effects are undone: a source whose insert
     * fails leaves no row */
    struct rf_op two[2] = {{.type = RF_OP_SOURCE_CREATE}, {.type = RF_OP_SOURCE_CREATE}};
    memset(two[0].lookup_id, 6, 32);
    memset(two[1].lookup_id, 6, 32);
    assert_int_equal(rf_store_apply(f->st, two, 2), 0);
    assert_int_equal(two[0].status, 0);
    assert_int_equal(two[1].status, RF_ERR_EXISTS);
}

/* ---- fault injection ---- */

static void blob_write_failure_leaves_no_temp(void **state)
{
    struct fixture *f = *state;
    struct rf_blob *b = NULL;
    uint8_t chunk[4096] = {1};
    char name[RF_BLOB_NAME_LEN + 1];

    rf_store_fault_inject(f->st, 2, RF_ERR_NOSPACE);
    assert_int_equal(rf_blob_begin(f->st, &b), 0);
    assert_int_equal(count_entries(f->dir, "tmp"), 1);
    assert_int_equal(rf_blob_write(b, chunk, sizeof(chunk)), 0);
    assert_int_equal(rf_blob_write(b, chunk, sizeof(chunk)), 0);
    assert_int_equal(rf_blob_write(b, chunk, sizeof(chunk)), RF_ERR_NOSPACE);
    assert_int_equal(count_entries(f->dir, "tmp"), 0); /* space handed back at once */
    assert_int_equal(rf_blob_write(b, chunk, sizeof(chunk)), RF_ERR_NOSPACE);
    assert_int_equal(rf_blob_commit(b, name), RF_ERR_NOSPACE);
    assert_string_equal(name, "");
    assert_int_equal(count_entries(f->dir, "tmp"), 0);
    assert_int_equal(count_entries(f->dir, "blobs"), 0);

    /* a failing fsync: the file fsync, then the directory fsync */
    for (int ok = 1; ok <= 2; ok++) {
        rf_store_fault_inject(f->st, -1, 0);
        assert_int_equal(rf_blob_begin(f->st, &b), 0);
        assert_int_equal(rf_blob_write(b, chunk, sizeof(chunk)), 0);
        rf_store_fault_inject(f->st, ok - 1, RF_ERR_IO);
        assert_int_equal(rf_blob_commit(b, name), RF_ERR_IO);
        assert_int_equal(count_entries(f->dir, "tmp"), 0);
        assert_int_equal(count_entries(f->dir, "blobs"), 0);
    }

    /* abort after a failure is fine too */
    rf_store_fault_inject(f->st, 0, RF_ERR_NOSPACE);
    assert_int_equal(rf_blob_begin(f->st, &b), 0);
    assert_int_equal(rf_blob_write(b, chunk, 1), RF_ERR_NOSPACE);
    rf_blob_abort(b);
    rf_blob_abort(NULL);
    rf_store_fault_inject(f->st, -1, 0);
    assert_int_equal(count_entries(f->dir, "tmp"), 0);

    /* and once the disk has room again, blobs work */
    write_blob(f->st, chunk, sizeof(chunk), name);
    assert_true(blob_exists(f, name));
}

static void commit_failure_applies_nothing_and_store_recovers(void **state)
{
    struct fixture *f = *state;
    struct rf_source a = make_source(f->st, 1);
    uint8_t data[64] = {3};
    struct rf_op ops[3] = {
        {.type = RF_OP_SETTING_PUT, .key = "lost", .data = data, .len = 4},
        {.type = RF_OP_OBJECT_PUT, .source_id = a.id, .kind = 1, .data = data, .len = 64},
        {.type = RF_OP_SOURCE_CREATE},
    };
    memset(ops[2].lookup_id, 2, 32);
    rf_store_fault_inject(f->st, 0, RF_ERR_NOSPACE);
    assert_int_equal(rf_store_apply(f->st, ops, 3), RF_ERR_NOSPACE);
    for (int i = 0; i < 3; i++)
        assert_int_equal(ops[i].status, RF_ERR_NOSPACE);
    /* still full: still nothing */
    assert_int_equal(rf_store_apply(f->st, ops, 3), RF_ERR_NOSPACE);

    struct rf_buf b;
    rf_buf_init(&b, 10);
    assert_int_equal(rf_store_setting_get(f->st, "lost", &b), RF_ERR_NOT_FOUND);
    size_t n = 9;
    struct rf_object list[4];
    assert_int_equal(rf_store_objects_since(f->st, 0, list, 4, &n), 0);
    assert_int_equal(n, 0);
    struct rf_source s;
    assert_int_equal(rf_store_source_by_lookup(f->st, ops[2].lookup_id, &s), RF_ERR_NOT_FOUND);

    /* room again: the same batch goes through, and survives a reopen */
    rf_store_fault_inject(f->st, -1, 0);
    assert_int_equal(rf_store_apply(f->st, ops, 3), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(ops[i].status, 0);
    reopen(f);
    assert_int_equal(rf_store_setting_get(f->st, "lost", &b), 0);
    assert_int_equal(rf_store_objects_since(f->st, 0, list, 4, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(list[0].seq, ops[1].seq);
    assert_int_equal(rf_store_source_by_lookup(f->st, ops[2].lookup_id, &s), 0);
    assert_int_equal(rf_store_source_by_case(f->st, a.case_id, &s), 0);
    rf_buf_free(&b);
}

/* Not injected: the kernel refuses writes past RLIMIT_FSIZE (EFBIG), so SQLite
 * and the blob writer meet a real write error in the middle of their work. */
static off_t file_size(const struct fixture *f, const char *name)
{
    char path[700];
    struct stat sb;
    snprintf(path, sizeof(path), "%s/%s", f->dir, name);
    return stat(path, &sb) == 0 ? sb.st_size : 0;
}

static void real_write_errors_roll_back_cleanly(void **state)
{
    struct fixture *f = *state;
    if (on_pg) /* PostgreSQL writes in its own processes: RLIMIT_FSIZE is ours */
        skip();
    struct rf_source a = make_source(f->st, 1);
    size_t each = 200 * 1024;
    uint8_t *data = malloc(each);
    struct rf_op ops[8];
    struct rlimit old, lim;
    assert_non_null(data);
    randombytes_buf(data, each);
    for (int i = 0; i < 8; i++)
        ops[i] = (struct rf_op){
            .type = RF_OP_OBJECT_PUT, .source_id = a.id, .kind = 1, .data = data, .len = each};
    off_t db = file_size(f, "refuge.db"), wal = file_size(f, "refuge.db-wal");
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, SIG_IGN);
    lim = old;
    lim.rlim_cur = (rlim_t)(db > wal ? db : wal) + 64 * 1024;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);

    int rc = rf_store_apply(f->st, ops, 8);
    struct rf_blob *b = NULL;
    assert_int_equal(rf_blob_begin(f->st, &b), 0);
    int brc = rf_blob_write(b, data, each);
    for (int i = 0; i < 4 && brc == 0; i++)
        brc = rf_blob_write(b, data, each);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);

    assert_true(rc == RF_ERR_NOSPACE || rc == RF_ERR_IO);
    for (int i = 0; i < 8; i++)
        assert_int_equal(ops[i].status, rc);
    assert_int_equal(brc, RF_ERR_IO);
    rf_blob_abort(b);
    assert_int_equal(count_entries(f->dir, "tmp"), 0);

    size_t n = 9;
    struct rf_object list[10];
    assert_int_equal(rf_store_objects_since(f->st, 0, list, 10, &n), 0);
    assert_int_equal(n, 0);
    /* the limit lifted, the store carries on, and after a reopen too */
    assert_int_equal(rf_store_apply(f->st, ops, 8), 0);
    for (int i = 0; i < 8; i++)
        assert_int_equal(ops[i].status, 0);
    reopen(f);
    assert_int_equal(rf_store_objects_since(f->st, 0, list, 10, &n), 0);
    assert_int_equal(n, 8);
    int fd;
    uint64_t size;
    assert_int_equal(rf_store_object_open(f->st, list[7].seq, &fd, &size), 0);
    assert_fd_bytes(fd, data, each);
    close(fd);
    free(data);
}

/* ---- crash recovery ---- */

static void reopen_removes_temp_files_and_orphan_blobs(void **state)
{
    struct fixture *f = *state;
    struct rf_source a = make_source(f->st, 1);
    uint8_t data[3000];
    char kept[RF_BLOB_NAME_LEN + 1], orphan[RF_BLOB_NAME_LEN + 1], path[800];
    randombytes_buf(data, sizeof(data));
    int64_t seq = put_blob(f->st, a.id, 1, data, sizeof(data), kept);

    /* crash after rename, before the row committed */
    write_blob(f->st, data, 100, orphan);
    /* crash while writing: an unfinished temp file, and a stray one */
    struct rf_blob *b = NULL;
    assert_int_equal(rf_blob_begin(f->st, &b), 0);
    assert_int_equal(rf_blob_write(b, data, 10), 0);
    snprintf(path, sizeof(path), "%s/tmp/0123.tmp", f->dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fclose(fp);
    /* a file that is not a blob name is left for the admin */
    snprintf(path, sizeof(path), "%s/blobs/README", f->dir);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fclose(fp);
    assert_int_equal(count_entries(f->dir, "tmp"), 2);
    assert_int_equal(count_entries(f->dir, "blobs"), 3);

    /* a second opener while the first is live must not touch in-flight files */
    struct rf_store *second = NULL;
    assert_int_equal(rf_store_open(&second, f->dir), 0);
    assert_int_equal(count_entries(f->dir, "tmp"), 2);
    assert_true(blob_exists(f, orphan));
    struct rf_object o;
    assert_int_equal(rf_store_object_get(second, seq, &o), 0);
    rf_store_close(second);

    rf_blob_abort(b); /* would not happen in a crash; the file is gone anyway */
    assert_int_equal(count_entries(f->dir, "tmp"), 1);
    if (on_pg) {
        /* beside a live process (which may have a put in flight) young
         * files stay, files older than an hour go; alone, all of them go
         * (the reopen below) */
        struct rf_store *live = NULL;
        assert_int_equal(rf_store_open(&live, f->dir), 0);
        reopen(f);
        assert_int_equal(count_entries(f->dir, "tmp"), 1);
        assert_true(blob_exists(f, orphan));
        struct timespec old[2] = {{time(NULL) - 7200, 0}, {time(NULL) - 7200, 0}};
        snprintf(path, sizeof(path), "%s/tmp/0123.tmp", f->dir);
        assert_int_equal(utimensat(AT_FDCWD, path, old, 0), 0);
        snprintf(path, sizeof(path), "%s/blobs/%s", f->dir, orphan);
        assert_int_equal(utimensat(AT_FDCWD, path, old, 0), 0);
        snprintf(path, sizeof(path), "%s/blobs/%s", f->dir, kept);
        assert_int_equal(utimensat(AT_FDCWD, path, old, 0), 0);
        reopen(f);
        assert_int_equal(count_entries(f->dir, "tmp"), 0);
        assert_false(blob_exists(f, orphan));
        assert_true(blob_exists(f, kept));
        rf_store_close(live);
    }
    reopen(f);
    assert_int_equal(count_entries(f->dir, "tmp"), 0);
    assert_false(blob_exists(f, orphan));
    assert_true(blob_exists(f, kept));
    assert_true(blob_exists(f, "README"));
    assert_int_equal(count_entries(f->dir, "blobs"), 2);
    int fd;
    uint64_t size;
    assert_int_equal(rf_store_object_open(f->st, seq, &fd, &size), 0);
    assert_fd_bytes(fd, data, sizeof(data));
    close(fd);
}

/* ---- concurrency ---- */

struct reader_arg {
    struct rf_store *st;
    _Atomic int stop;
    int errors;
    long reads;
};

static void *reader_main(void *p)
{
    struct reader_arg *ra = p;
    struct rf_object list[64];
    while (!ra->stop) {
        size_t n = 0;
        if (rf_store_objects_since(ra->st, 0, list, 64, &n) != 0)
            ra->errors++;
        for (size_t i = 1; i < n; i++)
            if (list[i].seq <= list[i - 1].seq)
                ra->errors++;
        ra->reads++;
    }
    return NULL;
}

static void reads_run_while_writing(void **state)
{
    struct fixture *f = *state;
    struct rf_source a = make_source(f->st, 1);
    struct reader_arg ra[3] = {{f->st, 0, 0, 0}, {f->st, 0, 0, 0}, {f->st, 0, 0, 0}};
    pthread_t th[3];
    uint8_t data[256] = {0};
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_create(&th[i], NULL, reader_main, &ra[i]), 0);
    for (int i = 0; i < 100; i++)
        put_inline(f->st, a.id, 1, data, sizeof(data));
    for (int i = 0; i < 3; i++) {
        ra[i].stop = 1;
        pthread_join(th[i], NULL);
        assert_int_equal(ra[i].errors, 0);
        assert_true(ra[i].reads > 0);
    }
}

/* With WAL a reader neither waits for an open write transaction nor sees it. */
static void reads_do_not_wait_for_a_writer(void **state)
{
    struct fixture *f = *state;
    char path[700];
    sqlite3 *db;
    struct rf_op op = {
        .type = RF_OP_SETTING_PUT, .key = "old", .data = (const uint8_t *)"1", .len = 1};
    assert_int_equal(apply1(f->st, &op), 0);
    if (on_pg) {
        PGconn *c = PQconnectdb(f->pgurl);
        assert_int_equal(PQstatus(c), CONNECTION_OK);
        PQclear(PQexec(c, "BEGIN; INSERT INTO settings(key, value) VALUES ('new', '\\x00')"));
        assert_int_equal(PQtransactionStatus(c), PQTRANS_INTRANS);
        struct rf_buf b;
        rf_buf_init(&b, 10);
        assert_int_equal(rf_store_setting_get(f->st, "old", &b), 0);
        assert_int_equal(rf_store_setting_get(f->st, "new", &b), RF_ERR_NOT_FOUND);
        PQclear(PQexec(c, "ROLLBACK"));
        PQfinish(c);
        rf_buf_free(&b);
        return;
    }
    snprintf(path, sizeof(path), "%s/refuge.db", f->dir);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "BEGIN IMMEDIATE; INSERT INTO settings(key, value) "
                                  "VALUES ('new', x'00')",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    struct rf_buf b;
    rf_buf_init(&b, 10);
    assert_int_equal(rf_store_setting_get(f->st, "old", &b), 0);
    assert_int_equal(rf_store_setting_get(f->st, "new", &b), RF_ERR_NOT_FOUND);
    assert_int_equal(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    rf_buf_free(&b);
}

/* PostgreSQL only: the server ends the store's connections (as when it
 * restarts). A batch in flight fails whole and nothing of it is stored; the
 * store reconnects by itself and the next batch and reads work. */
static void lost_connections_fail_a_batch_then_recover(void **state)
{
    struct fixture *f = *state;
    char q[160];
    if (!on_pg)
        skip();
    struct rf_source a = make_source(f->st, 1);
    int64_t s0 = put_inline(f->st, a.id, 1, (const uint8_t *)"a", 1);
    struct rf_object o;
    assert_int_equal(rf_store_object_get(f->st, s0, &o), 0); /* a reader is open too */
    snprintf(q, sizeof(q),
             "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
             "WHERE application_name = '%s'",
             f->schema);
    assert_true(pgt_int(pgt_base(), q) >= 2);
    struct rf_op ops[2] = {{.type = RF_OP_OBJECT_PUT, .source_id = a.id, .kind = 1},
                           {.type = RF_OP_OBJECT_PUT, .source_id = a.id, .kind = 1}};
    ops[0].data = ops[1].data = (const uint8_t *)"b";
    ops[0].len = ops[1].len = 1;
    int rc = rf_store_apply(f->st, ops, 2);
    if (rc != 0) { /* failed whole: every op says so, nothing was stored */
        assert_int_equal(ops[0].status, rc);
        assert_int_equal(ops[1].status, rc);
        assert_int_equal(rf_store_apply(f->st, ops, 2), 0);
    }
    assert_int_equal(ops[0].status | ops[1].status, 0);
    struct rf_object list[8];
    size_t n = 0;
    for (int i = 0; i < 2; i++) { /* the first read may meet the dead reader */
        rc = rf_store_objects_since(f->st, 0, list, 8, &n);
        if (rc == 0)
            break;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(n, 3);
    assert_int_equal(list[0].seq, s0);
    assert_int_equal(list[1].seq, ops[0].seq);
    assert_int_equal(list[2].seq, ops[1].seq);
}

/* ---- teams: grants, audit, teamconfig, schedule, purge ---- */

static void fill_grant(uint8_t g[88], const uint8_t keyid[8], uint8_t fill)
{
    memcpy(g, keyid, 8);
    memset(g + 8, fill, 80);
}

static void grants_unique_listed_by_key_and_gone_with_their_object(void **state)
{
    struct fixture *f = *state;
    struct rf_source a = make_source(f->st, 1);
    uint8_t data[300] = {1};
    char name[RF_BLOB_NAME_LEN + 1];
    int64_t s1 = put_inline(f->st, a.id, 1, data, sizeof(data));
    int64_t s2 = put_blob(f->st, a.id, 2, data, sizeof(data), name);
    uint8_t k1[8] = {1, 1, 1, 1, 1, 1, 1, 1}, k2[8] = {2, 2, 2, 2, 2, 2, 2, 2};
    uint8_t g[4][88];
    fill_grant(g[0], k1, 0xa1);
    fill_grant(g[1], k1, 0xa2);
    fill_grant(g[2], k2, 0xb1);
    fill_grant(g[3], k1, 0xc1);
    struct rf_op ops[3] = {
        {.type = RF_OP_GRANT_PUT, .seq = s1, .data = g[0], .len = 88},
        {.type = RF_OP_GRANT_PUT, .seq = s1, .data = g[2], .len = 88},
        {.type = RF_OP_GRANT_PUT, .seq = s2, .data = g[1], .len = 88},
    };
    memcpy(ops[0].keyid, k1, 8);
    memcpy(ops[1].keyid, k2, 8);
    memcpy(ops[2].keyid, k1, 8);
    assert_int_equal(rf_store_apply(f->st, ops, 3), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(ops[i].status, 0);

    /* a second grant for (object, key) by the same granter is accepted and
     * ignored: the granter's first stays */
    struct rf_op again = {.type = RF_OP_GRANT_PUT, .seq = s1, .data = g[3], .len = 88};
    memcpy(again.keyid, k1, 8);
    assert_int_equal(apply1(f->st, &again), 0);

    struct rf_grant_rec got[8];
    size_t n = 0;
    assert_int_equal(rf_store_grants_for(f->st, k1, 0, got, 8, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(got[0].seq, s1);
    assert_memory_equal(got[0].grant, g[0], 88);
    assert_memory_equal(got[0].keyid, k1, 8);
    assert_int_equal(got[1].seq, s2);
    assert_memory_equal(got[1].grant, g[1], 88);
    assert_true(got[1].id > got[0].id);
    /* paging: after the first, at most one */
    assert_int_equal(rf_store_grants_for(f->st, k1, got[0].id, got, 1, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(got[0].seq, s2);
    assert_int_equal(rf_store_grants_for(f->st, k2, 0, got, 8, &n), 0);
    assert_int_equal(n, 1);
    assert_memory_equal(got[0].grant, g[2], 88);

    /* refusals: no such object, a grant whose key id is not its own, bad length */
    struct rf_op bad = {.type = RF_OP_GRANT_PUT, .seq = 99999, .data = g[0], .len = 88};
    memcpy(bad.keyid, k1, 8);
    assert_int_equal(apply1(f->st, &bad), RF_ERR_NOT_FOUND);
    bad.seq = s2;
    memcpy(bad.keyid, k2, 8); /* g[0] starts with k1 */
    assert_int_equal(apply1(f->st, &bad), RF_ERR_INVALID);
    bad.data = g[2];
    bad.len = 87;
    assert_int_equal(apply1(f->st, &bad), RF_ERR_INVALID);

    /* the object goes, its grants go with it (and its blob) */
    struct rf_op del = {.type = RF_OP_OBJECT_DELETE, .seq = s2, .source_id = a.id};
    assert_int_equal(apply1(f->st, &del), 0);
    assert_false(blob_exists(f, name));
    assert_int_equal(rf_store_grants_for(f->st, k1, 0, got, 8, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(got[0].seq, s1);
    reopen(f);
    assert_int_equal(rf_store_grants_for(f->st, k2, 0, got, 8, &n), 0);
    assert_int_equal(n, 1);
}

static int count_rows(const struct fixture *f, const char *table);

/* Finding 12 of the trust review: the first grant stored for an object no
 * longer wins. Two granters' grants for one (object, key) are both kept and
 * listed with their granter; a granter's repeat is ignored; no more than
 * RF_GRANTS_PER_KEY_MAX are kept for one (object, key). */
static void grants_kept_per_granter_and_bounded(void **state)
{
    struct fixture *f = *state;
    struct rf_source a = make_source(f->st, 1);
    uint8_t data[300] = {1};
    int64_t seq = put_inline(f->st, a.id, 1, data, sizeof(data));
    uint8_t k[8] = {7, 7, 7, 7, 7, 7, 7, 7};
    uint8_t junk[88], honest[88], again[88];
    fill_grant(junk, k, 0x11);
    fill_grant(honest, k, 0x22);
    fill_grant(again, k, 0x33);
    struct rf_op op = {.type = RF_OP_GRANT_PUT, .seq = seq, .data = junk, .len = 88};
    memcpy(op.keyid, k, 8);
    memset(op.pk, 0xee, 32); /* Mallory posts junk first */
    assert_int_equal(apply1(f->st, &op), 0);
    op.data = honest;
    memset(op.pk, 0xaa, 32); /* then Anna's honest rewrap */
    assert_int_equal(apply1(f->st, &op), 0);
    op.data = again;
    memset(op.pk, 0xee, 32); /* Mallory again: her first stays */
    assert_int_equal(apply1(f->st, &op), 0);

    struct rf_grant_rec got[4];
    size_t n = 0;
    uint8_t ee[32], aa[32];
    memset(ee, 0xee, 32);
    memset(aa, 0xaa, 32);
    assert_int_equal(rf_store_grants_for(f->st, k, 0, got, 4, &n), 0);
    assert_int_equal(n, 2);
    assert_memory_equal(got[0].grant, junk, 88);
    assert_memory_equal(got[0].granter, ee, 32);
    assert_memory_equal(got[1].grant, honest, 88);
    assert_memory_equal(got[1].granter, aa, 32);
    reopen(f);
    assert_int_equal(rf_store_grants_for(f->st, k, 0, got, 4, &n), 0);
    assert_int_equal(n, 2);

    /* a flood of granters stops at the bound, accepted (a retry is harmless)
     * but not stored */
    for (int i = 0; i < RF_GRANTS_PER_KEY_MAX + 10; i++) {
        op.data = again;
        memset(op.pk, 0, 32);
        op.pk[0] = (uint8_t)i;
        op.pk[1] = (uint8_t)(i >> 8);
        op.pk[2] = 1;
        assert_int_equal(apply1(f->st, &op), 0);
    }
    assert_int_equal(count_rows(f, "grants"), RF_GRANTS_PER_KEY_MAX);
}

/* Finding 7 of the trust review: nonces are in the store, so a replay is
 * refused after a reopen (a server restart) and by a second opener of the
 * same data directory (another server process); old slots are pruned. */
static void nonces_refused_across_reopen_and_openers(void **state)
{
    struct fixture *f = *state;
    int64_t now = (int64_t)time(NULL);
    struct rf_op op = {.type = RF_OP_NONCE_PUT, .ts = now};
    randombytes_buf(op.nonce, sizeof(op.nonce));
    assert_int_equal(apply1(f->st, &op), 0);
    assert_int_equal(apply1(f->st, &op), RF_ERR_EXISTS);
    reopen(f);
    assert_int_equal(apply1(f->st, &op), RF_ERR_EXISTS);
    struct rf_store *second = NULL;
    assert_int_equal(rf_store_open(&second, f->dir), 0);
    assert_int_equal(apply1(second, &op), RF_ERR_EXISTS);
    /* a fresh nonce stored by the second opener is a replay for the first */
    struct rf_op other = {.type = RF_OP_NONCE_PUT, .ts = now};
    randombytes_buf(other.nonce, sizeof(other.nonce));
    assert_int_equal(apply1(second, &other), 0);
    rf_store_close(second);
    assert_int_equal(apply1(f->st, &other), RF_ERR_EXISTS);

    /* a nonce whose time is two slots back (out of the signature window)
     * is pruned by the next insert; one inside the window is not */
    struct rf_op old = {.type = RF_OP_NONCE_PUT, .ts = now - 3 * RF_APISIG_MAX_SKEW};
    randombytes_buf(old.nonce, sizeof(old.nonce));
    assert_int_equal(apply1(f->st, &old), 0);
    assert_int_equal(count_rows(f, "nonces"), 3);
    struct rf_op next = {.type = RF_OP_NONCE_PUT, .ts = now};
    randombytes_buf(next.nonce, sizeof(next.nonce));
    assert_int_equal(apply1(f->st, &next), 0);
    assert_int_equal(count_rows(f, "nonces"), 3); /* old went, next came */
    assert_int_equal(apply1(f->st, &op), RF_ERR_EXISTS);
    /* and the daily purge empties every expired slot, with no request */
    old.nonce[0] ^= 1;
    assert_int_equal(apply1(f->st, &old), 0);
    struct rf_purge_counts pc;
    assert_int_equal(rf_store_purge(f->st, rf_store_today(), 0, &pc), 0);
    assert_int_equal(count_rows(f, "nonces"), 3);
}

static struct rf_op audit_op(uint8_t actor, const char *action, const char *target)
{
    struct rf_op op = {.type = RF_OP_AUDIT_APPEND, .key = action, .target = target};
    memset(op.pk, actor, sizeof(op.pk));
    return op;
}

/* Reads the whole log and checks every link, hash and id. */
static size_t audit_check_all(struct rf_store *st)
{
    size_t cap = 4096, n = 0, bad = 0;
    struct rf_audit_entry *e = calloc(cap, sizeof(*e));
    enum rf_audit_break what = RF_AUDIT_OK;
    static const uint8_t zero[32];
    assert_non_null(e);
    assert_int_equal(rf_store_audit_list(st, 0, e, cap, &n), 0);
    for (size_t i = 0; i < n; i++) {
        uint8_t h[32];
        assert_int_equal(e[i].id, i + 1);
        assert_int_equal(e[i].day, rf_store_today());
        assert_memory_equal(e[i].prev, i == 0 ? zero : e[i - 1].hash, 32);
        assert_int_equal(rf_audit_hash(h, &e[i]), 0);
        assert_memory_equal(h, e[i].hash, 32);
    }
    assert_int_equal(rf_audit_verify(e, n, 0, zero, &bad, &what), 0);
    free(e);
    return n;
}

static void audit_chain_across_batches_and_rolled_back_groups(void **state)
{
    struct fixture *f = *state;
    struct rf_source a = make_source(f->st, 1);
    uint8_t data[10] = {0};
    struct rf_op one = audit_op(1, "enroll", "");
    assert_int_equal(apply1(f->st, &one), 0);
    /* several appends in one batch, between other ops */
    struct rf_op batch[4] = {
        audit_op(2, "fetch", "1"),
        {.type = RF_OP_OBJECT_PUT, .source_id = a.id, .kind = 3, .data = data, .len = 10},
        audit_op(2, "reply", a.case_id),
        audit_op(0, "delete", "2"),
    };
    assert_int_equal(rf_store_apply(f->st, batch, 4), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(batch[i].status, 0);
    /* a group whose last op fails: its audit entry is rolled back, no gap */
    struct rf_op grp[3] = {
        audit_op(3, "schedule", a.case_id),
        {.type = RF_OP_CASE_SCHEDULE, .source_id = 999999, .day = 5},
        audit_op(4, "fetch", "7"),
    };
    grp[0].group = 2;
    assert_int_equal(rf_store_apply(f->st, grp, 3), 0);
    assert_int_equal(grp[0].status, RF_ERR_NOT_FOUND);
    assert_int_equal(grp[1].status, RF_ERR_NOT_FOUND);
    assert_int_equal(grp[2].status, 0);
    /* a failed transaction leaves nothing */
    struct rf_op lost = audit_op(5, "fetch", "8");
    rf_store_fault_inject(f->st, 0, RF_ERR_IO);
    assert_int_equal(rf_store_apply(f->st, &lost, 1), RF_ERR_IO);
    rf_store_fault_inject(f->st, -1, 0);
    /* refused fields: empty or over-long action, over-long or non-ASCII target */
    char longt[80];
    memset(longt, 'x', sizeof(longt) - 1);
    longt[sizeof(longt) - 1] = '\0';
    struct rf_op bad = audit_op(1, "", "");
    assert_int_equal(apply1(f->st, &bad), RF_ERR_INVALID);
    bad = audit_op(1, "fetch", longt);
    assert_int_equal(apply1(f->st, &bad), RF_ERR_INVALID);
    bad = audit_op(1, "this-action-name-is-longer-than-31", "");
    assert_int_equal(apply1(f->st, &bad), RF_ERR_INVALID);
    bad = audit_op(1, "fetch", "caf\xc3\xa9");
    assert_int_equal(apply1(f->st, &bad), RF_ERR_INVALID);
    bad = audit_op(1, NULL, NULL);
    assert_int_equal(apply1(f->st, &bad), RF_ERR_INVALID);
    reopen(f);
    struct rf_op last = audit_op(6, "token", "member");
    assert_int_equal(apply1(f->st, &last), 0);

    assert_int_equal(audit_check_all(f->st), 6);
    struct rf_audit_entry e[8];
    size_t n = 0;
    assert_int_equal(rf_store_audit_list(f->st, 2, e, 2, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(e[0].id, 3);
    assert_string_equal(e[0].action, "reply");
    assert_string_equal(e[0].target, a.case_id);
    assert_string_equal(e[1].action, "delete");
    uint8_t zero[32] = {0};
    assert_memory_equal(e[1].actor, zero, 32);
    assert_int_equal(rf_store_audit_list(f->st, 5, e, 8, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(e[0].action, "token");
    assert_string_equal(e[0].target, "member");
    assert_int_equal(e[0].actor[0], 6);
}

/* The reserved case: there from the start, events only, never scheduled or
 * deleted, not reachable by a person's lookup. */
static void teamconfig_holds_events_only(void **state)
{
    struct fixture *f = *state;
    struct rf_source tc;
    uint8_t data[16] = {0};
    assert_int_equal(rf_store_source_by_case(f->st, "teamconfig", &tc), 0);
    static const uint8_t zero[32];
    assert_memory_equal(tc.pk, zero, 32);
    struct rf_op put = {
        .type = RF_OP_OBJECT_PUT, .source_id = tc.id, .kind = 4, .data = data, .len = sizeof(data)};
    assert_int_equal(apply1(f->st, &put), 0);
    for (uint8_t kind = 1; kind <= 5; kind++) {
        if (kind == 4)
            continue;
        put.kind = kind;
        assert_int_equal(apply1(f->st, &put), RF_ERR_INVALID);
    }
    struct rf_op sched = {.type = RF_OP_CASE_SCHEDULE, .source_id = tc.id, .day = 1};
    assert_int_equal(apply1(f->st, &sched), RF_ERR_INVALID);
    sched.day = 0;
    assert_int_equal(apply1(f->st, &sched), 0); /* cancelling nothing is fine */
    sched.source_id = 424242;
    assert_int_equal(apply1(f->st, &sched), RF_ERR_NOT_FOUND);
    /* a person's zero lookup id does not find it */
    assert_int_equal(rf_store_source_by_lookup(f->st, zero, &tc), RF_ERR_NOT_FOUND);
    /* a second open migrates nothing again: still exactly one */
    reopen(f);
    assert_int_equal(rf_store_source_by_case(f->st, "teamconfig", &tc), 0);
}

static void staff_list_by_name_with_day(void **state)
{
    struct fixture *f = *state;
    const char *names[3] = {"vera", "anna", "ivan"};
    for (int i = 0; i < 3; i++) {
        struct rf_op sp = {.type = RF_OP_STAFF_PUT};
        memset(sp.staff.sign_pk, i + 1, 32);
        memset(sp.staff.box_pk, i + 11, 32);
        strcpy(sp.staff.name, names[i]);
        assert_int_equal(apply1(f->st, &sp), 0);
    }
    struct rf_staff_rec r[4];
    size_t n = 0;
    assert_int_equal(rf_store_staff_list(f->st, r, 4, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(r[0].name, "anna");
    assert_int_equal(r[0].sign_pk[0], 2);
    assert_int_equal(r[0].box_pk[31], 12);
    assert_int_equal(r[0].day, rf_store_today());
    assert_string_equal(r[2].name, "vera");
    assert_int_equal(rf_store_staff_list(f->st, r, 2, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(rf_store_staff_get(f->st, r[1].sign_pk, &r[3]), 0);
    assert_int_equal(r[3].day, rf_store_today());
}

/* Runs SQL on the database beside the store (to age rows by days). */
static void sql(const struct fixture *f, const char *fmt, ...)
{
    char path[700], q[512];
    sqlite3 *db;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(q, sizeof(q), fmt, ap);
    va_end(ap);
    if (on_pg) {
        pgt_exec(f->pgurl, q);
        return;
    }
    snprintf(path, sizeof(path), "%s/refuge.db", f->dir);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 10000);
    assert_int_equal(sqlite3_exec(db, q, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

struct purge_case_fx {
    uint8_t tag;
    struct rf_source src;
    int64_t seq[3];
    char blob[RF_BLOB_NAME_LEN + 1];
};

/* A case with a message (inline), a file (blob) and a staff reply, and a
 * grant on the message; the case and its objects dated `day`. */
static void purge_case_make(struct fixture *f, struct purge_case_fx *c, uint8_t tag, int64_t day)
{
    uint8_t data[400];
    randombytes_buf(data, sizeof(data));
    c->tag = tag;
    c->src = make_source(f->st, tag);
    c->seq[0] = put_inline(f->st, c->src.id, 1, data, sizeof(data));
    c->seq[1] = put_blob(f->st, c->src.id, 2, data, sizeof(data), c->blob);
    c->seq[2] = put_inline(f->st, c->src.id, 3, data, 50);
    uint8_t g[88];
    struct rf_op gp = {.type = RF_OP_GRANT_PUT, .seq = c->seq[0], .data = g, .len = 88};
    memset(gp.keyid, tag, 8);
    fill_grant(g, gp.keyid, tag);
    assert_int_equal(apply1(f->st, &gp), 0);
    sql(f,
        "UPDATE objects SET day = %lld WHERE source_id = %lld; "
        "UPDATE sources SET day = %lld WHERE id = %lld",
        (long long)day, (long long)c->src.id, (long long)day, (long long)c->src.id);
}

/* 1 if the case is whole, 0 if nothing of it is left; fails on anything between. */
static int purge_case_present(struct fixture *f, const struct purge_case_fx *c)
{
    struct rf_source s;
    struct rf_object o[4];
    struct rf_grant_rec g[2];
    uint8_t keyid[8];
    size_t n = 0, ng = 0;
    memset(keyid, c->tag, sizeof(keyid));
    int rc = rf_store_source_by_case(f->st, c->src.case_id, &s);
    assert_int_equal(rf_store_objects_of_source(f->st, c->src.id, ~0u, o, 4, &n), 0);
    assert_int_equal(rf_store_grants_for(f->st, keyid, 0, g, 2, &ng), 0);
    if (rc == RF_ERR_NOT_FOUND) {
        assert_int_equal(n, 0);
        assert_int_equal(ng, 0);
        assert_false(blob_exists(f, c->blob));
        for (int i = 0; i < 3; i++)
            assert_int_equal(rf_store_object_get(f->st, c->seq[i], &o[0]), RF_ERR_NOT_FOUND);
        return 0;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(n, 3);
    assert_int_equal(ng, 1);
    assert_true(blob_exists(f, c->blob));
    return 1;
}

static int count_rows(const struct fixture *f, const char *table)
{
    char path[700], q[128];
    sqlite3 *db;
    sqlite3_stmt *s;
    snprintf(path, sizeof(path), "%s/refuge.db", f->dir);
    snprintf(q, sizeof(q), "SELECT count(*) FROM %s", table);
    if (on_pg)
        return (int)pgt_int(f->pgurl, q);
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, q, -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    int n = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return n;
}

static void last_audit(struct fixture *f, struct rf_audit_entry *out)
{
    struct rf_audit_entry *e = calloc(256, sizeof(*e));
    size_t n = 0;
    assert_non_null(e);
    assert_int_equal(rf_store_audit_list(f->st, 0, e, 256, &n), 0);
    assert_true(n > 0);
    *out = e[n - 1];
    free(e);
}

static void schedule(struct fixture *f, int64_t source_id, uint32_t day)
{
    struct rf_op op = {.type = RF_OP_CASE_SCHEDULE, .source_id = source_id, .day = day};
    assert_int_equal(apply1(f->st, &op), 0);
}

static void purge_removes_exactly_the_expired_cases(void **state)
{
    struct fixture *f = *state;
    int64_t t = rf_store_today();
    struct purge_case_fx due, tomorrow, cancelled, silent, active, quiet;
    purge_case_make(f, &due, 1, t);          /* closed: deletion day today */
    purge_case_make(f, &tomorrow, 2, t);     /* closed: deletion day tomorrow */
    purge_case_make(f, &cancelled, 3, t);    /* closed, then reopened */
    purge_case_make(f, &silent, 4, t - 366); /* nothing for 366 days */
    purge_case_make(f, &active, 5, t - 400); /* old case, but wrote 10 days ago */
    /* people who never sent anything: their case's day counts */
    struct rf_source empty_old = make_source(f->st, 6), empty_new = make_source(f->st, 7);
    sql(f, "UPDATE sources SET day = %lld WHERE id = %lld", (long long)(t - 366),
        (long long)empty_old.id);
    sql(f, "UPDATE sources SET day = %lld WHERE id = %lld", (long long)(t - 365),
        (long long)empty_new.id);           /* exactly the limit: kept */
    purge_case_make(f, &quiet, 8, t - 366); /* silent, but staff replied lately */
    schedule(f, due.src.id, (uint32_t)t);
    schedule(f, tomorrow.src.id, (uint32_t)t + 1);
    schedule(f, cancelled.src.id, (uint32_t)t - 5);
    schedule(f, cancelled.src.id, 0);
    sql(f, "UPDATE objects SET day = %lld WHERE seq = %lld", (long long)(t - 10),
        (long long)active.seq[0]);
    sql(f, "UPDATE objects SET day = %lld WHERE seq = %lld", (long long)t, (long long)quiet.seq[2]);
    /* the team's configuration, old and never written by a person */
    struct rf_source tc;
    uint8_t ev[32] = {4};
    assert_int_equal(rf_store_source_by_case(f->st, "teamconfig", &tc), 0);
    int64_t tc_seq = put_inline(f->st, tc.id, 4, ev, sizeof(ev));
    sql(f,
        "UPDATE sources SET day = 1 WHERE id = %lld; UPDATE objects SET day = 1 WHERE seq = %lld",
        (long long)tc.id, (long long)tc_seq);
    int blobs_before = count_entries(f->dir, "blobs");

    /* inactivity off: only the scheduled case */
    struct rf_purge_counts pc;
    assert_int_equal(rf_store_purge(f->st, (uint32_t)t, 0, &pc), 0);
    assert_int_equal(pc.cases, 1);
    assert_int_equal(pc.objects, 3);
    assert_int_equal(pc.blobs, 1);
    assert_int_equal(purge_case_present(f, &due), 0);
    assert_int_equal(purge_case_present(f, &silent), 1);
    assert_int_equal(count_entries(f->dir, "blobs"), blobs_before - 1);
    struct rf_audit_entry e;
    last_audit(f, &e);
    assert_string_equal(e.action, "purge");
    assert_string_equal(e.target, "cases=1 objects=3");
    static const uint8_t zero[32];
    assert_memory_equal(e.actor, zero, 32);

    /* 365 days of silence allowed */
    assert_int_equal(rf_store_purge(f->st, (uint32_t)t, 365, &pc), 0);
    assert_int_equal(pc.cases, 3); /* silent, empty_old, quiet */
    assert_int_equal(pc.objects, 6);
    assert_int_equal(pc.blobs, 2);
    assert_int_equal(purge_case_present(f, &silent), 0);
    assert_int_equal(purge_case_present(f, &quiet), 0);
    struct rf_source s;
    assert_int_equal(rf_store_source_by_case(f->st, empty_old.case_id, &s), RF_ERR_NOT_FOUND);
    assert_int_equal(rf_store_source_by_case(f->st, empty_new.case_id, &s), 0);
    assert_int_equal(purge_case_present(f, &tomorrow), 1);
    assert_int_equal(purge_case_present(f, &cancelled), 1);
    assert_int_equal(purge_case_present(f, &active), 1);
    struct rf_object o;
    assert_int_equal(rf_store_object_get(f->st, tc_seq, &o), 0);
    assert_int_equal(rf_store_source_by_case(f->st, "teamconfig", &s), 0);
    last_audit(f, &e);
    assert_string_equal(e.target, "cases=3 objects=6");
    /* orphan-free: every remaining grant has its object, every blob file a row */
    assert_int_equal(count_entries(f->dir, "blobs"), blobs_before - 3);
    assert_int_equal(count_rows(f, "grants"), 3);
    reopen(f); /* recovery would remove orphan blobs: there are none */
    assert_int_equal(count_entries(f->dir, "blobs"), blobs_before - 3);

    /* nothing left to do: counts are zero and the run is still recorded */
    assert_int_equal(rf_store_purge(f->st, (uint32_t)t, 365, &pc), 0);
    assert_int_equal(pc.cases, 0);
    last_audit(f, &e);
    assert_string_equal(e.target, "cases=0 objects=0");
    /* tomorrow comes: the case closed for tomorrow, and the person silent
     * for exactly 365 days yesterday, now 366 */
    assert_int_equal(rf_store_purge(f->st, (uint32_t)t + 1, 365, &pc), 0);
    assert_int_equal(pc.cases, 2);
    assert_int_equal(pc.objects, 3);
    assert_int_equal(purge_case_present(f, &tomorrow), 0);
    assert_int_equal(rf_store_source_by_case(f->st, empty_new.case_id, &s), RF_ERR_NOT_FOUND);
    assert_int_equal(purge_case_present(f, &cancelled), 1);
    assert_int_equal(purge_case_present(f, &active), 1);
    audit_check_all(f->st);
}

/* A failed commit mid-purge: the cases done stay done, the others stay whole
 * (rows and blob files), and the next run finishes the work. */
static void purge_failure_loses_nothing(void **state)
{
    struct fixture *f = *state;
    int64_t t = rf_store_today();
    struct purge_case_fx c[3];
    for (int i = 0; i < 3; i++) {
        purge_case_make(f, &c[i], (uint8_t)(i + 1), t);
        schedule(f, c[i].src.id, (uint32_t)t);
    }
    struct rf_purge_counts pc;
    rf_store_fault_inject(f->st, 1, RF_ERR_IO); /* the first case commits, then the disk fails */
    assert_int_equal(rf_store_purge(f->st, (uint32_t)t, 0, &pc), RF_ERR_IO);
    rf_store_fault_inject(f->st, -1, 0);
    assert_int_equal(pc.cases, 1);
    assert_int_equal(purge_case_present(f, &c[0]), 0);
    assert_int_equal(purge_case_present(f, &c[1]), 1);
    assert_int_equal(purge_case_present(f, &c[2]), 1);
    reopen(f);
    assert_int_equal(purge_case_present(f, &c[1]), 1);
    assert_int_equal(rf_store_purge(f->st, (uint32_t)t, 0, &pc), 0);
    assert_int_equal(pc.cases, 2);
    assert_int_equal(pc.objects, 6);
    assert_int_equal(purge_case_present(f, &c[1]), 0);
    assert_int_equal(purge_case_present(f, &c[2]), 0);
    assert_int_equal(count_entries(f->dir, "blobs"), 0);
    audit_check_all(f->st);
}

struct writer_arg {
    struct rf_store *st;
    int64_t source_id;
    int n, errors;
};

static void *writer_main(void *p)
{
    struct writer_arg *w = p;
    uint8_t data[128] = {9};
    for (int i = 0; i < w->n; i++) {
        struct rf_op op = {.type = RF_OP_OBJECT_PUT, .source_id = w->source_id, .kind = 1};
        op.data = data;
        op.len = sizeof(data);
        if (apply1(w->st, &op) != 0)
            w->errors++;
    }
    return NULL;
}

/* `refuge server purge` beside a running server: a second opener of the same
 * directory purges while the first keeps writing; both succeed, the active
 * case keeps every object, the expired ones go. */
static void purge_beside_a_second_opener(void **state)
{
    struct fixture *f = *state;
    int64_t t = rf_store_today();
    struct purge_case_fx c[4];
    for (int i = 0; i < 4; i++) {
        purge_case_make(f, &c[i], (uint8_t)(i + 1), t);
        if (i > 0)
            schedule(f, c[i].src.id, (uint32_t)t);
    }
    struct rf_store *other = NULL;
    assert_int_equal(rf_store_open(&other, f->dir), 0);
    struct writer_arg w = {f->st, c[0].src.id, 200, 0};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, writer_main, &w), 0);
    struct rf_purge_counts pc;
    assert_int_equal(rf_store_purge(other, (uint32_t)t, 0, &pc), 0);
    pthread_join(th, NULL);
    rf_store_close(other);
    assert_int_equal(w.errors, 0);
    assert_int_equal(pc.cases, 3);
    assert_int_equal(pc.blobs, 3);
    for (int i = 1; i < 4; i++)
        assert_int_equal(purge_case_present(f, &c[i]), 0);
    struct rf_object *o = calloc(300, sizeof(*o));
    size_t n = 0;
    assert_int_equal(rf_store_objects_of_source(f->st, c[0].src.id, ~0u, o, 300, &n), 0);
    assert_int_equal(n, 3 + 200);
    free(o);
    assert_true(blob_exists(f, c[0].blob));
    audit_check_all(f->st);
}

/* ---- puts: the store keeps "no blob left behind by a failed op" ---- */

/* A put of n bytes in uneven pieces (flags: RF_PUT_BLOB or 0). */
static struct rf_put *make_put(struct rf_store *st, unsigned flags, size_t n, uint8_t fill)
{
    struct rf_put *p = NULL;
    uint8_t piece[7777];
    memset(piece, fill, sizeof(piece));
    assert_int_equal(rf_put_begin(st, flags, &p), 0);
    for (size_t off = 0; off < n;) {
        size_t k = n - off < sizeof(piece) ? n - off : sizeof(piece);
        assert_int_equal(rf_put_write(p, piece, k), 0);
        off += k;
    }
    assert_int_equal(rf_put_size(p), n);
    return p;
}

/* Small stays in memory; past RF_INLINE_MAX it streams into one temp file;
 * the object reads back exactly either way. */
static void put_spills_past_the_inline_limit(void **state)
{
    struct fixture *f = *state;
    struct rf_source a = make_source(f->st, 1);
    struct rf_put *small = make_put(f->st, 0, 2000, 0x11);
    assert_int_equal(count_entries(f->dir, "tmp"), 0);
    struct rf_put *big = make_put(f->st, 0, RF_INLINE_MAX + 1, 0x22);
    assert_int_equal(count_entries(f->dir, "tmp"), 1);
    struct rf_op ops[2];
    assert_int_equal(rf_op_object_put(&ops[0], a.id, 1, small), 0);
    assert_int_equal(rf_op_object_put(&ops[1], a.id, 2, big), 0);
    assert_int_equal(count_entries(f->dir, "tmp"), 0);
    assert_int_equal(count_entries(f->dir, "blobs"), 1); /* durable before any row */
    assert_int_equal(rf_store_apply(f->st, ops, 2), 0);
    assert_int_equal(rf_op_status(&ops[0]), 0);
    assert_int_equal(rf_op_status(&ops[1]), 0);
    rf_put_free(small);
    rf_put_free(big);
    assert_int_equal(count_entries(f->dir, "blobs"), 1); /* named by its row: stays */
    struct rf_object o;
    assert_int_equal(rf_store_object_get(f->st, rf_op_seq(&ops[0]), &o), 0);
    assert_int_equal(o.in_blob, 0);
    assert_int_equal(o.size, 2000);
    assert_int_equal(rf_store_object_get(f->st, rf_op_seq(&ops[1]), &o), 0);
    assert_int_equal(o.in_blob, 1);
    assert_int_equal(o.size, RF_INLINE_MAX + 1);
    int fd = -1;
    uint64_t size = 0;
    uint8_t *want = malloc(RF_INLINE_MAX + 1);
    assert_non_null(want);
    memset(want, 0x22, RF_INLINE_MAX + 1);
    assert_int_equal(rf_store_object_open(f->st, rf_op_seq(&ops[1]), &fd, &size), 0);
    assert_fd_bytes(fd, want, RF_INLINE_MAX + 1);
    close(fd);
    free(want);
}

/* An object op whose case does not exist fails, and its durable blob is
 * gone when rf_store_apply returns: the caller deletes nothing. */
static void failed_put_blob_removed_by_the_store(void **state)
{
    struct fixture *f = *state;
    struct rf_source a = make_source(f->st, 1);
    struct rf_put *p = make_put(f->st, RF_PUT_BLOB, 5000, 0x33);
    struct rf_op op;
    assert_int_equal(rf_op_object_put(&op, a.id + 1000, RF_KIND_FILE, p), 0);
    assert_int_equal(count_entries(f->dir, "blobs"), 1);
    assert_int_equal(apply1(f->st, &op), RF_ERR_NOT_FOUND);
    assert_int_equal(count_entries(f->dir, "blobs"), 0); /* before the caller did anything */
    rf_put_free(p);
    assert_int_equal(count_entries(f->dir, "blobs"), 0);
    assert_int_equal(count_entries(f->dir, "tmp"), 0);
}

/* A batch of two groups, one with an op that fails: that group's blobs
 * are gone, the other group is stored whole with its blob, as before. */
static void failing_group_loses_its_blobs_others_commit(void **state)
{
    struct fixture *f = *state;
    struct rf_source a = make_source(f->st, 1);
    struct rf_put *bad_file = make_put(f->st, RF_PUT_BLOB, 3000, 0x44);
    struct rf_put *bad_big = make_put(f->st, 0, RF_INLINE_MAX + 10, 0x45);
    struct rf_put *good_msg = make_put(f->st, 0, 100, 0x46);
    struct rf_put *good_file = make_put(f->st, RF_PUT_BLOB, 3000, 0x47);
    struct rf_op ops[5];
    /* group 1: two blobs and a schedule for a case that does not exist: it fails */
    assert_int_equal(rf_op_object_put(&ops[0], a.id, RF_KIND_FILE, bad_file), 0);
    assert_int_equal(rf_op_object_put(&ops[1], a.id, RF_KIND_MESSAGE, bad_big), 0);
    rf_op_case_schedule(&ops[2], a.id + 1000, 7); /* no such case */
    /* group 2: a message and a file */
    assert_int_equal(rf_op_object_put(&ops[3], a.id, RF_KIND_MESSAGE, good_msg), 0);
    assert_int_equal(rf_op_object_put(&ops[4], a.id, RF_KIND_FILE, good_file), 0);
    ops[0].group = 3;
    ops[3].group = 2;
    assert_int_equal(count_entries(f->dir, "blobs"), 3);
    assert_int_equal(rf_store_apply(f->st, ops, 5), 0);
    for (int i = 0; i < 3; i++)
        assert_int_not_equal(rf_op_status(&ops[i]), 0);
    assert_int_equal(rf_op_status(&ops[3]), 0);
    assert_int_equal(rf_op_status(&ops[4]), 0);
    assert_int_equal(count_entries(f->dir, "blobs"), 1); /* good_file's only */
    rf_put_free(bad_file);
    rf_put_free(bad_big);
    rf_put_free(good_msg);
    rf_put_free(good_file);
    assert_int_equal(count_entries(f->dir, "blobs"), 1);
    size_t n = 0;
    struct rf_object list[8];
    assert_int_equal(rf_store_objects_since(f->st, 0, list, 8, &n), 0);
    assert_int_equal(n, 2);
}

/* A batch that fails as a whole (the commit's fsync) takes its puts' blobs
 * with it; a put whose op never reached the store loses its blob in
 * rf_put_free; an unfinished one its temp file. */
static void failed_batch_and_unsent_puts_leave_no_blob(void **state)
{
    struct fixture *f = *state;
    struct rf_source a = make_source(f->st, 1);
    struct rf_put *p = make_put(f->st, RF_PUT_BLOB, 4000, 0x55);
    struct rf_op op;
    assert_int_equal(rf_op_object_put(&op, a.id, RF_KIND_FILE, p), 0);
    rf_store_fault_inject(f->st, 0, RF_ERR_NOSPACE);
    assert_int_equal(rf_store_apply(f->st, &op, 1), RF_ERR_NOSPACE);
    rf_store_fault_inject(f->st, -1, 0);
    assert_int_equal(rf_op_status(&op), RF_ERR_NOSPACE);
    assert_int_equal(count_entries(f->dir, "blobs"), 0);
    rf_put_free(p);

    struct rf_put *unsent = make_put(f->st, RF_PUT_BLOB, 4000, 0x56);
    assert_int_equal(rf_op_object_put(&op, a.id, RF_KIND_FILE, unsent), 0);
    assert_int_equal(count_entries(f->dir, "blobs"), 1);
    rf_put_free(unsent); /* the committer refused it, say */
    assert_int_equal(count_entries(f->dir, "blobs"), 0);

    struct rf_put *unfinished = make_put(f->st, 0, RF_INLINE_MAX + 5, 0x57);
    assert_int_equal(count_entries(f->dir, "tmp"), 1);
    rf_put_free(unfinished);
    assert_int_equal(count_entries(f->dir, "tmp"), 0);
    size_t n = 9;
    struct rf_object list[2];
    assert_int_equal(rf_store_objects_since(f->st, 0, list, 2, &n), 0);
    assert_int_equal(n, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(fresh_dir_is_migrated_private_and_reopens, setup, teardown),
        cmocka_unit_test_setup_teardown(newer_schema_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(sources_create_find_and_refuse_duplicates, setup, teardown),
        cmocka_unit_test_setup_teardown(objects_inline_and_blob_read_back_exactly, setup, teardown),
        cmocka_unit_test_setup_teardown(object_put_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(delete_removes_row_and_blob_only_for_the_owner, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(failed_delete_keeps_blob, setup, teardown),
        cmocka_unit_test_setup_teardown(token_is_used_once, setup, teardown),
        cmocka_unit_test_setup_teardown(staff_and_roster_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(objects_record_the_roster_they_were_stored_under, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(failing_op_fails_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(blob_write_failure_leaves_no_temp, setup, teardown),
        cmocka_unit_test_setup_teardown(commit_failure_applies_nothing_and_store_recovers, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(real_write_errors_roll_back_cleanly, setup, teardown),
        cmocka_unit_test_setup_teardown(reopen_removes_temp_files_and_orphan_blobs, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(reads_run_while_writing, setup, teardown),
        cmocka_unit_test_setup_teardown(reads_do_not_wait_for_a_writer, setup, teardown),
        cmocka_unit_test_setup_teardown(lost_connections_fail_a_batch_then_recover, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(grants_kept_per_granter_and_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(nonces_refused_across_reopen_and_openers, setup, teardown),
        cmocka_unit_test_setup_teardown(grants_unique_listed_by_key_and_gone_with_their_object,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(audit_chain_across_batches_and_rolled_back_groups, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(teamconfig_holds_events_only, setup, teardown),
        cmocka_unit_test_setup_teardown(staff_list_by_name_with_day, setup, teardown),
        cmocka_unit_test_setup_teardown(purge_removes_exactly_the_expired_cases, setup, teardown),
        cmocka_unit_test_setup_teardown(purge_failure_loses_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(purge_beside_a_second_opener, setup, teardown),
        cmocka_unit_test_setup_teardown(put_spills_past_the_inline_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(failed_put_blob_removed_by_the_store, setup, teardown),
        cmocka_unit_test_setup_teardown(failing_group_loses_its_blobs_others_commit, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(failed_batch_and_unsent_puts_leave_no_blob, setup,
                                        teardown),
    };
    if (sodium_init() < 0)
        return 1;
    int failed = cmocka_run_group_tests_name("store on SQLite", tests, NULL, NULL);
    /* the same tests on PostgreSQL, each on a fresh schema of the test cluster */
    if (pgt_skipped("store tests on PostgreSQL"))
        return failed;
    on_pg = 1;
    return failed + cmocka_run_group_tests_name("store on PostgreSQL", tests, NULL, NULL);
}
