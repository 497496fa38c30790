/* kdfpool_test.c - the Argon2id pool: it derives exactly what
 * rf_source_derive derives, never runs more than `workers` at once, says
 * BUSY as soon as workers + queue jobs are in, recovers when they finish,
 * refuses oversized codenames, and runs every accepted job (calling back)
 * even when freed right after submitting. Cheap Argon2id parameters keep it
 * fast; the cost parameters are not what is under test. */
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(derives_like_source_derive),
        cmocka_unit_test(busy_when_full_then_recovers),
        cmocka_unit_test(refuses_oversized_and_bad_codenames),
        cmocka_unit_test(free_drains_accepted_jobs),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
