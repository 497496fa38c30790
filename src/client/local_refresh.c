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
#include "client/state.h"
#include "lib/crew.h"
#include "lib/err.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define REFRESH_BATCH 256
#define REFRESH_BATCH_BYTES (64u * 1024 * 1024) /* three batches in memory at once */
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
    r->nobj = r->nout = r->objcap = 0;
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
    struct rpool *shared; /* a crew member's: the pool it takes cases from */
};

/* Builds the batch's cases not claimed yet. */
static void refresher_run(struct rpool *p)
{
    for (;;) {
        pthread_mutex_lock(&p->mu);
        size_t i = p->next < p->n ? p->next++ : p->n;
        pthread_mutex_unlock(&p->mu);
        if (i >= p->n)
            break;
        rf_local_case_build(p->l, &p->rows[i]);
    }
}

static void refresher_round(void *arg)
{
    refresher_run(((struct rpool *)arg)->shared);
}

/* ---- reading many cases in a scan ----
 * Reading a case's rows looks each digest and object up by its index: a
 * few microseconds a row, serial, on the thread that owns the database;
 * about 5 s of a cold sync of 1,100,000 objects (docs/performance.md). A
 * refresh of many cases (SCAN_MIN_CASES or more) instead reads the digest
 * table once to size each case, cuts the cases (sorted) into groups of at
 * most REFRESH_BATCH_BYTES of digests, and reads each group's digests and
 * objects in one scan of each table (in seq order, so each case's rows come
 * in the order the per-case read gives). The rows are the same either way
 * (client_test.c local_db_parallel_digest_same_as_serial refreshes over
 * SCAN_MIN_CASES cases). */
#define SCAN_MIN_CASES 2048
#define SCAN_GROUP_CASES 65536

int rf_local_refresh_scan_min;

struct group {
    const char (*cases)[RF_CASE_ID_LEN + 1];
    size_t n;
    struct rf_case_rows *rows; /* rows[i] is cases[i]'s */
    uint64_t *bytes;           /* or, sizing: each case's digest bytes */
    /* a row's case found by a hash of its id (a bisection per row was
     * 3,400,000 of them, on the thread that owns the database) */
    uint32_t *slot; /* index + 1, 0: empty */
    size_t mask;
};

static uint64_t id_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ULL;
    return h;
}

static int group_index(struct group *g)
{
    size_t cap = 16;
    while (cap < g->n * 2)
        cap *= 2;
    if (g->n >= UINT32_MAX || (g->slot = calloc(cap, sizeof(*g->slot))) == NULL)
        return RF_ERR_NOMEM;
    g->mask = cap - 1;
    for (size_t i = 0; i < g->n; i++) {
        size_t k = id_hash(g->cases[i]) & g->mask;
        while (g->slot[k])
            k = (k + 1) & g->mask;
        g->slot[k] = (uint32_t)i + 1;
    }
    return 0;
}

static long find_case(const struct group *g, const char *case_id)
{
    for (size_t k = id_hash(case_id) & g->mask; g->slot[k]; k = (k + 1) & g->mask)
        if (strcmp(g->cases[g->slot[k] - 1], case_id) == 0)
            return (long)g->slot[k] - 1;
    return -1;
}

static int size_row(void *ctx, const char *case_id, int64_t seq, const uint8_t *blob, size_t n)
{
    struct group *g = ctx;
    (void)seq;
    (void)blob;
    long i = find_case(g, case_id);
    if (i >= 0)
        g->bytes[i] += n + 16;
    return 0;
}

static int digest_row(void *ctx, const char *case_id, int64_t seq, const uint8_t *blob, size_t n)
{
    struct group *g = ctx;
    long i = find_case(g, case_id);
    return i < 0 ? 0 : rf_case_rows_keep_digest(&g->rows[i], seq, blob, n);
}

static int object_row(void *ctx, const struct rf_cobj *o)
{
    struct group *g = ctx;
    long i = find_case(g, o->case_id);
    if (i < 0 || strcmp(o->case_id, RF_STATE_TEAMCONFIG) == 0)
        return 0;
    struct rf_case_rows *r = &g->rows[i];
    if (rf_array_grow(&r->objs, &r->objcap, r->nobj + 1, sizeof(*r->objs), 16) != 0)
        return RF_ERR_NOMEM;
    r->objs[r->nobj++] = *o;
    return 0;
}

/* The group ends: cases[first..end[i]) is group i, each at most
 * SCAN_GROUP_CASES cases and REFRESH_BATCH_BYTES of digests (or one case). */
static int plan_groups(struct rf_local *l, const char (*cases)[RF_CASE_ID_LEN + 1], size_t n,
                       size_t **ends, size_t *ngroups)
{
    struct group g = {cases, n, NULL, calloc(n, sizeof(uint64_t)), NULL, 0};
    *ends = calloc(n, sizeof(size_t));
    *ngroups = 0;
    int rc = g.bytes && *ends ? group_index(&g) : RF_ERR_NOMEM;
    if (rc == 0)
        rc = rf_cache_digest_scan(rf_local_cache(l), NULL, NULL, 0, size_row, &g);
    uint64_t bytes = 0;
    size_t first = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (i > first &&
            (bytes + g.bytes[i] > REFRESH_BATCH_BYTES || i - first == SCAN_GROUP_CASES)) {
            (*ends)[(*ngroups)++] = i;
            first = i;
            bytes = 0;
        }
        bytes += g.bytes[i];
    }
    if (rc == 0)
        (*ends)[(*ngroups)++] = n;
    free(g.bytes);
    free(g.slot);
    return rc;
}

