/*
 * hist.h - a lock-free histogram for the metrics endpoint (server/metrics.c)
 * and the layers below it that measure themselves (the group committer).
 *
 * Fixed upper bounds (a static table, ascending, in the unit of the values
 * observed: microseconds, ops, ...), one atomic counter per bound plus one
 * for larger values, and an atomic sum. rf_hist_observe is a few relaxed
 * atomic adds: no lock, no allocation, safe from any thread. A reader sees
 * each counter on its own (a scrape during an observation may see the bucket
 * but not yet the sum): Prometheus accepts that; the renderer derives the
 * count from the buckets so that +Inf and _count always agree.
 * Values are counts and durations only: nothing here may carry a label
 * taken from a request.
 */
#ifndef RF_HIST_H
#define RF_HIST_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define RF_HIST_BOUNDS_MAX 24

struct rf_hist {
    const uint64_t *bounds; /* ascending, n of them */
    size_t n;
    _Atomic uint64_t buckets[RF_HIST_BOUNDS_MAX + 1]; /* [n]: above the last bound */
    _Atomic uint64_t sum;
};

/* bounds must outlive h; n <= RF_HIST_BOUNDS_MAX. */
void rf_hist_init(struct rf_hist *h, const uint64_t *bounds, size_t n);
void rf_hist_observe(struct rf_hist *h, uint64_t v);
/* A snapshot: buckets[i] (not cumulative) for i <= n, the sum. */
void rf_hist_read(const struct rf_hist *h, uint64_t buckets[RF_HIST_BOUNDS_MAX + 1], uint64_t *sum);

#endif
