/*
 * pgreconnect_test.c - the PostgreSQL backend when its connections break
 * (issue 11: PostgreSQL restarted under running servers). PostgreSQL only:
 * without REFUGE_TEST_PG it says loudly that it is skipped.
 *
 * A restart is simulated by terminating the store's server processes
 * (pg_terminate_backend, found by the application_name pgt_new puts in the
 * URL): to the store this is what a restart looks like, a connection that
 * was fine when it was last used and is now closed.
 *
 * - A connection that broke while idle costs nobody a failure: the next
 *   read and the next batch succeed at once (a read or a BEGIN on a lost idle
 *   connection runs again on a fresh one).
 * - A connection that breaks inside a batch of object puts (the pipelined
 *   batch, store_pg_write.c), before its COMMIT: nothing of it was stored,
 *   and it runs once more on a fresh connection, whole, exactly once, with
 *   the next numbers (no gap, no duplicate).
 * - A COMMIT whose answer was lost is resolved by the batch's mark in
 *   commit_marks, not by its transaction id's status: after a crash
 *   PostgreSQL reuses ids whose WAL never reached the disk, so "committed"
 *   may be another transaction's (a lost batch told "sent": test_pg_kill
 *   caught one in 13,319). An id that committed without the mark is not the
 *   batch; one still running is waited for.
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
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pg_test_db.h"
/* after pg_test_db.h: from here on PQ* are the store's (pq_dl.h), loaded
 * by rf_store_create in setup */
#include "store/pg_internal.h"

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
    snprintf(f->root, sizeof(f->root), "%s/pgreconnect-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(f->root))
        return -1;
    snprintf(f->dir, sizeof(f->dir), "%s/data", f->root);
    pgt_new(f->schema, f->pgurl, sizeof(f->pgurl));
    if (rf_store_create(&f->st, f->dir, f->pgurl) != 0)
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
    pgt_drop(f->schema);
    free(f);
    return 0;
}

/* Terminates every server process of the store (its writer and readers). */
static long long kill_backends(const struct fixture *f)
{
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
             "WHERE application_name = '%s' AND pid <> pg_backend_pid()",
             f->schema);
    return pgt_int(pgt_base(), sql);
}

/* Stores n objects of one byte each in one batch; returns rf_store_apply's
 * result, the ops' statuses in status[]. */
static int put_batch(struct fixture *f, size_t n, int *status)
{
    struct rf_op ops[8];
    struct rf_put *puts[8];
    assert_true(n <= 8);
    for (size_t i = 0; i < n; i++) {
        uint8_t b = (uint8_t)i;
        assert_int_equal(rf_put_begin(f->st, 0, &puts[i]), 0);
        assert_int_equal(rf_put_write(puts[i], &b, 1), 0);
        assert_int_equal(rf_op_object_put(&ops[i], f->source_id, 1, puts[i]), 0);
    }
    int rc = rf_store_apply(f->st, ops, n);
    for (size_t i = 0; i < n; i++) {
        status[i] = rf_op_status(&ops[i]);
        rf_put_free(puts[i]);
    }
    return rc;
}

static size_t count_objects(struct fixture *f, int64_t *last)
{
    struct rf_object page[64];
    size_t n = 0, total = 0;
    int64_t after = 0;
    do {
        assert_int_equal(rf_store_objects_since(f->st, after, page, 64, &n), 0);
        for (size_t i = 0; i < n; i++)
            after = page[i].seq;
        total += n;
    } while (n == 64);
    *last = after;
    return total;
}

static void idle_connections_broken_cost_no_failure(void **state)
{
    struct fixture *f = *state;
    int status[8];
    int64_t last;
    assert_int_equal(put_batch(f, 3, status), 0);
    assert_int_equal(count_objects(f, &last), 3);
    for (int round = 0; round < 3; round++) {
        assert_true(kill_backends(f) >= 1);
        usleep(50 * 1000); /* the terminations take effect */
        /* the first read after it works: no error reaches the caller */
        assert_int_equal(count_objects(f, &last), 3 + 2 * (size_t)round);
        struct rf_source src;
        uint8_t lookup[32] = {7};
        assert_int_equal(rf_store_source_by_lookup(f->st, lookup, &src), 0);
        assert_int_equal(src.id, f->source_id);
        /* and the first batch after it (another restart in between) */
        assert_true(kill_backends(f) >= 1);
        usleep(50 * 1000);
        assert_int_equal(put_batch(f, 2, status), 0);
        assert_int_equal(status[0], 0);
        assert_int_equal(status[1], 0);
    }
    /* numbers stayed dense: 3 + 2 per round, the last one the count */
    assert_int_equal(count_objects(f, &last), 9);
}

/* A batch blocked on the counters row (held by another connection) while its
 * connection is terminated. */
struct blocked {
    struct fixture *f;
    int rc;
    int status[8];
};

static void *blocked_batch(void *arg)
{
    struct blocked *b = arg;
    b->rc = put_batch(b->f, 4, b->status);
    return NULL;
}

