/*
 * evrow.c - a verified event's digest row, packed (evrow.h).
 */
#include "lib/evrow.h"
#include "lib/err.h"

static int put_short(struct rf_buf *out, const uint8_t *p, size_t n)
{
    if (n > 255)
        return RF_ERR_FORMAT;
    int rc = rf_buf_put_u8(out, (uint8_t)n);
    return rc == 0 && n > 0 ? rf_buf_put(out, p, n) : rc;
}

int rf_evrow_head(struct rf_buf *out, const struct rf_evrow *r)
{
    int rc = rf_buf_put_u8(out, RF_EVROW_TAG);
    if (rc == 0)
        rc = put_short(out, r->id, r->id_len);
    if (rc == 0)
        rc = rf_buf_put_u64(out, r->lamport);
    if (rc == 0)
        rc = rf_buf_put_u32(out, r->roster);
    if (rc == 0)
        rc = rf_buf_put_u32(out, r->stored);
    if (rc == 0)
        rc = rf_buf_put_u32(out, r->day);
    if (rc == 0)
        rc = rf_buf_put_u64(out, (uint64_t)r->seq);
    if (rc == 0)
        rc = rf_buf_put_u8(out, r->admin ? 1 : 0);
    if (rc == 0)
        rc = rf_buf_put(out, r->author_pk, 32);
    if (rc == 0)
        rc = rf_buf_put(out, r->hash, 32);
    if (rc == 0)
        rc = put_short(out, r->author, r->author_len);
    if (rc == 0)
        rc = put_short(out, r->op, r->op_len);
    return rc;
}

static int get_short(struct rf_reader *rd, const uint8_t **p, size_t *n)
{
    uint8_t len = 0;
    int rc = rf_get_u8(rd, &len);
    if (rc == 0)
        rc = rf_get_ptr(rd, p, len);
    *n = len;
    return rc;
}

int rf_evrow_is(const uint8_t *p, size_t n)
{
    return n > 0 && p[0] == RF_EVROW_TAG;
}

int rf_evrow_parse(struct rf_evrow *r, const uint8_t *p, size_t n)
{
    struct rf_reader rd;
    uint8_t tag = 0, admin = 0;
    uint64_t seq = 0;
    rf_reader_init(&rd, p, n);
    int rc = rf_get_u8(&rd, &tag);
    if (rc == 0 && tag != RF_EVROW_TAG)
        rc = RF_ERR_FORMAT;
    if (rc == 0)
        rc = get_short(&rd, &r->id, &r->id_len);
    if (rc == 0)
        rc = rf_get_u64(&rd, &r->lamport);
    if (rc == 0)
        rc = rf_get_u32(&rd, &r->roster);
    if (rc == 0)
        rc = rf_get_u32(&rd, &r->stored);
    if (rc == 0)
        rc = rf_get_u32(&rd, &r->day);
    if (rc == 0)
        rc = rf_get_u64(&rd, &seq);
    if (rc == 0)
        rc = rf_get_u8(&rd, &admin);
    if (rc == 0 && admin > 1)
        rc = RF_ERR_FORMAT;
    if (rc == 0)
        rc = rf_get_ptr(&rd, &r->author_pk, 32);
    if (rc == 0)
        rc = rf_get_ptr(&rd, &r->hash, 32);
    if (rc == 0)
        rc = get_short(&rd, &r->author, &r->author_len);
    if (rc == 0)
        rc = get_short(&rd, &r->op, &r->op_len);
    if (rc == 0 && rf_reader_left(&rd) == 0)
        rc = RF_ERR_TRUNCATED; /* a value is at least one byte */
    if (rc != 0)
        return rc;
    r->seq = (int64_t)seq;
    r->admin = admin;
    r->value_len = rf_reader_left(&rd);
    return rf_get_ptr(&rd, &r->value, r->value_len);
}
