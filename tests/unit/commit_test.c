/* commit_test.c - the group committer: many threads' ops all complete, each
 * exactly once, with distinct sequence numbers, in shared transactions; a
 * full queue says BUSY; a failed transaction fails its whole batch and the
 * next batch goes through; free runs everything still queued. Audit entries
 * from many threads, in groups with the action they record or on their own
 * without waiting, form one unbroken chain, and a group that fails leaves
 * neither its action nor its entry. */
#include "lib/audit.h"
#include "lib/err.h"
#include "store/commit.h"
#include "store/store.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "test_tmp.h"

#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pg_test_db.h"

#define THREADS 8
#define PER_THREAD 500

struct fixture {
    char root[512];
    char dir[600];
    struct rf_store *st;
    struct rf_committer *c;
    int64_t source_id;
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
    snprintf(f->root, sizeof(f->root), "%s/commit-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(f->root))
        return -1;
    snprintf(f->dir, sizeof(f->dir), "%s/data", f->root);
    if (on_pg)
        pgt_new(f->schema, f->pgurl, sizeof(f->pgurl));
    if ((on_pg ? rf_store_create(&f->st, f->dir, f->pgurl) : rf_store_open(&f->st, f->dir)) != 0 ||
        rf_committer_new(&f->c, f->st) != 0)
        return -1;
    struct rf_op op = {.type = RF_OP_SOURCE_CREATE};
    memset(op.lookup_id, 1, 32);
    if (rf_committer_run(f->c, &op) != 0)
        return -1;
    f->source_id = op.source.id;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    rf_committer_free(f->c);
    rf_store_close(f->st);
    nftw(f->root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    if (on_pg)
        pgt_drop(f->schema);
    free(f);
    return 0;
}

struct worker {
    struct fixture *f;
    int index;
    int64_t seqs[PER_THREAD];
    int failures;
};

static void *worker_main(void *p)
{
    struct worker *w = p;
    uint8_t data[128];
    for (int i = 0; i < PER_THREAD; i++) {
        memset(data, w->index, sizeof(data));
        memcpy(data, &i, sizeof(i));
        struct rf_op op = {.type = RF_OP_OBJECT_PUT,
                           .source_id = w->f->source_id,
                           .kind = (uint8_t)w->index,
                           .data = data,
                           .len = sizeof(data)};
        if (rf_committer_run(w->f->c, &op) != 0 || op.seq <= 0)
            w->failures++;
        w->seqs[i] = op.seq;
    }
    return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void many_threads_all_complete_in_shared_batches(void **state)
{
    struct fixture *f = *state;
    static struct worker w[THREADS];
    pthread_t th[THREADS];
    uint64_t b0, o0, b1, o1;
    rf_committer_stats(f->c, &b0, &o0);
    for (int i = 0; i < THREADS; i++) {
        w[i].f = f;
        w[i].index = i;
        w[i].failures = 0;
        assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    rf_committer_stats(f->c, &b1, &o1);

    static int64_t all[THREADS * PER_THREAD];
    size_t k = 0;
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(w[i].failures, 0);
        for (int j = 1; j < PER_THREAD; j++) /* one thread's ops commit in its order */
            assert_true(w[i].seqs[j] > w[i].seqs[j - 1]);
        memcpy(all + k, w[i].seqs, sizeof(w[i].seqs));
        k += PER_THREAD;
    }
    qsort(all, k, sizeof(all[0]), cmp_i64);
    for (size_t i = 1; i < k; i++)
        assert_true(all[i] != all[i - 1]);

    assert_int_equal(o1 - o0, THREADS * PER_THREAD);
    print_message("  %llu ops in %llu batches (mean %.1f)\n", (unsigned long long)(o1 - o0),
                  (unsigned long long)(b1 - b0), (double)(o1 - o0) / (double)(b1 - b0));
    assert_true(b1 - b0 < o1 - o0); /* some batch held more than one op */

    /* and each op's bytes are the ones its thread sent */
    struct rf_buf buf;
    rf_buf_init(&buf, 1024);
    for (int i = 0; i < THREADS; i++) {
        int j = PER_THREAD / 2 + i;
        rf_buf_reset(&buf);
        assert_int_equal(rf_store_object_read(f->st, w[i].seqs[j], &buf), 0);
        assert_int_equal(buf.len, 128);
        assert_memory_equal(buf.data, &j, sizeof(j));
        assert_int_equal(buf.data[127], i);
    }
    rf_buf_free(&buf);
    size_t n = 0;
    struct rf_object list[8];
    assert_int_equal(rf_store_objects_of_source(f->st, f->source_id, 1u << 3, list, 8, &n), 0);
    assert_int_equal(n, 8);
}

/* A completion that holds the committer thread until the test lets go. */
struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int entered, open;
    int calls;
};

static void gate_done(void *arg, struct rf_op *op)
{
    struct gate *g = arg;
    (void)op;
    pthread_mutex_lock(&g->mu);
    g->entered = 1;
    g->calls++;
    pthread_cond_broadcast(&g->cv);
    while (!g->open)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
}

static void count_done(void *arg, struct rf_op *op)
{
    struct gate *g = arg;
    pthread_mutex_lock(&g->mu);
    if (op->status == 0)
        g->calls++;
    pthread_mutex_unlock(&g->mu);
}

static void full_queue_is_busy_and_free_drains(void **state)
{
    struct fixture *f = *state;
    struct gate g = {.entered = 0, .open = 0, .calls = 0};
    struct gate counter = {.calls = 0};
    pthread_mutex_init(&g.mu, NULL);
    pthread_cond_init(&g.cv, NULL);
    pthread_mutex_init(&counter.mu, NULL);
    uint8_t data[8] = {0};
    struct rf_op first = {.type = RF_OP_SETTING_PUT, .key = "gate", .data = data, .len = 1};
    assert_int_equal(rf_committer_submit(f->c, &first, gate_done, &g), 0);
    pthread_mutex_lock(&g.mu);
    while (!g.entered)
        pthread_cond_wait(&g.cv, &g.mu);
    pthread_mutex_unlock(&g.mu);

    /* the committer is stuck in a completion: the queue fills */
    static struct rf_op ops[RF_COMMIT_MAX_QUEUE + 1];
    for (size_t i = 0; i < RF_COMMIT_MAX_QUEUE; i++) {
        ops[i] = (struct rf_op){.type = RF_OP_OBJECT_PUT,
                                .source_id = f->source_id,
                                .kind = 1,
                                .data = data,
                                .len = sizeof(data)};
        assert_int_equal(rf_committer_submit(f->c, &ops[i], count_done, &counter), 0);
    }
    ops[RF_COMMIT_MAX_QUEUE] = ops[0];
    assert_int_equal(rf_committer_submit(f->c, &ops[RF_COMMIT_MAX_QUEUE], count_done, &counter),
                     RF_ERR_BUSY);
    assert_int_equal(rf_committer_run(f->c, &ops[RF_COMMIT_MAX_QUEUE]), RF_ERR_BUSY);
    assert_int_equal(ops[RF_COMMIT_MAX_QUEUE].status, RF_ERR_BUSY);

    pthread_mutex_lock(&g.mu);
    g.open = 1;
    pthread_cond_broadcast(&g.cv);
    pthread_mutex_unlock(&g.mu);
    /* free drains the whole queue before it returns */
    rf_committer_free(f->c);
    f->c = NULL;
    assert_int_equal(g.calls, 1);
    assert_int_equal(counter.calls, RF_COMMIT_MAX_QUEUE);
    int64_t prev = 0;
    for (size_t i = 0; i < RF_COMMIT_MAX_QUEUE; i++) {
        assert_int_equal(ops[i].status, 0);
        assert_true(ops[i].seq > prev);
        prev = ops[i].seq;
    }
    size_t n = 0;
    static struct rf_object list[RF_COMMIT_MAX_QUEUE + 1];
    assert_int_equal(rf_store_objects_since(f->st, 0, list, RF_COMMIT_MAX_QUEUE + 1, &n), 0);
    assert_int_equal(n, RF_COMMIT_MAX_QUEUE);
    pthread_cond_destroy(&g.cv);
    pthread_mutex_destroy(&g.mu);
    pthread_mutex_destroy(&counter.mu);
}

static void failed_transaction_fails_its_batch_only(void **state)
{
    struct fixture *f = *state;
    uint8_t data[8] = {0};
    struct rf_op op = {.type = RF_OP_OBJECT_PUT,
                       .source_id = f->source_id,
                       .kind = 1,
                       .data = data,
                       .len = sizeof(data)};
    rf_store_fault_inject(f->st, 0, RF_ERR_IO);
    assert_int_equal(rf_committer_run(f->c, &op), RF_ERR_IO);
    rf_store_fault_inject(f->st, -1, 0);
    assert_int_equal(rf_committer_run(f->c, &op), 0);
    assert_true(op.seq > 0);
    /* an op that fails on its own returns its own error */
    struct rf_op use = {.type = RF_OP_TOKEN_USE};
    assert_int_equal(rf_committer_run(f->c, &use), RF_ERR_NOT_FOUND);
    size_t n = 0;
    struct rf_object list[4];
    assert_int_equal(rf_store_objects_since(f->st, 0, list, 4, &n), 0);
    assert_int_equal(n, 1);
}

struct group_wait {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int calls;
};

static void group_done(void *arg, struct rf_op *op)
{
    struct group_wait *w = arg;
    (void)op;
    pthread_mutex_lock(&w->mu);
    w->calls++;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* A submission (message + files) is one group: if one op fails, none is
 * stored, while other submissions in the same batch are unaffected. */
static void group_is_all_or_nothing(void **state)
{
    struct fixture *f = *state;
    uint8_t data[8] = {0};
    struct rf_op good[3], bad[3];
    for (int i = 0; i < 3; i++) {
        good[i] = (struct rf_op){.type = RF_OP_OBJECT_PUT,
                                 .source_id = f->source_id,
                                 .kind = 1,
                                 .data = data,
                                 .len = sizeof(data)};
        bad[i] = good[i];
    }
    bad[2].source_id = 999999; /* no such source: this op fails */
    struct group_wait w = {.calls = 0};
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    assert_int_equal(rf_committer_submit_group(f->c, bad, 3, group_done, &w), 0);
    assert_int_equal(rf_committer_submit_group(f->c, good, 3, group_done, &w), 0);
    pthread_mutex_lock(&w.mu);
    while (w.calls < 2)
        pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(bad[i].status, RF_ERR_NOT_FOUND);
        assert_int_equal(good[i].status, 0);
    }
    size_t n = 0;
    struct rf_object list[8];
    assert_int_equal(rf_store_objects_since(f->st, 0, list, 8, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(list[0].seq, good[0].seq);
    struct rf_op huge[1];
    assert_int_equal(rf_committer_submit_group(f->c, huge, RF_COMMIT_MAX_BATCH + 1, group_done, &w),
                     RF_ERR_LIMIT);
    pthread_cond_destroy(&w.cv);
    pthread_mutex_destroy(&w.mu);
}

/* A blob whose row was never committed is removed at once; one a row names stays. */
static void discard_only_unreferenced_blobs(void **state)
{
    struct fixture *f = *state;
    struct rf_blob *b;
    char name[RF_BLOB_NAME_LEN + 1], kept[RF_BLOB_NAME_LEN + 1], path[800];
    const uint8_t bytes[4] = {1, 2, 3, 4};
    assert_int_equal(rf_blob_begin(f->st, &b), 0);
    assert_int_equal(rf_blob_write(b, bytes, 4), 0);
    assert_int_equal(rf_blob_commit(b, name), 0);
    snprintf(path, sizeof(path), "%s/blobs/%s", f->dir, name);
    assert_int_equal(access(path, F_OK), 0);
    assert_int_equal(rf_blob_discard(f->st, name), 0);
    assert_int_not_equal(access(path, F_OK), 0);

    assert_int_equal(rf_blob_begin(f->st, &b), 0);
    assert_int_equal(rf_blob_write(b, bytes, 4), 0);
    assert_int_equal(rf_blob_commit(b, kept), 0);
    struct rf_op op = {.type = RF_OP_OBJECT_PUT, .source_id = f->source_id, .kind = 2, .size = 4};
    memcpy(op.blob_name, kept, sizeof(kept));
    assert_int_equal(rf_committer_run(f->c, &op), 0);
    assert_int_equal(rf_blob_discard(f->st, kept), RF_ERR_EXISTS);
    snprintf(path, sizeof(path), "%s/blobs/%s", f->dir, kept);
    assert_int_equal(access(path, F_OK), 0);
    assert_int_equal(rf_blob_discard(f->st, "../etc/passwd"), RF_ERR_INVALID);
}

static void free_of_null_and_idle(void **state)
{
    (void)state;
    rf_committer_free(NULL);
    struct fixture *f = *state;
    rf_committer_free(f->c); /* idle: returns without ops */
    f->c = NULL;
}

/* ---- audit entries from concurrent submitters ---- */

#define AUDIT_THREADS 6
#define AUDIT_PER_THREAD 150

struct audit_worker {
    struct fixture *f;
    int index;
    int ok, refused;
    _Atomic int failures;
    _Atomic int pending; /* fire-and-forget entries not yet settled */
};

static void forget_done(void *arg, struct rf_op *op)
{
    struct audit_worker *w = arg;
    if (op->status != 0)
        w->failures++;
    free((void *)op->target);
    free(op);
    w->pending--;
}

static void *audit_worker_main(void *p)
{
    struct audit_worker *w = p;
    uint8_t data[64];
    char target[32];
    for (int i = 0; i < AUDIT_PER_THREAD; i++) {
        /* an action and its entry, all-or-nothing; every fifth one fails */
        snprintf(target, sizeof(target), "t%d-%d", w->index, i);
        memset(data, i, sizeof(data));
        int bad = i % 5 == 4;
        struct rf_op g[2] = {
            {.type = RF_OP_OBJECT_PUT,
             .source_id = bad ? 987654 : w->f->source_id,
             .kind = 3,
             .data = data,
             .len = sizeof(data)},
            {.type = RF_OP_AUDIT_APPEND, .key = "reply", .target = target},
        };
        memset(g[1].pk, w->index + 1, 32);
        struct rf_op *forget = calloc(1, sizeof(*forget));
        char *ft = malloc(32);
        if (!forget || !ft) {
            w->failures++;
            free(forget);
            free(ft);
            continue;
        }
        snprintf(ft, 32, "%d", i);
        forget->type = RF_OP_AUDIT_APPEND;
        forget->key = "fetch";
        forget->target = ft;
        memset(forget->pk, w->index + 1, 32);
        w->pending++;
        if (rf_committer_submit(w->f->c, forget, forget_done, w) != 0) {
            w->pending--;
            w->failures++;
            free(ft);
            free(forget);
        }
        struct group_wait gw = {.calls = 0};
        pthread_mutex_init(&gw.mu, NULL);
        pthread_cond_init(&gw.cv, NULL);
        if (rf_committer_submit_group(w->f->c, g, 2, group_done, &gw) != 0) {
            w->failures++;
            continue;
        }
        pthread_mutex_lock(&gw.mu);
        while (gw.calls == 0)
            pthread_cond_wait(&gw.cv, &gw.mu);
        pthread_mutex_unlock(&gw.mu);
        pthread_cond_destroy(&gw.cv);
        pthread_mutex_destroy(&gw.mu);
        if (bad ? g[0].status == 0 || g[1].status == 0 : g[0].status != 0 || g[1].status != 0)
            w->failures++;
        if (bad)
            w->refused++;
        else
            w->ok++;
    }
    return NULL;
}

static void audit_chain_from_concurrent_submitters(void **state)
{
    struct fixture *f = *state;
    static struct audit_worker w[AUDIT_THREADS];
    pthread_t th[AUDIT_THREADS];
    for (int i = 0; i < AUDIT_THREADS; i++) {
        memset(&w[i], 0, sizeof(w[i]));
        w[i].f = f;
        w[i].index = i;
        assert_int_equal(pthread_create(&th[i], NULL, audit_worker_main, &w[i]), 0);
    }
    int ok = 0;
    for (int i = 0; i < AUDIT_THREADS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].failures, 0);
        ok += w[i].ok;
    }
    rf_committer_free(f->c); /* drains the fire-and-forget entries */
    f->c = NULL;
    for (int i = 0; i < AUDIT_THREADS; i++)
        assert_int_equal(w[i].pending, 0);

    size_t want = (size_t)ok + AUDIT_THREADS * AUDIT_PER_THREAD, n = 0, bad = 0;
    struct rf_audit_entry *e = calloc(want + 10, sizeof(*e));
    assert_non_null(e);
    assert_int_equal(rf_store_audit_list(f->st, 0, e, want + 10, &n), 0);
    assert_int_equal(n, want);
    enum rf_audit_break what = RF_AUDIT_OK;
    assert_int_equal(rf_audit_verify(e, n, 0, NULL, &bad, &what), 0);
    /* a reply entry exists exactly for each reply stored */
    size_t replies = 0, objs = 0;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(e[i].id, i + 1);
        if (strcmp(e[i].action, "reply") == 0) {
            replies++;
            int t = -1, k = -1;
            assert_int_equal(sscanf(e[i].target, "t%d-%d", &t, &k), 2);
            assert_true(k % 5 != 4);
            assert_int_equal(e[i].actor[0], t + 1);
        }
    }
    assert_int_equal(replies, (size_t)ok);
    struct rf_object *list = calloc(want + 10, sizeof(*list));
    assert_non_null(list);
    assert_int_equal(
        rf_store_objects_of_source(f->st, f->source_id, 1u << 3, list, want + 10, &objs), 0);
    assert_int_equal(objs, (size_t)ok);
    free(list);
    free(e);
}

/* ---- a completion only records and wakes (commit.h), asserted ---- */

struct io_child {
    struct rf_store *st;
    int what; /* 0: a store read, 1: a put, 2: a store write */
};

static void completion_doing_io(void *arg, struct rf_op *op)
{
    struct io_child *c = arg;
    struct rf_object o;
    struct rf_put *p = NULL;
    struct rf_op again;
    (void)op;
    if (c->what == 0) {
        (void)rf_store_object_get(c->st, 1, &o);
    } else if (c->what == 1) {
        if (rf_put_begin(c->st, RF_PUT_BLOB, &p) == 0)
            rf_put_free(p);
    } else {
        rf_op_setting_put(&again, "x", (const uint8_t *)"y", 1);
        (void)rf_store_apply(c->st, &again, 1);
    }
    _exit(0); /* reached only if nothing stopped it */
}

/* In a child: a store of its own, a committer, one op whose completion
 * tries I/O. Returns how the child ended (waitpid status). */
static int run_io_child(const char *root, int what)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char dir[700];
        struct rf_store *st = NULL;
        struct rf_committer *c = NULL;
        snprintf(dir, sizeof(dir), "%s/child-%d", root, what);
        if (rf_store_open(&st, dir) != 0 || rf_committer_new(&c, st) != 0)
            _exit(3);
        struct io_child ctx = {st, what};
        struct rf_op op;
        uint8_t nonce[16] = {(uint8_t)what};
        rf_op_nonce_put(&op, nonce, time(NULL));
        if (rf_committer_submit(c, &op, completion_doing_io, &ctx) != 0)
            _exit(4);
        sleep(30);
        _exit(5);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return status;
}

