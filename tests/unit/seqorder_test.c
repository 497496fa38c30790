/*
 * seqorder_test.c - sequence numbers stay gap-free in effect and ordered for
 * readers while several processes write one store (issue 11): a caseworker's
 * sync reads "objects with seq > the last one I saw", so an object that
 * commits after a reader moved past its number would be skipped for good.
 *
 * WRITERS forked processes each open the same data directory (on
 * PostgreSQL: the same database, through DIR/database) and commit batches
 * of 1..8 objects, as fast as they can, while this process syncs
 * incrementally the way a client does. At the end every committed object
 * must have been seen by the incremental reader, each exactly once and in
 * ascending order, and every acknowledged object must be there. Run on
 * SQLite (one writer at a time by the database lock) and, when
 * REFUGE_TEST_PG is set, on PostgreSQL (numbers from the counters row,
 * store_pg.c).
 */
#include "lib/err.h"
#include "store/store.h"
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "test_tmp.h"
#include <ftw.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pg_test_db.h"

#define WRITERS 4
#define BATCHES 60
#define BATCH_MAX 8
#define SEEN_MAX (WRITERS * BATCHES * BATCH_MAX + 16)

static int on_pg;

struct fixture {
    char root[512];
    char dir[600];
    char schema[24];
    char pgurl[1024];
    struct rf_store *st;
    int64_t source_id;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    const char *base = getenv("REFUGE_TEST_TMP");
    if (!f)
        return -1;
    snprintf(f->root, sizeof(f->root), "%s/seqorder-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(f->root))
        return -1;
    snprintf(f->dir, sizeof(f->dir), "%s/data", f->root);
    if (on_pg)
        pgt_new(f->schema, f->pgurl, sizeof(f->pgurl));
    if ((on_pg ? rf_store_create(&f->st, f->dir, f->pgurl) : rf_store_open(&f->st, f->dir)) != 0)
        return -1;
    struct rf_op op;
    uint8_t lookup[32] = {7}, pk[32] = {9};
    rf_op_source_create(&op, lookup, pk);
    if (rf_store_apply(f->st, &op, 1) != 0 || rf_op_status(&op) != 0)
        return -1;
    f->source_id = rf_op_source(&op)->id;
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

/* A writer process: its own store on the same directory, BATCHES batches.
 * Exits 0 if every batch was acknowledged, with the count in a pipe. */
static void writer(const char *dir, int64_t source_id, int id, int out_fd)
{
    struct rf_store *st = NULL;
    struct rf_op ops[BATCH_MAX];
    struct rf_put *puts[BATCH_MAX];
    uint32_t acked = 0;
    if (rf_store_open(&st, dir) != 0)
        _exit(3);
    for (int b = 0; b < BATCHES; b++) {
        size_t n = 1 + randombytes_uniform(BATCH_MAX);
        uint8_t body[16];
        memset(body, id, sizeof(body));
        for (size_t i = 0; i < n; i++) {
            if (rf_put_begin(st, 0, &puts[i]) != 0 ||
                rf_put_write(puts[i], body, sizeof(body)) != 0 ||
                rf_op_object_put(&ops[i], source_id, 1, puts[i]) != 0)
                _exit(4);
        }
        int rc = rf_store_apply(st, ops, n);
        for (size_t i = 0; i < n; i++) {
            if (rc == 0 && rf_op_status(&ops[i]) == 0)
                acked++;
            rf_put_free(puts[i]);
        }
        if (rc != 0)
            _exit(5);
    }
    rf_store_close(st);
    if (write(out_fd, &acked, sizeof(acked)) != sizeof(acked))
        _exit(6);
    _exit(0);
}

static int all_done(pid_t *pids, int *status)
{
    int left = 0;
    for (int i = 0; i < WRITERS; i++) {
        if (pids[i] <= 0)
            continue;
        pid_t r = waitpid(pids[i], &status[i], WNOHANG);
        if (r == pids[i])
            pids[i] = 0;
        else
            left++;
    }
    return left == 0;
}

static void readers_never_skip_an_object(void **state)
{
    struct fixture *f = *state;
    int fds[2];
    pid_t pids[WRITERS];
    int status[WRITERS] = {0};
    int64_t *seen = calloc(SEEN_MAX, sizeof(*seen));
    struct rf_object page[64];
    size_t nseen = 0;
    int64_t last = 0;
    assert_non_null(seen);
    assert_int_equal(pipe(fds), 0);
    for (int i = 0; i < WRITERS; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            close(fds[0]);
            writer(f->dir, f->source_id, i + 1, fds[1]);
        }
    }
    close(fds[1]);
    /* sync as a client does, while they write, and once more after */
    int done = 0, syncs = 0;
    for (;;) {
        size_t n = 0;
        do {
            assert_int_equal(rf_store_objects_since(f->st, last, page, 64, &n), 0);
            for (size_t i = 0; i < n; i++) {
                assert_true(page[i].seq > last); /* ascending, each once */
                assert_true(nseen < SEEN_MAX);
                seen[nseen++] = page[i].seq;
                last = page[i].seq;
            }
            syncs++;
        } while (n == 64);
        if (done)
            break;
        done = all_done(pids, status);
        usleep(200); /* the machine is shared */
    }
    for (int i = 0; i < WRITERS; i++)
        assert_int_equal(status[i], 0);
    uint32_t acked = 0, a;
    while (read(fds[0], &a, sizeof(a)) == sizeof(a))
        acked += a;
    close(fds[0]);

    /* every object now in the store, read from scratch */
    size_t total = 0, n = 0;
    int64_t after = 0;
    do {
        assert_int_equal(rf_store_objects_since(f->st, after, page, 64, &n), 0);
        for (size_t i = 0; i < n; i++) {
            assert_true(total < nseen);
            /* the incremental reader saw exactly this object at this place:
             * nothing skipped, nothing extra */
            assert_int_equal(page[i].seq, seen[total]);
            total++;
            after = page[i].seq;
        }
    } while (n == 64);
    assert_int_equal(total, nseen);
    assert_int_equal(total, acked);
    assert_true(acked >= WRITERS * BATCHES);
    print_message("%zu objects from %d processes, %d incremental syncs, none skipped\n", total,
                  WRITERS, syncs);
    free(seen);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(readers_never_skip_an_object, setup, teardown),
    };
    if (sodium_init() < 0)
        return 1;
    int failed = cmocka_run_group_tests_name("sequence order on SQLite", tests, NULL, NULL);
    if (pgt_skipped("sequence order on PostgreSQL"))
        return failed;
    on_pg = 1;
    return failed + cmocka_run_group_tests_name("sequence order on PostgreSQL", tests, NULL, NULL);
}
