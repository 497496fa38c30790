/*
 * kdfpool.c - Argon2id off the HTTP threads (kdfpool.h).
 *
 * Fixed capacity, allocated once: workers + queue job slots. A job's
 * codename lives in its slot of one slab (lib/secmem.h region: guarded, locked,
 * never swapped) and is wiped as soon as the worker has derived from it;
 * each worker owns one sodium_malloc struct rf_source_keys that it wipes
 * after the done callback. Submitting never allocates: it takes a free slot
 * or says RF_ERR_BUSY, so a flood of logins costs a bounded amount of memory
 * and never more than `workers` derivations at once.
 *
 * Workers run at a lower priority (nice KDF_NICE): under a flood of logins
 * Argon2id takes the CPU the HTTP threads leave, so the landing page and
 * everything else stay fast while derivations queue. Nice 4, not more: the
 * HTTP threads streaming uploads are CPU-bound too, and at nice 10 (a weight
 * 9x lower) a flood of endless uploads starved the derivations: a login in
 * tests/e2e/test_flood.py waited 7 s on a quiet box and 17-36 s on a loaded
 * one, against 3-4 s (5 s with a busy neighbour) at nice 4, the landing
 * page's p99 going from 16 to 36 ms. Each worker lowers its
 * own priority before rf_kdfpool_new returns (no syscall of that kind after
 * start-up, when a seccomp filter may forbid it).
 *
 * Bursts (issue 10): a login waits, its connection suspended, as long as
 * its expected wait is short, instead of being told "busy". With a wait
 * bound set (rf_kdfpool_set_wait_max), a job is refused only when the jobs
 * ahead of it would make it wait longer than the bound: expected wait =
 * (waiting + running) / workers x the mean derivation time, a moving
 * average of the workers' own timings seeded by one timed derivation when
 * the bound is set. The slots stay a hard cap (memory), so a real flood
 * still gets "busy" at once.
 *
 * Fairness between sessions: a job carries who sent it (an opaque 64-bit
 * tag, 0 for nobody in particular). One tag may have at most PER_WHO_MAX
 * jobs waiting, and workers take jobs round-robin between tags (start-time
 * fair queuing): a job gets a round, the current round (that of the job
 * taken last) if its tag has nothing waiting, else one past its tag's last
 * waiting job; a worker takes the lowest round, the oldest among equals.
 * One client sending logins in a loop thus waits behind everyone's next
 * login, not in front.
 *
 * Invariants (under lock): nfree + nwaiting + nrunning == nslots; wait[]
 * holds exactly the waiting slots in arrival order; every waiting job's
 * round is >= the current round. On free, the queue is
 * drained (every accepted job runs and calls back: callers rely on it to
 * resume requests) before the workers exit.
 */
#include "server/kdfpool.h"
#include "server/metrics.h"
#include "lib/codename.h"
#include "lib/err.h"
#include "lib/secmem.h"
#include "lib/log.h"

#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define SLOT_BYTES (RF_CODENAME_INPUT_MAX + 1)
#define KDF_NICE 4
#define PER_WHO_MAX 4
#define EWMA_SHIFT 3 /* the mean moves 1/8 of the way to each new timing */

struct job {
    uint64_t who;   /* 0: nobody in particular (plain FIFO) */
    uint64_t round; /* fair queuing: taken in round order (kdfpool.c's head) */
    size_t len;
    uint64_t queued_us; /* CLOCK_MONOTONIC, for the wait-time metric */
    rf_kdf_done_fn done;
    void *arg;
};

struct rf_kdfpool {
    pthread_mutex_t lock;
    pthread_cond_t work;
    struct rf_kdf_params *params; /* sodium_malloc copy */
    char *slab;                   /* rf_secmem_region: nslots * SLOT_BYTES */
    struct job *jobs;
    unsigned *wait; /* waiting slots, in arrival order */
    unsigned *freelist;
    unsigned nslots, nwaiting, nfree, nrunning;
    uint64_t wait_max_us; /* 0: no bound but the slots */
    uint64_t mean_us;     /* moving mean of one derivation's wall time */
    uint64_t round;       /* the round of the job taken last */
    unsigned nstarted;    /* workers past their set-up */
    pthread_cond_t started;
    int stopping;
    pthread_t *threads;
    unsigned nthreads;
};

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Under lock, nwaiting > 0: removes and returns the waiting slot with the
 * lowest round (the oldest among equals), which becomes the current round. */
