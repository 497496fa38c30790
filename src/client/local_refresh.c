/*
 * local_refresh.c - a sync's per-case summaries on every CPU (local_rows.h).
 *
 * After a sync's digests, every case with a new object gets its summary
 * built again. One case after the other on the calling thread, that was
 * 10 to 16 % of a cold sync's client CPU, all of it serial (docs/
 * performance.md, "Per-object work beside the crypto"). Here, in batches
 * of at most REFRESH_BATCH cases and REFRESH_BATCH_BYTES of digest rows:
 * the calling thread (which owns the database) reads each case's rows;
 * a pool of threads opens the digests, materializes the case and seals its
 * summary and board rows; the calling thread writes them in the cases'
 * order, in the caller's transaction. The rows written are the same as
 * rf_local_refresh of each case in turn (client_test.c
 * local_db_parallel_digest_same_as_serial compares every summary).
 */
#include "client/local_rows.h"
#include "lib/err.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* as local.c's ROW_MAX: a sealed summary or board row at most */
#define RF_LOCAL_ROW_MAX (8 * 1024 * 1024)
#define REFRESH_BATCH 256
#define REFRESH_BATCH_BYTES (64u * 1024 * 1024)
#define REFRESHERS_MAX 16

/* Packs one digest row into r->digests: i64 seq | u64 n | n bytes. */
int rf_case_rows_keep_digest(void *ctx, int64_t seq, const uint8_t *blob, size_t n)
{
    struct rf_case_rows *r = ctx;
    uint64_t len = n;
    if (rf_buf_put(&r->digests, &seq, sizeof(seq)) != 0 ||
        rf_buf_put(&r->digests, &len, sizeof(len)) != 0 || rf_buf_put(&r->digests, blob, n) != 0)
        return RF_ERR_NOMEM;
    return 0;
}

void rf_case_rows_init(struct rf_case_rows *r)
{
    memset(r, 0, sizeof(*r));
    rf_buf_init(&r->digests, SIZE_MAX / 4);
    rf_buf_init(&r->sealed, RF_LOCAL_ROW_MAX);
    rf_buf_init(&r->board, RF_LOCAL_ROW_MAX);
}

/* Empties r for its next case (its buffers kept). */
void rf_case_rows_reset(struct rf_case_rows *r)
{
    rf_buf_reset(&r->digests);
    rf_buf_reset(&r->sealed);
    rf_buf_reset(&r->board);
    free(r->objs);
    rf_local_events_free(r->outbox, r->nout);
    r->objs = NULL;
    r->outbox = NULL;
    r->nobj = r->nout = 0;
    r->rc = 0;
    r->last_seq = 0;
}

void rf_case_rows_free(struct rf_case_rows *r)
{
    rf_case_rows_reset(r);
    rf_buf_free(&r->digests);
    rf_buf_free(&r->sealed);
    rf_buf_free(&r->board);
}

struct rpool {
    struct rf_local *l;
    struct rf_case_rows *rows;
    size_t n, next; /* next under mu */
    pthread_mutex_t mu;
};

static void *refresher_run(void *arg)
{
    struct rpool *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        size_t i = p->next < p->n ? p->next++ : p->n;
        pthread_mutex_unlock(&p->mu);
        if (i >= p->n)
            break;
        rf_local_case_build(p->l, &p->rows[i]);
    }
    return NULL;
}

/* Reads the rows of cases [first, first + k) into rows (k at most cap and
 * REFRESH_BATCH_BYTES of digests): *k set to how many were read. */
static int read_batch(struct rf_local *l, const char (*cases)[RF_CASE_ID_LEN + 1], size_t n,
                      size_t first, struct rf_case_rows *rows, size_t cap, size_t *k)
{
    size_t bytes = 0;
    int rc = 0;
    *k = 0;
    while (rc == 0 && first + *k < n && *k < cap && bytes < REFRESH_BATCH_BYTES) {
        rc = rf_local_case_read(l, cases[first + *k], &rows[*k]);
        bytes += rows[*k].digests.len;
        (*k)++;
    }
    return rc;
}

/* The batches are pipelined: while the pool builds one batch, the calling
 * thread reads the next one's rows (SQLite, serial), then helps build; the
 * built batch is written before the next is handed to the pool. */
int rf_local_refresh_all(struct rf_local *l, const char (*cases)[RF_CASE_ID_LEN + 1], size_t n,
                         int nthreads)
{
    if (n == 0)
        return 0;
    if (nthreads < 1)
        nthreads = 1;
    if (nthreads > REFRESHERS_MAX)
        nthreads = REFRESHERS_MAX;
    size_t cap = n < REFRESH_BATCH ? n : REFRESH_BATCH;
    struct rf_case_rows *bufs[2];
    bufs[0] = calloc(2 * cap, sizeof(*bufs[0]));
    if (!bufs[0])
        return RF_ERR_NOMEM;
    bufs[1] = bufs[0] + cap;
    for (size_t i = 0; i < 2 * cap; i++)
        rf_case_rows_init(&bufs[0][i]);
    struct rpool p = {.l = l};
    pthread_mutex_init(&p.mu, NULL);
    pthread_t th[REFRESHERS_MAX];
    size_t k = 0, first = 0;
    int cur = 0;
    int rc = read_batch(l, cases, n, 0, bufs[0], cap, &k);
    while (rc == 0 && k > 0) {
        p.rows = bufs[cur];
        p.n = k;
        p.next = 0;
        int started = 0;
        for (int t = 1; t < nthreads && (size_t)t < k; t++) {
            if (pthread_create(&th[t], NULL, refresher_run, &p) != 0)
                break; /* fewer threads: slower, not wrong */
            started = t;
        }
        size_t knext = 0;
        int rrc = read_batch(l, cases, n, first + k, bufs[!cur], cap, &knext);
        refresher_run(&p); /* this thread builds too */
        for (int t = 1; t <= started; t++)
            pthread_join(th[t], NULL);
        for (size_t i = 0; rc == 0 && i < k; i++) /* written in order, on this thread */
            rc = rf_local_case_write(l, &bufs[cur][i]);
        if (rc == 0)
            rc = rrc;
        first += k;
        k = knext;
        cur = !cur;
    }
    for (size_t i = 0; i < 2 * cap; i++)
        rf_case_rows_free(&bufs[0][i]);
    free(bufs[0]);
    pthread_mutex_destroy(&p.mu);
    return rc;
}
