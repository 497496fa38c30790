/* status_test.c - what `refuge server status` and the metrics endpoint read:
 * the store opened read-only (nothing created or changed, writes refused,
 * beside a writer that holds the data directory), its counts and usage,
 * the committer's measurements, the lock-free histogram, the status file's
 * parser, and the loopback check of --metrics. */
#include "lib/err.h"
#include "lib/hist.h"
#include "server/metrics.h"
#include "server/status.h"
#include "store/commit.h"
#include "store/store.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "test_tmp.h"

#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct fixture {
    char root[512];
    char dir[600];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    const char *base = getenv("REFUGE_TEST_TMP");
    if (!f)
        return -1;
    snprintf(f->root, sizeof(f->root), "%s/status-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(f->root))
        return -1;
    snprintf(f->dir, sizeof(f->dir), "%s/data", f->root);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    nftw(f->root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static int not_dot(const struct dirent *e)
{
    return strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
}

/* "name size mtime_ns;" for every entry of dir and dir/blobs, sorted by readdir order. */
static void listing(const char *dir, char *out, size_t cap)
{
    const char *subs[] = {"", "/blobs", "/tmp"};
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < 3; i++) {
        char path[700];
        snprintf(path, sizeof(path), "%s%s", dir, subs[i]);
        struct dirent **names = NULL;
        int n = scandir(path, &names, not_dot, alphasort);
        for (int k = 0; k < n; k++) {
            char p[1024];
            struct stat sb;
            snprintf(p, sizeof(p), "%s/%s", path, names[k]->d_name);
            if (lstat(p, &sb) == 0 && used < cap)
                used += (size_t)snprintf(out + used, cap - used, "%s%s %lld %lld;", subs[i],
                                         names[k]->d_name, (long long)sb.st_size,
                                         (long long)sb.st_mtim.tv_nsec);
            free(names[k]);
        }
        free(names);
    }
}

static int apply1(struct rf_store *st, struct rf_op *op)
{
    int rc = rf_store_apply(st, op, 1);
    return rc != 0 ? rc : op->status;
}

static void fill(struct rf_store *st)
{
    static const uint8_t data[300] = {1};
    struct rf_op op = {.type = RF_OP_SOURCE_CREATE};
    memset(op.lookup_id, 7, sizeof(op.lookup_id));
    memset(op.pk, 9, sizeof(op.pk));
    assert_int_equal(apply1(st, &op), 0);
    int64_t src = op.source.id;
    for (int kind = 1; kind <= 3; kind++) {
        for (int i = 0; i < kind; i++) {
            struct rf_op o = {.type = RF_OP_OBJECT_PUT, .source_id = src, .kind = (uint8_t)kind};
            o.data = data;
            o.len = sizeof(data);
            assert_int_equal(apply1(st, &o), 0);
        }
    }
    struct rf_blob *b = NULL;
    char name[RF_BLOB_NAME_LEN + 1];
    assert_int_equal(rf_blob_begin(st, &b), 0);
    assert_int_equal(rf_blob_write(b, data, sizeof(data)), 0);
    assert_int_equal(rf_blob_commit(b, name), 0);
    struct rf_op o = {.type = RF_OP_OBJECT_PUT, .source_id = src, .kind = 2};
    memcpy(o.blob_name, name, sizeof(name));
    o.size = sizeof(data);
    assert_int_equal(apply1(st, &o), 0);
    struct rf_op s = {.type = RF_OP_STAFF_PUT};
    memset(s.staff.sign_pk, 1, 32);
    memset(s.staff.box_pk, 2, 32);
    strcpy(s.staff.name, "Alice");
    assert_int_equal(apply1(st, &s), 0);
}

static void test_readonly_missing(void **state)
{
    struct fixture *f = *state;
    struct rf_store *st = NULL;
    assert_int_equal(rf_store_open_readonly(&st, f->dir), RF_ERR_NOT_FOUND);
    assert_null(st);
    struct stat sb;
    assert_int_not_equal(stat(f->dir, &sb), 0); /* nothing created */
    assert_int_equal(mkdir(f->dir, 0700), 0);
    assert_int_equal(rf_store_open_readonly(&st, f->dir), RF_ERR_NOT_FOUND);
    char before[4096];
    listing(f->dir, before, sizeof(before));
    assert_string_equal(before, ""); /* no refuge.db, no blobs/, no lock */
}

static void test_readonly_counts(void **state)
{
    struct fixture *f = *state;
    struct rf_store *w = NULL, *st = NULL;
    assert_int_equal(rf_store_open(&w, f->dir), 0);
    fill(w);
    rf_store_close(w);

    char before[8192], after[8192];
    listing(f->dir, before, sizeof(before));
    assert_int_equal(rf_store_open_readonly(&st, f->dir), 0);
    struct rf_store_counts c;
    assert_int_equal(rf_store_counts(st, &c), 0);
    assert_int_equal(c.schema, c.schema_program);
    assert_true(c.schema >= 5);
    assert_int_equal(c.cases, 1); /* the reserved team case is not one */
    assert_int_equal(c.objects[1], 1);
    assert_int_equal(c.objects[2], 3); /* two inline, one blob */
    assert_int_equal(c.objects[3], 3);
    assert_int_equal(c.object_bytes[2], 900);
    assert_int_equal(c.staff, 1);
    assert_int_equal(c.last_purge_day, 0);
    struct rf_store_usage u;
    assert_int_equal(rf_store_usage(st, &u), 0);
    assert_int_equal(u.blob_files, 1);
    assert_int_equal(u.blob_bytes, 300);
    assert_true(u.db_bytes > 0);

    /* every write is refused, and nothing on disk changed */
    struct rf_op op = {
        .type = RF_OP_SETTING_PUT, .key = "x", .data = (const uint8_t *)"y", .len = 1};
    assert_int_equal(rf_store_apply(st, &op, 1), RF_ERR_INVALID);
    assert_int_equal(op.status, RF_ERR_INVALID);
    struct rf_blob *b = NULL;
    assert_int_equal(rf_blob_begin(st, &b), RF_ERR_INVALID);
    struct rf_purge_counts pc;
    assert_int_equal(rf_store_purge(st, rf_store_today() + 100000, 1, &pc), RF_ERR_INVALID);
    assert_int_equal(rf_store_checkpoint(st), RF_ERR_INVALID);
    rf_store_close(st);
    listing(f->dir, after, sizeof(after));
    assert_string_equal(before, after);
}

static void test_readonly_beside_writer(void **state)
{
    struct fixture *f = *state;
    struct rf_store *w = NULL, *st = NULL;
    assert_int_equal(rf_store_open(&w, f->dir), 0); /* holds DIR/lock, like a server */
    fill(w);
    assert_int_equal(rf_store_open_readonly(&st, f->dir), 0);
    struct rf_store_counts c;
    assert_int_equal(rf_store_counts(st, &c), 0);
    assert_int_equal(c.objects[1], 1);
    /* the writer goes on; the reader sees the new commit */
    struct rf_purge_counts pc;
    assert_int_equal(rf_store_purge(w, rf_store_today(), 0, &pc), 0);
    assert_int_equal(rf_store_counts(st, &c), 0);
    assert_int_equal(c.last_purge_day, rf_store_today());
    assert_int_equal(c.audit, 1);
    rf_store_close(st);
    /* the writer still works after the reader left */
    struct rf_op op = {
        .type = RF_OP_SETTING_PUT, .key = "x", .data = (const uint8_t *)"y", .len = 1};
    assert_int_equal(apply1(w, &op), 0);
    rf_store_close(w);
}

static void test_committer_measures(void **state)
{
    struct fixture *f = *state;
    struct rf_store *st = NULL;
    struct rf_committer *c = NULL;
    static const uint8_t data[100];
    assert_int_equal(rf_store_open(&st, f->dir), 0);
    assert_int_equal(rf_committer_new(&c, st), 0);
    struct rf_op op = {.type = RF_OP_SOURCE_CREATE};
    memset(op.lookup_id, 3, 32);
    assert_int_equal(rf_committer_run(c, &op), 0);
    struct rf_op o = {.type = RF_OP_OBJECT_PUT, .source_id = op.source.id, .kind = 1};
    o.data = data;
    o.len = sizeof(data);
    assert_int_equal(rf_committer_run(c, &o), 0);
    struct rf_op bad = {.type = RF_OP_OBJECT_PUT, .source_id = 999999, .kind = 1};
    bad.data = data;
    bad.len = sizeof(data);
    assert_int_not_equal(rf_committer_run(c, &bad), 0); /* not stored: not counted */
    uint64_t objs[RF_COMMIT_KINDS], bytes = 0, b[RF_HIST_BOUNDS_MAX + 1], sum = 0;
    rf_committer_stored(c, objs, &bytes);
    assert_int_equal(objs[1], 1);
    assert_int_equal(bytes, sizeof(data));
    rf_hist_read(rf_committer_batch_hist(c), b, &sum);
    assert_int_equal(b[0], 3); /* three batches of one op */
    assert_int_equal(sum, 3);
    rf_committer_free(c);
    rf_store_close(st);
}

static void test_hist(void **state)
{
    (void)state;
    static const uint64_t bounds[] = {10, 100};
    struct rf_hist h;
    uint64_t b[RF_HIST_BOUNDS_MAX + 1], sum = 0;
    rf_hist_init(&h, bounds, 2);
    rf_hist_observe(&h, 0);
    rf_hist_observe(&h, 10); /* le="10" includes 10 */
    rf_hist_observe(&h, 11);
    rf_hist_observe(&h, 100);
    rf_hist_observe(&h, 101);
    rf_hist_read(&h, b, &sum);
    assert_int_equal(b[0], 2);
    assert_int_equal(b[1], 2);
    assert_int_equal(b[2], 1);
    assert_int_equal(sum, 222);
}

static void test_status_file(void **state)
{
    (void)state;
    struct rf_status_file sf;
    static const char good[] =
        "{\"format\":1,\"pid\":42,\"version\":\"0.1.0\",\"uptime_s\":7,\"sessions_active\":3,"
        "\"sessions_max\":10,\"kdf_waiting\":0,\"period_s\":5,\"metrics\":\"127.0.0.1:9464\"}\n";
    assert_int_equal(rf_status_file_parse((const uint8_t *)good, strlen(good), &sf), 0);
    assert_int_equal(sf.pid, 42);
    assert_int_equal(sf.sessions_active, 3);
    assert_string_equal(sf.metrics, "127.0.0.1:9464");
    static const char *const bad[] = {
        "",
        "{}",
        "{\"format\":2,\"pid\":42,\"version\":\"0.1.0\",\"uptime_s\":7,\"sessions_active\":3,"
        "\"sessions_max\":10,\"kdf_waiting\":0,\"metrics\":null}",
        "{\"format\":1,\"pid\":0,\"version\":\"0.1.0\",\"uptime_s\":7,\"sessions_active\":3,"
        "\"sessions_max\":10,\"kdf_waiting\":0,\"metrics\":null}",
        "{\"format\":1,\"pid\":5,\"version\":\"\\u001b[2J\",\"uptime_s\":7,"
        "\"sessions_active\":3,\"sessions_max\":10,\"kdf_waiting\":0,\"metrics\":null}",
        "{\"format\":1,\"pid\":5,\"version\":\"1\",\"uptime_s\":-7,\"sessions_active\":3,"
        "\"sessions_max\":10,\"kdf_waiting\":0,\"metrics\":null}",
        "{\"format\":1,\"format\":1}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(rf_status_file_parse((const uint8_t *)bad[i], strlen(bad[i]), &sf),
                         RF_ERR_FORMAT);
}

static void test_metrics_loopback_only(void **state)
{
    (void)state;
    static const char *const ok[] = {"127.0.0.1:9464", "127.1.2.3:1", "[::1]:9464",
                                     "localhost:65535"};
    static const char *const no[] = {
        "0.0.0.0:9464",  "10.0.0.1:9464", "[::]:9464",       "[::ffff:127.0.0.1]:9464",
        "127.0.0.1",     "127.0.0.1:0",   "127.0.0.1:65536", "example.org:9464",
        "127.0.0.1:94x", ":9464",         "[::1]9464",       ""};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        assert_int_equal(rf_metrics_addr_check(ok[i]), 0);
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        assert_int_equal(rf_metrics_addr_check(no[i]), RF_ERR_INVALID);
    assert_int_equal(rf_metrics_addr_check(NULL), RF_ERR_INVALID);
    struct rf_metrics *m = NULL;
    assert_int_equal(rf_metrics_start(&m, NULL, "0.0.0.0:9464", NULL, NULL, 0), RF_ERR_INVALID);
    assert_null(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_readonly_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readonly_counts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readonly_beside_writer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_committer_measures, setup, teardown),
        cmocka_unit_test(test_hist),
        cmocka_unit_test(test_status_file),
        cmocka_unit_test(test_metrics_loopback_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
