/* crew_test.c - a crew runs its function exactly once per round on each of
 * its threads, the leader sees every member's work after rf_crew_wait, and
 * a crew of one (the leader alone) works too. */
#include "lib/crew.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdatomic.h>
#include <string.h>

struct shared {
    const int *input; /* set by the leader before each round */
    size_t n;
    atomic_size_t next;
    long sums[1024];
};

struct member {
    struct shared *s;
    unsigned rounds; /* rounds this member ran */
    int ended;
};

/* Claims items of the round and doubles each into sums: the leader's and the
 * members' shares together cover every item once. */
static void work(void *arg)
{
    struct member *m = arg;
    struct shared *s = m->s;
    m->rounds++;
    for (size_t i; (i = atomic_fetch_add(&s->next, 1)) < s->n;)
        s->sums[i] = 2L * s->input[i];
}

static void end(void *arg)
{
    ((struct member *)arg)->ended = 1;
}

static void run(int nthreads)
{
    static int input[1024];
    struct shared s = {0};
    struct member ms[8];
    memset(ms, 0, sizeof(ms));
    for (int t = 0; t < 8; t++)
        ms[t].s = &s;
    struct rf_crew c;
    rf_crew_start(&c, nthreads, work, ms, sizeof(ms[0]), end);
    assert_int_equal(c.n, nthreads - 1);
    for (int round = 1; round <= 50; round++) {
        for (int i = 0; i < 1024; i++)
            input[i] = round * 10000 + i;
        s.input = input;
        s.n = (size_t)(round * 20); /* a batch of another size each round */
        atomic_store(&s.next, 0);
        rf_crew_go(&c);
        work(&ms[0]); /* the leader's share */
        rf_crew_wait(&c);
        for (size_t i = 0; i < s.n; i++)
            assert_int_equal(s.sums[i], 2L * (round * 10000 + (long)i));
        for (int t = 1; t < nthreads; t++)
            assert_int_equal(ms[t].rounds, (unsigned)round); /* once a round, no more */
    }
    rf_crew_stop(&c);
    for (int t = 1; t < 8; t++)
        assert_int_equal(ms[t].ended, t < nthreads);
    assert_int_equal(ms[0].ended, 0); /* the leader's is its own */
}

static void crew_runs_each_round_once(void **state)
{
    (void)state;
    run(4);
    run(2);
}

static void crew_of_one_is_the_leader_alone(void **state)
{
    (void)state;
    run(1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(crew_runs_each_round_once),
        cmocka_unit_test(crew_of_one_is_the_leader_alone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