static unsigned take_next(struct rf_kdfpool *p)
{
    unsigned best = 0;
    for (unsigned i = 1; i < p->nwaiting && p->jobs[p->wait[best]].round > p->round; i++)
        if (p->jobs[p->wait[i]].round < p->jobs[p->wait[best]].round)
            best = i;
    unsigned slot = p->wait[best];
    p->round = p->jobs[slot].round;
    for (unsigned i = best + 1; i < p->nwaiting; i++)
        p->wait[i - 1] = p->wait[i];
    p->nwaiting--;
    return slot;
}

static void mean_update(struct rf_kdfpool *p, uint64_t took_us)
{
    if (p->mean_us == 0)
        p->mean_us = took_us;
    else if (took_us >= p->mean_us)
        p->mean_us += (took_us - p->mean_us) >> EWMA_SHIFT;
    else
        p->mean_us -= (p->mean_us - took_us) >> EWMA_SHIFT;
}

static void *worker(void *arg)
{
    struct rf_kdfpool *p = arg;
    struct rf_source_keys *keys = sodium_malloc(sizeof(*keys));
    /* this thread only (a Linux thread id); a failure leaves it at normal priority */
    (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), KDF_NICE);
    pthread_mutex_lock(&p->lock);
    p->nstarted++;
    pthread_cond_broadcast(&p->started);
    for (;;) {
        while (p->nwaiting == 0 && !p->stopping)
            pthread_cond_wait(&p->work, &p->lock);
        if (p->nwaiting == 0)
            break; /* stopping and drained */
        unsigned slot = take_next(p);
        p->nrunning++;
        struct job j = p->jobs[slot];
        pthread_mutex_unlock(&p->lock);
        uint64_t t0 = now_us();
        rf_metrics_kdf_wait(t0 - j.queued_us);

        char *cn = p->slab + (size_t)slot * SLOT_BYTES;
        int status = RF_ERR_NOMEM;
        if (keys != NULL) {
            sodium_memzero(keys, sizeof(*keys));
            status = rf_source_derive(keys, p->params, cn, j.len);
            if (status != 0)
                sodium_memzero(keys, sizeof(*keys));
        }
        sodium_memzero(cn, SLOT_BYTES);
        j.done(j.arg, status, keys);
        if (keys != NULL)
            sodium_memzero(keys, sizeof(*keys));

        uint64_t took = now_us() - t0;
        pthread_mutex_lock(&p->lock);
        mean_update(p, took);
        p->nrunning--;
        p->freelist[p->nfree++] = slot;
    }
    pthread_mutex_unlock(&p->lock);
    sodium_free(keys);
    return NULL;
}

int rf_kdfpool_new(struct rf_kdfpool **out, const struct rf_kdf_params *params, unsigned workers,
                   unsigned queue)
{
    *out = NULL;
    if (params == NULL || workers == 0 || workers > 1024 || queue > 65536)
        return RF_ERR_INVALID;
    struct rf_kdfpool *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return RF_ERR_NOMEM;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->started, NULL);
    p->nslots = workers + queue;
    p->params = sodium_malloc(sizeof(*p->params));
    p->slab = rf_secmem_region((size_t)p->nslots * SLOT_BYTES); /* zeroed, locked as touched */
    p->jobs = calloc(p->nslots, sizeof(*p->jobs));
    p->wait = calloc(p->nslots, sizeof(*p->wait));
    p->freelist = calloc(p->nslots, sizeof(*p->freelist));
    p->threads = calloc(workers, sizeof(*p->threads));
    if (!p->params || !p->slab || !p->jobs || !p->wait || !p->freelist || !p->threads) {
        rf_kdfpool_free(p);
        return RF_ERR_NOMEM;
    }
    memcpy(p->params, params, sizeof(*params));
    for (unsigned i = 0; i < p->nslots; i++)
        p->freelist[i] = p->nslots - 1 - i;
    p->nfree = p->nslots;
    for (unsigned i = 0; i < workers; i++) {
        if (pthread_create(&p->threads[i], NULL, worker, p) != 0) {
            rf_kdfpool_free(p);
            return RF_ERR_NOMEM;
        }
        p->nthreads++;
    }
    pthread_mutex_lock(&p->lock);
    while (p->nstarted < p->nthreads)
        pthread_cond_wait(&p->started, &p->lock);
    pthread_mutex_unlock(&p->lock);
    *out = p;
    return 0;
}

