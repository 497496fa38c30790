/*
 * hist.c - the lock-free histogram of hist.h.
 */
#include "lib/hist.h"

#include <assert.h>
#include <string.h>

void rf_hist_init(struct rf_hist *h, const uint64_t *bounds, size_t n)
{
    assert(n <= RF_HIST_BOUNDS_MAX);
    h->bounds = bounds;
    h->n = n;
    for (size_t i = 0; i <= RF_HIST_BOUNDS_MAX; i++)
        atomic_init(&h->buckets[i], 0);
    atomic_init(&h->sum, 0);
}

void rf_hist_observe(struct rf_hist *h, uint64_t v)
{
    size_t i = 0;
    while (i < h->n && v > h->bounds[i])
        i++;
    atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum, v, memory_order_relaxed);
}

void rf_hist_read(const struct rf_hist *h, uint64_t buckets[RF_HIST_BOUNDS_MAX + 1], uint64_t *sum)
{
    struct rf_hist *m = (struct rf_hist *)h; /* atomic loads take a non-const pointer */
    memset(buckets, 0, sizeof(uint64_t) * (RF_HIST_BOUNDS_MAX + 1));
    for (size_t i = 0; i <= h->n; i++)
        buckets[i] = atomic_load_explicit(&m->buckets[i], memory_order_relaxed);
    *sum = atomic_load_explicit(&m->sum, memory_order_relaxed);
}
