/*
 * commit.c - the group committer: one thread turns a queue of write ops from
 * many request threads into few durable transactions.
 *
 * Submitters append {op, done, arg} to a bounded ring (RF_COMMIT_MAX_QUEUE,
 * RF_ERR_BUSY past it) under mu and signal work. The thread takes up to
 * RF_COMMIT_MAX_BATCH entries, copies their ops into one contiguous array,
 * drops the lock, calls rf_store_apply once (one fsync for all of them),
 * copies every op back to its owner and calls the completions, outside the
 * lock. There is no timer: while one batch is being fsynced, new ops pile up
 * in the ring and become the next batch, so batches grow exactly as fast as
 * load does and an idle line pays no added latency.
 *
 * Measurements (commit.h): the thread alone writes them, after each batch,
 * with relaxed atomics; readers (the metrics endpoint) never take mu.
 *
 * Invariants: an op is owned by the committer from a successful submit until
 * its done runs, and done runs exactly once for it; rf_committer_free runs
 * every queued op before the thread exits; no completion runs with mu held.
 * While completions run, the thread-local in_completion is set, and the
 * store, blob, session and rendering entry points assert it is not
 * (commit.h: what a completion may do).
 */
#include "store/commit.h"
#include "lib/err.h"
#include "lib/log.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct entry {
    struct rf_op *op; /* first of nops ops */
    size_t nops;      /* > 1: an all-or-nothing group */
    rf_commit_done_fn done;
    void *arg;
};

struct rf_committer {
    struct rf_store *st;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t work;
    struct entry ring[RF_COMMIT_MAX_QUEUE];
    size_t head, count;
    int stopping;
    uint64_t batches, ops;     /* under mu */
    struct rf_hist batch_hist; /* ops per batch */
    struct rf_hist apply_hist; /* microseconds per rf_store_apply */
    _Atomic uint64_t stored[RF_COMMIT_KINDS];
    _Atomic uint64_t stored_bytes;
    /* the committer thread's own */
    struct entry batch[RF_COMMIT_MAX_BATCH];
    struct rf_op ops_buf[RF_COMMIT_MAX_BATCH];
};

/* Set on the committer thread while it runs completions. */
static _Thread_local int in_completion;

int rf_committer_in_completion(void)
{
    return in_completion;
}

static const uint64_t batch_bounds[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512};
static const uint64_t apply_bounds_us[] = {250,    500,     1000,    2500,    5000,
                                           10000,  25000,   50000,   100000,  250000,
                                           500000, 1000000, 2500000, 5000000, 10000000};

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* After a batch: its size and duration, and the objects it stored. */
static void measure(struct rf_committer *c, size_t nops, uint64_t us)
{
    rf_hist_observe(&c->batch_hist, nops);
    rf_hist_observe(&c->apply_hist, us);
    for (size_t i = 0; i < nops; i++) {
        const struct rf_op *op = &c->ops_buf[i];
        if (op->type != RF_OP_OBJECT_PUT || op->status != 0)
            continue;
        size_t k = op->kind < RF_COMMIT_KINDS ? op->kind : RF_COMMIT_KINDS - 1;
        atomic_fetch_add_explicit(&c->stored[k], 1, memory_order_relaxed);
        uint64_t n = op->data != NULL ? op->len : op->size;
        atomic_fetch_add_explicit(&c->stored_bytes, n, memory_order_relaxed);
    }
}

/* Takes entries while their ops fit in one batch (a group is never split);
 * returns the number of entries, *nops the number of ops. */
static size_t take_batch(struct rf_committer *c, size_t *nops)
{
    size_t n = 0, ops = 0;
    while (n < c->count && n < RF_COMMIT_MAX_BATCH) {
        const struct entry *e = &c->ring[c->head];
        if (ops + e->nops > RF_COMMIT_MAX_BATCH)
            break;
        ops += e->nops;
        c->batch[n++] = *e;
        c->head = (c->head + 1) % RF_COMMIT_MAX_QUEUE;
    }
    c->count -= n;
    *nops = ops;
    return n;
}

static void *committer_main(void *arg)
{
    struct rf_committer *c = arg;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while (c->count == 0 && !c->stopping)
            pthread_cond_wait(&c->work, &c->mu);
        if (c->count == 0)
            break; /* stopping, drained */
        size_t nops;
        size_t n = take_batch(c, &nops);
        c->batches++;
        c->ops += nops;
        pthread_mutex_unlock(&c->mu);

        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            const struct entry *e = &c->batch[i];
            memcpy(&c->ops_buf[k], e->op, e->nops * sizeof(*e->op));
            c->ops_buf[k].group = (uint16_t)(e->nops > 1 ? e->nops : 0);
            k += e->nops;
        }
        uint64_t t0 = now_us();
        int rc = rf_store_apply(c->st, c->ops_buf, nops);
        measure(c, nops, now_us() - t0);
        if (rc != 0)
            rf_log_num(RF_LOG_WARN, "commit: batch failed", "ops", nops);
        k = 0;
        in_completion = 1;
        for (size_t i = 0; i < n; i++) {
            struct entry *e = &c->batch[i];
            memcpy(e->op, &c->ops_buf[k], e->nops * sizeof(*e->op));
            k += e->nops;
            e->done(e->arg, e->op);
        }
        in_completion = 0;
        pthread_mutex_lock(&c->mu);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

