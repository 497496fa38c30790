/*
 * boardpage.c - a page of board rows (boardpage.h).
 */
#include "lib/boardpage.h"
#include "lib/err.h"

#include <string.h>

int rf_boardpage_begin(struct rf_buf *out)
{
    rf_buf_reset(out);
    int rc = rf_buf_put_u8(out, RF_BOARDPAGE_VERSION);
    return rc == 0 ? rf_buf_put_u32(out, 0) : rc;
}

int rf_boardpage_add(struct rf_buf *out, const struct rf_boardpage_entry *e)
{
    int rc = rf_boardpage_add_head(out, e);
    return rc == 0 && e->row_len > 0 ? rf_buf_put(out, e->row, e->row_len) : rc;
}

int rf_boardpage_add_head(struct rf_buf *out, const struct rf_boardpage_entry *e)
{
    if (e->id_len == 0 || e->id_len > RF_BOARDPAGE_ID_MAX ||
        memchr(e->case_id, 0, e->id_len) != NULL || e->row_len > UINT32_MAX)
        return RF_ERR_FORMAT;
    int rc = rf_buf_put_u8(out, (uint8_t)e->id_len);
    if (rc == 0)
        rc = rf_buf_put(out, e->case_id, e->id_len);
    if (rc == 0)
        rc = rf_buf_put_u8(out, 0);
    if (rc == 0)
        rc = rf_buf_put_u64(out, (uint64_t)e->gen);
    if (rc == 0)
        rc = rf_buf_put_u64(out, (uint64_t)e->last_seq);
    if (rc == 0)
        rc = rf_buf_put_u32(out, (uint32_t)e->row_len);
    return rc;
}

void rf_boardpage_end(struct rf_buf *out, uint32_t count)
{
    if (out->len < RF_BOARDPAGE_HEAD)
        return;
    out->data[1] = (uint8_t)(count >> 24);
    out->data[2] = (uint8_t)(count >> 16);
    out->data[3] = (uint8_t)(count >> 8);
    out->data[4] = (uint8_t)count;
}

int rf_boardpage_first(const uint8_t *p, size_t n, uint32_t *count, size_t *off)
{
    struct rf_reader rd;
    uint8_t version = 0;
    rf_reader_init(&rd, p, n);
    int rc = rf_get_u8(&rd, &version);
    if (rc == 0 && version != RF_BOARDPAGE_VERSION)
        rc = RF_ERR_VERSION;
    if (rc == 0)
        rc = rf_get_u32(&rd, count);
    if (rc == 0 && *count == 0)
        rc = RF_ERR_FORMAT;
    *off = rd.off;
    return rc;
}

int rf_boardpage_next(const uint8_t *p, size_t n, size_t *off, struct rf_boardpage_entry *e)
{
    struct rf_reader rd;
    uint8_t id_len = 0, nul = 1;
    uint64_t gen = 0, last_seq = 0;
    uint32_t row_len = 0;
    const uint8_t *id = NULL;
    if (*off > n)
        return RF_ERR_TRUNCATED;
    if (*off == n)
        return 0;
    rf_reader_init(&rd, p + *off, n - *off);
    int rc = rf_get_u8(&rd, &id_len);
    if (rc == 0 && (id_len == 0 || id_len > RF_BOARDPAGE_ID_MAX))
        rc = RF_ERR_FORMAT;
    if (rc == 0)
        rc = rf_get_ptr(&rd, &id, id_len);
    if (rc == 0 && memchr(id, 0, id_len) != NULL)
        rc = RF_ERR_FORMAT;
    if (rc == 0)
        rc = rf_get_u8(&rd, &nul);
    if (rc == 0 && nul != 0)
        rc = RF_ERR_FORMAT;
    if (rc == 0)
        rc = rf_get_u64(&rd, &gen);
    if (rc == 0)
        rc = rf_get_u64(&rd, &last_seq);
    if (rc == 0)
        rc = rf_get_u32(&rd, &row_len);
    if (rc == 0)
        rc = rf_get_ptr(&rd, &e->row, row_len);
    if (rc != 0)
        return rc;
    e->case_id = (const char *)id;
    e->id_len = id_len;
    e->gen = (int64_t)gen;
    e->last_seq = (int64_t)last_seq;
    e->row_len = row_len;
    *off += rd.off;
    return 1;
}

int rf_boardpage_check(const uint8_t *p, size_t n)
{
    uint32_t count = 0, seen = 0;
    size_t off = 0;
    struct rf_boardpage_entry e;
    int rc = rf_boardpage_first(p, n, &count, &off);
    while (rc == 0 && (rc = rf_boardpage_next(p, n, &off, &e)) == 1) {
        seen++;
        rc = 0;
    }
    if (rc == 0 && seen != count)
        rc = seen < count ? RF_ERR_TRUNCATED : RF_ERR_FORMAT;
    return rc;
}
