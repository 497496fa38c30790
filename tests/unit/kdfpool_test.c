/* kdfpool_test.c - the Argon2id pool: it derives exactly what
 * rf_source_derive derives, never runs more than `workers` at once, says
 * BUSY as soon as workers + queue jobs are in, recovers when they finish,
 * refuses oversized codenames, and runs every accepted job (calling back)
 * even when freed right after submitting. Bursts (issue 10): senders are
 * served in turn (round-robin by sender tag), one sender may not hold more
 * than 4 waiting slots, and with a wait bound a job is refused only when
 * the jobs ahead would make it wait longer. Cheap Argon2id parameters keep
 * it fast; the cost parameters are not what is under test. */
#include "server/kdfpool.h"
#include "lib/codename.h"
#include "lib/err.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <sodium.h>
#include <string.h>
#include <unistd.h>

static struct rf_kdf_params params;

struct waiter {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int calls;
    int status;
    struct rf_source_keys keys;
    int gate_closed; /* callbacks block while set */
    int running, max_running;
};

static void waiter_init(struct waiter *w)
{
    memset(w, 0, sizeof(*w));
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
}

static void done(void *arg, int status, const struct rf_source_keys *keys)
{
    struct waiter *w = arg;
    pthread_mutex_lock(&w->lock);
    w->running++;
    if (w->running > w->max_running)
        w->max_running = w->running;
    while (w->gate_closed)
        pthread_cond_wait(&w->cond, &w->lock);
    w->status = status;
    memcpy(&w->keys, keys, sizeof(*keys));
    w->calls++;
    w->running--;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

static void wait_calls(struct waiter *w, int n)
{
    pthread_mutex_lock(&w->lock);
    while (w->calls < n)
        pthread_cond_wait(&w->cond, &w->lock);
    pthread_mutex_unlock(&w->lock);
}

/* done() does not signal on entering: poll until n callbacks are in */
static void wait_running(struct waiter *w, int n)
{
    for (;;) {
        pthread_mutex_lock(&w->lock);
        int r = w->running;
        pthread_mutex_unlock(&w->lock);
        if (r >= n)
            return;
        usleep(1000);
    }
}

static void derives_like_source_derive(void **state)
{
    (void)state;
    struct rf_kdfpool *p = NULL;
    struct waiter w;
    waiter_init(&w);
    const char *cn = "  Alpha  BRAVO charlie delta echo foxtrot golf ";
    assert_int_equal(rf_kdfpool_new(&p, &params, 2, 4), 0);
    assert_int_equal(rf_kdfpool_submit(p, cn, strlen(cn), done, &w), 0);
    wait_calls(&w, 1);
    assert_int_equal(w.status, 0);
    struct rf_source_keys *want = sodium_malloc(sizeof(*want));
    assert_int_equal(rf_source_derive(want, &params, cn, strlen(cn)), 0);
    assert_memory_equal(w.keys.lookup_id, want->lookup_id, 32);
    assert_memory_equal(w.keys.pk, want->pk, 32);
    assert_memory_equal(w.keys.sk, want->sk, 32);
    sodium_free(want);
    rf_kdfpool_free(p);
}

static void busy_when_full_then_recovers(void **state)
{
    (void)state;
    struct rf_kdfpool *p = NULL;
    struct waiter w;
    waiter_init(&w);
    w.gate_closed = 1;
    const char *cn = "one two three four five six seven";
    assert_int_equal(rf_kdfpool_new(&p, &params, 1, 2), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(rf_kdfpool_submit(p, cn, strlen(cn), done, &w), 0);
    assert_int_equal(rf_kdfpool_submit(p, cn, strlen(cn), done, &w), RF_ERR_BUSY);
    assert_int_equal(rf_kdfpool_submit(p, cn, strlen(cn), done, &w), RF_ERR_BUSY);
    pthread_mutex_lock(&w.lock);
    w.gate_closed = 0;
    pthread_cond_broadcast(&w.cond);
    pthread_mutex_unlock(&w.lock);
    wait_calls(&w, 3);
    assert_int_equal(w.max_running, 1); /* one worker: one at a time */
    assert_int_equal(rf_kdfpool_submit(p, cn, strlen(cn), done, &w), 0);
    wait_calls(&w, 4);
    rf_kdfpool_free(p);
}

static void refuses_oversized_and_bad_codenames(void **state)
{
    (void)state;
    struct rf_kdfpool *p = NULL;
    struct waiter w;
    waiter_init(&w);
    static char big[RF_CODENAME_INPUT_MAX + 2];
    memset(big, 'a', sizeof(big) - 1);
    assert_int_equal(rf_kdfpool_new(&p, &params, 1, 1), 0);
    assert_int_equal(rf_kdfpool_submit(p, big, strlen(big), done, &w), RF_ERR_LIMIT);
    /* invalid UTF-8 is the derivation's error, reported through the callback */
    const char bad[] = "abc\xff\xfe";
    assert_int_equal(rf_kdfpool_submit(p, bad, sizeof(bad) - 1, done, &w), 0);
    wait_calls(&w, 1);
    assert_int_not_equal(w.status, 0);
    rf_kdfpool_free(p);
}

static void free_drains_accepted_jobs(void **state)
{
    (void)state;
    struct rf_kdfpool *p = NULL;
    struct waiter w;
    waiter_init(&w);
    const char *cn = "one two three four five six seven";
    assert_int_equal(rf_kdfpool_new(&p, &params, 2, 8), 0);
    for (int i = 0; i < 10; i++)
        assert_int_equal(rf_kdfpool_submit(p, cn, strlen(cn), done, &w), 0);
    rf_kdfpool_free(p);
    assert_int_equal(w.calls, 10);
    assert_int_equal(w.status, 0);
}

static int setup(void **state)
{
    (void)state;
    if (sodium_init() < 0)
        return -1;
    return rf_kdf_params_new(&params, 1, 8ULL * 1024 * 1024);
}

struct rec {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    char order[32];
    int n;
    int started;
    int gate_closed;
};

struct tagged {
    struct rec *rec;
    char id;
};

static void record(void *arg, int status, const struct rf_source_keys *keys)
{
    struct tagged *t = arg;
    struct rec *r = t->rec;
    (void)status;
    (void)keys;
    pthread_mutex_lock(&r->lock);
    r->started++;
    pthread_cond_broadcast(&r->cond);
    while (r->gate_closed)
        pthread_cond_wait(&r->cond, &r->lock);
    r->order[r->n++] = t->id;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
}

static void rec_open(struct rec *r, int n)
{
    pthread_mutex_lock(&r->lock);
    r->gate_closed = 0;
    pthread_cond_broadcast(&r->cond);
    while (r->n < n)
        pthread_cond_wait(&r->cond, &r->lock);
    pthread_mutex_unlock(&r->lock);
}

static void serves_senders_in_turn(void **state)
{
    (void)state;
    struct rf_kdfpool *p = NULL;
    struct rec r;
    memset(&r, 0, sizeof(r));
    pthread_mutex_init(&r.lock, NULL);
    pthread_cond_init(&r.cond, NULL);
    r.gate_closed = 1;
    const char *cn = "one two three four five six seven";
    /* sender 1 sends four logins, then senders 2 and 3 one each */
    struct tagged t[] = {{&r, 'a'}, {&r, 'b'}, {&r, 'c'}, {&r, 'd'}, {&r, 'X'}, {&r, 'Y'}};
    const uint64_t who[] = {1, 1, 1, 1, 2, 3};
    assert_int_equal(rf_kdfpool_new(&p, &params, 1, 16), 0);
    assert_int_equal(rf_kdfpool_submit_for(p, who[0], cn, strlen(cn), record, &t[0]), 0);
    pthread_mutex_lock(&r.lock);
    while (r.started < 1) /* 'a' is running */
        pthread_cond_wait(&r.cond, &r.lock);
    pthread_mutex_unlock(&r.lock);
    for (int i = 1; i < 6; i++)
        assert_int_equal(rf_kdfpool_submit_for(p, who[i], cn, strlen(cn), record, &t[i]), 0);
    rec_open(&r, 6);
    /* sender 1's next ('b') is in the current round with X and Y, its
     * others in the rounds after: each sender's next in turn */
    assert_string_equal(r.order, "abXYcd");
    rf_kdfpool_free(p);
}

static void one_sender_holds_few_slots(void **state)
{
    (void)state;
    struct rf_kdfpool *p = NULL;
    struct waiter w;
    waiter_init(&w);
    w.gate_closed = 1;
    const char *cn = "one two three four five six seven";
    assert_int_equal(rf_kdfpool_new(&p, &params, 1, 64), 0);
    assert_int_equal(rf_kdfpool_submit_for(p, 7, cn, strlen(cn), done, &w), 0);
    wait_running(&w, 1); /* the first is running: the next four wait */
    for (int i = 0; i < 4; i++)
        assert_int_equal(rf_kdfpool_submit_for(p, 7, cn, strlen(cn), done, &w), 0);
    assert_int_equal(rf_kdfpool_submit_for(p, 7, cn, strlen(cn), done, &w), RF_ERR_BUSY);
    /* another sender, or nobody in particular, still gets in */
    assert_int_equal(rf_kdfpool_submit_for(p, 8, cn, strlen(cn), done, &w), 0);
    assert_int_equal(rf_kdfpool_submit(p, cn, strlen(cn), done, &w), 0);
    pthread_mutex_lock(&w.lock);
    w.gate_closed = 0;
    pthread_cond_broadcast(&w.cond);
    pthread_mutex_unlock(&w.lock);
    wait_calls(&w, 7);
    rf_kdfpool_free(p);
}

static void refuses_only_a_long_wait(void **state)
{
    (void)state;
    struct rf_kdfpool *p = NULL;
    struct waiter w;
    waiter_init(&w);
    w.gate_closed = 1;
    const char *cn = "one two three four five six seven";
    assert_int_equal(rf_kdfpool_new(&p, &params, 2, 64), 0);
    /* setting a bound times one derivation; a bound of an hour takes a
     * burst whole (only the slots bound it) */
    assert_int_equal(rf_kdfpool_set_wait_max(p, 3600ULL * 1000000), 0);
    assert_true(rf_kdfpool_mean_us(p) > 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(rf_kdfpool_submit(p, cn, strlen(cn), done, &w), 0);
    assert_int_equal(rf_kdfpool_submit(p, cn, strlen(cn), done, &w), 0);
    pthread_mutex_lock(&w.lock);
    w.gate_closed = 0;
    pthread_cond_broadcast(&w.cond);
    pthread_mutex_unlock(&w.lock);
    wait_calls(&w, 6);
    rf_kdfpool_free(p);

    /* now with the bound: an empty pool always takes a job */
    struct waiter v;
    waiter_init(&v);
    v.gate_closed = 1;
    assert_int_equal(rf_kdfpool_new(&p, &params, 2, 64), 0);
    assert_int_equal(rf_kdfpool_set_wait_max(p, 1), 0);
    assert_int_equal(rf_kdfpool_submit(p, cn, strlen(cn), done, &v), 0);
    wait_running(&v, 1);
    /* one running, two workers: half a derivation ahead is over 1 us */
    assert_int_equal(rf_kdfpool_submit(p, cn, strlen(cn), done, &v), RF_ERR_BUSY);
    pthread_mutex_lock(&v.lock);
    v.gate_closed = 0;
    pthread_cond_broadcast(&v.cond);
    pthread_mutex_unlock(&v.lock);
    wait_calls(&v, 1);
    rf_kdfpool_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(derives_like_source_derive),
        cmocka_unit_test(busy_when_full_then_recovers),
        cmocka_unit_test(refuses_oversized_and_bad_codenames),
        cmocka_unit_test(free_drains_accepted_jobs),
        cmocka_unit_test(serves_senders_in_turn),
        cmocka_unit_test(one_sender_holds_few_slots),
        cmocka_unit_test(refuses_only_a_long_wait),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