/* Reads group cases[first, first + k) into rows in two scans. */
static int read_group(struct rf_local *l, const char (*cases)[RF_CASE_ID_LEN + 1], size_t first,
                      size_t k, struct rf_case_rows *rows)
{
    struct group g = {cases + first, k, rows, NULL, NULL, 0};
    int rc = group_index(&g);
    for (size_t i = 0; rc == 0 && i < k; i++)
        rc = rf_local_case_read_outbox(l, cases[first + i], &rows[i]);
    if (rc == 0)
        rc = rf_cache_digest_scan(rf_local_cache(l), cases[first], cases[first + k - 1], 1,
                                  digest_row, &g);
    if (rc == 0)
        rc = rf_cache_object_scan(rf_local_cache(l), cases[first], cases[first + k - 1], object_row,
                                  &g);
    free(g.slot);
    return rc;
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

/* Reads the batch after first + k (a group of the plan, or by index):
 * *knext set to how many. */
static int read_next(struct rf_local *l, const char (*cases)[RF_CASE_ID_LEN + 1], size_t n,
                     const size_t *ends, size_t ngroups, size_t *g, size_t first,
                     struct rf_case_rows *rows, size_t cap, size_t *knext)
{
    *knext = 0;
    if (!ends)
        return read_batch(l, cases, n, first, rows, cap, knext);
    if (*g >= ngroups)
        return 0;
    *knext = ends[*g] - (*g ? ends[*g - 1] : 0);
    (*g)++;
    return read_group(l, cases, first, *knext, rows);
}

/* A pipeline of three batches: while the pool builds batch i, the calling
 * thread writes batch i-1 (in the cases' order), reads batch i+1's rows
 * (SQLite, serial), then helps build. */
int rf_local_refresh_all(struct rf_local *l, const char (*cases)[RF_CASE_ID_LEN + 1], size_t n,
                         int nthreads)
{
    if (n == 0)
        return 0;
    if (nthreads < 1)
        nthreads = 1;
    if (nthreads > REFRESHERS_MAX)
        nthreads = REFRESHERS_MAX;
    size_t *ends = NULL, ngroups = 0, g = 0;
    int rc = 0;
    size_t cap = n < REFRESH_BATCH ? n : REFRESH_BATCH;
    if (n >= (size_t)(rf_local_refresh_scan_min > 0 ? rf_local_refresh_scan_min
                                                    : SCAN_MIN_CASES)) { /* many cases: in scans */
        rc = plan_groups(l, cases, n, &ends, &ngroups);
        cap = 0;
        for (size_t i = 0; rc == 0 && i < ngroups; i++)
            if (ends[i] - (i ? ends[i - 1] : 0) > cap)
                cap = ends[i] - (i ? ends[i - 1] : 0);
    }
    struct rf_case_rows *bufs = rc == 0 ? calloc(3 * cap, sizeof(*bufs)) : NULL;
    if (!bufs) {
        free(ends);
        return rc != 0 ? rc : RF_ERR_NOMEM;
    }
    for (size_t i = 0; i < 3 * cap; i++)
        rf_case_rows_init(&bufs[i]);
    struct rpool p = {.l = l};
    struct rpool ps[REFRESHERS_MAX];
    pthread_mutex_init(&p.mu, NULL);
    for (int t = 0; t < nthreads; t++)
        ps[t].shared = &p;
    struct rf_crew crew;
    rf_crew_start(&crew, nthreads, refresher_round, ps, sizeof(ps[0]), NULL);
    size_t k = 0, kprev = 0, first = 0;
    struct rf_case_rows *prev = NULL;
    int cur = 0;
    rc = read_next(l, cases, n, ends, ngroups, &g, 0, bufs, cap, &k);
    while (rc == 0 && (k > 0 || kprev > 0)) {
        struct rf_case_rows *batch = bufs + (size_t)cur * cap;
        if (k > 0) {
            p.rows = batch;
            p.n = k;
            p.next = 0;
            rf_crew_go(&crew);
        }
        for (size_t i = 0; rc == 0 && i < kprev; i++) /* written in order, on this thread */
            rc = rf_local_case_write(l, &prev[i]);
        size_t knext = 0;
        int rrc = 0;
        if (rc == 0 && k > 0)
            rrc = read_next(l, cases, n, ends, ngroups, &g, first + k,
                            bufs + (size_t)((cur + 1) % 3) * cap, cap, &knext);
        if (k > 0) {
            refresher_run(&p); /* this thread builds too */
            rf_crew_wait(&crew);
        }
        if (rc == 0)
            rc = rrc;
        prev = batch;
        kprev = k;
        first += k;
        k = knext;
        cur = (cur + 1) % 3;
    }
    rf_crew_stop(&crew);
    for (size_t i = 0; i < 3 * cap; i++)
        rf_case_rows_free(&bufs[i]);
    free(bufs);
    free(ends);
    pthread_mutex_destroy(&p.mu);
    return rc;
}