int rf_committer_new(struct rf_committer **out, struct rf_store *st)
{
    struct rf_committer *c;
    *out = NULL;
    if (!st)
        return RF_ERR_INVALID;
    c = calloc(1, sizeof(*c));
    if (!c)
        return RF_ERR_NOMEM;
    c->st = st;
    rf_hist_init(&c->batch_hist, batch_bounds, sizeof(batch_bounds) / sizeof(batch_bounds[0]));
    rf_hist_init(&c->apply_hist, apply_bounds_us,
                 sizeof(apply_bounds_us) / sizeof(apply_bounds_us[0]));
    for (size_t i = 0; i < RF_COMMIT_KINDS; i++)
        atomic_init(&c->stored[i], 0);
    atomic_init(&c->stored_bytes, 0);
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->work, NULL);
    if (pthread_create(&c->thread, NULL, committer_main, c) != 0) {
        pthread_cond_destroy(&c->work);
        pthread_mutex_destroy(&c->mu);
        free(c);
        return RF_ERR_NOMEM;
    }
    *out = c;
    return 0;
}

int rf_committer_submit(struct rf_committer *c, struct rf_op *op, rf_commit_done_fn done, void *arg)
{
    return rf_committer_submit_group(c, op, 1, done, arg);
}

int rf_committer_submit_group(struct rf_committer *c, struct rf_op *op, size_t nops,
                              rf_commit_done_fn done, void *arg)
{
    int rc = 0;
    assert(!rf_committer_in_completion());
    if (!c || !op || !done || nops == 0)
        return RF_ERR_INVALID;
    if (nops > RF_COMMIT_MAX_BATCH || nops > UINT16_MAX)
        return RF_ERR_LIMIT;
    pthread_mutex_lock(&c->mu);
    if (c->stopping) {
        rc = RF_ERR_CANCELLED;
    } else if (c->count == RF_COMMIT_MAX_QUEUE) {
        rc = RF_ERR_BUSY;
    } else {
        struct entry *e = &c->ring[(c->head + c->count) % RF_COMMIT_MAX_QUEUE];
        e->op = op;
        e->nops = nops;
        e->done = done;
        e->arg = arg;
        c->count++;
        pthread_cond_signal(&c->work);
    }
    pthread_mutex_unlock(&c->mu);
    return rc;
}

struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
};

static void waiter_done(void *arg, struct rf_op *op)
{
    struct waiter *w = arg;
    (void)op;
    pthread_mutex_lock(&w->mu);
    w->done = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

int rf_committer_run(struct rf_committer *c, struct rf_op *op)
{
    struct waiter w = {.done = 0};
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    int rc = rf_committer_submit(c, op, waiter_done, &w);
    if (rc == 0) {
        pthread_mutex_lock(&w.mu);
        while (!w.done)
            pthread_cond_wait(&w.cv, &w.mu);
        pthread_mutex_unlock(&w.mu);
        rc = op->status;
    } else {
        op->status = rc;
    }
    pthread_cond_destroy(&w.cv);
    pthread_mutex_destroy(&w.mu);
    return rc;
}

void rf_committer_stats(const struct rf_committer *c, uint64_t *batches, uint64_t *ops)
{
    struct rf_committer *m = (struct rf_committer *)c; /* the lock is not part of the value */
    pthread_mutex_lock(&m->mu);
    *batches = c->batches;
    *ops = c->ops;
    pthread_mutex_unlock(&m->mu);
}

const struct rf_hist *rf_committer_batch_hist(const struct rf_committer *c)
{
    return &c->batch_hist;
}

const struct rf_hist *rf_committer_apply_hist(const struct rf_committer *c)
{
    return &c->apply_hist;
}

void rf_committer_stored(const struct rf_committer *c, uint64_t objects[RF_COMMIT_KINDS],
                         uint64_t *bytes)
{
    struct rf_committer *m = (struct rf_committer *)c; /* atomic loads */
    for (size_t i = 0; i < RF_COMMIT_KINDS; i++)
        objects[i] = atomic_load_explicit(&m->stored[i], memory_order_relaxed);
    *bytes = atomic_load_explicit(&m->stored_bytes, memory_order_relaxed);
}

void rf_committer_free(struct rf_committer *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    c->stopping = 1;
    pthread_cond_signal(&c->work);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thread, NULL);
    pthread_cond_destroy(&c->work);
    pthread_mutex_destroy(&c->mu);
    free(c);
}