static void completion_doing_io_is_caught(void **state)
{
#ifdef NDEBUG
    (void)state;
    print_message("skipped: this build has asserts off (NDEBUG); the sanitizer build "
                  "(build-san, b_ndebug=false) runs it\n");
    skip();
#else
    struct fixture *f = *state;
    for (int what = 0; what < 3; what++) {
        int status = run_io_child(f->root, what);
        assert_true(WIFSIGNALED(status));
        assert_int_equal(WTERMSIG(status), SIGABRT);
    }
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(many_threads_all_complete_in_shared_batches, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(full_queue_is_busy_and_free_drains, setup, teardown),
        cmocka_unit_test_setup_teardown(failed_transaction_fails_its_batch_only, setup, teardown),
        cmocka_unit_test_setup_teardown(group_is_all_or_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(discard_only_unreferenced_blobs, setup, teardown),
        cmocka_unit_test_setup_teardown(free_of_null_and_idle, setup, teardown),
        cmocka_unit_test_setup_teardown(audit_chain_from_concurrent_submitters, setup, teardown),
        cmocka_unit_test_setup_teardown(completion_doing_io_is_caught, setup, teardown),
    };
    if (sodium_init() < 0)
        return 1;
    int failed = cmocka_run_group_tests_name("group commit on SQLite", tests, NULL, NULL);
    /* the same tests on PostgreSQL, each on a fresh schema of the test cluster */
    if (pgt_skipped("group commit tests on PostgreSQL"))
        return failed;
    on_pg = 1;
    return failed + cmocka_run_group_tests_name("group commit on PostgreSQL", tests, NULL, NULL);
}
