/*
 * objrange.c - the range answer's encoders and push parser (objrange.h).
 *
 * The parser is a small state machine: it gathers the 5-byte head, then
 * each 36-byte entry head (or the 13-byte end, by the type byte) in hold,
 * checks it, hands it on, and passes a data entry's ciphertext through to
 * on_data without copying. Every field is checked before a callback sees
 * it; the first failure is sticky.
 */
#include "lib/objrange.h"
#include "lib/err.h"

#include <string.h>

enum { ST_HEAD = 0, ST_TYPE, ST_ENTRY, ST_DATA, ST_END, ST_DONE };

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void put_u64(uint8_t *p, uint64_t v)
{
    put_u32(p, (uint32_t)(v >> 32));
    put_u32(p + 4, (uint32_t)v);
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get_u64(const uint8_t *p)
{
    return (uint64_t)get_u32(p) << 32 | get_u32(p + 4);
}

static int case_char(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

void rf_range_put_head(uint8_t *out)
{
    memcpy(out, RF_RANGE_MAGIC, 4);
    out[4] = RF_RANGE_VERSION;
}

int rf_range_put_entry(uint8_t *out, const struct rf_range_entry *e)
{
    size_t n = strnlen(e->case_id, sizeof(e->case_id));
    if (n == 0 || n > RF_RANGE_CASE_BYTES || e->seq < 1 || e->seq > RF_RANGE_SEQ_MAX ||
        e->kind == 0 || (e->has_data && e->size > RF_RANGE_DATA_MAX) || e->size > RF_RANGE_SIZE_MAX)
        return RF_ERR_INVALID;
    for (size_t i = 0; i < n; i++)
        if (!case_char((uint8_t)e->case_id[i]))
            return RF_ERR_INVALID;
    out[0] = e->has_data ? RF_RANGE_DATA : RF_RANGE_LEFT_OUT;
    put_u64(out + 1, (uint64_t)e->seq);
    out[9] = e->kind;
    put_u32(out + 10, e->day);
    put_u32(out + 14, e->roster);
    memset(out + 18, 0, RF_RANGE_CASE_BYTES);
    memcpy(out + 18, e->case_id, n);
    put_u64(out + 28, e->size);
    return 0;
}

void rf_range_put_end(uint8_t *out, int64_t last, uint32_t count)
{
    out[0] = RF_RANGE_END;
    put_u64(out + 1, (uint64_t)last);
    put_u32(out + 9, count);
}

void rf_range_parser_init(struct rf_range_parser *p, int64_t after, uint32_t max_entries,
                          rf_range_entry_fn on_entry, rf_range_data_fn on_data, void *ctx)
{
    memset(p, 0, sizeof(*p));
    p->state = ST_HEAD;
    p->after = after;
    p->prev = after;
    p->max_entries = max_entries;
    p->on_entry = on_entry;
    p->on_data = on_data;
    p->ctx = ctx;
}

/* Checks the entry head in hold and fills cur. */
static int entry_parse(struct rf_range_parser *p)
{
    const uint8_t *h = p->hold;
    struct rf_range_entry *e = &p->cur;
    uint64_t seq = get_u64(h + 1);
    memset(e, 0, sizeof(*e));
    e->has_data = h[0] == RF_RANGE_DATA;
    if (seq > (uint64_t)RF_RANGE_SEQ_MAX || (int64_t)seq <= p->prev)
        return RF_ERR_FORMAT;
    e->seq = (int64_t)seq;
    e->kind = h[9];
    if (e->kind == 0)
        return RF_ERR_FORMAT;
    e->day = get_u32(h + 10);
    e->roster = get_u32(h + 14);
    /* 1..10 case characters, then only zero padding */
    size_t n = 0;
    while (n < RF_RANGE_CASE_BYTES && h[18 + n] != 0) {
        if (!case_char(h[18 + n]))
            return RF_ERR_FORMAT;
        e->case_id[n] = (char)h[18 + n];
        n++;
    }
    if (n == 0)
        return RF_ERR_FORMAT;
    for (size_t i = n; i < RF_RANGE_CASE_BYTES; i++)
        if (h[18 + i] != 0)
            return RF_ERR_FORMAT;
    e->size = get_u64(h + 28);
    if (e->size > RF_RANGE_SIZE_MAX)
        return RF_ERR_FORMAT;
    if (e->has_data && e->size > RF_RANGE_DATA_MAX)
        return RF_ERR_LIMIT;
    if (e->has_data && e->size > RF_RANGE_BYTES_MAX - p->data_total)
        return RF_ERR_LIMIT;
    if (p->count >= p->max_entries)
        return RF_ERR_LIMIT;
    return 0;
}

static int end_parse(struct rf_range_parser *p)
{
    uint64_t last = get_u64(p->hold + 1);
    if (last > (uint64_t)RF_RANGE_SEQ_MAX || (int64_t)last < p->prev)
        return RF_ERR_FORMAT;
    if (get_u32(p->hold + 9) != p->count)
        return RF_ERR_FORMAT;
    p->last = (int64_t)last;
    return 0;
}

/* Gathers up to want bytes of a fixed part into hold; returns the bytes
 * taken from data. */
static size_t gather(struct rf_range_parser *p, size_t want, const uint8_t *data, size_t n)
{
    size_t k = want - p->have;
    if (k > n)
        k = n;
    memcpy(p->hold + p->have, data, k);
    p->have += k;
    return k;
}

static int step(struct rf_range_parser *p, const uint8_t **data, size_t *n)
{
    size_t k;
    int rc;
    switch (p->state) {
    case ST_HEAD:
        k = gather(p, RF_RANGE_HEAD_BYTES, *data, *n);
        *data += k, *n -= k;
        for (size_t i = 0; i < p->have && i < 4; i++)
            if (p->hold[i] != (uint8_t)RF_RANGE_MAGIC[i])
                return RF_ERR_FORMAT;
        if (p->have < RF_RANGE_HEAD_BYTES)
            return 0;
        if (p->hold[4] != RF_RANGE_VERSION)
            return RF_ERR_VERSION;
        p->have = 0;
        p->state = ST_TYPE;
        return 0;
    case ST_TYPE:
        if ((*data)[0] == RF_RANGE_END)
            p->state = ST_END;
        else if ((*data)[0] == RF_RANGE_DATA || (*data)[0] == RF_RANGE_LEFT_OUT)
            p->state = ST_ENTRY;
        else
            return RF_ERR_FORMAT;
        return 0;
    case ST_ENTRY:
        k = gather(p, RF_RANGE_ENTRY_BYTES, *data, *n);
        *data += k, *n -= k;
        if (p->have < RF_RANGE_ENTRY_BYTES)
            return 0;
        p->have = 0;
        if ((rc = entry_parse(p)) != 0)
            return rc;
        p->count++;
        p->prev = p->cur.seq;
        if (p->on_entry && (rc = p->on_entry(p->ctx, &p->cur)) != 0)
            return rc;
        if (p->cur.has_data && p->cur.size > 0) {
            p->data_left = p->cur.size;
            p->data_total += p->cur.size;
            p->state = ST_DATA;
        } else {
            p->state = ST_TYPE;
        }
        return 0;
    case ST_DATA:
        k = *n < p->data_left ? *n : (size_t)p->data_left;
        if (p->on_data && (rc = p->on_data(p->ctx, *data, k)) != 0)
            return rc;
        *data += k, *n -= k;
        p->data_left -= k;
        if (p->data_left == 0)
            p->state = ST_TYPE;
        return 0;
    case ST_END:
        k = gather(p, RF_RANGE_END_BYTES, *data, *n);
        *data += k, *n -= k;
        if (p->have < RF_RANGE_END_BYTES)
            return 0;
        p->have = 0;
        if ((rc = end_parse(p)) != 0)
            return rc;
        p->state = ST_DONE;
        return 0;
    default: /* ST_DONE: nothing may follow the end */
        return RF_ERR_FORMAT;
    }
}

int rf_range_feed(struct rf_range_parser *p, const uint8_t *data, size_t n)
{
    if (p->err)
        return p->err;
    while (n > 0) {
        int rc = step(p, &data, &n);
        if (rc != 0) {
            p->err = rc;
            return rc;
        }
    }
    return 0;
}

int rf_range_finish(struct rf_range_parser *p, int64_t *last)
{
    if (p->err)
        return p->err;
    if (p->state != ST_DONE)
        return RF_ERR_TRUNCATED;
    *last = p->last;
    return 0;
}
