/*
 * kdfpool.c - Argon2id off the HTTP threads (kdfpool.h).
 *
 * Fixed capacity, allocated once: workers + queue job slots. A job's
 * codename lives in its slot of one sodium_malloc slab (guarded, locked,
 * never swapped) and is wiped as soon as the worker has derived from it;
 * each worker owns one sodium_malloc struct rf_source_keys that it wipes
 * after the done callback. Submitting never allocates: it takes a free slot
 * or says RF_ERR_BUSY, so a flood of logins costs a bounded amount of memory
 * and never more than `workers` derivations at once.
 *
 * Workers run at a lower priority (nice KDF_NICE): under a flood of logins
 * Argon2id takes the CPU the HTTP threads leave, so the landing page and
 * everything else stay fast while derivations queue. Each worker lowers its
 * own priority before rf_kdfpool_new returns (no syscall of that kind after
 * start-up, when a seccomp filter may forbid it).
 *
 * Invariants (under lock): nfree + nwaiting + nrunning == nslots; the FIFO
 * ring holds exactly the waiting slots. On free, the queue is drained (every
 * accepted job runs and calls back: callers rely on it to resume requests)
 * before the workers exit.
 */
#include "server/kdfpool.h"
#include "server/metrics.h"
#include "lib/codename.h"
#include "lib/err.h"
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
#define KDF_NICE 10

struct job {
    size_t len;
    uint64_t queued_us; /* CLOCK_MONOTONIC, for the wait-time metric */
    rf_kdf_done_fn done;
    void *arg;
};

struct rf_kdfpool {
    pthread_mutex_t lock;
    pthread_cond_t work;
    struct rf_kdf_params *params; /* sodium_malloc copy */
    char *slab;                   /* sodium_malloc: nslots * SLOT_BYTES */
    struct job *jobs;
    unsigned *ring; /* waiting slots, FIFO */
    unsigned *freelist;
    unsigned nslots, head, nwaiting, nfree, nrunning;
    unsigned nstarted; /* workers past their set-up */
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
        unsigned slot = p->ring[p->head];
        p->head = (p->head + 1) % p->nslots;
        p->nwaiting--;
        p->nrunning++;
        struct job j = p->jobs[slot];
        pthread_mutex_unlock(&p->lock);
        rf_metrics_kdf_wait(now_us() - j.queued_us);

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

        pthread_mutex_lock(&p->lock);
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
    p->slab = sodium_malloc((size_t)p->nslots * SLOT_BYTES);
    p->jobs = calloc(p->nslots, sizeof(*p->jobs));
    p->ring = calloc(p->nslots, sizeof(*p->ring));
    p->freelist = calloc(p->nslots, sizeof(*p->freelist));
    p->threads = calloc(workers, sizeof(*p->threads));
    if (!p->params || !p->slab || !p->jobs || !p->ring || !p->freelist || !p->threads) {
        rf_kdfpool_free(p);
        return RF_ERR_NOMEM;
    }
    memcpy(p->params, params, sizeof(*params));
    sodium_memzero(p->slab, (size_t)p->nslots * SLOT_BYTES);
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
    if (p == NULL || done == NULL || (codename == NULL && len > 0))
        return RF_ERR_INVALID;
    if (len > RF_CODENAME_INPUT_MAX)
        return RF_ERR_LIMIT;
    pthread_mutex_lock(&p->lock);
    if (p->stopping || p->nfree == 0) {
        pthread_mutex_unlock(&p->lock);
        return RF_ERR_BUSY;
    }
    unsigned slot = p->freelist[--p->nfree];
    char *cn = p->slab + (size_t)slot * SLOT_BYTES;
    if (len > 0)
        memcpy(cn, codename, len);
    cn[len] = '\0';
    p->jobs[slot] = (struct job){.len = len, .queued_us = now_us(), .done = done, .arg = arg};
    p->ring[(p->head + p->nwaiting) % p->nslots] = slot;
    p->nwaiting++;
    pthread_cond_signal(&p->work);
    pthread_mutex_unlock(&p->lock);
    return 0;
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
    sodium_free(p->slab);
    sodium_free(p->params);
    free(p->jobs);
    free(p->ring);
    free(p->freelist);
    free(p->threads);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->started);
    pthread_mutex_destroy(&p->lock);
    free(p);
}