static void batch_broken_before_commit_runs_again(void **state)
{
    struct fixture *f = *state;
    int status[8];
    int64_t last_before, last;
    assert_int_equal(put_batch(f, 2, status), 0);
    assert_int_equal(count_objects(f, &last_before), 2);

    /* another session holds the counters row: the batch waits at its first
     * object's number, inside its transaction */
    PGconn *lock = PQconnectdb(f->pgurl);
    assert_int_equal(PQstatus(lock), CONNECTION_OK);
    PQsetNoticeProcessor(lock, pgt_quiet, NULL);
    PGresult *r = PQexec(lock, "BEGIN; SET application_name = 'pgreconnect-lock'; "
                               "SELECT seq FROM counters FOR UPDATE");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    PQclear(r);

    struct blocked b = {.f = f};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, blocked_batch, &b), 0);
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM pg_stat_activity WHERE application_name = '%s' "
             "AND wait_event_type = 'Lock'",
             f->schema);
    int waited = 0;
    while (pgt_int(pgt_base(), sql) < 1 && waited++ < 300)
        usleep(20 * 1000);
    assert_true(waited < 300); /* the batch is inside its transaction, waiting */
    assert_true(kill_backends(f) >= 1);
    r = PQexec(lock, "ROLLBACK");
    PQclear(r);
    PQfinish(lock);
    assert_int_equal(pthread_join(t, NULL), 0);

    /* its transaction went with the connection before COMMIT: nothing of it
     * was stored, so it ran once more on a fresh connection, whole, with
     * the next numbers, and exactly once */
    assert_int_equal(b.rc, 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(b.status[i], 0);
    assert_int_equal(count_objects(f, &last), 6);
    assert_int_equal(last, last_before + 4);
    assert_int_equal(put_batch(f, 1, status), 0);
    assert_int_equal(status[0], 0);
    assert_int_equal(count_objects(f, &last), 7);
    assert_int_equal(last, last_before + 5);
}

/* Runs "BEGIN; SELECT txid_current()" on db: the new transaction's id. */
static int64_t begin_xid(PGconn *db)
{
    PGresult *r = PQexec(db, "BEGIN; SELECT txid_current()");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    int64_t xid = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    return xid;
}

static void sql_ok(PGconn *db, const char *sql)
{
    PGresult *r = PQexec(db, sql);
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
}

static void put_mark(PGconn *db, const unsigned char writer[16], int64_t batch)
{
    char hex[33], sql[160];
    sodium_bin2hex(hex, sizeof(hex), writer, 16);
    snprintf(sql, sizeof(sql),
             "INSERT INTO commit_marks(writer, batch, day) VALUES ('\\x%s', %lld, 0) "
             "ON CONFLICT (writer) DO UPDATE SET batch = excluded.batch",
             hex, (long long)batch);
    sql_ok(db, sql);
}

static void *commit_later(void *arg)
{
    usleep(300 * 1000);
    sql_ok(arg, "COMMIT");
    return NULL;
}

static void lost_commit_resolved_by_the_mark(void **state)
{
    struct fixture *f = *state;
    unsigned char writer[16];
    randombytes_buf(writer, sizeof(writer));
    struct pgconn c = {.db = PQconnectdb(f->pgurl)};
    PGconn *other = PQconnectdb(f->pgurl);
    assert_int_equal(PQstatus(c.db), CONNECTION_OK);
    assert_int_equal(PQstatus(other), CONNECTION_OK);

    /* an id that committed, but not with this batch's mark: what a reused
     * id looks like after a crash. Asking its status alone said "yes". */
    int64_t xid = begin_xid(other);
    sql_ok(other, "COMMIT");
    assert_int_equal(rf_pg_committed(&c, xid, writer, 1), 0);

    /* the batch that committed with its mark */
    xid = begin_xid(other);
    put_mark(other, writer, 1);
    sql_ok(other, "COMMIT");
    assert_int_equal(rf_pg_committed(&c, xid, writer, 1), 1);
    assert_int_equal(rf_pg_committed(&c, xid, writer, 2), 0); /* a later one is not it */

    /* rolled back */
    xid = begin_xid(other);
    put_mark(other, writer, 3);
    sql_ok(other, "ROLLBACK");
    assert_int_equal(rf_pg_committed(&c, xid, writer, 3), 0);

    /* still running (its connection broke, not PostgreSQL): waited for */
    xid = begin_xid(other);
    put_mark(other, writer, 4);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, commit_later, other), 0);
    assert_int_equal(rf_pg_committed(&c, xid, writer, 4), 1);
    assert_int_equal(pthread_join(t, NULL), 0);

    PQfinish(other);
    PQfinish(c.db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(idle_connections_broken_cost_no_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(batch_broken_before_commit_runs_again, setup, teardown),
        cmocka_unit_test_setup_teardown(lost_commit_resolved_by_the_mark, setup, teardown),
    };
    if (sodium_init() < 0)
        return 1;
    if (pgt_skipped("reconnection tests on PostgreSQL"))
        return 0;
    return cmocka_run_group_tests_name("PostgreSQL connections broken", tests, NULL, NULL);
}
