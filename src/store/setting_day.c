/*
 * setting_day.c - a day kept in a setting (days since 1970-01-01 UTC, a
 * big-endian u32: the last purge, the last backup). Backend-neutral: written
 * over rf_store_setting_get and rf_store_apply, so every backend has it.
 */
#include "lib/buf.h"
#include "store/store.h"

#include <string.h>

uint32_t rf_store_day_get(struct rf_store *st, const char *key)
{
    struct rf_buf b;
    struct rf_reader r;
    uint32_t day = 0;
    rf_buf_init(&b, 16);
    if (rf_store_setting_get(st, key, &b) == 0) {
        rf_reader_init(&r, b.data, b.len);
        if (rf_get_u32(&r, &day) != 0 || rf_reader_expect_end(&r) != 0)
            day = 0;
    }
    rf_buf_free(&b);
    return day;
}

int rf_store_day_put(struct rf_store *st, const char *key, uint32_t day)
{
    uint8_t v[4] = {(uint8_t)(day >> 24), (uint8_t)(day >> 16), (uint8_t)(day >> 8), (uint8_t)day};
    struct rf_op op;
    memset(&op, 0, sizeof(op));
    op.type = RF_OP_SETTING_PUT;
    op.key = key;
    op.data = v;
    op.len = sizeof(v);
    int rc = rf_store_apply(st, &op, 1);
    return rc != 0 ? rc : op.status;
}
