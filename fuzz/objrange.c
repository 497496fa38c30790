/*
 * objrange.c - fuzzes the client's parser of range answers
 * (GET /api/v1/objects/data, lib/objrange.h): the input's first byte picks
 * the piece size it is fed in (so that every split of a head or of
 * ciphertext is reached), the rest is the answer. Checked beyond "no
 * sanitizer report": entries arrive ascending above after, at most the
 * limit; a data entry's ciphertext arrives whole, exactly its size, before
 * the next entry; an accepted answer's last is at least the last seq; the
 * whole input fed at once gives the same status.
 */
#include "lib/err.h"
#include "lib/objrange.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct seen {
    int64_t prev;
    uint32_t n;
    uint64_t want, got; /* ciphertext of the current entry */
};

static int on_entry(void *ctx, const struct rf_range_entry *e)
{
    struct seen *s = ctx;
    if (s->got != s->want || e->seq <= s->prev || e->seq > RF_RANGE_SEQ_MAX || e->kind == 0 ||
        e->case_id[0] == 0 || (e->has_data && e->size > RF_RANGE_DATA_MAX))
        abort();
    s->prev = e->seq;
    s->n++;
    s->want = e->has_data ? e->size : 0;
    s->got = 0;
    return 0;
}

static int on_data(void *ctx, const uint8_t *p, size_t n)
{
    struct seen *s = ctx;
    (void)p;
    if (n == 0 || n > s->want - s->got)
        abort();
    s->got += n;
    return 0;
}

static int run(const uint8_t *d, size_t n, size_t step, int64_t *last, struct seen *s)
{
    struct rf_range_parser p;
    memset(s, 0, sizeof(*s));
    s->prev = 16;
    rf_range_parser_init(&p, 16, 8, on_entry, on_data, s);
    int rc = 0;
    for (size_t off = 0; rc == 0 && off < n; off += step)
        rc = rf_range_feed(&p, d + off, off + step <= n ? step : n - off);
    if (rc == 0)
        rc = rf_range_finish(&p, last);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = (size_t)data[0] % 41 + 1;
    int64_t last = 0, last1 = 0;
    struct seen s, s1;
    int rc = run(data + 1, size - 1, step, &last, &s);
    int rc1 = run(data + 1, size - 1, size, &last1, &s1);
    if (rc != rc1 || s.n != s1.n)
        abort();
    if (s.n > 8)
        abort();
    if (rc == 0 && (last < s.prev || last != last1 || s.got != s.want))
        abort();
    return 0;
}