int rf_kdfpool_submit(struct rf_kdfpool *p, const char *codename, size_t len, rf_kdf_done_fn done,
                      void *arg)
{
    return rf_kdfpool_submit_for(p, 0, codename, len, done, arg);
}

/* Under lock: would a job submitted now wait longer than the bound before
 * a worker takes it? (the jobs ahead, shared by the workers) */
static int too_long_a_wait(const struct rf_kdfpool *p)
{
    if (p->wait_max_us == 0 || p->mean_us == 0)
        return 0;
    uint64_t ahead = (uint64_t)p->nwaiting + p->nrunning;
    return ahead * p->mean_us / p->nthreads > p->wait_max_us;
}

int rf_kdfpool_submit_for(struct rf_kdfpool *p, uint64_t who, const char *codename, size_t len,
                          rf_kdf_done_fn done, void *arg)
{
    if (p == NULL || done == NULL || (codename == NULL && len > 0))
        return RF_ERR_INVALID;
    if (len > RF_CODENAME_INPUT_MAX)
        return RF_ERR_LIMIT;
    pthread_mutex_lock(&p->lock);
    unsigned mine = 0;
    uint64_t round = p->round;
    for (unsigned i = 0; who != 0 && i < p->nwaiting; i++) {
        const struct job *o = &p->jobs[p->wait[i]];
        if (o->who == who) {
            mine++;
            if (o->round >= round)
                round = o->round + 1;
        }
    }
    if (p->stopping || p->nfree == 0 || mine >= PER_WHO_MAX || too_long_a_wait(p)) {
        pthread_mutex_unlock(&p->lock);
        return RF_ERR_BUSY;
    }
    unsigned slot = p->freelist[--p->nfree];
    char *cn = p->slab + (size_t)slot * SLOT_BYTES;
    if (len > 0)
        memcpy(cn, codename, len);
    cn[len] = '\0';
    p->jobs[slot] = (struct job){
        .who = who, .round = round, .len = len, .queued_us = now_us(), .done = done, .arg = arg};
    p->wait[p->nwaiting++] = slot;
    pthread_cond_signal(&p->work);
    pthread_mutex_unlock(&p->lock);
    return 0;
}

int rf_kdfpool_set_wait_max(struct rf_kdfpool *p, uint64_t wait_max_us)
{
    if (p == NULL)
        return RF_ERR_INVALID;
    uint64_t took = 0;
    if (wait_max_us > 0) {
        /* one timed derivation (of a throwaway input) seeds the mean */
        struct rf_source_keys *keys = sodium_malloc(sizeof(*keys));
        if (keys == NULL)
            return RF_ERR_NOMEM;
        uint64_t t0 = now_us();
        int rc = rf_source_derive(keys, p->params, "calibration", 11);
        took = now_us() - t0;
        sodium_free(keys);
        if (rc != 0)
            return rc;
    }
    pthread_mutex_lock(&p->lock);
    p->wait_max_us = wait_max_us;
    if (took > 0)
        p->mean_us = took;
    pthread_mutex_unlock(&p->lock);
    return 0;
}

uint64_t rf_kdfpool_mean_us(struct rf_kdfpool *p)
{
    pthread_mutex_lock(&p->lock);
    uint64_t m = p->mean_us;
    pthread_mutex_unlock(&p->lock);
    return m;
}

void rf_kdfpool_depth(struct rf_kdfpool *p, unsigned *waiting, unsigned *running)
{
    pthread_mutex_lock(&p->lock);
    *waiting = p->nwaiting;
    *running = p->nrunning;
    pthread_mutex_unlock(&p->lock);
}

void rf_kdfpool_free(struct rf_kdfpool *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->lock);
    p->stopping = 1;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->lock);
    for (unsigned i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    rf_secmem_region_free(p->slab, (size_t)p->nslots * SLOT_BYTES);
    sodium_free(p->params);
    free(p->jobs);
    free(p->wait);
    free(p->freelist);
    free(p->threads);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->started);
    pthread_mutex_destroy(&p->lock);
    free(p);
}
